"""OpenAPI: the API key header as the security scheme of every partner operation, the API's
description, and the rate-limit headers on every response."""

from django.conf import settings
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

    window = settings.PARTNER_API_RATE_WINDOW

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
`idempotency_key_reused`.

**Rate limit.** Each API key may make a number of requests in any window of {window} seconds (a
sliding window, shared by all the hospitals the key uses). Every response to a valid key carries
`X-RateLimit-Limit`, `X-RateLimit-Remaining` (this request counted) and `X-RateLimit-Reset`
(seconds until a place frees up). Over the limit you get 429 `rate_limited` with
`Retry-After` (seconds); refused requests do not count.

**Errors** always look like `{{"error": {{"code": "…", "message": "…", "details": {{…}}}}}}`.
The `code` is stable; the message follows `Accept-Language` (zh-hans by default).

| code | meaning |
|---|---|
{codes}
"""
    return result


RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "Requests this API key may make in any window of {window} seconds.",
    "X-RateLimit-Remaining": "Requests left in the current window, this one counted.",
    "X-RateLimit-Reset": "Seconds (an integer, not a date) until the oldest request counted in "
                         "the window leaves it, i.e. until Remaining grows again.",
}


def rate_limit_headers(result, generator, request, public):
    """Every response of every operation documents the X-RateLimit-* headers (absent when the
    key is missing or invalid, and while the limiter is unavailable: not required), and 429
    its Retry-After."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                headers = response.setdefault("headers", {})
                for name, description in RATE_LIMIT_HEADERS.items():
                    headers[name] = {"description": description.format(
                                         window=settings.PARTNER_API_RATE_WINDOW), "required": False,
                                     "schema": {"type": "integer", "minimum": 0}}
                if status == "429":
                    headers["Retry-After"] = {
                        "description": "Seconds to wait before the next request can pass.",
                        "required": True, "schema": {"type": "integer", "minimum": 1}}
    return result


def only_api(endpoints):
    """The partner API's operations only (not the schema and docs views themselves)."""
    return [e for e in endpoints if e[0].startswith("/api/v1/")]
