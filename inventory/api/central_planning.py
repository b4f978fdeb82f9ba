"""Central plans from members' demand (集中采购计划), for who acts for the alliance.

    GET  central-plans/demand/     each member's open demand for alliance-catalog products
                                   (suggestions and requisition shortfalls, as plans from demand see them)
    POST central-plans/proposal/   the central order lines a selection would make, per supplier, with
                                   each member's share, and what cannot be planned (writes nothing)
    POST central-plans/            place it: one central order per supplier; each source planned once

Anyone else gets 403 (NOT_ALLOWED); a source or warehouse of another alliance is 404. Every rule is
in `inventory/services/central_planning.py`.
"""
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.api.alliance import ALLIANCE_WRITERS, CentralOrderSerializer
from inventory.api.fields import BoundedDateField, ScopedPrimaryKeyRelatedField, validated
from inventory.api.permissions import BOOK_READERS
from inventory.api.purchasing import DemandShortfallSerializer, DemandSuggestionSerializer, PlanUnplannedSerializer
from inventory.errors import Refusal, Refused
from inventory.models import Location
from inventory.selectors.alliance_transfers import central_orders_visible_to
from inventory.selectors.central_demand import members_open_demand
from inventory.services.central_planning import CentralPlan, place_central_plan, propose_central_plan
from inventory.services.central_purchasing import require_alliance_actor
from inventory.services.purchasing import PlanLineOrdering


class CentralDemandMemberSerializer(serializers.Serializer):
    member = serializers.IntegerField(source="member.pk")
    member_name = serializers.CharField(source="member.name")
    suggestions = DemandSuggestionSerializer(many=True)
    requisition_shortfalls = DemandShortfallSerializer(many=True, source="shortfalls")


class CentralPlanShareSerializer(serializers.Serializer):
    member = serializers.IntegerField(source="member.pk")
    member_name = serializers.CharField(source="member.name")
    need = serializers.IntegerField(help_text="What the member's selected sources need")
    quantity = serializers.IntegerField(help_text="Its share of the line: its need and its part of the rounding")
    sources = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_sources(self, share) -> list[str]:
        return [need.description for need in share.needs]


class CentralPlanLineSerializer(serializers.Serializer):
    product = serializers.IntegerField(source="product.pk", help_text="The lead hospital's product")
    product_code = serializers.CharField(source="product.internal_code")
    product_name = serializers.CharField(source="product.name")
    agreement = serializers.IntegerField(source="agreement.pk")
    unit_price = serializers.DecimalField(source="agreement.unit_price", max_digits=12, decimal_places=2)
    vbp_contract = serializers.CharField(source="agreement.vbp_contract")
    need = serializers.IntegerField()
    quantity = serializers.IntegerField(help_text="The members' needs rounded up to whole purchase units")
    platform_only = serializers.BooleanField(help_text="Needs a platform reference or an emergency reason")
    shares = CentralPlanShareSerializer(many=True)


class CentralPlanOrderSerializer(serializers.Serializer):
    supplier = serializers.IntegerField(source="supplier.pk")
    supplier_name = serializers.CharField(source="supplier.name")
    lines = CentralPlanLineSerializer(many=True)


class CentralPlanSerializer(serializers.Serializer):
    alliance = serializers.CharField()
    lead = serializers.IntegerField(source="lead.pk")
    orders = CentralPlanOrderSerializer(many=True)
    unplanned = serializers.SerializerMethodField()
    central_orders = serializers.SerializerMethodField(help_text="The central orders placed (none for a proposal)")

    @extend_schema_field(PlanUnplannedSerializer(many=True))
    def get_unplanned(self, plan: CentralPlan) -> list[dict]:
        return [entry.as_dict() for entry in plan.unplanned]

    @extend_schema_field(CentralOrderSerializer(many=True))
    def get_central_orders(self, plan: CentralPlan) -> list[dict]:
        if not plan.placed:
            return []
        placed = central_orders_visible_to(self.context["request"].user).filter(
            pk__in=[order.pk for order in plan.placed]).prefetch_related("allocations__member",
                                                                       "allocations__order_line")
        return CentralOrderSerializer(placed.order_by("pk"), many=True).data


