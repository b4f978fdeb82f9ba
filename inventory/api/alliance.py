"""County alliance (医共体): transfers between members, central orders, allocation statements.

    GET  alliance-transfers/                    the transfers the caller's hospital sends or receives
                                                (?status= ?kind= ?direction=in|out)
    POST alliance-transfers/                    create (issue + receipt together; idempotency key)
    GET  alliance-transfers/{id}/               one, as seen from the caller's side
    POST alliance-transfers/{id}/approve/       the receiver approves
    POST alliance-transfers/{id}/reject/        the receiver rejects (reason)
    POST alliance-transfers/{id}/cancel/        the sender withdraws (reason)
    POST alliance-transfers/{id}/dispatch/      the sender sends it (idempotency key)
    POST alliance-transfers/{id}/scan/          the receiver counts one unit or lot label
    POST alliance-transfers/{id}/receive/       the receiver takes it into its books (idempotency key)
    GET  alliance-transfers/panel/              the dashboard panel "transfers between members"
    GET  central-orders/  POST central-orders/  central purchase orders (who acts for the alliance)
    POST central-orders/{id}/distribute/        send a member its open share (idempotency key)
    GET  allocation-statements/                 monthly allocation statements
    POST allocation-statements/                 issue one (member, month)
    GET  allocation-statements/{id}/download/   ?format=csv|xlsx|pdf

A member's staff see their own side of a transfer (their product, their location) and never a
transfer between two other members: that is a 404, as is anything of another alliance. Every rule
is in `inventory/services/transfers.py`, `central_purchasing.py` and `alliance_settlement.py`.
"""
from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from inventory.api.fields import (
    BoundedDateField,
    IdempotentInputSerializer,
    ScopedPrimaryKeyRelatedField,
    idempotency_key,
    validated,
)
from inventory.api.permissions import BOOK_READERS, STOCK_HANDLERS
from inventory.errors import Refusal, Refused
from inventory.models import (
    AllianceTransfer,
    AllianceTransferLine,
    AllocationStatement,
    CentralOrder,
    CentralOrderAllocation,
    Hospital,
    Location,
    Product,
    Role,
    Supplier,
    Unit,
)
from inventory.selectors import alliance_transfers as selectors
from inventory.services import alliance_settlement, central_purchasing, transfers
from inventory.spreadsheets import XLSX_TYPE

ALLIANCE_WRITERS = (Role.ADMIN, Role.SPD_OPERATOR)


# --- transfers ---------------------------------------------------------------------------------------


class AllianceTransferLineSerializer(serializers.ModelSerializer):
    product = serializers.SerializerMethodField(help_text="The caller's own catalog entry for this item")
    product_code = serializers.SerializerMethodField()
    product_name = serializers.SerializerMethodField()
    serial = serializers.CharField(source="unit.serial", read_only=True, default=None, allow_null=True)

    class Meta:
        model = AllianceTransferLine
        fields = [
            "id", "product", "product_code", "product_name", "serial", "lot", "expiry", "quantity", "value",
            "scanned_quantity", "received_quantity", "discrepancy_quantity", "discrepancy", "action",
            "discrepancy_reason",
        ]

    def _own(self, line: AllianceTransferLine) -> Product:
        return line.receiving_product if self.context.get("side") == "receipt" else line.product

    def get_product(self, line: AllianceTransferLine) -> int:
        return self._own(line).pk

    def get_product_code(self, line: AllianceTransferLine) -> str:
        return self._own(line).internal_code

    def get_product_name(self, line: AllianceTransferLine) -> str:
        return self._own(line).name


