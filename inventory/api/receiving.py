"""Delivery notes (送货单) and their acceptance (验收) over the API."""
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from inventory.actors import Actor
from inventory.api.fields import (
    IdempotentInputSerializer,
    RFC3339DateTimeField,
    ScopedPrimaryKeyRelatedField,
    caller_hospital,
    idempotency_key,
    refused_input,
    validated,
)
from inventory.api.permissions import BOOK_READERS, STOCK_HANDLERS
from inventory.errors import Refusal
from inventory.models import AcceptanceRecord, DeliveryLine, DeliveryNote, Location, Product, PurchaseOrder, Supplier
from inventory.selectors.scope import visible_to
from inventory.services.receiving import (
    LineInput,
    accept_delivery_note,
    receive_delivery_note,
    received_as,
    record_scan,
)


class DeliveryLineInputSerializer(serializers.Serializer):
    # The scan's bytes as read: a HIBC label may end in a space (its check character).
    udi = serializers.CharField(
        required=False, allow_blank=False, max_length=300, trim_whitespace=False, help_text="Raw scan (unit-tracked)"
    )
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all(), required=False)
    lot = serializers.CharField(required=False, default="", max_length=64)
    expiry = serializers.DateField(required=False, allow_null=True, default=None)
    quantity = serializers.IntegerField(min_value=1, default=1)
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    unit = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=16,
        help_text="The packaging unit of a lot line's quantity and unit price (e.g. 盒, the purchase unit); "
                  "empty: the product's base unit. Stock and the ledger are kept in base units.",
    )

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("udi")) == bool(attrs.get("product")):
            raise refused_input(Refusal.DELIVERY_LINE_TARGET_INVALID)
        return attrs


class DeliveryNoteInputSerializer(IdempotentInputSerializer):
    supplier = serializers.PrimaryKeyRelatedField(queryset=Supplier.objects.filter(is_active=True))
    number = serializers.CharField(max_length=64)
    receiving_location = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all())
    temperature_c = serializers.DecimalField(max_digits=5, decimal_places=1, required=False, allow_null=True)
    delivered_at = RFC3339DateTimeField(required=False)
    purchase_order = ScopedPrimaryKeyRelatedField(
        queryset=PurchaseOrder.objects.all(), required=False, allow_null=True,
        help_text="The purchase order delivered against: acceptance takes in no more than it still expects",
    )
    lines = DeliveryLineInputSerializer(many=True, allow_empty=False)


class AcceptInputSerializer(IdempotentInputSerializer):
    gift_lines = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list)
    put_away_to = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all(), required=False, allow_null=True)
    accept_unscanned = serializers.BooleanField(
        required=False, default=False,
        help_text="Accept unit lines nobody scanned (SPD operator or admin only, with unscanned_reason). "
                  "Without it those lines stay open and the note is PARTLY_ACCEPTED.",
    )
    unscanned_reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)


class DeliveryScanInputSerializer(serializers.Serializer):
    udi = serializers.CharField(
        max_length=300, trim_whitespace=False, help_text="The code scanned from the delivered unit or lot label"
    )


class AcceptanceSerializer(serializers.ModelSerializer):
    class Meta:
        model = AcceptanceRecord
        fields = [
            "decision", "reason_code", "reasons", "is_gift", "decided_by", "decided_at", "accepted_without_scan",
            "without_scan_reason",
        ]


