"""Device endpoints: event ingest (devices), scan resolution (user stations), device registry (admins)."""
import dataclasses

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, inline_serializer
from rest_framework import authentication, exceptions, generics, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devices import broker_auth
from devices.identification import gs_substitute_problem
from devices.models import Device, DeviceEvent, RejectedMessage
from devices.scanning import describe
from devices.selectors import MAX_OUTCOME_QUERY, event_outcomes
from devices.services import EventRejected, authenticate_device, ingest_body, readable_events
from inventory.api.authentication import TokenAuthentication
from inventory.api.errors import error_body
from inventory.api.fields import (
    RFC3339DateTimeField,
    ScopedPrimaryKeyRelatedField,
    caller_hospital,
    refused_input,
    validated,
)
from inventory.api.history import HistoryActions
from inventory.api.parsers import JSONParser
from inventory.api.permissions import BOOK_READERS, MASTER_DATA_EDITORS, RoleBasedAccess
from inventory.errors import Refusal, Refused
from inventory.models import Location, Role
from inventory.selectors.scope import visible_to
from inventory.selectors.stock import StockScope
from inventory.selectors.units import resolve_scan


class DeviceTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Device <token>`: the caller is a device, not a person."""

    keyword = "Device"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, Device] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].decode().lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Give the device token as 'Authorization: Device <token>'.")
        device = authenticate_device(parts[1].decode(errors="replace"))
        if device is None:
            raise exceptions.AuthenticationFailed("Unknown or inactive device token.")
        return AnonymousUser(), device

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    target_class = DeviceTokenAuthentication
    name = "deviceToken"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Device <token>`, the token issued for the device"}


class DevicePostsUsersRead(BasePermission):
    """POST: an authenticated device. Other methods: the usual role-based access for people."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method == "POST":
            return isinstance(request.auth, Device)
        return not isinstance(request.auth, Device) and RoleBasedAccess().has_permission(request, view)


class DeviceEventSerializer(serializers.ModelSerializer):
    device = serializers.CharField(source="device.code", read_only=True)
    occurred_at = serializers.SerializerMethodField(help_text="Null when the stored value cannot be shown")

    class Meta:
        model = DeviceEvent
        fields = [
            "id", "device", "event_id", "kind", "occurred_at", "received_at", "payload", "status", "result",
            "error_code", "error_detail", "processed_at", "occurred_at_as_sent", "date_repaired_at",
        ]

    @extend_schema_field(RFC3339DateTimeField(allow_null=True))
    def get_occurred_at(self, event: DeviceEvent) -> str | None:
        """From `occurred_at_readable` (see `devices.services.readable_events`), else the loaded field."""
        moment = getattr(event, "occurred_at_readable", None) if "occurred_at" in event.get_deferred_fields() else (
            event.occurred_at
        )
        return RFC3339DateTimeField().to_representation(moment) if moment is not None else None


class DeviceEventJSONParser(JSONParser):
    """Devices send JSON only; ingest refuses NUL itself, as INVALID_EVENT with the event's id."""

    refuse_nul = False