class AllianceTransferSerializer(serializers.ModelSerializer):
    side = serializers.SerializerMethodField(help_text="issue: the caller's hospital sends it; receipt: receives it")
    from_hospital_name = serializers.CharField(source="from_hospital.name", read_only=True)
    to_hospital_name = serializers.CharField(source="to_hospital.name", read_only=True)
    is_emergency = serializers.BooleanField(read_only=True)
    source_location = serializers.SerializerMethodField(help_text="The sender's store (the sender's side only)")
    destination = serializers.SerializerMethodField(help_text="The receiver's store (the receiver's side only)")
    central_order_number = serializers.CharField(source="central_order.purchase_order.number", read_only=True,
                                                 default=None, allow_null=True)
    lines = serializers.SerializerMethodField()

    class Meta:
        model = AllianceTransfer
        fields = [
            "id", "side", "kind", "is_emergency", "status", "issue_number", "receipt_number", "from_hospital",
            "from_hospital_name", "to_hospital", "to_hospital_name", "source_location", "destination",
            "central_order", "central_order_number", "reason", "decision_reason", "created_at", "decided_at",
            "dispatched_at", "received_at", "lines",
        ]

    def _side(self, transfer: AllianceTransfer) -> str:
        return transfers.side_of(self.context["request"].user, transfer)

    def get_side(self, transfer: AllianceTransfer) -> str:
        return self._side(transfer)

    @extend_schema_field(OpenApiTypes.INT)
    def get_source_location(self, transfer: AllianceTransfer) -> int | None:
        return None if self._side(transfer) == "receipt" else transfer.source_location_id

    @extend_schema_field(OpenApiTypes.INT)
    def get_destination(self, transfer: AllianceTransfer) -> int | None:
        return None if self._side(transfer) == "issue" else transfer.destination_id

    @extend_schema_field(AllianceTransferLineSerializer(many=True))
    def get_lines(self, transfer: AllianceTransfer) -> list[dict]:
        context = {**self.context, "side": self._side(transfer)}
        lines = transfer.lines.select_related("product", "receiving_product", "unit").order_by("pk")
        return AllianceTransferLineSerializer(lines, many=True, context=context).data


class AllianceTransferLotInputSerializer(serializers.Serializer):
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all())
    lot = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)


class AllianceTransferInputSerializer(IdempotentInputSerializer):
    to_hospital = serializers.IntegerField(min_value=1, max_value=2**62, help_text="The receiving member hospital")
    destination = serializers.IntegerField(
        min_value=1, max_value=2**62, required=False,
        help_text="The receiver's store (default: its central warehouse)",
    )
    source_location = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all())
    units = ScopedPrimaryKeyRelatedField(queryset=Unit.objects.all(), many=True, required=False, default=list)
    lots = AllianceTransferLotInputSerializer(many=True, required=False, default=list)
    kind = serializers.ChoiceField(
        choices=[AllianceTransfer.Kind.ORDINARY, AllianceTransfer.Kind.EMERGENCY], default=AllianceTransfer.Kind.ORDINARY,
        help_text="EMERGENCY (应急调拨): no approval, reason required, flagged in lists and reports",
    )
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class AllianceReasonInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class AllianceScanInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=300, help_text="The scanned UDI of a unit or a lot label")
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, allow_null=True,
                                        help_text="For a lot: how many (default: what is not yet counted)")


class AllianceLineDecisionSerializer(serializers.Serializer):
    line = serializers.IntegerField(min_value=1, max_value=2**62)
    received = serializers.IntegerField(min_value=0, max_value=1_000_000)
    discrepancy = serializers.ChoiceField(choices=AllianceTransferLine.Discrepancy.choices, required=False, default="")
    action = serializers.ChoiceField(choices=AllianceTransferLine.Action.choices, required=False, default="")
    reason = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class AllianceReceiveInputSerializer(IdempotentInputSerializer):
    items = AllianceLineDecisionSerializer(
        many=True, required=False, default=list,
        help_text="Lines not received as counted by scan; every other line is received as counted",
    )


class AllianceDispatchInputSerializer(IdempotentInputSerializer):
    pass


class AllianceMemberFlowSerializer(serializers.Serializer):
    from_hospital_id = serializers.IntegerField()
    from_hospital = serializers.CharField()
    to_hospital_id = serializers.IntegerField()
    to_hospital = serializers.CharField()
    transfers = serializers.IntegerField()
    emergency = serializers.IntegerField()
    in_transit = serializers.IntegerField()
    in_transit_value = serializers.DecimalField(max_digits=16, decimal_places=2)
    received_value = serializers.DecimalField(max_digits=16, decimal_places=2)


def _member(hospital_id: int, user) -> Hospital:
    """A hospital of the caller's alliance by id; anything else answers as one that does not exist."""
    hospital = Hospital.objects.filter(pk=hospital_id).first()
    own = user.hospital
    if hospital is None or (own is not None and (not own.alliance or hospital.alliance != own.alliance)):
        raise Refused(Refusal.NOT_FOUND, what="hospital")
    return hospital


