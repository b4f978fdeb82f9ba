"""Stocktakes (盘点) over the API: count sessions, counts by scan or quantity, recounts, approval.

URLs, relative to /api/v1/ (`urlpatterns` below):
    stocktakes/                               GET list (?status=, ?kind=); POST start a static count
    stocktakes/<id>/                          GET one session with its lines and consignment findings
    stocktakes/<id>/counts/                   POST a count: {location, udi | unit} or {location, product,
                                              lot, quantity, unit (packaging unit, optional)}
    stocktakes/<id>/lines/<line>/confirm/     POST a daily check's "as expected"
    stocktakes/<id>/lines/<line>/recount/     POST {quantity, unit}: the recount by another person
    stocktakes/<id>/submit/                   POST end the counting (uncounted static lines count 0)
    stocktakes/<id>/approve/                  POST {reasons: [{line, reason}], idempotency_key}: post it
    stocktakes/<id>/cancel/                   POST drop an open session
    stocktakes/<id>/sheet/<location>.pdf      GET the count sheet (blind unless the session is not)
    stocktakes/<id>/report.<csv|xlsx|pdf>     GET the stored variance report; header X-Content-SHA256
    stocktakes/history/?location=<id>         GET accuracy and variance value per approved session
    stocktakes/findings/?supplier=&status=    GET consigned items found missing, for the supplier settlement

Everyone of the hospital reads (auditors too; a nurse the sessions of her departments); those
who handle stock count (a nurse in her departments only); administrators, SPD operators and
warehouse keepers approve — never their own variance above the threshold (409). Another
hospital's session is a 404. Rules: `inventory.services.stocktake`.
"""
from django.db.models import QuerySet
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import include, path, re_path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from inventory.api.fields import IdempotentInputSerializer, ScopedPrimaryKeyRelatedField, caller_hospital, validated
from inventory.api.reconciliation import _FirstRenderer
from inventory.errors import Refusal, Refused
from inventory.models import Location, Product, StocktakeFinding, StocktakeLine, StocktakeSession, Unit
from inventory.selectors.scope import departments_of
from inventory.selectors.stocktake import expected_hidden, sessions_visible_to
from inventory.selectors.units import find_unit_by_udi
from inventory.services import stocktake
from inventory.services.idempotency import run_once
from inventory.services.reports import content_type
from inventory.services.stocktake_reports import count_sheet_pdf

REPORT_FORMATS = ("csv", "xlsx", "pdf")


class LineSerializer(serializers.ModelSerializer):
    location_code = serializers.CharField(source="location.code", read_only=True)
    product_code = serializers.CharField(source="product.internal_code", read_only=True)
    product_name = serializers.CharField(source="product.name", read_only=True)
    serial = serializers.CharField(source="unit.serial", read_only=True, default=None, allow_null=True)
    expected_quantity = serializers.SerializerMethodField(help_text="Null while a blind count is counting")
    expected_at_count = serializers.SerializerMethodField(help_text="Null while a blind count is counting")
    variance = serializers.SerializerMethodField()
    needs_recount = serializers.SerializerMethodField()
    counted_by_username = serializers.CharField(source="counted_by.username", read_only=True, default=None,
                                                allow_null=True)

    class Meta:
        model = StocktakeLine
        fields = [
            "id", "reason", "location", "location_code", "product", "product_code", "product_name", "unit", "serial",
            "lot", "expiry", "owner", "unit_cost", "expected_quantity", "expected_at_count", "counted_quantity",
            "counted_by", "counted_by_username", "counted_at", "found_at", "recount_quantity", "recounted_by",
            "recounted_at", "quality", "note", "variance", "needs_recount", "adjustment_reason", "movement",
        ]
        read_only_fields = fields

    def _hidden(self, line: StocktakeLine) -> bool:
        return expected_hidden(line.session)

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_expected_quantity(self, line: StocktakeLine) -> int | None:
        return None if self._hidden(line) else line.expected_quantity

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_expected_at_count(self, line: StocktakeLine) -> int | None:
        return None if self._hidden(line) else line.expected_at_count

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_variance(self, line: StocktakeLine) -> int | None:
        return None if self._hidden(line) else line.variance

    @extend_schema_field(serializers.BooleanField())
    def get_needs_recount(self, line: StocktakeLine) -> bool:
        return not self._hidden(line) and stocktake.needs_recount(line)


class StocktakeFindingSerializer(serializers.ModelSerializer):
    class Meta:
        model = StocktakeFinding
        fields = ["id", "line", "supplier", "product", "unit", "lot", "quantity", "amount", "status", "created_at"]
        read_only_fields = fields


