"""Payments in a hospital's admin, one module per model group (imported here so that admin
autodiscovery registers them all)."""

from . import orders, payment_settings, reconciliation  # noqa: F401
