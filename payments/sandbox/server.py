"""Transitional: `payments.services.payment_settings_seed` still imports `merchant_key` from here.

The sandbox provider's server moved to `portal/dev/sandbox_pay.py` (development only, not
shipped); its protocol lives in `payments/providers/sandbox_protocol.py`. Delete this package
once `payments/services.py` imports `merchant_key` from `payments.providers.sandbox_protocol`.
"""

from payments.providers.sandbox_protocol import merchant_key

__all__ = ["merchant_key"]
