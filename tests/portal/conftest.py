"""Portal tests may use the payment fixtures (sandbox provider over HTTP, callback catcher)."""

from tests.payments.conftest import (  # noqa: F401
    _catcher_server,
    catcher,
    sandbox,
    sandbox_server,
)
