"""Consignment settlement (寄售结算, 先消耗、后结算) over the API.

- `GET settlements/?supplier=&period=YYYY-MM` (or `period_start` & `period_end`): the live
  statement — consignment units and lot quantities used in the period and not yet settled, with
  prices and totals — and the statements already stored for that supplier and period.
- `GET settlements/export/?…&format=csv|xlsx`: the same as a file.
- `settlements/statements/`: stored statements. POST drafts (or refreshes) one, `{id}/confirm/`
  confirms it once and locks its lines (and so issues it to the supplier, who confirms or disputes
  it in the portal), `{id}/export/?format=csv|xlsx` downloads it. `{id}/settle/` settles a statement
  the supplier confirmed; `{id}/reopen/` (a reason) takes a disputed one back as a draft. `stage` and
  `events` show where the exchange with the supplier is, who did each step, when and why.

Any user of the hospital reads (auditors too); administrators and SPD operators draft and confirm.
Files: CSV in UTF-8 with a byte-order mark (so Excel opens it as UTF-8), XLSX with numbers stored
as numbers; both are a header row, one row per line, and a totals row.
"""
import csv
import datetime
import io
from decimal import Decimal

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import include, path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from openpyxl import Workbook
from openpyxl.styles import Font
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from inventory.actors import Actor
from inventory.api.fields import (
    EARLIEST_DATE,
    LATEST_DATE,
    BoundedDateField,
    RFC3339DateTimeField,
    caller_hospital,
    refused_input,
    validated,
    within_calendar_message,
)
from inventory.api.permissions import BOOK_READERS, MASTER_DATA_EDITORS
from inventory.errors import Refusal, Refused
from inventory.models import Supplier, SupplierSettlement
from inventory.selectors.portal_statements import person, statement_events
from inventory.selectors.scope import visible_to
from inventory.selectors.settlements import (
    SettlementSummary,
    month_period,
    settlement_summary,
    statement_summary,
    statements_overlapping,
    statements_with_totals,
)
from inventory.services.settlement_workflow import reopen_statement, settle_statement
from inventory.services.settlements import confirm_settlement, draft_settlement

# --- input ---------------------------------------------------------------------------------------


class SettlementPeriodSerializer(serializers.Serializer):
    """One supplier and one period: a calendar month, or first and last day (both included)."""

    supplier = serializers.PrimaryKeyRelatedField(queryset=Supplier.objects.all())
    period = serializers.RegexField(
        r"^\d{4}-(0[1-9]|1[0-2])$", required=False, help_text="A calendar month, YYYY-MM"
    )
    period_start = BoundedDateField(required=False, help_text="First day (instead of period)")
    period_end = BoundedDateField(required=False, help_text="Last day, included (instead of period)")

    def validate(self, attrs: dict) -> dict:
        month = attrs.pop("period", None)
        dates = [name for name in ("period_start", "period_end") if name in attrs]
        if month and dates:
            raise refused_input(Refusal.PERIOD_GIVEN_TWICE)
        if month:
            year, number = (int(part) for part in month.split("-"))
            if not EARLIEST_DATE.year <= year <= LATEST_DATE.year:
                raise serializers.ValidationError({"period": within_calendar_message(month)})
            attrs["period_start"], attrs["period_end"] = month_period(year, number)
        elif len(dates) != 2:
            raise refused_input(Refusal.PERIOD_MISSING)
        if attrs["period_end"] < attrs["period_start"]:
            raise serializers.ValidationError({"period_end": refused_input(
                Refusal.PERIOD_INVALID, start=attrs["period_start"], end=attrs["period_end"]).detail})
        return attrs


def validated_query(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    """Query parameters checked by a serializer; invalid ones become a 400 with every problem."""
    serializer = serializer_class(data=request.query_params, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class SettlementReopenSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, help_text="The hospital's answer to the supplier's dispute")


# --- output --------------------------------------------------------------------------------------


class SettlementLineSerializer(serializers.Serializer):
    consumption = serializers.IntegerField(source="consumption_id")
    product = serializers.IntegerField(source="product_id")
    product_code = serializers.CharField()
    product_name = serializers.CharField()
    specification = serializers.CharField()
    unit = serializers.IntegerField(source="unit_id", allow_null=True)
    serial = serializers.CharField()
    lot = serializers.CharField()
    encounter = serializers.CharField()
    department = serializers.CharField()
    occurred_at = RFC3339DateTimeField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    statement = serializers.IntegerField(
        source="statement_id", allow_null=True, help_text="The statement (a draft, in the live view) holding it"
    )


class SettlementProductTotalSerializer(serializers.Serializer):
    product = serializers.IntegerField(source="product_id")
    product_code = serializers.CharField()
    product_name = serializers.CharField()
    specification = serializers.CharField()
    quantity = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)


class SettlementEventSerializer(serializers.Serializer):
    kind = serializers.CharField()
    at = RFC3339DateTimeField()
    by = serializers.IntegerField(source="by_id")
    by_name = serializers.SerializerMethodField()
    reason = serializers.CharField()

    def get_by_name(self, event) -> str:
        return person(event.by)


