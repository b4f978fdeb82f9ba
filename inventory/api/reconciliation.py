"""Reconciliation runs (进销存对账) and their reports, for auditors, over the API.

URLs, relative to /api/v1/ (`urlpatterns` below):
    reconciliation/runs/                          GET list; POST run a period
    reconciliation/runs/<id>/                     GET one run: summary, reports (links + SHA-256), findings
    reconciliation/runs/<id>/findings/            GET its findings, paginated; ?kind=… (repeatable),
                                                  ?sort=amount (largest first), ?open=true|false
    reconciliation/runs/<id>/inventory/           GET its 进销存 table, paginated
    reconciliation/runs/<id>/report.<csv|xlsx|pdf>  GET a stored report; header X-Content-SHA256
    reconciliation/findings/<id>/dispositions/    GET a finding's dispositions, first first (the last is
                                                  current); POST {outcome, note} records a new one

The list filters on period_start and period_end (exact, __gte, __lte), status and is_current.
Every user of the hospital reads, auditors included (they can read everything and change
nothing); administrators and SPD operators POST. A POST {period_start, period_end, rerun} runs
the reconciliation synchronously — a day takes moments; the nightly runs go through the Celery
worker — and answers the period's current run: 201 when this request made it, 200 when it
already existed (POST again with rerun=true to replace it; the earlier run is kept). Everything
is scoped to the caller's hospital: another hospital's run is a 404.

A finding's disposition (confirmed / explained / corrected / false alarm, with a note) is the one
thing auditors write; SPD operators and administrators may too. Dispositions are append-only: a new
one supersedes the current one, and the history is kept (inventory.services.findings).
"""
from django.db.models import QuerySet
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import include, path, re_path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from inventory.api import filters as api_filters
from inventory.api.fields import BoundedDateField, caller_hospital, validated
from inventory.api.permissions import BOOK_READERS, MASTER_DATA_EDITORS
from inventory.errors import Refusal, Refused
from inventory.models import Finding, FindingDisposition, ReconciliationRun, Role
from inventory.selectors.flow_table import LEGACY_KEY, flow_table
from inventory.selectors.reconciliation import runs_visible_to
from inventory.services.findings import history, record_disposition, with_current_disposition
from inventory.services.reconciliation import run_reconciliation
from inventory.services.reports import content_type

REPORT_FORMATS = ("csv", "xlsx", "pdf")


