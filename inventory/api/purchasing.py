"""Purchasing (采购) over the API: plans, purchase orders per supplier, and the purchasing reports.

- `purchase-plans/`: POST a draft plan (lines by hand; without an agreement the cheapest one in
  force is chosen), `{id}/order/` turns it into one purchase order per supplier.
- `purchasing/demand/`: what there is to buy — open replenishment suggestions and requisition
  shortfalls (what the central warehouse cannot cover from stock) not yet in a plan.
  `purchase-plans/from-demand/` POSTs a plan from a selection of them (one line per product, rounded
  up to the purchase unit, under the agreement chosen; what cannot be planned is in `unplanned`).
- `purchase-orders/`: POST an order to one supplier, `{id}/close/` closes it with a reason.
- `purchasing/platform-rate/?period_start=&period_end=`: 网采率 per month.
- `purchasing/delivery-performance/?period_start=&period_end=[&supplier=]`: on-time, fill rate, lead time.
- `vbp-contracts/`: VBP contracts (带量采购) the caller's hospital is bound by, with progress per
  hospital and for the alliance; `{id}/extend/` records an extension (顺延).
- `price-changes/[?product=]`: POST a price change (a new dated agreement with a reason and an
  approver; the old one ends the day before). A PATCH of an agreement's price answers 409.

The hospital's books: read by the roles that read them (not nurses); written by the stock handlers
(an off-platform emergency line needs an SPD operator or an administrator: services.purchasing).
"""
from django.db.models import Prefetch, QuerySet
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from inventory.actors import Actor
from inventory.api.fields import BoundedDateField, ScopedPrimaryKeyRelatedField, caller_hospital, validated
from inventory.api.permissions import BOOK_READERS, MASTER_DATA_EDITORS, STOCK_HANDLERS
from inventory.models import (
    PriceChange,
    Product,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchasePlan,
    PurchasePlanLine,
    ReplenishmentSuggestion,
    RequisitionLine,
    Supplier,
    SupplyAgreement,
    User,
    VbpContract,
)
from inventory.selectors.purchase_demand import open_suggestions, requisition_shortfalls
from inventory.selectors.purchasing import delivery_performance, platform_rate
from inventory.selectors.scope import visible_to
from inventory.services.prices import change_price
from inventory.services.purchasing import (
    OrderLineInput,
    PlanLineOrdering,
    close_purchase_order,
    create_plan,
    create_purchase_order,
    order_plan,
    plan_from_demand,
)
from inventory.services.vbp import contract_progress, extend_contract

MAX_QUANTITY = 1_000_000

# --- input ---------------------------------------------------------------------------------------


class OrderLineInputSerializer(serializers.Serializer):
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all())
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)
    agreement = ScopedPrimaryKeyRelatedField(
        queryset=SupplyAgreement.objects.all(), required=False, allow_null=True,
        help_text="The supply agreement to buy under; default: the one in force today (the cheapest)",
    )
    platform_reference = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=64,
        help_text="The procurement platform's order reference (required for high-value and VBP products)",
    )
    emergency_reason = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=500,
        help_text="Ordering a high-value or VBP product off the platform: an SPD operator's reason (flagged in reports)",
    )
    nhsa_exemption_reason = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=500,
        help_text="Why a product without a 医保 code is ordered all the same",
    )


def _line_inputs(lines: list[dict]) -> list[OrderLineInput]:
    return [
        OrderLineInput(
            product=line["product"], quantity=line["quantity"], agreement=line.get("agreement"),
            platform_reference=line["platform_reference"], emergency_reason=line["emergency_reason"],
            nhsa_exemption_reason=line["nhsa_exemption_reason"],
        )
        for line in lines
    ]


class PlanInputSerializer(serializers.Serializer):
    source = serializers.CharField(required=False, default="", allow_blank=True, max_length=100)
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)
    lines = OrderLineInputSerializer(many=True, allow_empty=False, max_length=1000)


class PlanNhsaExemptionSerializer(serializers.Serializer):
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all())
    reason = serializers.CharField(max_length=500)


