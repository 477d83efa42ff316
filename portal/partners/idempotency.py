"""`Idempotency-Key` for every POST of the partner API.

Same key + same request (method, path, body) → the stored response again (marked with
`Idempotent-Replayed: true`); same key + a different request → 409 `idempotency_key_reused`.
Keys are per API key and kept IDEMPOTENCY_TTL_HOURS.

Concurrency: the record is INSERTed and committed *before* the request runs, under a unique
constraint (api key, idempotency key). Of two simultaneous requests only one inserts; the
other waits briefly for the first one's outcome and replays it, or answers 409
`idempotency_request_in_progress` if it is still running. A 5xx outcome is not kept, so the
partner can retry with the same key.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.response import Response

from portal.errors import DomainError

from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
_WAIT_SECONDS = 5.0


class IdempotencyConflict(DomainError):
    code = "idempotency_key_reused"


class IdempotencyInProgress(DomainError):
    code = "idempotency_request_in_progress"


class IdempotencyKeyInvalid(DomainError):
    code = "idempotency_key_invalid"


def _request_hash(request) -> str:
    h = hashlib.sha256()
    h.update(request.method.encode() + b" " + request.path.encode() + b"\n")
    h.update(request.body)
    return h.hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    return Response(json.loads(record.response_body) if record.response_body else None,
                    status=record.status_code, headers={REPLAY_HEADER: "true"})


def _claim(api_key, key: str, digest: str) -> IdempotencyRecord | None:
    """Insert our record (committed at once); None if another request has the key."""
    ttl = timedelta(hours=getattr(settings, "IDEMPOTENCY_TTL_HOURS", 24))
    now = timezone.now()
    # An expired record no longer counts: remove it so the key can be used afresh.
    IdempotencyRecord.objects.filter(api_key=api_key, key=key, expires_at__lte=now).delete()
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(api_key=api_key, key=key, request_hash=digest,
                                                    expires_at=now + ttl)
    except IntegrityError:
        return None


def idempotent(handler):
    """Decorate an API view's `post`: runs it at most once per (API key, Idempotency-Key)."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER, "")
        if not key:
            return handler(view, request, *args, **kwargs)
        if len(key) > 255 or not key.isprintable():
            raise IdempotencyKeyInvalid(_("Idempotency-Key must be 1–255 printable characters."))
        digest = _request_hash(request)
        record = _claim(request.auth, key, digest)
        if record is None:
            deadline = time.monotonic() + _WAIT_SECONDS
            while True:
                existing = IdempotencyRecord.objects.filter(api_key=request.auth, key=key).first()
                if existing is None:  # the first request failed with a 5xx and let go
                    record = _claim(request.auth, key, digest)
                    if record is not None:
                        break
                    continue
                if existing.request_hash != digest:
                    raise IdempotencyConflict(
                        _("This Idempotency-Key was already used for a different request."))
                if existing.status_code is not None:
                    return _replay(existing)
                if time.monotonic() > deadline:
                    raise IdempotencyInProgress(
                        _("A request with this Idempotency-Key is still being processed."))
                time.sleep(0.05)
        try:
            response = handler(view, request, *args, **kwargs)
        except Exception as exc:
            response = view.handle_exception(exc)
        if response.status_code >= 500:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
            return response
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            status_code=response.status_code,
            response_body=json.dumps(response.data, cls=DjangoJSONEncoder, ensure_ascii=False))
        return response

    return wrapper
