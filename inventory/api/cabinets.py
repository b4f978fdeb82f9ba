"""Cabinets: their sessions (who took what, when), takes and put-backs by scan, overdue returns."""
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.actors import Actor
from inventory.api.clinical import CLINICAL_ROLES
from inventory.api.fields import (
    BoundedDateTimeField,
    IdempotentInputSerializer,
    RFC3339DateTimeField,
    ScopedPrimaryKeyRelatedField,
    caller_hospital,
    idempotency_key,
    validated,
)
from inventory.api.permissions import STOCK_HANDLERS
from inventory.api.stock import StockOrderSerializer, UnitSerializer, named_units
from inventory.date_window import readable
from inventory.models import CabinetSession, Unit
from inventory.selectors.stock import StockScope
from inventory.services.cabinets import (
    accept_suspect_read,
    deadline_hours,
    overdue_takes,
    put_back_by_scan,
    take_by_scan,
)


class CabinetSessionSerializer(serializers.ModelSerializer):
    """A door session. Closes recorded before other hospitals' units were kept out of `misplaced`
    show those tags as unknown, with nothing of the unit (see services.cabinets.compare_with_contents)."""

    unknown_tags = serializers.SerializerMethodField()
    misplaced = serializers.SerializerMethodField()

    # Null when a stored time cannot be shown (stamped by a wrong device clock before times were checked).
    opened_at = RFC3339DateTimeField(source="opened_at_readable", read_only=True, allow_null=True)
    closed_at = RFC3339DateTimeField(source="closed_at_readable", read_only=True, allow_null=True)

    class Meta:
        model = CabinetSession
        fields = [
            "id", "cabinet", "device", "user", "badge", "status", "opened_at", "closed_at", "tags_seen", "taken",
            "returned", "unknown_tags", "misplaced", "device_clock_ahead_seconds", "read_check", "suspect_reads",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_unknown_tags(self, session: CabinetSession) -> list[str]:
        return sorted([*session.unknown_tags, *(item["epc"] for item in self._elsewhere(session))])

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_misplaced(self, session: CabinetSession) -> list[dict]:
        return [item for item in session.misplaced or [] if item.get("hospital") == session.cabinet.hospital_id]

    def _elsewhere(self, session: CabinetSession) -> list[dict]:
        return [item for item in session.misplaced or [] if item.get("hospital") != session.cabinet.hospital_id]


class AcceptReadSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=500, help_text="What was seen in the cabinet, e.g. 'emptied for PCI'")


class CabinetSessionViewSet(viewsets.ReadOnlyModelViewSet):
    """Door sessions of the smart cabinets, newest first. A SUSPECT session's read may be accepted
    by a person who has looked into the cabinet (accept-read)."""

    serializer_class = CabinetSessionSerializer
    filterset_fields = ["cabinet", "status", "user", "device"]
    write_roles = STOCK_HANDLERS

    def get_queryset(self) -> QuerySet:
        return StockScope.of(self.request.user).cabinet_sessions().select_related("cabinet").defer(
            "opened_at", "closed_at"
        ).annotate(opened_at_readable=readable("opened_at"), closed_at_readable=readable("closed_at"))

    @extend_schema(request=AcceptReadSerializer, responses={200: CabinetSessionSerializer})
    @action(detail=True, methods=["post"], url_path="accept-read")
    def accept_read(self, request: Request, pk: str) -> Response:
        session = self.get_object()
        data = validated(AcceptReadSerializer, request)
        accept_suspect_read(session=session, user=request.user, note=data["note"])
        return Response(self.get_serializer(self.get_queryset().get(pk=session.pk)).data)


class ScanUnitsSerializer(IdempotentInputSerializer):
    units = ScopedPrimaryKeyRelatedField(queryset=Unit.objects.all(), many=True, required=False, default=list)
    udis = serializers.ListField(
        child=serializers.CharField(max_length=300, trim_whitespace=False), required=False, default=list
    )
    occurred_at = BoundedDateTimeField(
        required=False, help_text="When it happened, for a paper record entered later (default: now); in the open "
        "period, not in the future, after each unit's last movement (409 HISTORY_CONTRADICTED)."
    )


class TakeView(APIView):
    """Take units out of a store without RFID by scanning them (TAKEN, attributed to the caller)."""

    write_roles = CLINICAL_ROLES
    service = staticmethod(take_by_scan)

    @extend_schema(request=ScanUnitsSerializer, responses={201: StockOrderSerializer})
    def post(self, request: Request) -> Response:
        data = validated(ScanUnitsSerializer, request)
        order = self.service(actor=Actor(user=request.user), hospital=caller_hospital(request),
                             units=named_units(request, data), idempotency_key=idempotency_key(request, data),
                             occurred_at=data.get("occurred_at"))
        return Response(StockOrderSerializer(order).data, status=status.HTTP_201_CREATED)


class PutBackView(TakeView):
    """Put taken units back where they were taken from, by scanning them."""

    service = staticmethod(put_back_by_scan)


class OverdueTakeSerializer(UnitSerializer):
    taken_at = RFC3339DateTimeField(source="status_since")
    deadline_hours = serializers.SerializerMethodField()

    class Meta(UnitSerializer.Meta):
        fields = [*UnitSerializer.Meta.fields, "taken_at", "deadline_hours"]

    def get_deadline_hours(self, unit: Unit) -> int:
        return deadline_hours(unit)


class OverdueTakesView(APIView):
    """Units taken and neither used nor returned within their deadline (定时回库预警)."""

    @extend_schema(responses={200: OverdueTakeSerializer(many=True)})
    def get(self, request: Request) -> Response:
        overdue = overdue_takes(caller_hospital(request))
        visible = set(StockScope.of(request.user).units().filter(pk__in=[unit.pk for unit in overdue]).values_list(
            "pk", flat=True))
        return Response(OverdueTakeSerializer([unit for unit in overdue if unit.pk in visible], many=True).data)