class DeviceEventsView(generics.ListAPIView):
    """Devices POST their events here (one object, a list, or {"events": [...]}); people list them."""

    authentication_classes = [
        DeviceTokenAuthentication, TokenAuthentication, authentication.SessionAuthentication,
    ]
    permission_classes = [DevicePostsUsersRead]
    parser_classes = [DeviceEventJSONParser]
    serializer_class = DeviceEventSerializer
    filterset_fields = ["device", "kind", "status", "event_id"]

    def get_queryset(self) -> QuerySet:
        # As on the cabinet pages: a nurse sees the events of her departments' devices only.
        return readable_events(StockScope.of(self.request.user).device_events().select_related("device"))

    @extend_schema(
        request=inline_serializer(
            "DeviceEventInput",
            {
                "event_id": serializers.CharField(max_length=128), "kind": serializers.ChoiceField(DeviceEvent.Kind.choices),
                "occurred_at": RFC3339DateTimeField(), "payload": serializers.DictField(),
            },
        ),
        responses={201: DeviceEventSerializer, 200: DeviceEventSerializer},
        examples=[
            OpenApiExample(
                "scan", value={"event_id": "sc-000123", "kind": "scan", "occurred_at": "2026-11-23T09:30:00+08:00",
                               "payload": {"code": "]d2010695000000001217281231211234"}},
            )
        ],
    )
    def post(self, request: Request) -> Response:
        device: Device = request.auth
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if max(declared, len(request.body) if declared <= settings.SPD_DEVICE_EVENT_MAX_BYTES else 0) > (
            settings.SPD_DEVICE_EVENT_MAX_BYTES
        ):
            return Response(
                error_body(Refusal.PAYLOAD_TOO_LARGE, limit=settings.SPD_DEVICE_EVENT_MAX_BYTES),
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            outcome = ingest_body(device=device, body=request.data)
        except EventRejected as rejected:
            # The code is a Refusal (its message in the caller's language); the problem says which field.
            refusal = Refusal.__members__.get(rejected.code, Refusal.INVALID_EVENT)
            body = error_body(refusal, **rejected.params,
                              problems=[{"code": rejected.code, "detail": rejected.detail}])
            return Response({**body, "code": rejected.code}, status=rejected.status)
        if isinstance(outcome, list):
            return Response({"events": outcome})
        return Response(
            DeviceEventSerializer(outcome.event).data,
            status=status.HTTP_200_OK if outcome.replayed else status.HTTP_201_CREATED,
        )


class IsDevice(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, Device)


class DeviceEventOutcomesView(APIView):
    """A device asks what became of its events: GET ?event_id=a&event_id=b (at most 500).

    For a device that lost an answer (its MQTT results, or an HTTP response cut off): each event's
    stored outcome, or status UNKNOWN when it was never stored (send it again; that is safe).
    """

    authentication_classes = [DeviceTokenAuthentication]
    permission_classes = [IsDevice]

    @extend_schema(responses={200: inline_serializer("DeviceEventOutcomes", {"results": serializers.ListField()})})
    def get(self, request: Request) -> Response:
        event_ids = request.query_params.getlist("event_id")
        if not 0 < len(event_ids) <= MAX_OUTCOME_QUERY:
            raise Refused(Refusal.EVENT_IDS_INVALID, limit=MAX_OUTCOME_QUERY)
        return Response({"results": event_outcomes(device=request.auth, event_ids=event_ids)})


class ScanInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=500, trim_whitespace=False)
    separator = serializers.CharField(
        max_length=8, required=False, trim_whitespace=False,
        help_text="The station's GS substitute, if any: a character that never occurs in GS1 or HIBC data (| ~ ^ @)",
    )

    def validate_separator(self, separator: str) -> str:
        if problem := gs_substitute_problem(separator):
            raise serializers.ValidationError(problem)
        return separator


class ScanResolveView(APIView):
    """A user station's scan: the parsed UDI and the product and unit it designates, or why none."""

    @extend_schema(
        request=ScanInputSerializer,
        responses={200: inline_serializer("ScanResolution", {
            "udi": serializers.DictField(), "product": serializers.DictField(allow_null=True),
            "unit": serializers.DictField(allow_null=True), "problem": serializers.DictField(allow_null=True),
        })},
    )
    def post(self, request: Request) -> Response:
        data = validated(ScanInputSerializer, request)
        resolution = resolve_scan(caller_hospital(request), data["code"], separator=data.get("separator"))
        if resolution.unit is not None and not StockScope.of(request.user).traceable_units().filter(
            pk=resolution.unit.pk
        ).exists():  # a nurse finds the units of her departments only, as on the scan page
            resolution = dataclasses.replace(resolution, unit=None)
        return Response(describe(resolution))

    # Resolving a scan only reads, so every role may do it.
    write_roles = tuple(Role)


