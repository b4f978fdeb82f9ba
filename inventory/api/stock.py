"""Units, the ledger, and the documents that move stock: transfers, returns to supplier, scraps,
releases from quarantine."""
import django_filters
from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devices.identification import ParseError, parse_udi
from inventory.actors import Actor
from inventory.api import filters as api_filters
from inventory.api import sync
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
from inventory.api.representation import PlannedRepresentation
from inventory.errors import Problem, Refused
from inventory.models import Location, LotMovementLayer, Movement, Product, StockOrder, Supplier, Unit, UnitStatus
from inventory.selectors.stock import StockScope
from inventory.selectors.units import find_unit_by_udi, unit_trace, units_for_list
from inventory.services import labelling
from inventory.services.stock import (
    LotQuantity,
    release_from_quarantine,
    return_to_supplier,
    scrap,
    transfer_stock,
)


class UnitSerializer(PlannedRepresentation, serializers.ModelSerializer):
    product_name = serializers.CharField(source="product.name", read_only=True)
    location_name = serializers.CharField(source="location.name", read_only=True, default=None, allow_null=True)

    class Meta:
        model = Unit
        fields = [
            "id", "hospital", "product", "product_name", "supplier", "udi", "udi_raw", "di", "lot", "serial", "expiry",
            "production_date", "epc", "owner", "unit_cost", "is_gift", "status", "location", "location_name",
            "created_at",
        ]


class UnitFilter(api_filters.FilterSet):
    expiring_before = django_filters.DateFilter(field_name="expiry", lookup_expr="lte")
    # Untrimmed: a HIBC check character may be a space (the parser skips whitespace around a code itself).
    udi = django_filters.CharFilter(method="filter_udi", help_text="A scanned UDI in any GS1 form", strip=False)
    status = django_filters.MultipleChoiceFilter(choices=UnitStatus.choices)

    class Meta:
        model = Unit
        fields = ["product", "status", "location", "serial", "lot", "supplier", "owner", "is_gift"]

    def filter_udi(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        try:
            parsed = parse_udi(value)
        except ParseError:
            return queryset.filter(Q(udi=value) | Q(udi_raw=value))
        return queryset.filter(di=parsed.di, serial=parsed.serial) if parsed.serial else queryset.filter(di=parsed.di)


class TraceEventSerializer(serializers.Serializer):
    at = RFC3339DateTimeField(allow_null=True)
    kind = serializers.CharField()
    summary = serializers.CharField()
    details = serializers.DictField()


class BindTagSerializer(serializers.Serializer):
    epc = serializers.CharField(max_length=80)


class UnbindTagSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


class UnitViewSet(viewsets.ReadOnlyModelViewSet):
    """High-value units (一物一码): where each is, in what state, and its whole history.

    Integrators keeping a copy: `?cursor=` pages in id order without a count, `?updated_after=` keeps
    the units moved, created or re-tagged since (docs/api-sync.md)."""

    # Not "trace": DRF dispatches an HTTP method to the view method of its name, which here is the
    # trace action — an HTTP TRACE would run it (and without a pk, crash).
    http_method_names = ["get", "post", "head", "options"]

    serializer_class = UnitSerializer
    filterset_class = UnitFilter
    pagination_class = sync.SyncPagination
    sync_recorded_field = "created_at"
    sync_changed_after = staticmethod(sync.units_changed_after)
    write_roles = STOCK_HANDLERS

    def get_queryset(self) -> QuerySet:
        """The list holds the units at the caller's locations; one unit (and its trace) may be opened
        if it is, or has been, at one of them — for a nurse her departments', as on the trace page."""
        scope = StockScope.of(self.request.user)
        if self.action == "list":
            return units_for_list(scope.units())
        return scope.traceable_units().select_related("product", "location", "supplier")

    @extend_schema(responses={200: TraceEventSerializer(many=True)})
    @action(detail=True, pagination_class=None, filter_backends=[])  # the whole trace, as one list
    def trace(self, request: Request, pk: str) -> Response:
        """Oldest first: manufacturer, certificates, supplier, delivery, acceptance, every movement."""
        return Response(TraceEventSerializer(unit_trace(self.get_object()), many=True).data)

    @extend_schema(request=BindTagSerializer, responses={200: UnitSerializer})
    @action(detail=True, methods=["post"], url_path="bind-tag")
    def bind_tag(self, request: Request, pk: str) -> Response:
        """Bind an RFID tag (EPC, hex) to this unit; a tagged unit must be unbound first."""
        unit = self.get_object()
        labelling.bind_tag(unit=unit, epc=validated(BindTagSerializer, request)["epc"], actor=Actor(user=request.user))
        return Response(UnitSerializer(self.get_queryset().get(pk=unit.pk)).data)

    @extend_schema(request=UnbindTagSerializer, responses={200: UnitSerializer})
    @action(detail=True, methods=["post"], url_path="unbind-tag")
    def unbind_tag(self, request: Request, pk: str) -> Response:
        """Take this unit's tag off, with a reason (damaged tag, relabelling)."""
        unit = self.get_object()
        reason = validated(UnbindTagSerializer, request)["reason"]
        labelling.unbind_tag(unit=unit, actor=Actor(user=request.user), reason=reason)
        return Response(UnitSerializer(self.get_queryset().get(pk=unit.pk)).data)


class MovementLayerSerializer(serializers.ModelSerializer):
    class Meta:
        model = LotMovementLayer
        fields = ["receipt", "quantity", "unit_cost", "is_gift"]


class MovementSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    layers = MovementLayerSerializer(many=True, read_only=True, help_text="The cost layers a lot movement moved")

    class Meta:
        model = Movement
        fields = [
            "id", "kind", "product", "unit", "lot", "quantity", "from_location", "to_location", "from_status",
            "to_status", "actor_user", "actor_device", "actor", "occurred_at", "recorded_at", "reason_code", "note",
            "document_type", "document_id", "idempotency_key", "layers",
        ]

    def get_actor(self, movement: Movement) -> str:
        return movement.actor_user.username if movement.actor_user else f"device:{movement.actor_device.code}"


class MovementFilter(api_filters.FilterSet):
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")
    location = django_filters.NumberFilter(method="filter_location", help_text="Moved into or out of this location")

    class Meta:
        model = Movement
        fields = ["kind", "unit", "product", "lot", "document_type", "document_id", "actor_user", "actor_device"]

    def filter_location(self, queryset: QuerySet, name: str, value: int) -> QuerySet:
        return queryset.filter(Q(from_location_id=value) | Q(to_location_id=value))


class MovementViewSet(viewsets.ReadOnlyModelViewSet):
    """The ledger (台账), append-only: one row per change of quantity, location, status or owner.

    Integrators following the ledger: `?cursor=` pages in id order without a count; keep the last
    `next_cursor` and ask with it for every movement recorded since (docs/api-sync.md)."""

    serializer_class = MovementSerializer
    filterset_class = MovementFilter
    pagination_class = sync.SyncPagination
    sync_recorded_field = "recorded_at"
    sync_changed_after = staticmethod(sync.movements_recorded_after)

    def get_queryset(self) -> QuerySet:
        return StockScope.of(self.request.user).movements().select_related(
            "actor_user", "actor_device"
        ).prefetch_related("layers")


class LotQuantitySerializer(serializers.Serializer):
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all())
    lot = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1)
    from_location = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all())


