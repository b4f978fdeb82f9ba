"""Pick lists (拣货单), dispatch (配送) and department receipt (科室验收).

    GET  pick-lists/                     the hospital's pick lists (warehouse, SPD, admin, auditor)
    POST pick-lists/                     create from requisition lines and accepted suggestions
    GET  pick-lists/{id}/                lines, FEFO proposal still to pick, what was picked
    POST pick-lists/{id}/scan/           confirm one unit or lot quantity by its scanned code
    POST pick-lists/{id}/dispatch/       send what was picked (idempotency key)
    POST pick-lists/{id}/cancel/         give up a pick list nothing was picked on
    GET  pick-lists/{id}/pdf/            the printable pick list
    GET  deliveries/                     delivery slips; a nurse sees her departments' only
    GET  deliveries/{id}/                one, with its items
    POST deliveries/{id}/receive/        the department's receipt (idempotency key)
    GET  deliveries/{id}/pdf/            the printable delivery slip (配送单)

Every rule is in `inventory/services/picking.py`; this module checks shapes and scopes.
"""
from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from inventory.api.fields import (
    IdempotentInputSerializer,
    ScopedPrimaryKeyRelatedField,
    caller_hospital,
    idempotency_key,
    validated,
)
from inventory.api.permissions import BOOK_READERS, STOCK_HANDLERS
from inventory.errors import Refusal, Refused
from inventory.models import (
    Delivery,
    DeliveryItem,
    Location,
    PickedItem,
    PickList,
    PickListLine,
    ReplenishmentSuggestion,
    RequisitionLine,
    Role,
    StockReservation,
)
from inventory.selectors.scope import departments_of, visible_to
from inventory.services import distribution_pdf, picking


class ProposedSerializer(serializers.ModelSerializer):
    class Meta:
        model = StockReservation
        fields = ["unit", "lot", "expiry", "quantity"]


class PickedItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = PickedItem
        fields = [
            "id", "line", "unit", "lot", "expiry", "quantity", "deviates", "proposed_lot", "proposed_expiry",
            "picked_by", "picked_at",
        ]


class PickListLineSerializer(serializers.ModelSerializer):
    product_name = serializers.CharField(source="product.name", read_only=True)
    proposed = serializers.SerializerMethodField(help_text="The FEFO proposal held for this line (reserved)")
    picked = PickedItemSerializer(source="picked_items", many=True, read_only=True)

    class Meta:
        model = PickListLine
        fields = [
            "id", "requisition_line", "product", "product_name", "destination", "quantity", "picked_quantity",
            "is_open", "proposed", "picked",
        ]

    @extend_schema_field(ProposedSerializer(many=True))
    def get_proposed(self, line: PickListLine) -> list[dict]:
        held = StockReservation.objects.filter(
            holder_type=StockReservation.Holder.PICK_LIST_LINE, holder_id=line.pk, is_active=True
        ).order_by("expiry", "lot", "pk")
        return ProposedSerializer(held, many=True).data


class PickListSerializer(serializers.ModelSerializer):
    lines = PickListLineSerializer(many=True, read_only=True)
    deliveries = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = PickList
        fields = [
            "id", "number", "source_location", "status", "created_by", "created_at", "dispatched_by", "dispatched_at",
            "lines", "deliveries",
        ]


class PickListInputSerializer(IdempotentInputSerializer):
    source_location = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all())
    requisition_lines = ScopedPrimaryKeyRelatedField(
        queryset=RequisitionLine.objects.all(), hospital_field="requisition__hospital", many=True, required=False,
        default=list,
    )
    suggestions = ScopedPrimaryKeyRelatedField(
        queryset=ReplenishmentSuggestion.objects.all(), many=True, required=False, default=list,
        help_text="Accepted replenishment suggestions (turned into requisitions)",
    )

    def validate_suggestions(self, suggestions: list[ReplenishmentSuggestion]) -> list[ReplenishmentSuggestion]:
        for suggestion in suggestions:
            if suggestion.requisition_line_id is None:
                raise serializers.ValidationError(f"suggestion {suggestion.pk} has not been accepted")
        return suggestions


class PickScanInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=300, help_text="The scanned UDI of the unit or lot label")
    quantity = serializers.IntegerField(
        min_value=1, max_value=1_000_000, required=False, allow_null=True,
        help_text="For a lot: how many (default: what the line still has proposed of that lot)",
    )


class DispatchInputSerializer(IdempotentInputSerializer):
    pass


class DeliveryItemSerializer(serializers.ModelSerializer):
    product_name = serializers.CharField(source="product.name", read_only=True)

    class Meta:
        model = DeliveryItem
        fields = [
            "id", "product", "product_name", "unit", "lot", "expiry", "quantity", "received_quantity",
            "discrepancy_quantity", "discrepancy", "action", "reason",
        ]


class DeliverySerializer(serializers.ModelSerializer):
    items = DeliveryItemSerializer(many=True, read_only=True)
    pick_list_number = serializers.CharField(source="pick_list.number", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id", "number", "pick_list", "pick_list_number", "department", "destination", "in_transit_location",
            "status", "zero_stock", "dispatch_order", "receipt_order", "return_order", "write_off_order",
            "dispatched_by", "dispatched_at", "received_by", "received_at", "items",
        ]


class ItemDecisionSerializer(serializers.Serializer):
    item = serializers.IntegerField(min_value=1, max_value=2**62)
    received = serializers.IntegerField(min_value=0, max_value=1_000_000)
    discrepancy = serializers.ChoiceField(choices=DeliveryItem.Discrepancy.choices, required=False, default="")
    action = serializers.ChoiceField(choices=DeliveryItem.Action.choices, required=False, default="")
    reason = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class ReceiveInputSerializer(IdempotentInputSerializer):
    items = ItemDecisionSerializer(
        many=True, required=False, default=list,
        help_text="Items not accepted in full; every other item is accepted as dispatched",
    )


