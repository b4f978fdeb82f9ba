"""Use on a patient: POST /consumptions/ (by UDI, unit id or EPC; or product + lot + quantity) and refunds."""
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ErrorDetail
from rest_framework.request import Request
from rest_framework.response import Response

from inventory.actors import Actor
from inventory.api import sync
from inventory.api.fields import (
    BoundedDateTimeField,
    IdempotentInputSerializer,
    ScopedPrimaryKeyRelatedField,
    caller_hospital,
    idempotency_key,
    refused_input,
    validated,
)
from inventory.api.representation import PlannedRepresentation
from inventory.errors import Refusal, Refused
from inventory.models import Charge, ClinicalTeam, Consumption, Department, Location, Product, Role, Unit
from inventory.selectors.stock import StockScope
from inventory.selectors.units import find_unit_by_udi
from inventory.services.consumption import ClinicalContext, consume_lot, consume_unit, refund_consumption
from inventory.services.labelling import normalise_epc

CLINICAL_ROLES = (Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR, Role.NURSE)


class ConsumptionInputSerializer(IdempotentInputSerializer):
    udi = serializers.CharField(required=False, max_length=300, trim_whitespace=False, help_text="The unit's UDI as scanned")
    unit = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1,
                                    help_text="The unit's id (one of the caller's hospital: else 404)")
    epc = serializers.CharField(required=False, max_length=80, help_text="The unit's RFID tag")
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all(), required=False)
    lot = serializers.CharField(required=False, max_length=64)
    quantity = serializers.IntegerField(required=False, min_value=1, default=1)
    location = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all(), required=False,
                                            help_text="Lot-tracked items: the store they come from")
    encounter = serializers.CharField(max_length=64, help_text="HIS visit/admission number (no patient names)")
    department = ScopedPrimaryKeyRelatedField(queryset=Department.objects.all(), help_text="Ordering department")
    surgery_id = serializers.CharField(required=False, default="", allow_blank=True, max_length=64)
    surgery_name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    doctor = serializers.CharField(required=False, default="", allow_blank=True, max_length=64)
    clinical_team = ScopedPrimaryKeyRelatedField(
        queryset=ClinicalTeam.objects.all(), required=False, allow_null=True,
        help_text="The clinical team (诊疗组); default: the doctor's team on the day of use",
    )
    occurred_at = BoundedDateTimeField(
        required=False, help_text="When it was used, for a paper record entered later (default: now); in the open "
        "period, not in the future, after the unit's last movement (409 HISTORY_CONTRADICTED)."
    )

    def validate(self, attrs: dict) -> dict:
        named = [name for name in ("udi", "unit", "epc") if attrs.get(name)]
        lot_use = bool(attrs.get("product") or attrs.get("lot"))
        if len(named) + lot_use != 1:
            raise refused_input(Refusal.USE_TARGET_INVALID)
        if lot_use and not (attrs.get("product") and attrs.get("lot")):
            raise refused_input(Refusal.LOT_USE_INCOMPLETE)
        return attrs


class RefundInputSerializer(IdempotentInputSerializer):
    reason_code = serializers.CharField(max_length=64)
    to = serializers.ChoiceField(choices=["stock", "quarantine"], default="stock")


class ChargeSerializer(PlannedRepresentation, serializers.ModelSerializer):
    delivery_status = serializers.CharField(source="delivery.status", read_only=True)
    his_reference = serializers.CharField(source="delivery.his_reference", read_only=True)
    delivery_attempts = serializers.IntegerField(source="delivery.attempts", read_only=True)
    delivery_error = serializers.CharField(source="delivery.last_error", read_only=True)

    class Meta:
        model = Charge
        fields = [
            "id", "kind", "refund_of", "encounter", "his_charge_code", "nhsa_code", "quantity", "unit_price",
            "amount", "is_zero_cost", "created_at", "delivery_status", "his_reference", "delivery_attempts",
            "delivery_error",
        ]