class DeliveryLineSerializer(serializers.ModelSerializer):
    acceptance = AcceptanceSerializer(read_only=True, allow_null=True)
    unit = serializers.SerializerMethodField()
    quantity = serializers.IntegerField(read_only=True, help_text="In the product's base unit")
    unit_price = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, help_text="Per base unit"
    )
    received_unit = serializers.CharField(
        read_only=True, help_text="The packaging unit it was delivered in; empty: the base unit"
    )
    received_unit_factor = serializers.IntegerField(read_only=True, help_text="Base units per delivered unit")
    received_as = serializers.SerializerMethodField(help_text='What was delivered, in its unit: "3 盒"')

    class Meta:
        model = DeliveryLine
        fields = [
            "line_no", "raw_udi", "product", "lot", "serial", "expiry", "production_date", "quantity", "unit_price",
            "scanned_by", "scanned_at", "acceptance", "unit", "received_unit", "received_unit_factor", "received_as",
        ]

    def get_received_as(self, line: DeliveryLine) -> str:
        return received_as(line)

    def get_unit(self, line: DeliveryLine) -> int | None:
        unit = getattr(line, "unit", None)
        return unit.pk if unit else None


class DeliveryNoteSerializer(serializers.ModelSerializer):
    lines = DeliveryLineSerializer(many=True, read_only=True)
    open_lines = serializers.SerializerMethodField(help_text="Line numbers not decided yet")

    class Meta:
        model = DeliveryNote
        fields = [
            "id", "hospital", "supplier", "number", "receiving_location", "delivered_at", "temperature_c", "status",
            "received_by", "accepted_by", "accepted_at", "purchase_order", "open_lines", "lines",
        ]

    def get_open_lines(self, note: DeliveryNote) -> list[int]:
        return [line.line_no for line in note.lines.all() if getattr(line, "acceptance", None) is None]


class DeliveryNoteViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Receive a supplier's delivery note, then accept it: each line is accepted or rejected with reasons."""
    read_roles = BOOK_READERS

    serializer_class = DeliveryNoteSerializer
    write_roles = STOCK_HANDLERS
    filterset_fields = ["supplier", "status", "number"]

    def get_queryset(self) -> QuerySet:
        lines = DeliveryLine.objects.select_related("acceptance", "unit", "product").order_by("line_no")
        return visible_to(self.request.user, DeliveryNote.objects.all()).prefetch_related(Prefetch("lines", lines))

    @extend_schema(request=DeliveryNoteInputSerializer, responses={201: DeliveryNoteSerializer})
    def create(self, request: Request) -> Response:
        data = validated(DeliveryNoteInputSerializer, request)
        note = receive_delivery_note(
            actor=Actor(user=request.user), hospital=caller_hospital(request), supplier=data["supplier"],
            number=data["number"], receiving_location=data["receiving_location"],
            temperature_c=data.get("temperature_c"), delivered_at=data.get("delivered_at"),
            purchase_order=data.get("purchase_order"),
            lines=[
                LineInput(
                    unit_price=line["unit_price"], udi=line.get("udi", ""), product=line.get("product"),
                    lot=line["lot"], expiry=line["expiry"], quantity=line["quantity"], unit=line["unit"],
                )
                for line in data["lines"]
            ],
            idempotency_key=idempotency_key(request, data),
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=note.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AcceptInputSerializer, responses={200: DeliveryNoteSerializer})
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        note = self.get_object()
        data = validated(AcceptInputSerializer, request)
        accept_delivery_note(
            actor=Actor(user=request.user), note=note, idempotency_key=idempotency_key(request, data),
            gift_line_nos=frozenset(data["gift_lines"]), put_away_to=data.get("put_away_to"),
            accept_unscanned=data["accept_unscanned"], unscanned_reason=data["unscanned_reason"],
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=note.pk)).data)

    @extend_schema(request=DeliveryScanInputSerializer, responses={200: DeliveryLineSerializer})
    @action(detail=True, methods=["post"])
    def scan(self, request: Request, pk: str) -> Response:
        """Record that a delivered unit was physically scanned against its line (verified by scan)."""
        note = self.get_object()
        data = validated(DeliveryScanInputSerializer, request)
        line = record_scan(actor=Actor(user=request.user), note=note, code=data["udi"])
        lines = DeliveryLine.objects.select_related("acceptance", "unit")
        return Response(DeliveryLineSerializer(lines.get(pk=line.pk)).data)

