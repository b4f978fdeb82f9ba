"""Device endpoints: event ingest (devices), scan resolution (user stations), device registry (admins)."""
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import authentication, exceptions, generics, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devices.models import Device, DeviceEvent
from devices.scanning import describe
from devices.services import EventRejected, authenticate_device, ingest_body
from inventory.api.authentication import TokenAuthentication
from inventory.api.errors import error_body
from inventory.api.fields import ScopedPrimaryKeyRelatedField, caller_hospital, validated
from inventory.api.parsers import JSONParser
from inventory.api.permissions import MASTER_DATA_EDITORS, RoleBasedAccess
from inventory.errors import Refusal
from inventory.models import Location, Role
from inventory.selectors.scope import visible_to
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

    class Meta:
        model = DeviceEvent
        fields = [
            "id", "device", "event_id", "kind", "occurred_at", "received_at", "payload", "status", "result",
            "error_code", "error_detail", "processed_at",
        ]


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
        return visible_to(self.request.user, DeviceEvent.objects.select_related("device"), "device__hospital")

    @extend_schema(
        request=inline_serializer(
            "DeviceEventInput",
            {
                "event_id": serializers.CharField(max_length=128), "kind": serializers.ChoiceField(DeviceEvent.Kind.choices),
                "occurred_at": serializers.DateTimeField(), "payload": serializers.DictField(),
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
            body = error_body(refusal, problems=[{"code": rejected.code, "detail": rejected.detail}])
            return Response({**body, "code": rejected.code}, status=rejected.status)
        if isinstance(outcome, list):
            return Response({"events": outcome})
        return Response(
            DeviceEventSerializer(outcome.event).data,
            status=status.HTTP_200_OK if outcome.replayed else status.HTTP_201_CREATED,
        )


class ScanInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=500, trim_whitespace=False)
    separator = serializers.CharField(max_length=8, required=False, help_text="The station's GS substitute, if any")


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
        if substitute is not None and (not isinstance(substitute, str) or not substitute or substitute.isalnum()):
            raise serializers.ValidationError("gs_substitute must be a non-alphanumeric character or string")
        return config


class DeviceViewSet(viewsets.ModelViewSet):
    """The device registry. A new token is shown once, by the issue-token action."""

    serializer_class = DeviceSerializer
    write_roles = MASTER_DATA_EDITORS
    filterset_fields = ["kind", "location", "is_active"]

    def get_queryset(self) -> QuerySet:
        return visible_to(self.request.user, Device.objects.select_related("hospital"))

    def perform_create(self, serializer: DeviceSerializer) -> None:
        serializer.save(hospital=caller_hospital(self.request))

    @extend_schema(request=None, responses={200: inline_serializer("DeviceToken", {"token": serializers.CharField()})})
    @action(detail=True, methods=["post"], url_path="issue-token")
    def issue_token(self, request: Request, pk: str) -> Response:
        device = self.get_object()
        token = device.issue_token()
        device.save(update_fields=["token_hash"])
        return Response({"token": token})