@extend_schema(parameters=[
    OpenApiParameter("status", str, enum=AllianceTransfer.Status.values),
    OpenApiParameter("kind", str, enum=AllianceTransfer.Kind.values),
    OpenApiParameter("direction", str, enum=["in", "out"]),
])
class AllianceTransferViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Transfers between member hospitals (调拨): each hospital sees its own side."""

    serializer_class = AllianceTransferSerializer
    read_roles = BOOK_READERS
    write_roles = STOCK_HANDLERS

    def get_queryset(self) -> QuerySet:
        params = self.request.query_params
        status_, kind, direction = params.get("status", ""), params.get("kind", ""), params.get("direction", "")
        if status_ not in ("", *AllianceTransfer.Status.values) or kind not in ("", *AllianceTransfer.Kind.values) \
                or direction not in ("", "in", "out"):
            raise Refused(Refusal.INVALID_REQUEST, detail="status, kind or direction")
        return selectors.transfer_list(self.request.user, status=status_, kind=kind, direction=direction).select_related(
            "central_order__purchase_order")

    def _answer(self, transfer: AllianceTransfer, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=transfer.pk) if code == status.HTTP_200_OK else transfer
        return Response(AllianceTransferSerializer(fresh, context={"request": self.request}).data, status=code)

    @extend_schema(request=AllianceTransferInputSerializer, responses={201: AllianceTransferSerializer})
    def create(self, request: Request) -> Response:
        """Create a transfer to another member: its issue and receipt together (idempotency key)."""
        data = validated(AllianceTransferInputSerializer, request)
        to_hospital = _member(data["to_hospital"], request.user)
        if "destination" in data:
            destination = Location.objects.filter(pk=data["destination"], hospital=to_hospital).first()
        else:
            destination = central_purchasing.member_receiving_location(to_hospital)
        if destination is None:
            raise Refused(Refusal.NOT_FOUND, what="location")
        transfer = transfers.create_transfer(
            user=request.user, source_location=data["source_location"], to_hospital=to_hospital,
            destination=destination, idempotency_key=idempotency_key(request, data), units=data["units"],
            lots=[transfers.TransferLot(lot["product"], lot["lot"], lot["quantity"]) for lot in data["lots"]],
            kind=data["kind"], reason=data["reason"],
        )
        return Response(AllianceTransferSerializer(transfer, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: AllianceTransferSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """The receiving hospital approves the transfer (调入审批)."""
        return self._answer(transfers.approve_transfer(user=request.user, transfer=self.get_object()))

    @extend_schema(request=AllianceReasonInputSerializer, responses={200: AllianceTransferSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        """The receiving hospital rejects the transfer, with a reason."""
        transfer = self.get_object()
        data = validated(AllianceReasonInputSerializer, request)
        return self._answer(transfers.reject_transfer(user=request.user, transfer=transfer, reason=data["reason"]))

    @extend_schema(request=AllianceReasonInputSerializer, responses={200: AllianceTransferSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """The sending hospital withdraws a transfer not yet dispatched, with a reason."""
        transfer = self.get_object()
        data = validated(AllianceReasonInputSerializer, request)
        return self._answer(transfers.cancel_transfer(user=request.user, transfer=transfer, reason=data["reason"]))

    @extend_schema(request=AllianceDispatchInputSerializer, responses={200: AllianceTransferSerializer})
    @action(detail=True, methods=["post"], url_path="dispatch", url_name="dispatch")
    def send(self, request: Request, pk: str) -> Response:
        """The sending hospital sends it: into its in-transit location, still in its books."""
        transfer = self.get_object()
        data = validated(AllianceDispatchInputSerializer, request)
        return self._answer(transfers.dispatch_transfer(user=request.user, transfer=transfer,
                                                        idempotency_key=idempotency_key(request, data)))

    @extend_schema(request=AllianceScanInputSerializer, responses={200: AllianceTransferLineSerializer})
    @action(detail=True, methods=["post"])
    def scan(self, request: Request, pk: str) -> Response:
        """The receiving hospital counts one unit, or a quantity of a lot, by its scanned code."""
        transfer = self.get_object()
        data = validated(AllianceScanInputSerializer, request)
        line = transfers.scan_transfer_item(user=request.user, transfer=transfer, code=data["code"],
                                            quantity=data.get("quantity"))
        return Response(AllianceTransferLineSerializer(line, context={"request": request, "side": "receipt"}).data)

    @extend_schema(request=AllianceReceiveInputSerializer, responses={200: AllianceTransferSerializer})
    @action(detail=True, methods=["post"])
    def receive(self, request: Request, pk: str) -> Response:
        """The receiving hospital takes the transfer into its books; short or damaged lines are sent
        back to the sender's store or written off in the sender's books, with a reason."""
        transfer = self.get_object()
        data = validated(AllianceReceiveInputSerializer, request)
        decisions = {}
        for entry in data["items"]:
            if entry["line"] in decisions:
                raise Refused(Refusal.ALLIANCE_RECEIPT_LINE_INVALID, field=f"items[{entry['line']}]", reason="named twice")
            decisions[entry["line"]] = transfers.LineDecision(
                received=entry["received"], discrepancy=entry["discrepancy"], action=entry["action"],
                reason=entry["reason"])
        return self._answer(transfers.receive_transfer(user=request.user, transfer=transfer, decisions=decisions,
                                                       idempotency_key=idempotency_key(request, data)))

    @extend_schema(responses={200: AllianceMemberFlowSerializer(many=True)},
                   parameters=[OpenApiParameter("days", int, description="window in days (1–366, default 30)")])
    @action(detail=False, pagination_class=None, filter_backends=[])
    def panel(self, request: Request) -> Response:
        """Transfers between members (the alliance dashboard's panel): who acts for the alliance only."""
        if not transfers.can_act_for_alliance(request.user):
            raise Refused(Refusal.NOT_ALLOWED, action="read the alliance's transfers")
        try:
            days = int(request.query_params.get("days", 30))
        except ValueError:
            days = 0
        if not 1 <= days <= 366:
            raise Refused(Refusal.INVALID_REQUEST, detail="days: 1 to 366")
        alliance = request.user.hospital.alliance if request.user.hospital_id else request.query_params.get("alliance", "")
        rows = selectors.transfers_between_members(alliance, days=days)
        return Response(AllianceMemberFlowSerializer(rows, many=True).data)


# --- central orders ------------------------------------------------------------------------------------


class CentralOrderAllocationSerializer(serializers.ModelSerializer):
    member_name = serializers.CharField(source="member.name", read_only=True)
    product = serializers.IntegerField(source="order_line.product_id", read_only=True)
    line_no = serializers.IntegerField(source="order_line.line_no", read_only=True)

    class Meta:
        model = CentralOrderAllocation
        fields = ["id", "line_no", "product", "member", "member_name", "member_product", "quantity",
                  "distributed_quantity"]


class CentralOrderSerializer(serializers.ModelSerializer):
    number = serializers.CharField(source="purchase_order.number", read_only=True)
    supplier = serializers.IntegerField(source="purchase_order.supplier_id", read_only=True)
    order_status = serializers.CharField(source="purchase_order.status", read_only=True)
    allocations = CentralOrderAllocationSerializer(many=True, read_only=True)

    class Meta:
        model = CentralOrder
        fields = ["id", "number", "purchase_order", "supplier", "order_status", "regional_warehouse", "note",
                  "created_by", "created_at", "allocations"]


class CentralOrderMemberInputSerializer(serializers.Serializer):
    hospital = serializers.IntegerField(min_value=1, max_value=2**62)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)