class PlanFromDemandInputSerializer(serializers.Serializer):
    suggestions = serializers.ListField(
        child=ScopedPrimaryKeyRelatedField(queryset=ReplenishmentSuggestion.objects.all()), required=False,
        default=list, max_length=1000, help_text="Open replenishment suggestions to buy for",
    )
    requisition_lines = serializers.ListField(
        child=ScopedPrimaryKeyRelatedField(queryset=RequisitionLine.objects.all(),
                                           hospital_field="requisition__hospital"),
        required=False, default=list, max_length=1000,
        help_text="Approved requisition lines whose shortfall (not covered by the central warehouse) to buy",
    )
    nhsa_exemptions = PlanNhsaExemptionSerializer(
        many=True, required=False, default=list, max_length=1000,
        help_text="Products without a 医保 code to plan all the same, each with the reason",
    )
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)


class PlanLineOrderingSerializer(serializers.Serializer):
    line_no = serializers.IntegerField(min_value=1, max_value=100_000)
    platform_reference = serializers.CharField(required=False, default="", allow_blank=True, max_length=64)
    emergency_reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)


class PlanOrderInputSerializer(serializers.Serializer):
    promised_date = BoundedDateField(help_text="The delivery date the suppliers promised")
    lines = PlanLineOrderingSerializer(
        many=True, required=False, default=list, max_length=1000,
        help_text="Platform order references (or emergency reasons) to record on plan lines before ordering",
    )


class OrderInputSerializer(serializers.Serializer):
    supplier = serializers.PrimaryKeyRelatedField(queryset=Supplier.objects.filter(is_active=True))
    promised_date = BoundedDateField(help_text="The delivery date the supplier promised")
    lines = OrderLineInputSerializer(many=True, allow_empty=False, max_length=1000)


class CloseInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class PeriodSerializer(serializers.Serializer):
    period_start = BoundedDateField()
    period_end = BoundedDateField()
    supplier = serializers.PrimaryKeyRelatedField(queryset=Supplier.objects.all(), required=False)

    def validate(self, attrs: dict) -> dict:
        if attrs["period_end"] < attrs["period_start"]:
            raise serializers.ValidationError({"period_end": "the period ends before it starts"})
        return attrs


# --- output --------------------------------------------------------------------------------------


class PlanSourceSerializer(serializers.Serializer):
    description = serializers.CharField()
    quantity = serializers.IntegerField(help_text="The need, in base units, before rounding to the purchase unit")
    suggestion = serializers.IntegerField(source="suggestion_id", allow_null=True)
    requisition_line = serializers.IntegerField(source="requisition_line_id", allow_null=True)


class PlanUnplannedSerializer(serializers.Serializer):
    source = serializers.CharField()
    product = serializers.IntegerField(allow_null=True)
    product_name = serializers.CharField()
    quantity = serializers.IntegerField()
    problems = serializers.ListField(child=serializers.DictField(), help_text="Each reason: code and detail")
    suggestion = serializers.IntegerField(allow_null=True, help_text="The replenishment suggestion not planned (it stays open)")
    requisition_line = serializers.IntegerField(allow_null=True, help_text="The requisition line not planned (it stays open)")


class PlanLineSerializer(serializers.Serializer):
    line_no = serializers.IntegerField()
    product = serializers.IntegerField(source="product_id")
    quantity = serializers.IntegerField()
    agreement = serializers.IntegerField(source="agreement_id", allow_null=True)
    supplier = serializers.IntegerField(source="agreement.supplier_id", allow_null=True, default=None)
    unit_price = serializers.DecimalField(source="agreement.unit_price", max_digits=12, decimal_places=2,
                                          allow_null=True, default=None)
    vbp_contract = serializers.CharField(source="agreement.vbp_contract", allow_null=True, default=None)
    sources = PlanSourceSerializer(many=True, read_only=True, help_text="The suggestions and requisition lines it took")
    platform_reference = serializers.CharField()
    emergency_reason = serializers.CharField()
    nhsa_exemption_reason = serializers.CharField()


class PlanSerializer(serializers.ModelSerializer):
    lines = PlanLineSerializer(many=True, read_only=True)
    orders = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    unplanned = PlanUnplannedSerializer(many=True, read_only=True,
                                        help_text="Needs selected but not planned, each with its reasons")

    class Meta:
        model = PurchasePlan
        fields = ["id", "hospital", "status", "source", "note", "created_by", "created_at", "ordered_at", "lines",
                  "unplanned", "orders"]
        read_only_fields = fields


class OrderLineSerializer(serializers.ModelSerializer):
    outstanding = serializers.IntegerField(read_only=True)

    class Meta:
        model = PurchaseOrderLine
        fields = [
            "line_no", "product", "agreement", "quantity", "unit_price", "platform_reference", "emergency_reason",
            "emergency_by", "nhsa_exemption_reason", "delivered_quantity", "outstanding",
        ]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    lines = OrderLineSerializer(many=True, read_only=True)
    delivery_notes = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = PurchaseOrder
        fields = [
            "id", "hospital", "supplier", "number", "plan", "status", "ordered_at", "promised_date", "created_by",
            "closed_reason", "closed_by", "closed_at", "lines", "delivery_notes",
        ]
        read_only_fields = fields