class _FirstRenderer(BaseContentNegotiation):
    """A PDF answers its file whatever the Accept header says; errors are JSON."""

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type

    def select_parser(self, request: Request, parsers: list):
        return parsers[0] if parsers else None


PDF_RESPONSE = {(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="PDF")}


def _pdf(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


class PickListViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Pick lists (拣货单): FEFO proposals reserved per line, confirmed by scanning, then dispatched."""

    serializer_class = PickListSerializer
    read_roles = BOOK_READERS
    write_roles = STOCK_HANDLERS
    filterset_fields = ["status", "source_location"]

    def get_queryset(self) -> QuerySet:
        return visible_to(self.request.user, PickList.objects.all()).prefetch_related(
            "lines__product", "lines__picked_items", "deliveries"
        )

    @extend_schema(request=PickListInputSerializer, responses={201: PickListSerializer})
    def create(self, request: Request) -> Response:
        """Create a pick list at a source location for requisition lines (and accepted suggestions)."""
        data = validated(PickListInputSerializer, request)
        lines = list(data["requisition_lines"]) + [
            RequisitionLine.objects.get(pk=suggestion.requisition_line_id) for suggestion in data["suggestions"]
        ]
        pick_list = picking.create_pick_list(
            user=request.user, hospital=caller_hospital(request), source_location=data["source_location"],
            requisition_lines=lines, idempotency_key=idempotency_key(request, data),
        )
        return Response(PickListSerializer(self.get_queryset().get(pk=pick_list.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PickScanInputSerializer, responses={201: PickedItemSerializer})
    @action(detail=True, methods=["post"])
    def scan(self, request: Request, pk: str) -> Response:
        """Confirm one unit, or a quantity of a lot, by its scanned code."""
        pick_list = self.get_object()
        data = validated(PickScanInputSerializer, request)
        picked = picking.confirm_pick_scan(
            user=request.user, pick_list=pick_list, code=data["code"], quantity=data.get("quantity"),
        )
        return Response(PickedItemSerializer(picked).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=DispatchInputSerializer, responses={200: PickListSerializer})
    @action(detail=True, methods=["post"], url_path="dispatch", url_name="dispatch")
    def send(self, request: Request, pk: str) -> Response:
        """Send what was picked into the receiving departments' in-transit locations (配送)."""
        pick_list = self.get_object()
        data = validated(DispatchInputSerializer, request)
        picking.dispatch_pick_list(user=request.user, pick_list=pick_list, idempotency_key=idempotency_key(request, data))
        return Response(PickListSerializer(self.get_queryset().get(pk=pick_list.pk)).data)

    @extend_schema(request=None, responses={200: PickListSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """Give up a pick list nothing was picked on; its stock and lines are free again."""
        pick_list = self.get_object()
        picking.cancel_pick_list(user=request.user, pick_list=pick_list)
        return Response(PickListSerializer(self.get_queryset().get(pk=pick_list.pk)).data)

    @extend_schema(responses=PDF_RESPONSE)
    @action(detail=True, renderer_classes=[JSONRenderer], content_negotiation_class=_FirstRenderer,
            pagination_class=None, filter_backends=[])
    def pdf(self, request: Request, pk: str) -> HttpResponse:
        """The printable pick list with signature lines."""
        pick_list = self.get_object()
        return _pdf(distribution_pdf.pick_list_pdf(pick_list), f"{pick_list.number}.pdf")


def deliveries_visible_to(user) -> QuerySet:
    deliveries = visible_to(user, Delivery.objects.all())
    allowed = departments_of(user)
    if allowed is not None:
        deliveries = deliveries.filter(department_id__in=allowed)
    return deliveries


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Delivery slips (配送单) and the department's receipt; a nurse sees her departments' only."""

    serializer_class = DeliverySerializer
    write_roles = (Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR, Role.NURSE)
    filterset_fields = ["status", "department", "pick_list"]

    def get_queryset(self) -> QuerySet:
        return deliveries_visible_to(self.request.user).select_related("pick_list").prefetch_related("items__product")

    @extend_schema(request=ReceiveInputSerializer, responses={200: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def receive(self, request: Request, pk: str) -> Response:
        """Confirm receipt: everything as dispatched, except the items listed (short or damaged,
        sent back or written off, with a reason)."""
        delivery = self.get_object()
        data = validated(ReceiveInputSerializer, request)
        decisions = {}
        for entry in data["items"]:
            if entry["item"] in decisions:
                raise Refused(Refusal.RECEIPT_ITEM_INVALID, field=f"items[{entry['item']}]", reason=gettext("named twice"))
            decisions[entry["item"]] = picking.ItemDecision(
                received=entry["received"], discrepancy=entry["discrepancy"], action=entry["action"],
                reason=entry["reason"],
            )
        picking.receive_delivery(
            user=request.user, delivery=delivery, decisions=decisions, idempotency_key=idempotency_key(request, data),
        )
        return Response(DeliverySerializer(self.get_queryset().get(pk=delivery.pk)).data)

    @extend_schema(responses=PDF_RESPONSE)
    @action(detail=True, renderer_classes=[JSONRenderer], content_negotiation_class=_FirstRenderer,
            pagination_class=None, filter_backends=[])
    def pdf(self, request: Request, pk: str) -> HttpResponse:
        """The printable delivery slip (配送单) with signature lines."""
        delivery = self.get_object()
        return _pdf(distribution_pdf.delivery_pdf(delivery), f"{delivery.number}.pdf")