class StockOrderInputSerializer(IdempotentInputSerializer):
    units = ScopedPrimaryKeyRelatedField(queryset=Unit.objects.all(), many=True, required=False, default=list)
    udis = serializers.ListField(
        child=serializers.CharField(max_length=300, trim_whitespace=False), required=False, default=list,
        help_text="Scanned UDIs",
    )
    lots = LotQuantitySerializer(many=True, required=False, default=list)
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    occurred_at = BoundedDateTimeField(
        required=False, help_text="When it happened, for a paper record entered later (default: now). Must be in the "
        "open period, not in the future, and fit the ledger (409 HISTORY_CONTRADICTED)."
    )


class TransferInputSerializer(StockOrderInputSerializer):
    to_location = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all())
    from_location = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all(), required=False, allow_null=True)


class ReturnInputSerializer(StockOrderInputSerializer):
    supplier = serializers.PrimaryKeyRelatedField(queryset=Supplier.objects.all())
    reason_code = serializers.CharField(max_length=32)


class ScrapInputSerializer(StockOrderInputSerializer):
    reason_code = serializers.CharField(max_length=32)


class ReleaseInputSerializer(StockOrderInputSerializer):
    to_location = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all())
    reason_code = serializers.CharField(max_length=32)


class StockOrderSerializer(serializers.ModelSerializer):
    movements = serializers.SerializerMethodField()

    class Meta:
        model = StockOrder
        fields = [
            "id", "kind", "to_location", "supplier", "reason_code", "note", "created_by", "occurred_at", "recorded_at",
            "movements",
        ]

    @extend_schema_field(MovementSerializer(many=True))
    def get_movements(self, order: StockOrder) -> list[dict]:
        movements = Movement.objects.filter(
            document_type=Movement.DocumentType.STOCK_ORDER, document_id=order.pk
        ).select_related("actor_user", "actor_device").prefetch_related("layers")
        return MovementSerializer(movements, many=True).data