class StocktakeReportLinkSerializer(serializers.Serializer):
    url = serializers.URLField()
    sha256 = serializers.CharField()


class StocktakeReportsSerializer(serializers.Serializer):
    csv = StocktakeReportLinkSerializer(allow_null=True)
    xlsx = StocktakeReportLinkSerializer(allow_null=True)
    pdf = StocktakeReportLinkSerializer(allow_null=True)


class SessionSerializer(serializers.ModelSerializer):
    locations = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    reports = serializers.SerializerMethodField()

    class Meta:
        model = StocktakeSession
        fields = [
            "id", "kind", "status", "locations", "department", "work_date", "product", "lot", "blind",
            "freeze_outgoing", "note", "snapshot_at", "cabinet_readings", "created_by", "created_at", "submitted_by",
            "submitted_at", "approved_by", "approved_at", "summary", "reports",
        ]
        read_only_fields = fields

    @extend_schema_field(StocktakeReportsSerializer)
    def get_reports(self, session: StocktakeSession) -> dict:
        request = self.context["request"]
        links = {}
        for report_format in REPORT_FORMATS:
            if not getattr(session, f"{report_format}_sha256"):
                links[report_format] = None
                continue
            url = reverse("stocktake-report", kwargs={"pk": session.pk, "report_format": report_format})
            links[report_format] = {"url": request.build_absolute_uri(url),
                                    "sha256": getattr(session, f"{report_format}_sha256")}
        return links


class SessionDetailSerializer(SessionSerializer):
    lines = serializers.SerializerMethodField()
    findings = StocktakeFindingSerializer(many=True, read_only=True)

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "lines", "findings"]
        read_only_fields = fields

    @extend_schema_field(LineSerializer(many=True))
    def get_lines(self, session: StocktakeSession) -> list:
        lines = session.lines.select_related("location", "product", "unit", "counted_by", "session").order_by(
            "location__code", "product__internal_code", "lot", "unit__serial", "pk")
        return LineSerializer(lines, many=True).data


class StartSerializer(serializers.Serializer):
    locations = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all(), many=True, allow_empty=False)
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all(), required=False, allow_null=True)
    lot = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    blind = serializers.BooleanField(default=True)
    freeze_outgoing = serializers.BooleanField(default=False)
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class CountSerializer(serializers.Serializer):
    location = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all())
    udi = serializers.CharField(max_length=300, required=False, help_text="A scanned unit UDI")
    unit = ScopedPrimaryKeyRelatedField(queryset=Unit.objects.all(), required=False)
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all(), required=False)
    lot = serializers.CharField(max_length=64, required=False)
    quantity = serializers.DecimalField(max_digits=12, decimal_places=3, min_value=0, required=False,
                                        help_text="Lot quantity counted, in `packaging_unit`")
    packaging_unit = serializers.CharField(max_length=16, required=False, default="", allow_blank=True,
                                           help_text="A packaging unit of the product (empty: its base unit)")
    quality = serializers.ChoiceField(choices=StocktakeLine.Quality.choices, required=False, default="")
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)

    def validate(self, attrs: dict) -> dict:
        by_unit = "udi" in attrs or "unit" in attrs
        by_lot = "product" in attrs or "lot" in attrs or "quantity" in attrs
        if by_unit == by_lot:
            raise serializers.ValidationError("give a unit (udi or unit) or a lot (product, lot and quantity)")
        if by_lot:
            missing = [name for name in ("product", "lot", "quantity") if name not in attrs]
            if missing:
                raise serializers.ValidationError(dict.fromkeys(missing, "is required for a lot count"))
        return attrs


class ConfirmSerializer(serializers.Serializer):
    quality = serializers.ChoiceField(choices=StocktakeLine.Quality.choices, required=False, default="")
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class RecountSerializer(serializers.Serializer):
    quantity = serializers.DecimalField(max_digits=12, decimal_places=3, min_value=0)
    packaging_unit = serializers.CharField(max_length=16, required=False, default="", allow_blank=True)
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class StocktakeReasonSerializer(serializers.Serializer):
    line = serializers.IntegerField(min_value=1)
    reason = serializers.ChoiceField(choices=StocktakeLine.Adjustment.choices)


class StocktakeApproveSerializer(IdempotentInputSerializer):
    reasons = StocktakeReasonSerializer(many=True, required=False, default=list,
                               help_text="Reason codes per line (default: FOUND for a surplus, LOST for a shortfall)")


class HistoryRowSerializer(serializers.Serializer):
    session = serializers.IntegerField()
    approved_at = serializers.DateTimeField()
    lines = serializers.IntegerField()
    variances = serializers.IntegerField()
    accuracy = serializers.FloatField()
    variance_value = serializers.DecimalField(max_digits=14, decimal_places=2)