class PlatformShareSerializer(serializers.Serializer):
    month = serializers.DateField()
    total_value = serializers.DecimalField(max_digits=18, decimal_places=2)
    platform_value = serializers.DecimalField(max_digits=18, decimal_places=2)
    rate = serializers.DecimalField(max_digits=6, decimal_places=2, allow_null=True, help_text="网采率, percent")
    emergency_lines = serializers.IntegerField(help_text="Lines ordered off the platform with an emergency reason")
    emergency_value = serializers.DecimalField(max_digits=18, decimal_places=2)


class SupplierPerformanceSerializer(serializers.Serializer):
    supplier = serializers.IntegerField(source="supplier.pk")
    supplier_name = serializers.CharField(source="supplier.name")
    lines = serializers.IntegerField()
    on_time_lines = serializers.IntegerField()
    on_time_rate = serializers.DecimalField(max_digits=5, decimal_places=1, allow_null=True)
    ordered_quantity = serializers.IntegerField()
    received_quantity = serializers.IntegerField()
    fill_rate = serializers.DecimalField(max_digits=5, decimal_places=1, allow_null=True)
    lead_time_days = serializers.DecimalField(max_digits=8, decimal_places=1, allow_null=True)


# --- views ---------------------------------------------------------------------------------------


class PurchasePlanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Purchase plans (采购计划): products and quantities, ordered as one purchase order per supplier."""

    read_roles = BOOK_READERS
    write_roles = STOCK_HANDLERS
    serializer_class = PlanSerializer
    filterset_fields = ["status"]

    def get_queryset(self) -> QuerySet:
        lines = PurchasePlanLine.objects.select_related("agreement").prefetch_related("sources").order_by("line_no")
        return visible_to(self.request.user, PurchasePlan.objects.all()).prefetch_related(
            Prefetch("lines", lines), "orders"
        )

    @extend_schema(request=PlanFromDemandInputSerializer, responses={201: PlanSerializer})
    @action(detail=False, methods=["post"], url_path="from-demand")
    def from_demand(self, request: Request) -> Response:
        """Plan from open replenishment suggestions and requisition shortfalls: one line per product,
        rounded up to the purchase unit; each source is taken once; what cannot be planned is listed."""
        data = validated(PlanFromDemandInputSerializer, request)
        plan = plan_from_demand(
            actor=Actor(user=request.user), hospital=caller_hospital(request), suggestions=data["suggestions"],
            requisition_lines=data["requisition_lines"], note=data["note"], source="demand",
            nhsa_exemptions={row["product"].pk: row["reason"] for row in data["nhsa_exemptions"]},
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=plan.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PlanInputSerializer, responses={201: PlanSerializer})
    def create(self, request: Request) -> Response:
        data = validated(PlanInputSerializer, request)
        plan = create_plan(
            actor=Actor(user=request.user), hospital=caller_hospital(request), source=data["source"],
            note=data["note"], lines=_line_inputs(data["lines"]),
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=plan.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PlanOrderInputSerializer, responses={201: OrderSerializer(many=True)})
    @action(detail=True, methods=["post"])
    def order(self, request: Request, pk: str) -> Response:
        """Order the plan: one purchase order per supplier; any line's problem refuses it all."""
        plan = self.get_object()
        data = validated(PlanOrderInputSerializer, request)
        orderings = {line["line_no"]: PlanLineOrdering(line["platform_reference"], line["emergency_reason"])
                     for line in data["lines"]}
        orders = order_plan(actor=Actor(user=request.user), plan=plan, promised_date=data["promised_date"],
                            orderings=orderings)
        placed = _orders(request).filter(pk__in=[order.pk for order in orders])
        return Response(OrderSerializer(placed, many=True).data, status=status.HTTP_201_CREATED)


class DemandSuggestionSerializer(serializers.ModelSerializer):
    location_name = serializers.CharField(source="location.name")
    product_name = serializers.CharField(source="product.name")

    class Meta:
        model = ReplenishmentSuggestion
        fields = ["id", "location", "location_name", "product", "product_name", "target", "on_hand", "quantity",
                  "computed_at"]
        read_only_fields = fields


