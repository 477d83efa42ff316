"""Partner API: a partner's own webhook endpoints at a hospital (scope webhooks:manage).

Endpoints registered here are `own_events_only`: booking events only for bookings this partner
made through the API, plus hospital-wide announcements (see webhooks.endpoint_receives).
The signing secret is returned once, in the response that creates the endpoint.
"""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from portal.partners.api import (
    IDEMPOTENCY_PARAM,
    ApiCursorPagination,
    PartnerAPIView,
    PartnerListView,
    errors,
)
from portal.partners.idempotency import idempotent

from . import webhooks
from .models import WebhookEndpoint

#: What a partner may subscribe to through the API ("*" = all of these).
PARTNER_EVENT_KINDS = tuple(sorted(set(webhooks.EVENT_KINDS) | {
    "booking_held", "booking_confirmed", "booking_cancelled", "booking_expired",
    "schedule_stopped", "schedule_stopped_refund", "visit_reminder", "announcement"}))


class EndpointIn(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=["*", *PARTNER_EVENT_KINDS]), allow_empty=False,
        max_length=len(PARTNER_EVENT_KINDS) + 1)

    def validate_url(self, value: str) -> str:
        if not value.lower().startswith(("https://", "http://")):
            raise serializers.ValidationError(_("Use an http(s) URL."))
        try:
            webhooks.check_target(value)
        except webhooks.TargetNotAllowed as exc:
            raise serializers.ValidationError(
                _("This URL is not reachable from the internet (%(reason)s): use a public "
                  "address.") % {"reason": exc}, code="webhook_target_not_allowed") from exc
        return value


class EndpointOut(serializers.ModelSerializer):
    # A list of event kinds ("*" = all) in the schema too, not an untyped JSON value.
    events = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "is_active", "created_at"]
        read_only_fields = fields  # always in the response: required in the schema


class EndpointCreatedOut(EndpointOut):
    secret = serializers.CharField(help_text="Signing secret: shown only in this response.")

    class Meta(EndpointOut.Meta):
        fields = [*EndpointOut.Meta.fields, "secret"]


ENDPOINT_EXAMPLE = {"id": 7, "url": "https://partner.example/hooks/portal",
                    "events": ["booking_confirmed", "booking_cancelled"], "is_active": True,
                    "created_at": "2026-12-01T10:00:00+08:00"}


def _own_endpoints(request, hospital):
    return WebhookEndpoint.objects.filter(hospital_id=hospital.pk,
                                          partner_id=request.auth.partner_id)


class WebhookListView(PartnerListView):
    required_scopes = {"GET": "webhooks:manage", "POST": "webhooks:manage"}
    pagination_class = type("Cursor", (ApiCursorPagination,), {"ordering": "pk"})
    serializer_class = EndpointOut

    @extend_schema(operation_id="webhooks_list", tags=["webhooks"],
                   summary=_("This partner's webhook endpoints at the hospital"),
                   responses={200: EndpointOut(many=True), **errors()},
                   examples=[OpenApiExample("endpoints", response_only=True, value=ENDPOINT_EXAMPLE)])
    def get(self, request, **kwargs):
        return self.list_response(_own_endpoints(request, self.hospital), EndpointOut)

    @extend_schema(
        operation_id="webhooks_create", tags=["webhooks"],
        summary=_("Register a webhook endpoint (the secret is shown once)"),
        description=_("Deliveries are signed (Portal-Webhook-Signature, see the README). This "
                      "endpoint receives booking events only for bookings this partner made, "
                      "plus hospital-wide announcements."),
        parameters=[IDEMPOTENCY_PARAM], request=EndpointIn,
        responses={201: EndpointCreatedOut, **errors(idempotent=True)},
        examples=[OpenApiExample("register", request_only=True, value={
            "url": "https://partner.example/hooks/portal",
            "events": ["booking_confirmed", "booking_cancelled"]}),
            OpenApiExample("registered", response_only=True, status_codes=["201"], value={
                **ENDPOINT_EXAMPLE, "secret": "whsec_2f1d0c..."})])
    @idempotent
    def post(self, request, **kwargs):
        data = EndpointIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = WebhookEndpoint.objects.create(
            hospital_id=self.hospital.pk, partner_id=request.auth.partner_id,
            url=data.validated_data["url"], events=data.validated_data["events"],
            own_events_only=True)
        return Response(EndpointCreatedOut(endpoint).data, status=201)


class WebhookDetailView(PartnerAPIView):
    required_scopes = {"GET": "webhooks:manage", "DELETE": "webhooks:manage"}

    def _get(self, request, pk: int) -> WebhookEndpoint:
        endpoint = _own_endpoints(request, self.hospital).filter(pk=pk).first()
        if endpoint is None:
            raise exceptions.NotFound()
        return endpoint

    @extend_schema(operation_id="webhooks_retrieve", tags=["webhooks"],
                   summary=_("One webhook endpoint"), responses={200: EndpointOut, **errors()},
                   examples=[OpenApiExample("endpoint", response_only=True,
                                            value=ENDPOINT_EXAMPLE)])
    def get(self, request, pk: int, **kwargs):
        return Response(EndpointOut(self._get(request, pk)).data)

    @extend_schema(operation_id="webhooks_destroy", tags=["webhooks"],
                   summary=_("Remove a webhook endpoint"),
                   responses={204: OpenApiResponse(description="Removed."), **errors()})
    def delete(self, request, pk: int, **kwargs):
        self._get(request, pk).delete()
        return Response(status=204)


urlpatterns = [
    path("webhooks/", WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<int:pk>/", WebhookDetailView.as_view(), name="webhook"),
]