class FindingSerializer(serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    product_code = serializers.CharField(source="product.internal_code", read_only=True, default="")
    product_name = serializers.CharField(source="product.name", read_only=True, default="")
    serial = serializers.CharField(source="unit.serial", read_only=True, default="")
    location_name = serializers.CharField(source="location.name", read_only=True, default="")
    disposition = serializers.CharField(
        source="current_outcome", read_only=True, default=None, allow_null=True,
        help_text="The current disposition's outcome; null while the finding is open",
    )
    disposition_note = serializers.CharField(source="current_note", read_only=True, default=None, allow_null=True)

    class Meta:
        model = Finding
        fields = [
            "id", "kind", "kind_label", "product", "product_code", "product_name", "unit", "serial", "lot", "location",
            "location_name", "encounter", "his_charge_code", "expected", "actual", "amount", "message", "evidence",
            "disposition", "disposition_note",
        ]
        read_only_fields = fields


class ReportLinkSerializer(serializers.Serializer):
    url = serializers.URLField()
    sha256 = serializers.CharField()


class ReportsSerializer(serializers.Serializer):
    csv = ReportLinkSerializer(allow_null=True)
    xlsx = ReportLinkSerializer(allow_null=True)
    pdf = ReportLinkSerializer(allow_null=True)


class RunSerializer(serializers.ModelSerializer):
    hospital_code = serializers.CharField(source="hospital.code", read_only=True)
    superseded_by = serializers.SerializerMethodField()
    summary = serializers.SerializerMethodField(help_text="Totals and findings by type (the table: /inventory/)")
    reports = serializers.SerializerMethodField()
    reports_ready = serializers.BooleanField(
        source="has_reports", read_only=True,
        help_text="The three reports are stored. A DONE run gets them from a task of their own, shortly after.",
    )

    class Meta:
        model = ReconciliationRun
        fields = [
            "id", "hospital", "hospital_code", "period_start", "period_end", "status", "is_current", "supersedes",
            "superseded_by", "started_at", "finished_at", "requested_by", "error", "summary", "reports_ready",
            "reports",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_superseded_by(self, run: ReconciliationRun) -> int | None:
        later = getattr(run, "superseded_by", None)
        return later.pk if later else None

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_summary(self, run: ReconciliationRun) -> dict:
        return {key: value for key, value in run.summary.items() if key != LEGACY_KEY}

    @extend_schema_field(ReportsSerializer)
    def get_reports(self, run: ReconciliationRun) -> dict:
        request = self.context["request"]
        links = {}
        for report_format in REPORT_FORMATS:
            if not getattr(run, f"report_{report_format}"):
                links[report_format] = None
                continue
            url = reverse("reconciliation-run-report", kwargs={"pk": run.pk, "report_format": report_format})
            links[report_format] = {
                "url": request.build_absolute_uri(url), "sha256": getattr(run, f"{report_format}_sha256"),
            }
        return links


class RunDetailSerializer(RunSerializer):
    findings = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "findings"]
        read_only_fields = fields

    @extend_schema_field(FindingSerializer(many=True))
    def get_findings(self, run: ReconciliationRun) -> list:
        return FindingSerializer(_findings(run), many=True).data


class RunRequestSerializer(serializers.Serializer):
    period_start = BoundedDateField()
    period_end = BoundedDateField(required=False, help_text="Last day, included (default: period_start)")
    rerun = serializers.BooleanField(
        default=False, help_text="Replace the period's current run with a new one; the earlier run is kept"
    )

    def validate(self, attrs: dict) -> dict:
        attrs.setdefault("period_end", attrs["period_start"])
        if attrs["period_end"] < attrs["period_start"]:
            raise serializers.ValidationError({"period_end": "the period ends before it starts"})
        return attrs


class InventoryRowSerializer(serializers.Serializer):
    location_id = serializers.IntegerField()
    location_code = serializers.CharField()
    location_name = serializers.CharField()
    product_id = serializers.IntegerField()
    product_code = serializers.CharField()
    product_name = serializers.CharField()
    opening = serializers.IntegerField()
    received = serializers.IntegerField()
    transferred_in = serializers.IntegerField()
    transferred_out = serializers.IntegerField()
    consumed = serializers.IntegerField()
    refunded = serializers.IntegerField()
    returned = serializers.IntegerField()
    scrapped = serializers.IntegerField()
    adjusted = serializers.IntegerField()
    other = serializers.IntegerField()
    expensed = serializers.IntegerField(
        default=0, help_text="Expensed to the department (科室领用即消耗); 0 in runs made before the column existed"
    )
    processed = serializers.IntegerField(
        default=0, help_text="Net of processing (加工: into and out of packs); 0 in runs made before the column existed"
    )
    closing = serializers.IntegerField()


def _findings(run: ReconciliationRun) -> QuerySet[Finding]:
    return with_current_disposition(run.findings.select_related("product", "unit", "location").order_by("pk"))


class DispositionSerializer(serializers.ModelSerializer):
    outcome_label = serializers.CharField(source="get_outcome_display", read_only=True)
    recorded_by_username = serializers.CharField(source="recorded_by.username", read_only=True)
    superseded_by = serializers.SerializerMethodField()

    class Meta:
        model = FindingDisposition
        fields = ["id", "finding", "outcome", "outcome_label", "note", "recorded_by", "recorded_by_username",
                  "recorded_at", "supersedes", "superseded_by"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.INT)
    def get_superseded_by(self, disposition: FindingDisposition) -> int | None:
        later = getattr(disposition, "superseded_by", None)
        return later.pk if later else None


class DispositionRequestSerializer(serializers.Serializer):
    outcome = serializers.CharField(help_text="CONFIRMED, EXPLAINED, CORRECTED or FALSE_ALARM")
    note = serializers.CharField(allow_blank=True, max_length=2000, help_text="Why (required, not blank)")


class FindingDispositionsView(APIView):
    """A finding's dispositions (its history, first first) and recording a new one."""

    write_roles = (Role.AUDITOR, Role.SPD_OPERATOR, Role.ADMIN)

    def _finding(self, request: Request, pk: int) -> Finding:
        return get_object_or_404(
            Finding.objects.filter(run__in=runs_visible_to(request.user)).select_related("run"), pk=pk,
        )

    @extend_schema(responses={200: DispositionSerializer(many=True)})
    def get(self, request: Request, pk: int) -> Response:
        rows = history(self._finding(request, pk)).select_related("superseded_by")
        return Response(DispositionSerializer(rows, many=True).data)

    @extend_schema(request=DispositionRequestSerializer, responses={201: DispositionSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Record what the finding turned out to be; it supersedes the current disposition (kept)."""
        data = validated(DispositionRequestSerializer, request)
        disposition = record_disposition(
            finding=self._finding(request, pk), outcome=data["outcome"], note=data["note"], recorded_by=request.user,
        )
        return Response(DispositionSerializer(disposition).data, status=status.HTTP_201_CREATED)


class RunFilter(api_filters.FilterSet):
    class Meta:
        model = ReconciliationRun
        fields = {
            "period_start": ["exact", "gte", "lte"], "period_end": ["exact", "gte", "lte"], "status": ["exact"],
            "is_current": ["exact"],
        }


class ReconciliationRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """进销存 reconciliation runs of the caller's hospital, newest period first."""
    read_roles = BOOK_READERS

    filterset_class = RunFilter
    write_roles = MASTER_DATA_EDITORS

    def get_queryset(self) -> QuerySet[ReconciliationRun]:
        return runs_visible_to(self.request.user).select_related("superseded_by")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return RunSerializer if self.action == "list" else RunDetailSerializer

    @extend_schema(request=RunRequestSerializer, responses={200: RunDetailSerializer, 201: RunDetailSerializer})
    def create(self, request: Request) -> Response:
        """Reconcile a period now (synchronously) and answer its current run."""
        data = validated(RunRequestSerializer, request)
        hospital = caller_hospital(request)
        before = ReconciliationRun.objects.filter(
            hospital=hospital, period_start=data["period_start"], period_end=data["period_end"], is_current=True
        ).values_list("pk", flat=True).first()
        run = run_reconciliation(
            hospital=hospital, period_start=data["period_start"], period_end=data["period_end"],
            requested_by=request.user, rerun=data["rerun"],
        )
        run = self.get_queryset().get(pk=run.pk)
        code = status.HTTP_200_OK if run.pk == before else status.HTTP_201_CREATED
        return Response(RunDetailSerializer(run, context=self.get_serializer_context()).data, status=code)

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, many=True, enum=Finding.Kind.values),
            OpenApiParameter("sort", str, enum=["amount"], description="largest amount first"),
            OpenApiParameter("open", bool, description="only open findings (true) or disposed of (false)"),
        ],
        responses={200: FindingSerializer(many=True)},
    )
    @action(detail=True)
    def findings(self, request: Request, pk: str) -> Response:
        """The run's findings, in report order or largest amount first (`?sort=amount`); `?kind=`
        keeps those types only, `?open=` the open (no disposition yet) or disposed of ones."""
        kinds = request.query_params.getlist("kind")
        if unknown := sorted(set(kinds) - set(Finding.Kind.values)):
            raise Refused(
                Refusal.CHOICE_UNKNOWN, field="kind", choices=", ".join(Finding.Kind.values), value=", ".join(unknown)[:200]
            )
        sort, still_open = request.query_params.get("sort", ""), request.query_params.get("open", "")
        if sort not in ("", "amount"):
            raise Refused(Refusal.CHOICE_UNKNOWN, field="sort", choices="amount", value=sort[:200])
        if still_open not in ("", "true", "false"):
            raise Refused(Refusal.CHOICE_UNKNOWN, field="open", choices="true, false", value=still_open[:200])
        findings = _findings(self.get_object())
        if kinds:
            findings = findings.filter(kind__in=kinds)
        if still_open:
            findings = findings.filter(current_outcome__isnull=still_open == "true")
        if sort:
            findings = findings.order_by("-amount", "pk")
        page = self.paginate_queryset(findings)
        return self.get_paginated_response(FindingSerializer(page, many=True).data)

    @extend_schema(responses={200: InventoryRowSerializer(many=True)})
    @action(detail=True)
    def inventory(self, request: Request, pk: str) -> Response:
        """The run's 进销存 table: opening + in − out = closing, per location and product."""
        page = self.paginate_queryset(flow_table(self.get_object()))
        return self.get_paginated_response(InventoryRowSerializer(page, many=True).data)