class DemandShortfallSerializer(serializers.Serializer):
    requisition_line = serializers.IntegerField(source="line.pk")
    requisition = serializers.IntegerField(source="line.requisition_id")
    requisition_number = serializers.CharField(source="line.requisition.number")
    location_name = serializers.CharField(source="line.requisition.location.name")
    product = serializers.IntegerField(source="line.product_id")
    product_name = serializers.CharField(source="line.product.name")
    outstanding = serializers.IntegerField(help_text="Still to be picked")
    shortfall = serializers.IntegerField(help_text="What the central warehouse cannot cover from its stock")


class DemandSerializer(serializers.Serializer):
    suggestions = DemandSuggestionSerializer(many=True)
    requisition_shortfalls = DemandShortfallSerializer(many=True)


class PurchaseDemandView(APIView):
    """What there is to buy: open suggestions and requisition shortfalls not yet in a purchase plan."""

    read_roles = BOOK_READERS

    @extend_schema(responses={200: DemandSerializer})
    def get(self, request: Request) -> Response:
        hospital = caller_hospital(request)
        return Response(DemandSerializer({
            "suggestions": open_suggestions(hospital), "requisition_shortfalls": requisition_shortfalls(hospital),
        }).data)


def _orders(request: Request) -> QuerySet:
    lines = PurchaseOrderLine.objects.order_by("line_no")
    return visible_to(request.user, PurchaseOrder.objects.all()).prefetch_related(
        Prefetch("lines", lines), "delivery_notes"
    )


class PurchaseOrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Purchase orders (采购订单) to one supplier each; their state follows acceptance."""

    read_roles = BOOK_READERS
    write_roles = STOCK_HANDLERS
    serializer_class = OrderSerializer
    filterset_fields = ["supplier", "status", "number"]

    def get_queryset(self) -> QuerySet:
        return _orders(self.request)

    @extend_schema(request=OrderInputSerializer, responses={201: OrderSerializer})
    def create(self, request: Request) -> Response:
        data = validated(OrderInputSerializer, request)
        order = create_purchase_order(
            actor=Actor(user=request.user), hospital=caller_hospital(request), supplier=data["supplier"],
            promised_date=data["promised_date"], lines=_line_inputs(data["lines"]),
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=order.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CloseInputSerializer, responses={200: OrderSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        """Close the order with a reason: nothing more is accepted against it."""
        order = self.get_object()
        data = validated(CloseInputSerializer, request)
        close_purchase_order(actor=Actor(user=request.user), order=order, reason=data["reason"])
        return Response(self.get_serializer(self.get_queryset().get(pk=order.pk)).data)


def _period(request: Request) -> dict:
    serializer = PeriodSerializer(data=request.query_params, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class PlatformRateView(APIView):
    """网采率: the share of the purchase value ordered through the procurement platform, per month."""

    read_roles = BOOK_READERS

    @extend_schema(parameters=[PeriodSerializer], responses={200: PlatformShareSerializer(many=True)})
    def get(self, request: Request) -> Response:
        period = _period(request)
        shares = platform_rate(
            hospital=caller_hospital(request), start=period["period_start"], end=period["period_end"]
        )
        return Response(PlatformShareSerializer(shares, many=True).data)


class DeliveryPerformanceView(APIView):
    """Delivery performance per supplier over the orders promised in the period (from the ledger)."""

    read_roles = BOOK_READERS

    @extend_schema(parameters=[PeriodSerializer], responses={200: SupplierPerformanceSerializer(many=True)})
    def get(self, request: Request) -> Response:
        period = _period(request)
        rows = delivery_performance(
            hospital=caller_hospital(request), start=period["period_start"], end=period["period_end"],
            supplier=period.get("supplier"),
        )
        return Response(SupplierPerformanceSerializer(rows, many=True).data)


class PriceChangeInputSerializer(serializers.Serializer):
    agreement = ScopedPrimaryKeyRelatedField(queryset=SupplyAgreement.objects.all(), help_text="The agreement replaced")
    new_price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    effective_from = BoundedDateField(help_text="First day of the new price; the old agreement ends the day before")
    reason = serializers.CharField(max_length=500)
    approved_by = ScopedPrimaryKeyRelatedField(
        queryset=User.objects.all(), help_text="An administrator or SPD operator of the hospital"
    )


class PriceChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = PriceChange
        fields = [
            "id", "hospital", "product", "supplier", "previous", "agreement", "old_price", "new_price",
            "effective_from", "reason", "approved_by", "recorded_by", "recorded_at",
        ]
        read_only_fields = fields


class PriceChangeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Price changes (调价): each a new dated agreement with a reason and an approver."""

    read_roles = BOOK_READERS
    write_roles = MASTER_DATA_EDITORS
    serializer_class = PriceChangeSerializer
    filterset_fields = ["product", "supplier"]

    def get_queryset(self) -> QuerySet:
        return visible_to(self.request.user, PriceChange.objects.all()).order_by("-recorded_at", "-pk")

    @extend_schema(request=PriceChangeInputSerializer, responses={201: PriceChangeSerializer})
    def create(self, request: Request) -> Response:
        data = validated(PriceChangeInputSerializer, request)
        change = change_price(
            actor=Actor(user=request.user), agreement=data["agreement"], new_price=data["new_price"],
            effective_from=data["effective_from"], reason=data["reason"], approved_by=data["approved_by"],
        )
        return Response(self.get_serializer(change).data, status=status.HTTP_201_CREATED)