class ConsumptionSerializer(PlannedRepresentation, serializers.ModelSerializer):
    charges = ChargeSerializer(many=True, read_only=True)
    other_parts = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True,
        help_text="The other consumptions of a lot use that spans cost layers of different purchase prices",
    )

    class Meta:
        model = Consumption
        fields = [
            "id", "product", "unit", "lot", "quantity", "location", "encounter", "surgery_id", "surgery_name",
            "doctor", "clinical_team", "department", "unit_price", "was_consignment", "occurred_at", "recorded_at", "recorded_by",
            "refunded_at", "refund_reason", "part_of", "other_parts", "charges",
        ]


class ConsumptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Use a unit or a lot quantity on an encounter; the charge goes to the HIS through the outbox.

    Integrators keeping a copy: `?cursor=` pages in id order without a count, `?updated_after=` keeps
    the uses recorded, refunded or sent to the HIS since (docs/api-sync.md)."""

    serializer_class = ConsumptionSerializer
    write_roles = CLINICAL_ROLES
    pagination_class = sync.SyncPagination
    sync_recorded_field = "recorded_at"
    sync_changed_after = staticmethod(sync.consumptions_changed_after)
    filterset_fields = ["encounter", "unit", "product", "department", "surgery_id"]

    def get_queryset(self) -> QuerySet:
        charges = Charge.objects.select_related("delivery").order_by("id")
        return StockScope.of(self.request.user).consumptions().prefetch_related(
            Prefetch("charges", charges), "other_parts"
        )

    @extend_schema(request=ConsumptionInputSerializer, responses={201: ConsumptionSerializer})
    def create(self, request: Request) -> Response:
        data = validated(ConsumptionInputSerializer, request)
        hospital = caller_hospital(request)
        context = ClinicalContext(
            encounter=data["encounter"], department=data["department"], surgery_id=data["surgery_id"],
            surgery_name=data["surgery_name"], doctor=data["doctor"], occurred_at=data.get("occurred_at"),
            clinical_team=data.get("clinical_team"),
        )
        actor, key = Actor(user=request.user), idempotency_key(request, data)
        if data.get("product"):
            consumption = consume_lot(
                actor=actor, hospital=hospital, product=data["product"], lot=data["lot"], quantity=data["quantity"],
                location=data.get("location"), context=context, idempotency_key=key,
            )
        else:
            try:
                consumption = consume_unit(actor=actor, hospital=hospital, unit=_named_unit(hospital, data),
                                           context=context, idempotency_key=key)
            except Refused as refused:
                if data.get("unit") and refused.problems[0].params.get("what") == "unit":
                    # As a related field answers an id it cannot find: another hospital's unit is no different.
                    raise serializers.ValidationError({"unit": [ErrorDetail(
                        serializers.PrimaryKeyRelatedField.default_error_messages["does_not_exist"].format(
                            pk_value=data["unit"]), code="does_not_exist")]}) from refused
                raise
        if not hasattr(consumption, "_prefetched_objects_cache"):  # a replay, or a lot use: read it back
            consumption = self.get_queryset().get(pk=consumption.pk)
        return Response(self.get_serializer(consumption).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RefundInputSerializer, responses={200: ConsumptionSerializer})
    @action(detail=True, methods=["post"])
    def refund(self, request: Request, pk: str) -> Response:
        """Reverse a use (退费) with a reason: the item goes back to stock or quarantine, a refund is billed."""
        consumption = self.get_object()
        data = validated(RefundInputSerializer, request)
        refund_consumption(actor=Actor(user=request.user), consumption=consumption, reason_code=data["reason_code"],
                           to_quarantine=data["to"] == "quarantine", idempotency_key=idempotency_key(request, data))
        return Response(self.get_serializer(self.get_queryset().get(pk=consumption.pk)).data)


def _named_unit(hospital: object, data: dict) -> Unit:
    if data.get("unit"):
        # Not read here: consume_unit reads and locks it in one statement, scoped to the hospital (404).
        return Unit(pk=data["unit"], hospital=hospital)
    if data.get("udi"):
        return find_unit_by_udi(hospital, data["udi"])
    unit = Unit.objects.filter(hospital=hospital, epc=normalise_epc(data["epc"])).first()
    if unit is None:
        raise Refused(Refusal.NOT_FOUND, what=f"unit with tag {data['epc']}")
    return unit
