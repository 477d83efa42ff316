"""OpenAPI: the API key header as the security scheme of every partner operation."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from .auth import API_KEY_HEADER


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "portal.partners.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": API_KEY_HEADER,
                "description": "A partner API key (hpk_…), created by the platform operator and "
                               "shown once."}


def describe(result, generator, request, public):
    """The API's description: entry points, conventions and every error code."""
    from .errors import ERROR_CODES

    codes = "\n".join(f"| `{code}` | {meaning} |" for code, meaning in ERROR_CODES.items())
    result["info"]["description"] = f"""
Partner REST API of the hospital portal.

**Entry points.** On the platform host: `GET /api/v1/hospitals/` lists the hospitals your key is
granted, and each hospital's resources are under `/api/v1/hospitals/{{code}}/…`. On a hospital's
own host the same resources are at `/api/v1/…`. A hospital your key is not granted answers 404.

**Auth.** Send your key in the `X-Api-Key` header. Each operation needs a scope
(`schedules:read`, `bookings:read`, `bookings:write`, `bills:write`, `webhooks:manage`).

**Conventions.** Money is integer fen. Times are ISO 8601 with the hospital's UTC offset.
Lists use cursor pagination (`next` / `previous` links; `limit` up to 200). Every POST accepts
an `Idempotency-Key` header: the same key and body return the stored response (header
`Idempotent-Replayed: true`), the same key with another body answers 409
`idempotency_key_reused`. Each key has a rate limit per minute; over it you get 429 with
`Retry-After`.

**Errors** always look like `{{"error": {{"code": "…", "message": "…", "details": {{…}}}}}}`.
The `code` is stable; the message follows `Accept-Language` (zh-hans by default).

| code | meaning |
|---|---|
{codes}
"""
    return result


def only_api(endpoints):
    """The partner API's operations only (not the schema and docs views themselves)."""
    return [e for e in endpoints if e[0].startswith("/api/v1/")]