def named_units(request: Request, data: dict) -> list[Unit]:
    """The units named by id and by scanned UDI; every UDI that designates no unit is a problem."""
    units = list(data["units"])
    problems = []
    hospital = caller_hospital(request)
    for raw in data["udis"]:
        try:
            units.append(find_unit_by_udi(hospital, raw))
        except Refused as refused:
            problems += [Problem(p.refusal, p.params, raw) for p in refused.problems]
    if problems:
        raise Refused(problems)
    return units


def _lots(data: dict) -> list[LotQuantity]:
    return [LotQuantity(**lot) for lot in data["lots"]]


class StockOrderView(APIView):
    write_roles = STOCK_HANDLERS
    input_serializer: type[serializers.Serializer]

    def post(self, request: Request) -> Response:
        data = validated(self.input_serializer, request)
        order = self.perform(request, data, key=idempotency_key(request, data))
        return Response(StockOrderSerializer(order).data, status=status.HTTP_201_CREATED)

    def perform(self, request: Request, data: dict, key: str) -> StockOrder:
        raise NotImplementedError


class TransferView(StockOrderView):
    """Move units (by id or scanned UDI) and lot quantities to another location, e.g. a smart cabinet."""

    input_serializer = TransferInputSerializer

    @extend_schema(request=TransferInputSerializer, responses={201: StockOrderSerializer})
    def post(self, request: Request) -> Response:
        return super().post(request)

    def perform(self, request: Request, data: dict, key: str) -> StockOrder:
        return transfer_stock(
            actor=Actor(user=request.user), hospital=caller_hospital(request), to_location=data["to_location"],
            from_location=data.get("from_location"), units=named_units(request, data), lots=_lots(data),
            note=data["note"], idempotency_key=key, occurred_at=data.get("occurred_at"),
        )


class ReturnView(StockOrderView):
    """Return units or lot quantities to the supplier that delivered them (退货); a reason is required."""

    input_serializer = ReturnInputSerializer

    @extend_schema(request=ReturnInputSerializer, responses={201: StockOrderSerializer})
    def post(self, request: Request) -> Response:
        return super().post(request)

    def perform(self, request: Request, data: dict, key: str) -> StockOrder:
        return return_to_supplier(
            actor=Actor(user=request.user), hospital=caller_hospital(request), supplier=data["supplier"],
            reason_code=data["reason_code"], units=named_units(request, data), lots=_lots(data), note=data["note"],
            idempotency_key=key, occurred_at=data.get("occurred_at"),
        )


class ScrapView(StockOrderView):
    """Write off units or lot quantities (报损); a reason is required."""

    input_serializer = ScrapInputSerializer

    @extend_schema(request=ScrapInputSerializer, responses={201: StockOrderSerializer})
    def post(self, request: Request) -> Response:
        return super().post(request)

    def perform(self, request: Request, data: dict, key: str) -> StockOrder:
        return scrap(
            actor=Actor(user=request.user), hospital=caller_hospital(request), reason_code=data["reason_code"],
            units=named_units(request, data), lots=_lots(data), note=data["note"], idempotency_key=key,
            occurred_at=data.get("occurred_at"),
        )


class ReleaseFromQuarantineView(StockOrderView):
    """Release units or lot quantities from quarantine back into stock (解除隔离): a quality decision
    of an SPD operator or an administrator, with a reason; an ordinary transfer out of quarantine is
    refused (QUARANTINE_RELEASE_REQUIRED)."""

    input_serializer = ReleaseInputSerializer

    @extend_schema(request=ReleaseInputSerializer, responses={201: StockOrderSerializer})
    def post(self, request: Request) -> Response:
        return super().post(request)

    def perform(self, request: Request, data: dict, key: str) -> StockOrder:
        return release_from_quarantine(
            actor=Actor(user=request.user), hospital=caller_hospital(request), to_location=data["to_location"],
            reason_code=data["reason_code"], units=named_units(request, data), lots=_lots(data), note=data["note"],
            idempotency_key=key, occurred_at=data.get("occurred_at"),
        )