class VbpProgressSerializer(serializers.Serializer):
    hospital = serializers.IntegerField(source="hospital.pk", allow_null=True, default=None,
                                        help_text="null: the alliance (every hospital of the contract)")
    agreed = serializers.IntegerField(help_text="Reported demand × ratio")
    used = serializers.IntegerField(help_text="Consumed minus refunded since the execution date")
    used_pct = serializers.DecimalField(max_digits=7, decimal_places=1)
    elapsed_pct = serializers.DecimalField(max_digits=5, decimal_places=1)
    lag = serializers.DecimalField(max_digits=7, decimal_places=1)
    is_lagging = serializers.BooleanField()


class VbpContractSerializer(serializers.ModelSerializer):
    end_date = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = VbpContract
        fields = [
            "id", "number", "name", "owner_hospital", "products", "substitutes", "ratio", "start_date", "period",
            "fixed_end_date", "end_date", "lag_threshold", "renewal_notice_days", "progress",
        ]
        read_only_fields = fields

    def get_end_date(self, contract: VbpContract) -> str:
        return contract.end_date().isoformat()

    @extend_schema(responses=VbpProgressSerializer(many=True))
    def get_progress(self, contract: VbpContract) -> list[dict]:
        hospital_id = self.context.get("hospital_id")
        rows = [row for row in contract_progress(contract) if row.hospital is None or hospital_id in (None, row.hospital.pk)]
        return VbpProgressSerializer(rows, many=True).data


class VbpExtendInputSerializer(serializers.Serializer):
    new_end_date = BoundedDateField()
    reason = serializers.CharField(max_length=500)


class VbpContractViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """VBP contracts (带量采购) binding the caller's hospital, with their progress."""

    read_roles = BOOK_READERS
    write_roles = MASTER_DATA_EDITORS
    serializer_class = VbpContractSerializer

    def get_queryset(self) -> QuerySet:
        contracts = VbpContract.objects.prefetch_related("products", "substitutes").order_by("-start_date", "pk")
        return visible_to(self.request.user, contracts, "allocations__hospital").distinct()

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "hospital_id": self.request.user.hospital_id}

    @extend_schema(request=VbpExtendInputSerializer, responses={200: VbpContractSerializer})
    @action(detail=True, methods=["post"])
    def extend(self, request: Request, pk: str) -> Response:
        """Record an extension (顺延) of the period: a dated record with a reason."""
        contract = self.get_object()
        data = validated(VbpExtendInputSerializer, request)
        extend_contract(actor=Actor(user=request.user), contract=contract, new_end_date=data["new_end_date"],
                        reason=data["reason"])
        return Response(self.get_serializer(self.get_queryset().get(pk=contract.pk)).data)


router = SimpleRouter()
router.register("purchase-plans", PurchasePlanViewSet, basename="purchase-plan")
router.register("purchase-orders", PurchaseOrderViewSet, basename="purchase-order")
router.register("price-changes", PriceChangeViewSet, basename="price-change")
router.register("vbp-contracts", VbpContractViewSet, basename="vbp-contract")

urlpatterns = [
    path("purchasing/platform-rate/", PlatformRateView.as_view(), name="platform-rate"),
    path("purchasing/demand/", PurchaseDemandView.as_view(), name="purchase-demand"),
    path("purchasing/delivery-performance/", DeliveryPerformanceView.as_view(), name="delivery-performance"),
    path("", include(router.urls)),
]
