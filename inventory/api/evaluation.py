"""Supplier evaluation (供应商评价) over the API (services.evaluation). Administrators and SPD
operators write; auditors read.

- `evaluation-sets/`: the hospital's indicator sets with their indicators; POST a set (a first-level
  indicator has no `parent`; a scored one names its first-level indicator's `code`), PUT replaces the
  indicators of a set no run has used (else 409 EVALUATION_SET_FROZEN), `load-default/` adds the
  seeds' eight first-level indicators, `{id}/new-version/` copies a set as its next version.
- `evaluation-runs/`: runs over a period; POST one (suppliers default to those with an order promised
  in the period), `{id}/scores/` enters evaluators' scores (each in its range, all or nothing),
  `{id}/method/` sets the weighting (EXPERT, ENTROPY, AHP with `ahp_matrix`: CR ≥ 0.1 is 400
  AHP_INCONSISTENT with the CR) and scoring (LINEAR, TOPSIS), `{id}/refresh/` collects the computed
  values again, `{id}/finalise/` (409 EVALUATION_VALUE_MISSING, one problem per missing value) and
  `{id}/report.{csv|xlsx|pdf}` the stored report with its SHA-256 in X-Content-SHA256.
- `portal/evaluations/`: for a supplier's own users, their place in the finalised runs of the
  hospitals they serve — rank, score and their own values only.
"""
from django.db.models import Prefetch, QuerySet
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import include, path, re_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from inventory.actors import Actor
from inventory.api.fields import BoundedDateField, ScopedPrimaryKeyRelatedField, caller_hospital, validated
from inventory.api.portal import SupplierPortalAccess
from inventory.api.reconciliation import _FirstRenderer
from inventory.errors import Refusal, Refused
from inventory.models import EvaluatedSupplier, EvaluationRun, Indicator, IndicatorSet, Role, Supplier
from inventory.selectors.evaluation import own_values, portal_evaluations, run_matrix, supplier_trends
from inventory.selectors.scope import visible_to
from inventory.services.evaluation import (
    IndicatorInput,
    ScoreInput,
    create_indicator_set,
    create_run,
    enter_scores,
    finalise_run,
    load_default_set,
    missing_values,
    new_set_version,
    refresh_computed,
    replace_indicators,
    set_method,
)
from inventory.services.reports import content_type

EVALUATION_READERS = (Role.ADMIN, Role.SPD_OPERATOR, Role.AUDITOR)
EVALUATION_WRITERS = (Role.ADMIN, Role.SPD_OPERATOR)
REPORT_FORMATS = ("csv", "xlsx", "pdf")

# --- indicator sets ------------------------------------------------------------------------------


class EvaluationIndicatorInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=200)
    parent = serializers.CharField(max_length=32, required=False, default="", allow_blank=True,
                                   help_text="The code of its first-level indicator; empty for a first-level one")
    source = serializers.ChoiceField(choices=Indicator.Source.choices, default=Indicator.Source.ENTERED)
    direction = serializers.ChoiceField(choices=Indicator.Direction.choices, default=Indicator.Direction.BENEFIT)
    weight = serializers.DecimalField(max_digits=8, decimal_places=3, min_value=0, default=1,
                                      help_text="Expert weight, within the set (first level) or its parent")
    score_min = serializers.DecimalField(max_digits=10, decimal_places=2, default=0)
    score_max = serializers.DecimalField(max_digits=10, decimal_places=2, default=100)


class EvaluationSetInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    indicators = EvaluationIndicatorInputSerializer(many=True, allow_empty=False, max_length=200)


class EvaluationIndicatorsInputSerializer(serializers.Serializer):
    indicators = EvaluationIndicatorInputSerializer(many=True, allow_empty=False, max_length=200)


class EvaluationIndicatorSerializer(serializers.ModelSerializer):
    parent = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = Indicator
        fields = ["id", "code", "name", "parent", "position", "source", "direction", "weight", "score_min", "score_max"]
        read_only_fields = fields


class EvaluationSetSerializer(serializers.ModelSerializer):
    indicators = EvaluationIndicatorSerializer(many=True, read_only=True)
    is_frozen = serializers.BooleanField(read_only=True)

    class Meta:
        model = IndicatorSet
        fields = ["id", "hospital", "name", "version", "created_by", "created_at", "is_frozen", "frozen_at",
                  "indicators"]
        read_only_fields = fields


def _indicator_inputs(rows: list[dict]) -> list[IndicatorInput]:
    return [IndicatorInput(**row) for row in rows]


class EvaluationSetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The hospital's indicator sets (评价指标体系), versioned; frozen once a run has used them."""

    read_roles = EVALUATION_READERS
    write_roles = EVALUATION_WRITERS
    serializer_class = EvaluationSetSerializer
    http_method_names = ["get", "post", "put", "head", "options"]

    def get_queryset(self) -> QuerySet:
        indicators = Indicator.objects.select_related("parent").order_by("position", "pk")
        return visible_to(self.request.user, IndicatorSet.objects.prefetch_related(
            Prefetch("indicators", indicators))).order_by("name", "-version", "pk")

    @extend_schema(request=EvaluationSetInputSerializer, responses={201: EvaluationSetSerializer})
    def create(self, request: Request) -> Response:
        data = validated(EvaluationSetInputSerializer, request)
        created = create_indicator_set(actor=Actor(user=request.user), hospital=caller_hospital(request),
                                       name=data["name"], indicators=_indicator_inputs(data["indicators"]))
        return Response(self.get_serializer(self.get_queryset().get(pk=created.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EvaluationIndicatorsInputSerializer, responses={200: EvaluationSetSerializer})
    def update(self, request: Request, pk: str) -> Response:
        """Replace the indicators of a set no run has used yet."""
        indicator_set = self.get_object()
        data = validated(EvaluationIndicatorsInputSerializer, request)
        replace_indicators(actor=Actor(user=request.user), indicator_set=indicator_set,
                           indicators=_indicator_inputs(data["indicators"]))
        return Response(self.get_serializer(self.get_queryset().get(pk=indicator_set.pk)).data)

    @extend_schema(request=None, responses={201: EvaluationSetSerializer})
    @action(detail=False, methods=["post"], url_path="load-default")
    def load_default(self, request: Request) -> Response:
        """Add the seeds' eight first-level indicators (quality, delivery, service, … price) as a set."""
        created = load_default_set(actor=Actor(user=request.user), hospital=caller_hospital(request))
        return Response(self.get_serializer(self.get_queryset().get(pk=created.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={201: EvaluationSetSerializer})
    @action(detail=True, methods=["post"], url_path="new-version")
    def new_version(self, request: Request, pk: str) -> Response:
        """Copy the set as its next version, open to changes."""
        created = new_set_version(actor=Actor(user=request.user), indicator_set=self.get_object())
        return Response(self.get_serializer(self.get_queryset().get(pk=created.pk)).data, status=status.HTTP_201_CREATED)


# --- runs ----------------------------------------------------------------------------------------


class EvaluationRunInputSerializer(serializers.Serializer):
    indicator_set = ScopedPrimaryKeyRelatedField(queryset=IndicatorSet.objects.all())
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    period_start = BoundedDateField()
    period_end = BoundedDateField()
    suppliers = serializers.PrimaryKeyRelatedField(queryset=Supplier.objects.all(), many=True, required=False,
                                                   help_text="Default: those with an order promised in the period")
    weighting = serializers.ChoiceField(choices=EvaluationRun.Weighting.choices, default=EvaluationRun.Weighting.EXPERT)
    scoring = serializers.ChoiceField(choices=EvaluationRun.Scoring.choices, default=EvaluationRun.Scoring.TOPSIS)
    ahp_matrix = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(min_value=1 / 9, max_value=9), max_length=10),
        max_length=10, required=False, default=list,
        help_text="AHP: the pairwise comparisons of the first-level indicators, Saaty's 1–9 scale")


class EvaluationMethodInputSerializer(serializers.Serializer):
    weighting = serializers.ChoiceField(choices=EvaluationRun.Weighting.choices)
    scoring = serializers.ChoiceField(choices=EvaluationRun.Scoring.choices)
    ahp_matrix = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(min_value=1 / 9, max_value=9), max_length=10),
        max_length=10, required=False, default=list)


class EvaluationScoreInputSerializer(serializers.Serializer):
    supplier = serializers.PrimaryKeyRelatedField(queryset=Supplier.objects.all())
    indicator = ScopedPrimaryKeyRelatedField(queryset=Indicator.objects.all(), hospital_field="indicator_set__hospital")
    value = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True,
                                     help_text="The score, within the indicator's range; null clears it")
    note = serializers.CharField(max_length=300, required=False, default="", allow_blank=True)


class EvaluationScoresInputSerializer(serializers.Serializer):
    scores = EvaluationScoreInputSerializer(many=True, allow_empty=False, max_length=2000)


class EvaluationValueSerializer(serializers.Serializer):
    indicator = serializers.IntegerField()
    code = serializers.CharField()
    value = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)
    basis = serializers.CharField()
    entered_by = serializers.IntegerField(allow_null=True)


class EvaluationTrendPointSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    name = serializers.CharField()
    period_end = serializers.DateField()
    score = serializers.DecimalField(max_digits=8, decimal_places=6)
    rank = serializers.IntegerField()
    of = serializers.IntegerField()


class EvaluationRowSerializer(serializers.Serializer):
    supplier = serializers.IntegerField()
    supplier_name = serializers.CharField()
    score = serializers.DecimalField(max_digits=8, decimal_places=6, allow_null=True)
    rank = serializers.IntegerField(allow_null=True)
    values = EvaluationValueSerializer(many=True)
    trend = EvaluationTrendPointSerializer(many=True)


class EvaluationProblemSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    reason = serializers.CharField(required=False)
    item = serializers.DictField(child=serializers.IntegerField(), required=False)


class EvaluationRunSummarySerializer(serializers.ModelSerializer):
    """A run in a list: no matrix (its page, `{id}/`, has it)."""

    class Meta:
        model = EvaluationRun
        fields = [
            "id", "hospital", "indicator_set", "name", "period_start", "period_end", "weighting", "scoring", "ahp_cr",
            "status", "created_by", "created_at", "finalised_by", "finalised_at",
        ]
        read_only_fields = fields


class EvaluationRunSerializer(serializers.ModelSerializer):
    weights = serializers.SerializerMethodField()
    rows = serializers.SerializerMethodField()
    missing = serializers.SerializerMethodField(help_text="What keeps a draft from being finalised")

    class Meta:
        model = EvaluationRun
        fields = [
            "id", "hospital", "indicator_set", "name", "period_start", "period_end", "weighting", "scoring",
            "ahp_matrix", "ahp_cr", "status", "created_by", "created_at", "finalised_by", "finalised_at",
            "csv_sha256", "xlsx_sha256", "pdf_sha256", "weights", "rows", "missing",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.DecimalField(max_digits=8, decimal_places=6)))
    def get_weights(self, run: EvaluationRun) -> dict:
        """Per indicator code, the weight the finalised run gave it (empty for a draft)."""
        return {code: str(weight) for code, weight in run.weights.values_list("indicator__code", "weight")}

    @extend_schema_field(EvaluationRowSerializer(many=True))
    def get_rows(self, run: EvaluationRun) -> list[dict]:
        _, rows = run_matrix(run)
        _, trends = supplier_trends(hospital_id=run.hospital_id, supplier_ids=[r.participant.supplier_id for r in rows],
                                    until=run.period_end)
        return EvaluationRowSerializer([{
            "supplier": row.participant.supplier_id, "supplier_name": row.participant.supplier.name,
            "score": row.participant.score, "rank": row.participant.rank,
            "values": [{
                "indicator": cell.indicator.pk, "code": cell.indicator.code,
                "value": cell.value.value if cell.value else None, "basis": cell.value.basis if cell.value else "",
                "entered_by": cell.value.entered_by_id if cell.value else None,
            } for cell in row.cells],
            "trend": [{"run": point.run.pk, "name": point.run.name, "period_end": point.run.period_end,
                       "score": point.score, "rank": point.rank, "of": point.of}
                      for point in trends.get(row.participant.supplier_id, [])],
        } for row in rows], many=True).data

    @extend_schema_field(EvaluationProblemSerializer(many=True))
    def get_missing(self, run: EvaluationRun) -> list[dict]:
        return [] if run.is_final else [problem.as_dict() for problem in missing_values(run)]


class EvaluationRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Supplier evaluation runs over a period: collect, score, rank, finalise."""

    read_roles = EVALUATION_READERS
    write_roles = EVALUATION_WRITERS
    serializer_class = EvaluationRunSerializer
    filterset_fields = ["status", "indicator_set"]

    def get_queryset(self) -> QuerySet:
        return visible_to(self.request.user, EvaluationRun.objects.select_related("indicator_set")).order_by(
            "-period_end", "-pk")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return EvaluationRunSummarySerializer if self.action == "list" else EvaluationRunSerializer

    def _answer(self, run: EvaluationRun, code: int = status.HTTP_200_OK) -> Response:
        return Response(EvaluationRunSerializer(self.get_queryset().get(pk=run.pk),
                                                context=self.get_serializer_context()).data, status=code)

    @extend_schema(request=EvaluationRunInputSerializer, responses={201: EvaluationRunSerializer})
    def create(self, request: Request) -> Response:
        data = validated(EvaluationRunInputSerializer, request)
        run = create_run(
            actor=Actor(user=request.user), hospital=caller_hospital(request), indicator_set=data["indicator_set"],
            name=data["name"], period_start=data["period_start"], period_end=data["period_end"],
            suppliers=data.get("suppliers"), weighting=data["weighting"], scoring=data["scoring"],
            ahp_matrix=data["ahp_matrix"],
        )
        return self._answer(run, status.HTTP_201_CREATED)

    @extend_schema(request=EvaluationScoresInputSerializer, responses={200: EvaluationRunSerializer})
    @action(detail=True, methods=["post"])
    def scores(self, request: Request, pk: str) -> Response:
        """Enter evaluators' scores: every one in its indicator's range, or none kept."""
        run = self.get_object()
        data = validated(EvaluationScoresInputSerializer, request)
        enter_scores(actor=Actor(user=request.user), run=run, scores=[
            ScoreInput(row["supplier"], row["indicator"], row["value"], row["note"]) for row in data["scores"]])
        return self._answer(run)

    @extend_schema(request=EvaluationMethodInputSerializer, responses={200: EvaluationRunSerializer})
    @action(detail=True, methods=["post"])
    def method(self, request: Request, pk: str) -> Response:
        """Weighting and scoring; an AHP matrix with CR ≥ 0.1 is refused with the CR."""
        run = self.get_object()
        data = validated(EvaluationMethodInputSerializer, request)
        set_method(actor=Actor(user=request.user), run=run, weighting=data["weighting"], scoring=data["scoring"],
                   ahp_matrix=data["ahp_matrix"])
        return self._answer(run)

    @extend_schema(request=None, responses={200: EvaluationRunSerializer})
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: str) -> Response:
        """Collect the computed values again from the records of the period."""
        run = self.get_object()
        refresh_computed(actor=Actor(user=request.user), run=run)
        return self._answer(run)

    @extend_schema(request=None, responses={200: EvaluationRunSerializer})
    @action(detail=True, methods=["post"])
    def finalise(self, request: Request, pk: str) -> Response:
        """Score, rank and store the run for good (refused while a value is missing, each one listed)."""
        run = self.get_object()
        finalise_run(actor=Actor(user=request.user), run=run)
        return self._answer(run)


class EvaluationReportView(APIView):
    """A finalised run's stored report, as stored; X-Content-SHA256 is the hash recorded with it."""

    read_roles = EVALUATION_READERS
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _FirstRenderer

    @extend_schema(responses={
        (200, content_type(report_format)): OpenApiResponse(OpenApiTypes.BINARY, description="CSV, XLSX or PDF")
        for report_format in REPORT_FORMATS
    })
    def get(self, request: Request, pk: int, report_format: str) -> FileResponse:
        run = get_object_or_404(visible_to(request.user, EvaluationRun.objects.all()), pk=pk)
        stored = getattr(run, f"report_{report_format}")
        if not stored:
            raise Refused(Refusal.NOT_FOUND, what=f"{report_format} report of evaluation run {run.pk}")
        response = FileResponse(stored.open("rb"), as_attachment=True, content_type=content_type(report_format),
                                filename=f"evaluation-{run.pk}.{report_format}")
        response["X-Content-SHA256"] = getattr(run, f"{report_format}_sha256")
        return response


# --- the supplier portal -------------------------------------------------------------------------


class PortalEvaluationValueSerializer(serializers.Serializer):
    code = serializers.CharField(source="indicator.code")
    name = serializers.CharField(source="indicator.name")
    first_level = serializers.CharField(source="indicator.parent.name", default="")
    direction = serializers.CharField(source="indicator.direction")
    value = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)


class PortalEvaluationSerializer(serializers.ModelSerializer):
    """The supplier's own place in one finalised run: never another supplier's name or score."""

    hospital = serializers.IntegerField(source="run.hospital_id")
    hospital_name = serializers.CharField(source="run.hospital.name")
    name = serializers.CharField(source="run.name")
    period_start = serializers.DateField(source="run.period_start")
    period_end = serializers.DateField(source="run.period_end")
    scoring = serializers.CharField(source="run.scoring")
    finalised_at = serializers.DateTimeField(source="run.finalised_at")
    of = serializers.IntegerField(help_text="How many suppliers the run ranked")
    values = serializers.SerializerMethodField()

    class Meta:
        model = EvaluatedSupplier
        fields = ["id", "hospital", "hospital_name", "name", "period_start", "period_end", "scoring", "finalised_at",
                  "score", "rank", "of", "values"]
        read_only_fields = fields

    @extend_schema_field(PortalEvaluationValueSerializer(many=True))
    def get_values(self, participant: EvaluatedSupplier) -> list[dict]:
        return PortalEvaluationValueSerializer(own_values(participant), many=True).data


class PortalEvaluationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's supplier's own evaluation results (rank, score, own indicator values)."""

    permission_classes = [SupplierPortalAccess]
    serializer_class = PortalEvaluationSerializer

    def get_queryset(self) -> QuerySet:
        return portal_evaluations(self.request.user).order_by("-run__period_end", "-pk")


router = SimpleRouter()
router.register("evaluation-sets", EvaluationSetViewSet, basename="evaluation-set")
router.register("evaluation-runs", EvaluationRunViewSet, basename="evaluation-run")
router.register("portal/evaluations", PortalEvaluationViewSet, basename="portal-evaluation")

urlpatterns = [
    re_path(r"^evaluation-runs/(?P<pk>\d+)/report\.(?P<report_format>csv|xlsx|pdf)$", EvaluationReportView.as_view(),
            name="evaluation-run-report"),
    path("", include(router.urls)),
]