class DeviceSerializer(serializers.ModelSerializer):
    location = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all(), required=False, allow_null=True)
    is_online = serializers.BooleanField(read_only=True)

    class Meta:
        model = Device
        fields = [
            "id", "hospital", "code", "name", "kind", "location", "config", "scan_mode", "offline_after_seconds",
            "is_active", "last_seen", "is_online",
        ]
        read_only_fields = ["hospital", "last_seen"]

    def validate_config(self, config: object) -> dict:
        if not isinstance(config, dict):
            raise serializers.ValidationError(Refusal.JSON_OBJECT_REQUIRED.message(field="config"))
        substitute = config.get("gs_substitute")
        if substitute is not None and (problem := gs_substitute_problem(substitute)):
            raise serializers.ValidationError(problem)
        share, minimum = config.get("suspect_missing_share"), config.get("suspect_min_units")
        if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1):
            raise refused_input(Refusal.SUSPECT_SHARE_INVALID)
        if minimum is not None and (isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 1):
            raise refused_input(Refusal.SUSPECT_MIN_UNITS_INVALID)
        return config


class DeviceViewSet(HistoryActions, viewsets.ModelViewSet):
    """The device registry. A new token is shown once, by the issue-token action."""

    serializer_class = DeviceSerializer
    write_roles = MASTER_DATA_EDITORS
    filterset_fields = ["kind", "location", "is_active"]

    def get_queryset(self) -> QuerySet:
        return StockScope.of(self.request.user).devices().select_related("hospital")

    def perform_create(self, serializer: DeviceSerializer) -> None:
        serializer.save(hospital=caller_hospital(self.request))

    # A cabinet deactivated, renamed or moved loses or changes its broker access at once.
    def perform_update(self, serializer: DeviceSerializer) -> None:
        serializer.save()
        broker_auth.sync_after_commit()

    def perform_destroy(self, instance: Device) -> None:
        instance.delete()
        broker_auth.sync_after_commit()

    @extend_schema(
        request=None,
        responses={200: inline_serializer("DeviceToken", {
            "token": serializers.CharField(),
            "mqtt": inline_serializer("DeviceMqttCredential", {
                "username": serializers.CharField(), "password": serializers.CharField(),
                "events_topic": serializers.CharField(), "results_topic": serializers.CharField(),
            }, required=False),
        })},
    )
    @action(detail=True, methods=["post"], url_path="issue-token")
    def issue_token(self, request: Request, pk: str) -> Response:
        """A new token (HTTP) and, for an MQTT cabinet, a new broker password; both shown once only.
        The previous ones stop working (the broker's once its password file is rewritten)."""
        device = self.get_object()
        answer = {"token": device.issue_token()}
        if device.kind == Device.Kind.CABINET_MQTT:
            answer["mqtt"] = {
                "username": device.code, "password": broker_auth.issue_mqtt_password(device),
                "events_topic": broker_auth.events_topic(device), "results_topic": broker_auth.results_topic(device),
            }
        device.save(update_fields=["token_hash", "mqtt_password_hash"])
        broker_auth.sync_after_commit()
        return Response(answer)


class RejectedMessageSerializer(serializers.ModelSerializer):
    device = serializers.CharField(source="device.code", read_only=True, allow_null=True)

    class Meta:
        model = RejectedMessage
        fields = [
            "id", "received_at", "hospital", "device", "topic", "error_code", "error_detail", "payload",
            "payload_bytes", "results",
        ]


class RejectedMessageViewSet(viewsets.ReadOnlyModelViewSet):
    """Dead letters: MQTT messages the bridge refused in whole or in part, newest first. Those of no
    known hospital (unknown device on an unknown hospital's topic) only alliance administrators see."""

    serializer_class = RejectedMessageSerializer
    filterset_fields = ["device", "error_code"]
    # As the page (inventory/web/views/devices.py): the people who keep the hospital's books, not nurses.
    read_roles = BOOK_READERS

    def get_queryset(self) -> QuerySet:
        return visible_to(self.request.user, RejectedMessage.objects.select_related("device"))