class SettlementStatementSerializer(serializers.ModelSerializer):
    supplier_name = serializers.CharField(source="supplier.name", read_only=True)
    line_count = serializers.IntegerField(read_only=True)
    total_quantity = serializers.IntegerField(read_only=True)
    total_amount = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)

    class Meta:
        model = SupplierSettlement
        fields = [
            "id", "hospital", "supplier", "supplier_name", "period_start", "period_end", "status", "stage", "created_at",
            "created_by", "confirmed_at", "confirmed_by", "line_count", "total_quantity", "total_amount",
        ]
        read_only_fields = fields


class SettlementStatementDetailSerializer(SettlementStatementSerializer):
    lines = SettlementLineSerializer(source="summary.lines", many=True, read_only=True)
    products = SettlementProductTotalSerializer(source="summary.products", many=True, read_only=True)
    events = SettlementEventSerializer(source="event_list", many=True, read_only=True,
                                       help_text="Every step with the supplier: who, when, why (oldest first)")

    class Meta(SettlementStatementSerializer.Meta):
        fields = [*SettlementStatementSerializer.Meta.fields, "lines", "products", "events"]
        read_only_fields = fields


class SettlementSummarySerializer(serializers.Serializer):
    supplier = serializers.IntegerField()
    supplier_name = serializers.CharField()
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    lines = SettlementLineSerializer(many=True)
    products = SettlementProductTotalSerializer(many=True)
    total_quantity = serializers.IntegerField()
    total_amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    statements = SettlementStatementSerializer(
        many=True, help_text="Statements of this supplier already stored for a period sharing days with this one"
    )


# --- files ---------------------------------------------------------------------------------------

EXPORT_HEADER = (
    "使用记录", "院内码", "产品名称", "规格型号", "序列号", "批号", "就诊号", "科室", "使用时间", "数量", "单价", "金额",
)
TOTALS_LABEL = "合计"


def export_rows(summary: SettlementSummary) -> list[list]:
    """Header, one row per line (local time, numbers as Decimal/int), and a totals row."""
    rows: list[list] = [list(EXPORT_HEADER)]
    for line in summary.lines:
        rows.append([
            line.consumption_id, line.product_code, line.product_name, line.specification, line.serial, line.lot,
            line.encounter, line.department, timezone.localtime(line.occurred_at).replace(tzinfo=None),
            line.quantity, line.unit_price, line.amount,
        ])
    rows.append([TOTALS_LABEL, *[""] * 8, summary.quantity, "", summary.amount])
    return rows


# Text starting like a formula is prefixed with an apostrophe in CSV, so a crafted product name or
# serial cannot run as a formula when the file is opened in a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: object) -> object:
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class SettlementCSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: SettlementSummary, accepted_media_type: str | None = None, renderer_context=None) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in export_rows(data):
            writer.writerow([_csv_cell(value) for value in row])
        return buffer.getvalue().encode("utf-8-sig")


