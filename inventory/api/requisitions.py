"""Distribution over the API, relative to /api/v1/: par levels, replenishment, requisitions.

Par levels (基数) — warehouse keepers, SPD operators and administrators write; who/when is kept:
- `GET|POST par-levels/`, `GET|PUT|PATCH|DELETE par-levels/{id}/`, `GET par-levels/{id}/history/`

Replenishment (主动配送) — the whole hospital's books (not nurses):
- `GET replenishment-suggestions/` (filters `status`, `location`, `product`)
- `POST replenishment-suggestions/recompute/` — suggestions and proposed par levels now
- `POST replenishment-suggestions/{id}/dismiss/`
- `POST replenishment-suggestions/requisition/` `{"suggestions": [ids]}` — approved replenishment
  requisitions, one per location, for the warehouse to pick
- `GET par-level-proposals/`, `POST par-level-proposals/{id}/accept/`, `…/dismiss/`

Requisitions (科室申领) — a nurse sees and creates her departments' only; an auditor reads all of
the hospital; another hospital's is 404:
- `GET requisitions/` (filters `status`, `urgency`, `department`, `location`, `source`; `queue=true`
  gives the warehouse's work queue: open ones, urgent first, then oldest first)
- `POST requisitions/` (idempotency key) `{"department", "location"?, "urgency", "note", "submit"?,
  "lines": [{"product" | "code", "quantity", "unit"?, "note"?}]}` — `code` is a scanned UDI, an
  internal code or a UDI-DI; `quantity` is in `unit` (a packaging unit; empty: the base unit)
- `POST requisitions/{id}/lines/` add a line to a draft; `PATCH|DELETE requisitions/{id}/lines/{line}/`
- `POST requisitions/{id}/submit/` (idempotency key), `approve/` `{"lines": [{"line", "quantity"}]}`,
  `reject/` `{"reason"}`, `cancel/` `{"reason"}`, `lines/{line}/cancel/` `{"reason"}` (the line's
  open remainder)

Quantities in the answers are in base units. A quantity that is zero, negative or fractional is a
400 naming the field; an action the requisition's state does not allow is 409 and changes nothing.
"""
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.urls import include, path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from inventory.api import filters as api_filters
from inventory.api.fields import (
    IdempotentInputSerializer,
    ScopedPrimaryKeyRelatedField,
    caller_hospital,
    idempotency_key,
    validated,
)
from inventory.api.history import HistoryActions
from inventory.api.permissions import BOOK_READERS, STOCK_HANDLERS
from inventory.errors import Refusal, Refused
from inventory.models import (
    Department,
    Location,
    ParLevel,
    ParLevelProposal,
    Product,
    ReplenishmentSuggestion,
    Requisition,
    RequisitionLine,
    Role,
)
from inventory.selectors import requisitions as selectors
from inventory.selectors.stock import StockScope, find_product
from inventory.services import replenishment
from inventory.services import requisitions as service
from inventory.services.idempotency import run_once

REQUESTERS = (Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR, Role.NURSE)
QUANTITY_HELP = "A whole number ≥ 1, in `unit` (empty: the product's base unit)"


# --- par levels -----------------------------------------------------------------------------------


class ParLevelSerializer(serializers.ModelSerializer):
    location = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all())
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all())
    minimum = serializers.IntegerField(min_value=0, max_value=10**9)
    target = serializers.IntegerField(min_value=0, max_value=10**9, required=False, allow_null=True)
    maximum = serializers.IntegerField(min_value=0, max_value=10**9, required=False, allow_null=True)
    location_name = serializers.CharField(source="location.name", read_only=True)
    product_name = serializers.CharField(source="product.name", read_only=True)
    updated_by_username = serializers.CharField(source="updated_by.username", read_only=True, allow_null=True)

    class Meta:
        model = ParLevel
        fields = ["id", "location", "location_name", "product", "product_name", "minimum", "target", "maximum",
                  "updated_at", "updated_by", "updated_by_username"]
        read_only_fields = ["updated_at", "updated_by"]
        validators: list = []  # the service refuses a second par level of a location × product (409)


class ParLevelFilter(api_filters.FilterSet):
    department = django_filters.NumberFilter(field_name="location__department")

    class Meta:
        model = ParLevel
        fields = ["location", "product", "department"]


