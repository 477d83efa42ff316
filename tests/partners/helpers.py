"""Partner API test tools: partners with keys and grants, an API client, a patient body."""

from __future__ import annotations

import itertools
import json

from django.test import Client

from portal.partners.models import Scope
from portal.partners.services import api_key_create, grant_create
from tests.helpers import PLATFORM_HOST, unique_phone
from tests.registration.helpers import valid_id

ALL_SCOPES = list(Scope.values)
_names = itertools.count(1)


class ApiClient:
    """A test client that sends the key and JSON, on a given host."""

    def __init__(self, key: str | None, host: str = PLATFORM_HOST, prefix: str = "") -> None:
        self.client = Client(HTTP_HOST=host)
        self.key = key
        self.prefix = prefix  # "/api/v1/hospitals/alpha" on the platform, "/api/v1" on a host

    def _headers(self, extra: dict | None) -> dict:
        headers = {"X-Api-Key": self.key} if self.key else {}
        headers.update(extra or {})
        return headers

    def url(self, path: str) -> str:
        return path if path.startswith("/") else f"{self.prefix}/{path}"

    def get(self, path: str, data=None, **headers):
        return self.client.get(self.url(path), data or {}, headers=self._headers(headers))

    def post(self, path: str, body=None, idem: str | None = None, **headers):
        if idem:
            headers["Idempotency-Key"] = idem
        return self.client.post(self.url(path), json.dumps(body or {}),
                                content_type="application/json", headers=self._headers(headers))

    def delete(self, path: str, **headers):
        return self.client.delete(self.url(path), headers=self._headers(headers))


def make_partner(*hospitals, scopes=None, name: str | None = None, **key_kwargs):
    from portal.partners.models import Partner

    partner = Partner.objects.create(name=name or f"partner-{next(_names)}")
    for h in hospitals:
        grant_create(partner=partner, hospital=h)
    key, raw = api_key_create(partner=partner, scopes=ALL_SCOPES if scopes is None else scopes,
                              **key_kwargs)
    return partner, key, raw


def patient_body(name: str = "张伟", id_number: str | None = None, mobile: str | None = None):
    return {"name": name, "id_number": id_number or valid_id(), "mobile": mobile or unique_phone()}