class _FirstRenderer(BaseContentNegotiation):
    """A download answers its file whatever the Accept header says; errors are JSON."""

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type

    def select_parser(self, request: Request, parsers: list):
        return parsers[0] if parsers else None


REPORT_MEDIA_TYPES = [content_type(report_format) for report_format in ("csv", "xlsx", "pdf")]


class ReconciliationReportView(APIView):
    """One stored report of a run, as stored; X-Content-SHA256 is the hash recorded with it."""
    read_roles = BOOK_READERS

    renderer_classes = [JSONRenderer]
    content_negotiation_class = _FirstRenderer

    @extend_schema(responses={
        (200, media_type): OpenApiResponse(OpenApiTypes.BINARY, description="CSV, XLSX or PDF")
        for media_type in REPORT_MEDIA_TYPES
    })
    def get(self, request: Request, pk: int, report_format: str) -> FileResponse:
        run = get_object_or_404(runs_visible_to(request.user), pk=pk)
        stored = getattr(run, f"report_{report_format}")
        if not stored and run.status == ReconciliationRun.Status.DONE:
            raise Refused(Refusal.REPORTS_PENDING, run=run.pk)
        if not stored:
            raise Refused(Refusal.NOT_FOUND, what=f"{report_format} report of run {run.pk}")
        response = FileResponse(
            stored.open("rb"), as_attachment=True, content_type=content_type(report_format),
            filename=f"reconciliation-{run.pk}-{run.period_start:%Y%m%d}-{run.period_end:%Y%m%d}.{report_format}",
        )
        response["X-Content-SHA256"] = getattr(run, f"{report_format}_sha256")
        return response


router = SimpleRouter()
router.register("reconciliation/runs", ReconciliationRunViewSet, basename="reconciliation-run")

urlpatterns = [
    re_path(
        r"^reconciliation/runs/(?P<pk>\d+)/report\.(?P<report_format>csv|xlsx|pdf)$",
        ReconciliationReportView.as_view(), name="reconciliation-run-report",
    ),
    path("reconciliation/findings/<int:pk>/dispositions/", FindingDispositionsView.as_view(),
         name="reconciliation-finding-dispositions"),
    path("", include(router.urls)),
]