class ParLevelViewSet(HistoryActions, viewsets.ModelViewSet):
    """Par levels (基数: minimum, target, maximum) of a location × product, in base units."""

    serializer_class = ParLevelSerializer
    filterset_class = ParLevelFilter
    write_roles = STOCK_HANDLERS
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet:
        return selectors.par_levels_visible_to(self.request.user).order_by("location__code", "product__internal_code")

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.instance = self._save(serializer.validated_data, None)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        level = serializer.instance
        data = {"location": level.location, "product": level.product, "minimum": level.minimum,
                "target": level.target, "maximum": level.maximum, **serializer.validated_data}
        serializer.instance = self._save(data, level)

    def _save(self, data: dict, level: ParLevel | None) -> ParLevel:
        return replenishment.save_par_level(
            user=self.request.user, location=data["location"], product=data["product"], minimum=data["minimum"],
            target=data.get("target"), maximum=data.get("maximum"), par_level=level,
        )

    def perform_destroy(self, instance: ParLevel) -> None:
        replenishment.delete_par_level(par_level=instance, user=self.request.user)


class RequisitionLineSerializer(serializers.ModelSerializer):
    product_name = serializers.CharField(source="product.name", read_only=True)
    product_code = serializers.CharField(source="product.internal_code", read_only=True)
    base_unit = serializers.CharField(source="product.unit_of_measure", read_only=True)
    allowed_quantity = serializers.IntegerField(read_only=True, help_text="Approved, or requested until approved")
    open_quantity = serializers.IntegerField(read_only=True, help_text="Neither picked nor cancelled yet")
    in_transit_quantity = serializers.IntegerField(read_only=True)

    class Meta:
        model = RequisitionLine
        fields = ["id", "product", "product_name", "product_code", "base_unit", "requested_quantity",
                  "entered_quantity", "entered_unit", "approved_quantity", "picked_quantity", "dispatched_quantity",
                  "received_quantity", "discrepancy_quantity", "cancelled_quantity", "cancel_reason", "note",
                  "allowed_quantity", "open_quantity", "in_transit_quantity"]
        read_only_fields = fields


class RequisitionSerializer(serializers.ModelSerializer):
    lines = RequisitionLineSerializer(many=True, read_only=True)
    department_name = serializers.CharField(source="department.name", read_only=True)
    location_name = serializers.CharField(source="location.name", read_only=True)
    created_by_username = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = Requisition
        fields = ["id", "number", "department", "department_name", "location", "location_name", "source", "status",
                  "urgency", "note", "status_reason", "created_by", "created_by_username", "created_at",
                  "submitted_at", "submitted_by", "decided_at", "decided_by", "dispatched_at", "closed_at",
                  "closed_by", "updated_at", "lines"]
        read_only_fields = fields


# --- suggestions and proposals --------------------------------------------------------------------


class SuggestionSerializer(serializers.ModelSerializer):
    location_name = serializers.CharField(source="location.name", read_only=True)
    product_name = serializers.CharField(source="product.name", read_only=True)
    requisition = serializers.IntegerField(source="requisition_line.requisition_id", read_only=True, allow_null=True)

    class Meta:
        model = ReplenishmentSuggestion
        fields = ["id", "location", "location_name", "product", "product_name", "par_level", "minimum", "target",
                  "on_hand", "in_transit", "on_order", "quantity", "status", "computed_at", "requisition",
                  "decided_at", "decided_by"]
        read_only_fields = fields


class RecomputeResultSerializer(serializers.Serializer):
    suggestions = serializers.IntegerField(help_text="Open suggestions now")
    proposals = serializers.IntegerField(help_text="Pending proposed par levels now")


class SuggestionPickSerializer(serializers.Serializer):
    suggestions = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=1000)


class SuggestionFilter(api_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ReplenishmentSuggestion.Status.choices)

    class Meta:
        model = ReplenishmentSuggestion
        fields = ["status", "location", "product"]


class SuggestionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Replenishment suggestions (主动配送建议): target − (on hand + in transit + open requisitions)."""

    serializer_class = SuggestionSerializer
    filterset_class = SuggestionFilter
    read_roles = BOOK_READERS
    write_roles = STOCK_HANDLERS
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet:
        return selectors.suggestions_visible_to(self.request.user).select_related(
            "requisition_line").order_by("location__code", "product__internal_code", "pk")

    @extend_schema(request=None, responses={200: RecomputeResultSerializer})
    @action(detail=False, methods=["post"])
    def recompute(self, request: Request) -> Response:
        """Compute the hospital's suggestions and proposed par levels now (as the daily job does)."""
        result = replenishment.replenish(hospital=caller_hospital(request))
        return Response(RecomputeResultSerializer(result.as_dict()).data)

    @extend_schema(request=None, responses={200: SuggestionSerializer})
    @action(detail=True, methods=["post"])
    def dismiss(self, request: Request, pk: str) -> Response:
        """Do not deliver this one (until the next computation finds it still needed)."""
        suggestion = replenishment.dismiss_suggestion(suggestion=self.get_object(), user=request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=suggestion.pk)).data)

    @extend_schema(request=SuggestionPickSerializer, responses={201: RequisitionSerializer(many=True)})
    @action(detail=False, methods=["post"])
    def requisition(self, request: Request) -> Response:
        """Turn open suggestions into approved replenishment requisitions (one per location)."""
        data = validated(SuggestionPickSerializer, request)
        chosen = list(self.get_queryset().filter(pk__in=data["suggestions"]))
        if missing := set(data["suggestions"]) - {suggestion.pk for suggestion in chosen}:
            raise Refused(Refusal.INVALID_REQUEST, detail=f"no open suggestion {min(missing)}", field="suggestions")
        created = replenishment.requisition_suggestions(suggestions=chosen, user=request.user)
        queryset = selectors.requisitions_visible_to(request.user).filter(pk__in=[r.pk for r in created])
        return Response(RequisitionSerializer(_with_lines(queryset), many=True).data, status=status.HTTP_201_CREATED)


class ParProposalSerializer(serializers.ModelSerializer):
    location = serializers.IntegerField(source="par_level.location_id", read_only=True)
    location_name = serializers.CharField(source="par_level.location.name", read_only=True)
    product = serializers.IntegerField(source="par_level.product_id", read_only=True)
    product_name = serializers.CharField(source="par_level.product.name", read_only=True)

    class Meta:
        model = ParLevelProposal
        fields = ["id", "par_level", "location", "location_name", "product", "product_name", "current_minimum",
                  "current_target", "proposed_minimum", "proposed_target", "p95_daily_use", "weeks", "lead_days",
                  "cover_days", "status", "computed_at", "decided_at", "decided_by"]
        read_only_fields = fields


class ProposalFilter(api_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ParLevelProposal.Status.choices)

    class Meta:
        model = ParLevelProposal
        fields = ["status", "par_level"]


class ProposalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Par levels proposed from recent use (p95 daily use × lead / cover days): accepted or dismissed by a person."""

    serializer_class = ParProposalSerializer
    filterset_class = ProposalFilter
    read_roles = BOOK_READERS
    write_roles = STOCK_HANDLERS
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet:
        return selectors.proposals_visible_to(self.request.user).order_by("-computed_at", "pk")

    @extend_schema(request=None, responses={200: ParProposalSerializer})
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        """Apply the proposed minimum and target to the par level (recorded as your change)."""
        proposal = self.get_object()
        replenishment.accept_proposal(proposal=proposal, user=request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=proposal.pk)).data)

    @extend_schema(request=None, responses={200: ParProposalSerializer})
    @action(detail=True, methods=["post"])
    def dismiss(self, request: Request, pk: str) -> Response:
        """Keep the par level as it is."""
        proposal = replenishment.dismiss_proposal(proposal=self.get_object(), user=request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=proposal.pk)).data)


# --- requisitions ---------------------------------------------------------------------------------


class RequisitionLineInputSerializer(serializers.Serializer):
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all(), required=False)
    code = serializers.CharField(required=False, max_length=300,
                                 help_text="Instead of product: a scanned UDI, an internal code or a UDI-DI")
    quantity = serializers.IntegerField(min_value=1, max_value=10**9, help_text=QUANTITY_HELP)
    unit = serializers.CharField(required=False, default="", allow_blank=True, max_length=16)
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("product")) == bool(attrs.get("code")):
            raise serializers.ValidationError("name the product by its id (product) or by a code (code), not both")
        if attrs.get("code"):
            found = find_product(StockScope.of(self.context["request"].user).products(), attrs["code"].strip())
            if found is None:
                raise serializers.ValidationError({"code": f"no product with the code {attrs['code']!r} in your catalog"})
            attrs["product"] = found
        return attrs


class RequisitionInputSerializer(IdempotentInputSerializer):
    department = ScopedPrimaryKeyRelatedField(queryset=Department.objects.all())
    location = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all(), required=False,
                                            help_text="Deliver to (default: the department's store)")
    urgency = serializers.ChoiceField(choices=Requisition.Urgency.choices, default=Requisition.Urgency.ROUTINE)
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)
    submit = serializers.BooleanField(required=False, default=False, help_text="Submit at once")
    lines = RequisitionLineInputSerializer(many=True, required=False, max_length=500)


class LineQuantitySerializer(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=1, max_value=10**9, help_text=QUANTITY_HELP)
    unit = serializers.CharField(required=False, default="", allow_blank=True, max_length=16)


class ApprovedLineSerializer(serializers.Serializer):
    line = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(min_value=0, max_value=10**9, help_text="Approved, in base units (0: none)")


class ApproveSerializer(serializers.Serializer):
    lines = ApprovedLineSerializer(many=True, required=False, max_length=500,
                                   help_text="Lines not named are approved as requested")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class RequisitionFilter(api_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Requisition.Status.choices)
    urgency = django_filters.ChoiceFilter(choices=Requisition.Urgency.choices)
    source = django_filters.ChoiceFilter(choices=Requisition.Source.choices)
    queue = django_filters.BooleanFilter(method="filter_queue", label="The warehouse's work queue: open, urgent first")

    class Meta:
        model = Requisition
        fields = ["status", "urgency", "source", "department", "location"]

    def filter_queue(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        return selectors.work_queue(queryset) if value else queryset


def _with_lines(queryset: QuerySet) -> QuerySet:
    return queryset.prefetch_related("lines__product")


_STATE_ERRORS = {
    400: OpenApiResponse(description="Bad input; `problems[].field` names the field"),
    409: OpenApiResponse(description="The requisition's state does not allow this (REQUISITION_STATE); nothing changed"),
}


class RequisitionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Department requisitions (科室申领) and their state actions."""

    serializer_class = RequisitionSerializer
    filterset_class = RequisitionFilter
    write_roles = REQUESTERS
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet:
        return _with_lines(selectors.requisitions_visible_to(self.request.user)).order_by("-created_at", "-pk")

    def _answer(self, requisition: Requisition, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=requisition.pk)).data, status=code)

    def _require(self, *roles: Role) -> None:
        if not self.request.user.has_role(*roles):
            raise exceptions.PermissionDenied()

    @extend_schema(request=RequisitionInputSerializer, responses={201: RequisitionSerializer, **_STATE_ERRORS})
    def create(self, request: Request) -> Response:
        data = validated(RequisitionInputSerializer, request)
        hospital, key = caller_hospital(request), idempotency_key(request, data)
        lines = [service.RequestedLine(line["product"], line["quantity"], line["unit"], line["note"])
                 for line in data.get("lines", [])]
        payload = {
            "department": data["department"].pk, "location": getattr(data.get("location"), "pk", None),
            "urgency": data["urgency"], "note": data["note"], "submit": data["submit"],
            "lines": [[line.product.pk, line.quantity, line.unit, line.note] for line in lines],
        }
        requisition, _ = run_once(
            hospital=hospital, key=key, operation="requisition.create", payload=payload,
            perform=lambda: service.create_requisition(
                user=request.user, department=data["department"], location=data.get("location"), lines=lines,
                urgency=data["urgency"], note=data["note"], submit=data["submit"],
            ),
        )
        return self._answer(requisition, status.HTTP_201_CREATED)

    @extend_schema(request=RequisitionLineInputSerializer, responses={201: RequisitionSerializer, **_STATE_ERRORS})
    @action(detail=True, methods=["post"], url_path="lines")
    def add_line(self, request: Request, pk: str) -> Response:
        """Add a product to a draft (onto its line if it is already there)."""
        requisition = self.get_object()
        data = validated(RequisitionLineInputSerializer, request)
        service.add_line(requisition=requisition, user=request.user, product=data["product"],
                         quantity=data["quantity"], unit=data["unit"], note=data["note"])
        return self._answer(requisition, status.HTTP_201_CREATED)

    def _line(self, requisition: Requisition, line_id: str) -> RequisitionLine:
        line = requisition.lines.filter(pk=int(line_id)).first() if len(line_id) < 18 else None
        if line is None:
            raise Refused(Refusal.NOT_FOUND, what="requisition line")
        return line

    @extend_schema(request=LineQuantitySerializer, responses={200: RequisitionSerializer, **_STATE_ERRORS})
    @action(detail=True, methods=["patch"], url_path=r"lines/(?P<line_id>\d+)")
    def change_line(self, request: Request, pk: str, line_id: str) -> Response:
        """Change a draft line's quantity."""
        requisition = self.get_object()
        data = validated(LineQuantitySerializer, request)
        service.change_line(line=self._line(requisition, line_id), user=request.user, quantity=data["quantity"],
                            unit=data["unit"])
        return self._answer(requisition)

    @extend_schema(request=None, responses={200: RequisitionSerializer, **_STATE_ERRORS})
    @change_line.mapping.delete
    def remove_line(self, request: Request, pk: str, line_id: str) -> Response:
        """Take a line off a draft."""
        requisition = self.get_object()
        service.remove_line(line=self._line(requisition, line_id), user=request.user)
        return self._answer(requisition)

    @extend_schema(request=ReasonSerializer, responses={200: RequisitionSerializer, **_STATE_ERRORS})
    @action(detail=True, methods=["post"], url_path=r"lines/(?P<line_id>\d+)/cancel")
    def cancel_line(self, request: Request, pk: str, line_id: str) -> Response:
        """Cancel what is still open on a line, with a reason."""
        requisition = self.get_object()
        data = validated(ReasonSerializer, request)
        service.cancel_line_remainder(line=self._line(requisition, line_id), user=request.user, reason=data["reason"])
        return self._answer(requisition)

    @extend_schema(request=IdempotentInputSerializer, responses={200: RequisitionSerializer, **_STATE_ERRORS})
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str) -> Response:
        """DRAFT → SUBMITTED (→ APPROVED where the department has no approval step)."""
        requisition = self.get_object()
        data = validated(IdempotentInputSerializer, request)
        submitted, _ = run_once(
            hospital=caller_hospital(request), key=idempotency_key(request, data), operation="requisition.submit",
            payload={"requisition": requisition.pk},
            perform=lambda: service.submit_requisition(requisition=requisition, user=request.user),
        )
        return self._answer(submitted)

    @extend_schema(request=ApproveSerializer, responses={200: RequisitionSerializer, **_STATE_ERRORS})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """SUBMITTED → APPROVED, with per-line approved quantities (warehouse, SPD operators)."""
        self._require(*STOCK_HANDLERS)
        requisition = self.get_object()
        data = validated(ApproveSerializer, request)
        approved: dict[int, Any] = {item["line"]: item["quantity"] for item in data.get("lines", [])}
        service.approve_requisition(requisition=requisition, user=request.user, approved=approved)
        return self._answer(requisition)

    @extend_schema(request=ReasonSerializer, responses={200: RequisitionSerializer, **_STATE_ERRORS})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        """SUBMITTED → REJECTED, with a reason (warehouse, SPD operators)."""
        self._require(*STOCK_HANDLERS)
        requisition = self.get_object()
        data = validated(ReasonSerializer, request)
        service.reject_requisition(requisition=requisition, user=request.user, reason=data["reason"])
        return self._answer(requisition)

    @extend_schema(request=ReasonSerializer, responses={200: RequisitionSerializer, **_STATE_ERRORS})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """DRAFT / SUBMITTED / APPROVED → CANCELLED, with a reason."""
        requisition = self.get_object()
        data = validated(ReasonSerializer, request)
        service.cancel_requisition(requisition=requisition, user=request.user, reason=data["reason"])
        return self._answer(requisition)


router = SimpleRouter()
router.register("par-levels", ParLevelViewSet, basename="par-level")
router.register("replenishment-suggestions", SuggestionViewSet, basename="replenishment-suggestion")
router.register("par-level-proposals", ProposalViewSet, basename="par-level-proposal")
router.register("requisitions", RequisitionViewSet, basename="requisition")

urlpatterns = [path("", include(router.urls))]
