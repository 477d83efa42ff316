"""Development-only: the dev stack runner and local fakes of outside services.

`devstack` (private PostgreSQL and Redis, the `make run` supervisor) and the fakes `make run`
and the tests start: the sandbox payment provider's server (`sandbox_pay`), an SMS gateway
(`fake_sms`) and a messaging app (`fake_messaging_app`), all on one small HTTP base (`http`).

Nothing here ships: the package is excluded from the wheel (pyproject.toml), and product code
(portal, tenants, registration, payments, consult) never imports it — a test walks their
imports. Protocol a product adapter shares with a fake lives on the product side (e.g.
`payments.providers.sandbox_protocol`) and the fake imports it from there.
"""