class CentralPlanExemptionSerializer(serializers.Serializer):
    product = serializers.IntegerField(min_value=1, max_value=2**62, help_text="The lead hospital's product")
    reason = serializers.CharField(max_length=500)


class CentralPlanSelectionSerializer(serializers.Serializer):
    suggestions = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**62),
                                        required=False, default=list, max_length=2000,
                                        help_text="Members' open replenishment suggestions")
    requisition_lines = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**62),
                                              required=False, default=list, max_length=2000,
                                              help_text="Members' approved requisition lines (their shortfall)")
    nhsa_exemptions = CentralPlanExemptionSerializer(many=True, required=False, default=list, max_length=1000)


class CentralPlanProposalInputSerializer(CentralPlanSelectionSerializer):
    alliance = serializers.CharField(max_length=200, required=False, default="",
                                     help_text="Only for an alliance administrator bound to no hospital")


class CentralPlanOrderingSerializer(serializers.Serializer):
    product = serializers.IntegerField(min_value=1, max_value=2**62, help_text="The lead hospital's product")
    platform_reference = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    emergency_reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class CentralPlanPlaceInputSerializer(CentralPlanSelectionSerializer):
    regional_warehouse = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all())
    promised_date = BoundedDateField()
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    lines = CentralPlanOrderingSerializer(many=True, required=False, default=list, max_length=1000)


def _exemptions(data: dict) -> dict[int, str]:
    return {row["product"]: row["reason"] for row in data["nhsa_exemptions"]}


def _alliance(request: Request, named: str = "") -> str:
    return request.user.hospital.alliance if request.user.hospital_id else named


class CentralDemandView(APIView):
    """Members' open demand the centre may buy for (alliance-catalog products only)."""

    read_roles = BOOK_READERS

    @extend_schema(responses={200: CentralDemandMemberSerializer(many=True)},
                   parameters=[OpenApiParameter("alliance", str, description="an unbound alliance administrator's")])
    def get(self, request: Request) -> Response:
        alliance = _alliance(request, request.query_params.get("alliance", ""))
        require_alliance_actor(request.user, alliance)
        return Response(CentralDemandMemberSerializer(members_open_demand(alliance), many=True).data)


class CentralPlanProposalView(APIView):
    """What central orders a selection of members' demand would make (nothing is written)."""

    write_roles = ALLIANCE_WRITERS

    @extend_schema(request=CentralPlanProposalInputSerializer, responses={200: CentralPlanSerializer})
    def post(self, request: Request) -> Response:
        require_alliance_actor(request.user, _alliance(request))
        data = validated(CentralPlanProposalInputSerializer, request)
        plan = propose_central_plan(
            user=request.user, alliance=_alliance(request, data["alliance"]), suggestions=data["suggestions"],
            requisition_lines=data["requisition_lines"], nhsa_exemptions=_exemptions(data))
        return Response(CentralPlanSerializer(plan, context={"request": request}).data)


class CentralPlanView(APIView):
    """Place central orders from a selection of members' demand: one per supplier, shares as allocations."""

    write_roles = ALLIANCE_WRITERS

    @extend_schema(request=CentralPlanPlaceInputSerializer, responses={201: CentralPlanSerializer})
    def post(self, request: Request) -> Response:
        require_alliance_actor(request.user, _alliance(request))
        data = validated(CentralPlanPlaceInputSerializer, request)
        warehouse = data["regional_warehouse"]
        if request.user.hospital_id and warehouse.hospital.alliance != request.user.hospital.alliance:
            raise Refused(Refusal.NOT_FOUND, what="location")
        plan = place_central_plan(
            user=request.user, regional_warehouse=warehouse, promised_date=data["promised_date"],
            suggestions=data["suggestions"], requisition_lines=data["requisition_lines"], note=data["note"],
            orderings={row["product"]: PlanLineOrdering(row["platform_reference"], row["emergency_reason"])
                       for row in data["lines"]},
            nhsa_exemptions=_exemptions(data))
        return Response(CentralPlanSerializer(plan, context={"request": request}).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("central-plans/demand/", CentralDemandView.as_view(), name="central-plan-demand"),
    path("central-plans/proposal/", CentralPlanProposalView.as_view(), name="central-plan-proposal"),
    path("central-plans/", CentralPlanView.as_view(), name="central-plans"),
]