def _quantity(value) -> int:
    """A whole number stays an int; the packaging unit conversion decides the rest."""
    return int(value) if value == value.to_integral_value() else value


class StocktakeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Count sessions of the caller's hospital, newest first."""

    write_roles = stocktake.COUNTERS
    filterset_fields = ["status", "kind"]

    def get_queryset(self) -> QuerySet[StocktakeSession]:
        return sessions_visible_to(self.request.user).prefetch_related("locations", "findings")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return SessionSerializer if self.action == "list" else SessionDetailSerializer

    def _answer(self, session: StocktakeSession, code: int = status.HTTP_200_OK) -> Response:
        session = self.get_queryset().get(pk=session.pk)
        return Response(SessionDetailSerializer(session, context=self.get_serializer_context()).data, status=code)

    def _line(self, session: StocktakeSession, line_pk: str) -> StocktakeLine:
        return get_object_or_404(session.lines.select_related("session", "location", "product"), pk=line_pk)

    @extend_schema(request=StartSerializer, responses={201: SessionDetailSerializer})
    def create(self, request: Request) -> Response:
        """Start a static count of locations (and the locations under them); of one product or lot if named."""
        data = validated(StartSerializer, request)
        session = stocktake.start_count(
            user=request.user, hospital=caller_hospital(request), locations=data["locations"],
            product=data.get("product"), lot=data["lot"], blind=data["blind"],
            freeze_outgoing=data["freeze_outgoing"], note=data["note"],
        )
        return self._answer(session, status.HTTP_201_CREATED)

    @extend_schema(request=CountSerializer, responses={200: LineSerializer})
    @action(detail=True, methods=["post"])
    def counts(self, request: Request, pk: str) -> Response:
        """Record a count: a unit by its scanned UDI (or id) seen at a location, or a lot's quantity there."""
        session = self.get_object()
        data = validated(CountSerializer, request)
        if "udi" in data or "unit" in data:
            unit = data.get("unit") or find_unit_by_udi(session.hospital, data["udi"])
            line = stocktake.count_unit(session=session, user=request.user, unit=unit, location=data["location"],
                                        quality=data["quality"], note=data["note"])
        else:
            line = stocktake.count_lot(
                session=session, user=request.user, product=data["product"], lot=data["lot"],
                location=data["location"], quantity=_quantity(data["quantity"]),
                packaging_unit=data["packaging_unit"], quality=data["quality"], note=data["note"],
            )
        return Response(LineSerializer(StocktakeLine.objects.select_related("session").get(pk=line.pk)).data)

    @extend_schema(request=ConfirmSerializer, responses={200: LineSerializer})
    @action(detail=True, methods=["post"], url_path=r"lines/(?P<line>\d+)/confirm")
    def confirm(self, request: Request, pk: str, line: str) -> Response:
        """A daily check's line is as expected."""
        data = validated(ConfirmSerializer, request)
        done = stocktake.confirm_line(line=self._line(self.get_object(), line), user=request.user, **data)
        return Response(LineSerializer(StocktakeLine.objects.select_related("session").get(pk=done.pk)).data)

    @extend_schema(request=RecountSerializer, responses={200: LineSerializer})
    @action(detail=True, methods=["post"], url_path=r"lines/(?P<line>\d+)/recount")
    def recount(self, request: Request, pk: str, line: str) -> Response:
        """The recount of a line, by someone other than its counter."""
        data = validated(RecountSerializer, request)
        done = stocktake.recount_line(line=self._line(self.get_object(), line), user=request.user,
                                      quantity=_quantity(data["quantity"]), packaging_unit=data["packaging_unit"],
                                      note=data["note"])
        return Response(LineSerializer(StocktakeLine.objects.select_related("session").get(pk=done.pk)).data)

    @extend_schema(request=None, responses={200: SessionDetailSerializer})
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str) -> Response:
        """End the counting; the variances are then shown and the session waits for approval."""
        return self._answer(stocktake.submit(session=self.get_object(), user=request.user))

    @extend_schema(request=None, responses={200: SessionDetailSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """Drop an open session; nothing is posted."""
        return self._answer(stocktake.cancel(session=self.get_object(), user=request.user))

    @extend_schema(request=StocktakeApproveSerializer, responses={200: SessionDetailSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """Post the variances (ADJUSTMENT, or TRANSFER for a misplaced unit) once; the same key again
        answers the same session, another approval a 409."""
        session = self.get_object()
        data = validated(StocktakeApproveSerializer, request)
        key = request.headers.get("Idempotency-Key") or data.get("idempotency_key")
        if not key:
            raise Refused(Refusal.IDEMPOTENCY_KEY_MISSING)
        reasons = {row["line"]: row["reason"] for row in data["reasons"]}
        done, _ = run_once(
            hospital=session.hospital, key=key, operation="stocktake:approve",
            payload={"session": session.pk, "reasons": sorted(reasons.items())},
            perform=lambda: stocktake.approve(session=session, user=request.user, reasons=reasons),
        )
        return self._answer(done)

    @extend_schema(
        parameters=[OpenApiParameter("supplier", int), OpenApiParameter("status", str,
                                                                         enum=StocktakeFinding.Status.values)],
        responses={200: StocktakeFindingSerializer(many=True)},
    )
    @action(detail=False, filter_backends=[])
    def findings(self, request: Request) -> Response:
        """Consigned items counts found missing, for the supplier settlement (寄售结算), newest first;
        `?supplier=` and `?status=OPEN|SETTLED` narrow them."""
        findings = StocktakeFinding.objects.filter(session__in=sessions_visible_to(request.user)).order_by("-pk")
        supplier, state = request.query_params.get("supplier", ""), request.query_params.get("status", "")
        if supplier:
            if not supplier.isdigit() or len(supplier) > 18:
                raise Refused(Refusal.INVALID_REQUEST, detail="supplier: a supplier id")
            findings = findings.filter(supplier_id=int(supplier))
        if state:
            if state not in StocktakeFinding.Status.values:
                raise Refused(Refusal.CHOICE_UNKNOWN, field="status", choices=", ".join(StocktakeFinding.Status.values),
                              value=state[:200])
            findings = findings.filter(status=state)
        page = self.paginate_queryset(findings)
        return self.get_paginated_response(StocktakeFindingSerializer(page, many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("location", int, required=True)],
        responses={200: HistoryRowSerializer(many=True)},
    )
    @action(detail=False, pagination_class=None, filter_backends=[])
    def history(self, request: Request) -> Response:
        """A location's approved counts, oldest first: lines, variances, accuracy (%) and variance value."""
        raw = request.query_params.get("location", "")
        if not raw.isdigit() or len(raw) > 18:
            raise Refused(Refusal.INVALID_REQUEST, detail="location: a location id is required")
        locations = Location.objects.filter(hospital_id=request.user.hospital_id)
        mine = departments_of(request.user)
        if mine is not None:
            locations = locations.filter(department__in=mine)
        location = locations.filter(pk=int(raw)).first()
        if location is None:
            raise Refused(Refusal.NOT_FOUND, what="location")
        return Response(HistoryRowSerializer(stocktake.location_history(location=location), many=True).data)


class CountSheetView(APIView):
    """The count sheet PDF of one location of a session (blind unless the session is not)."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = _FirstRenderer

    @extend_schema(responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request: Request, pk: int, location: int) -> HttpResponse:
        session = get_object_or_404(sessions_visible_to(request.user), pk=pk)
        where = get_object_or_404(session.locations.all(), pk=location)
        response = HttpResponse(count_sheet_pdf(session, where), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="stocktake-{session.pk}-{where.code}.pdf"'
        return response


class StocktakeReportView(APIView):
    """A stored variance report, as stored; X-Content-SHA256 is the hash recorded with it."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = _FirstRenderer

    @extend_schema(responses={
        (200, content_type(report_format)): OpenApiResponse(OpenApiTypes.BINARY, description="CSV, XLSX or PDF")
        for report_format in REPORT_FORMATS
    })
    def get(self, request: Request, pk: int, report_format: str) -> FileResponse:
        session = get_object_or_404(sessions_visible_to(request.user), pk=pk)
        stored = getattr(session, f"report_{report_format}")
        if not stored:
            raise Refused(Refusal.NOT_FOUND, what=f"{report_format} report of stocktake {session.pk}")
        response = FileResponse(stored.open("rb"), as_attachment=True, content_type=content_type(report_format),
                                filename=f"stocktake-{session.pk}.{report_format}")
        response["X-Content-SHA256"] = getattr(session, f"{report_format}_sha256")
        return response


router = SimpleRouter()
router.register("stocktakes", StocktakeViewSet, basename="stocktake")

urlpatterns = [
    re_path(r"^stocktakes/(?P<pk>\d+)/report\.(?P<report_format>csv|xlsx|pdf)$", StocktakeReportView.as_view(),
            name="stocktake-report"),
    path("stocktakes/<int:pk>/sheet/<int:location>.pdf", CountSheetView.as_view(), name="stocktake-sheet"),
    path("", include(router.urls)),
]