class SettlementXLSXRenderer(BaseRenderer):
    media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    format = "xlsx"
    charset = None
    render_style = "binary"

    def render(self, data: SettlementSummary, accepted_media_type: str | None = None, renderer_context=None) -> bytes:
        workbook = Workbook()
        sheet = workbook.active
        sheet.title = "寄售结算"
        rows = export_rows(data)
        for row_number, row in enumerate(rows, start=1):
            for column, value in enumerate(row, start=1):
                cell = sheet.cell(row=row_number, column=column, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # never a formula, whatever the text starts with
                elif isinstance(value, Decimal):
                    cell.number_format = "#,##0.00"
                elif isinstance(value, datetime.datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"
        for cell in (*sheet[1], *sheet[len(rows)]):
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        for letter, width in zip("ABCDEFGHIJKL", (10, 12, 30, 20, 18, 14, 16, 16, 20, 8, 12, 14), strict=True):
            sheet.column_dimensions[letter].width = width
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue()


FILE_RESPONSE = OpenApiResponse(OpenApiTypes.BINARY, description="A CSV (UTF-8 with BOM) or XLSX file")


class FileExportView(APIView):
    """Answers a file in the format asked with `?format=csv|xlsx`; errors stay JSON."""
    read_roles = BOOK_READERS

    renderer_classes = [SettlementCSVRenderer, SettlementXLSXRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False):
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:  # what DRF says for an unknown ?format=
            raise Refused(
                Refusal.CHOICE_UNKNOWN, field="format", choices="csv, xlsx", value=request.query_params.get("format", "")[:40]
            ) from None

    def finalize_response(self, request: Request, response: Response, *args, **kwargs) -> Response:
        if getattr(response, "exception", False) or request.method == "OPTIONS":  # not a statement: JSON
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    def file(self, request: Request, summary: SettlementSummary, name: str) -> Response:
        filename = f"{name}.{request.accepted_renderer.format}"
        return Response(summary, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# --- views ---------------------------------------------------------------------------------------


class SettlementSummaryView(APIView):
    """What the hospital owes a supplier for a period: consignment use not yet settled, with totals."""
    read_roles = BOOK_READERS

    @extend_schema(parameters=[SettlementPeriodSerializer], responses={200: SettlementSummarySerializer})
    def get(self, request: Request) -> Response:
        query = validated_query(SettlementPeriodSerializer, request)
        hospital, supplier = caller_hospital(request), query["supplier"]
        start, end = query["period_start"], query["period_end"]
        summary = settlement_summary(hospital, supplier, start, end)
        statements = statements_with_totals(statements_overlapping(hospital, supplier, start, end))
        data = {
            "supplier": supplier.pk, "supplier_name": supplier.name, "period_start": start, "period_end": end,
            "lines": summary.lines, "products": summary.products, "total_quantity": summary.quantity,
            "total_amount": summary.amount, "statements": statements,
        }
        return Response(SettlementSummarySerializer(data).data)


class SettlementExportView(FileExportView):
    """The live statement of a supplier and period as a CSV or XLSX file."""

    @extend_schema(parameters=[SettlementPeriodSerializer], responses={200: FILE_RESPONSE})
    def get(self, request: Request) -> Response:
        query = validated_query(SettlementPeriodSerializer, request)
        supplier, start, end = query["supplier"], query["period_start"], query["period_end"]
        summary = settlement_summary(caller_hospital(request), supplier, start, end)
        return self.file(request, summary, f"consignment-{supplier.pk}-{start:%Y%m%d}-{end:%Y%m%d}")


class SettlementStatementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Stored consignment settlement statements (寄售结算单): drafted, then confirmed once and locked."""
    read_roles = BOOK_READERS

    serializer_class = SettlementStatementSerializer
    filterset_fields = ["supplier", "status"]
    write_roles = MASTER_DATA_EDITORS

    def get_queryset(self) -> QuerySet:
        return statements_with_totals(visible_to(self.request.user, SupplierSettlement.objects.all()))

    def get_serializer_class(self) -> type[serializers.Serializer]:
        if self.action == "list":
            return SettlementStatementSerializer
        return SettlementStatementDetailSerializer

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self._detail(self.get_object().pk))

    @extend_schema(request=SettlementPeriodSerializer, responses={201: SettlementStatementDetailSerializer})
    def create(self, request: Request) -> Response:
        """Draft the supplier's statement for a period, or refresh the draft with what is unsettled now."""
        data = validated(SettlementPeriodSerializer, request)
        statement = draft_settlement(
            hospital=caller_hospital(request), supplier=data["supplier"], period_start=data["period_start"],
            period_end=data["period_end"], actor=Actor(user=request.user),
        )
        return Response(self._detail(statement.pk), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: SettlementStatementDetailSerializer})
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str) -> Response:
        """Confirm the statement, once: its lines are locked from then on."""
        confirm_settlement(settlement=self.get_object(), actor=Actor(user=request.user))
        return Response(self._detail(pk))

    @extend_schema(request=None, responses={200: SettlementStatementDetailSerializer})
    @action(detail=True, methods=["post"])
    def settle(self, request: Request, pk: str) -> Response:
        """Settle (pay) a statement the supplier confirmed."""
        settle_statement(settlement=self.get_object(), actor=Actor(user=request.user))
        return Response(self._detail(pk))

    @extend_schema(request=SettlementReopenSerializer, responses={200: SettlementStatementDetailSerializer})
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk: str) -> Response:
        """Take a statement the supplier disputed back as a draft, with the hospital's answer."""
        data = validated(SettlementReopenSerializer, request)
        reopen_statement(settlement=self.get_object(), actor=Actor(user=request.user), reason=data["reason"])
        return Response(self._detail(pk))

    def _detail(self, pk: int | str) -> dict:
        statement = self.get_queryset().get(pk=pk)
        statement.summary = statement_summary(statement)
        statement.event_list = list(statement_events(statement))
        return SettlementStatementDetailSerializer(statement).data


class SettlementStatementExportView(FileExportView):
    """A stored statement as a CSV or XLSX file."""

    @extend_schema(responses={200: FILE_RESPONSE})
    def get(self, request: Request, pk: int) -> Response:
        statement = get_object_or_404(visible_to(request.user, SupplierSettlement.objects.all()), pk=pk)
        return self.file(request, statement_summary(statement), f"settlement-{statement.pk}")


router = SimpleRouter()
router.register("settlements/statements", SettlementStatementViewSet, basename="settlement-statement")

urlpatterns = [
    path("settlements/", SettlementSummaryView.as_view(), name="settlement-summary"),
    path("settlements/export/", SettlementExportView.as_view(), name="settlement-export"),
    path(
        "settlements/statements/<int:pk>/export/", SettlementStatementExportView.as_view(),
        name="settlement-statement-export",
    ),
    path("", include(router.urls)),
]