class CentralOrderLineInputSerializer(serializers.Serializer):
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all())
    members = CentralOrderMemberInputSerializer(many=True, min_length=1)
    platform_reference = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    emergency_reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    nhsa_exemption_reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class CentralOrderInputSerializer(serializers.Serializer):
    supplier = serializers.PrimaryKeyRelatedField(queryset=Supplier.objects.all())
    regional_warehouse = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all())
    promised_date = BoundedDateField()
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    lines = CentralOrderLineInputSerializer(many=True, min_length=1)


class CentralOrderDistributeInputSerializer(IdempotentInputSerializer):
    member = serializers.IntegerField(min_value=1, max_value=2**62)
    destination = serializers.IntegerField(min_value=1, max_value=2**62, required=False,
                                           help_text="The member's store (default: its central warehouse)")


class CentralOrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Central purchase orders (集中采购) of the alliance, placed and distributed by its centre."""

    serializer_class = CentralOrderSerializer
    write_roles = ALLIANCE_WRITERS

    def get_queryset(self) -> QuerySet:
        return selectors.central_orders_visible_to(self.request.user).prefetch_related("allocations__member",
                                                                                       "allocations__order_line")

    @extend_schema(request=CentralOrderInputSerializer, responses={201: CentralOrderSerializer})
    def create(self, request: Request) -> Response:
        """Order for several members at once: one purchase order of the lead hospital, lines per member."""
        data = validated(CentralOrderInputSerializer, request)
        lines = []
        for line in data["lines"]:
            quantities: dict[Hospital, int] = {}
            for member in line["members"]:
                hospital = _member(member["hospital"], request.user)
                if hospital in quantities:
                    raise Refused(Refusal.CENTRAL_ORDER_INVALID, reason=f"{hospital} named twice on one line")
                quantities[hospital] = member["quantity"]
            lines.append(central_purchasing.CentralLineInput(
                line["product"], quantities, platform_reference=line["platform_reference"],
                emergency_reason=line["emergency_reason"], nhsa_exemption_reason=line["nhsa_exemption_reason"]))
        order = central_purchasing.place_central_order(
            user=request.user, supplier=data["supplier"], regional_warehouse=data["regional_warehouse"], lines=lines,
            promised_date=data["promised_date"], note=data["note"])
        return Response(CentralOrderSerializer(self.get_queryset().get(pk=order.pk)).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=CentralOrderDistributeInputSerializer, responses={201: AllianceTransferSerializer})
    @action(detail=True, methods=["post"])
    def distribute(self, request: Request, pk: str) -> Response:
        """Send one member what is open of its share and in stock at the regional warehouse (FEFO)."""
        order = self.get_object()
        data = validated(CentralOrderDistributeInputSerializer, request)
        member = _member(data["member"], request.user)
        destination = None
        if "destination" in data:
            destination = Location.objects.filter(pk=data["destination"], hospital=member).first()
            if destination is None:
                raise Refused(Refusal.NOT_FOUND, what="location")
        transfer = central_purchasing.distribute_central_order(
            user=request.user, central_order=order, member=member, destination=destination,
            idempotency_key=idempotency_key(request, data))
        return Response(AllianceTransferSerializer(transfer, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


# --- allocation statements ----------------------------------------------------------------------------


class AllocationStatementSerializer(serializers.ModelSerializer):
    member_name = serializers.CharField(source="member.name", read_only=True)

    class Meta:
        model = AllocationStatement
        fields = ["id", "alliance", "centre", "member", "member_name", "month", "total", "lines", "csv_sha256",
                  "xlsx_sha256", "pdf_sha256", "created_by", "created_at"]


class AllocationStatementInputSerializer(serializers.Serializer):
    member = serializers.IntegerField(min_value=1, max_value=2**62)
    month = BoundedDateField(help_text="Any day of the month (a month that is over)")


STATEMENT_TYPES = {"csv": "text/csv", "xlsx": XLSX_TYPE, "pdf": "application/pdf"}


class AllocationStatementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Monthly allocation statements (结算分摊单): the centre's for every member, a member's for itself."""

    serializer_class = AllocationStatementSerializer
    read_roles = BOOK_READERS
    write_roles = ALLIANCE_WRITERS

    def get_queryset(self) -> QuerySet:
        return selectors.statements_visible_to(self.request.user)

    @extend_schema(request=AllocationStatementInputSerializer, responses={201: AllocationStatementSerializer})
    def create(self, request: Request) -> Response:
        """Issue a member's statement of a month that is over (final: the one issued if it exists)."""
        data = validated(AllocationStatementInputSerializer, request)
        member = _member(data["member"], request.user)
        statement = alliance_settlement.issue_allocation_statement(
            user=request.user, member=member, month=data["month"].replace(day=1))
        return Response(AllocationStatementSerializer(statement).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=list(STATEMENT_TYPES), required=True)],
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="the file")},
    )
    @action(detail=True, pagination_class=None, filter_backends=[])
    def download(self, request: Request, pk: str) -> FileResponse:
        """The statement's CSV, XLSX or PDF, as stored (its SHA-256 is on the statement)."""
        statement = self.get_object()
        file_format = request.query_params.get("format", "")
        if file_format not in STATEMENT_TYPES:
            raise Refused(Refusal.INVALID_REQUEST, detail="format: csv, xlsx or pdf")
        stored = getattr(statement, f"report_{file_format}")
        return FileResponse(stored.open("rb"), as_attachment=True, content_type=STATEMENT_TYPES[file_format],
                            filename=f"allocation-{statement.member.code}-{statement.month:%Y-%m}.{file_format}")
