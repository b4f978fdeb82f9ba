"""The monthly close (月结) over the API, relative to /api/v1/:

    periods/                     GET the caller's hospital's last 12 months: state, blockers, close
    periods/close/               POST close a month (SPD operator, administrator): 201, or 409
                                 PERIOD_NOT_CLOSABLE listing every blocker
    periods/<id>/report.csv      GET the 月报 of a closed month; header X-Content-SHA256

Readers: the hospital's book readers (auditors included). The rules: inventory.services.period_close.
"""
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.api.fields import BoundedDateField, caller_hospital, validated
from inventory.api.permissions import BOOK_READERS, MASTER_DATA_EDITORS
from inventory.api.reconciliation import _FirstRenderer
from inventory.errors import Refusal, Refused
from inventory.models import ClosedPeriod
from inventory.selectors.scope import visible_to
from inventory.services.period_close import close_month, month_states


class BlockerSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    count = serializers.IntegerField()
    acknowledgeable = serializers.BooleanField(help_text="The operator may close anyway by acknowledging it")


class ClosedPeriodSerializer(serializers.ModelSerializer):
    closed_by = serializers.CharField(source="closed_by.username")
    report = serializers.SerializerMethodField()

    class Meta:
        model = ClosedPeriod
        fields = ["id", "month", "starts_at", "ends_at", "closed_at", "closed_by", "note", "acknowledged_his_backlog",
                  "summary", "csv_sha256", "report"]

    def get_report(self, period: ClosedPeriod) -> str | None:
        request = self.context.get("request")
        url = reverse("period-report", kwargs={"pk": period.pk})
        return request.build_absolute_uri(url) if request else url


class MonthSerializer(serializers.Serializer):
    month = serializers.DateField(help_text="The month's first day")
    state = serializers.ChoiceField(choices=["open", "closed"])
    blockers = BlockerSerializer(many=True)
    closed = ClosedPeriodSerializer(allow_null=True)


class CloseRequestSerializer(serializers.Serializer):
    month = BoundedDateField(help_text="Any day of the month to close")
    acknowledge_his_backlog = serializers.BooleanField(required=False, default=False)
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class MonthListView(APIView):
    """The caller's hospital's last 12 months, the current one first."""

    read_roles = BOOK_READERS

    @extend_schema(responses={200: MonthSerializer(many=True)})
    def get(self, request: Request) -> Response:
        states = month_states(caller_hospital(request))
        return Response(MonthSerializer(
            [{"month": s.month, "state": s.state, "blockers": [b.as_dict() for b in s.blockers], "closed": s.closed}
             for s in states], many=True, context={"request": request}).data)


class CloseMonthView(APIView):
    """Close a month: snapshot, 月报 and lock (refused with its blockers while any stands)."""

    write_roles = MASTER_DATA_EDITORS

    @extend_schema(request=CloseRequestSerializer, responses={201: ClosedPeriodSerializer})
    def post(self, request: Request) -> Response:
        data = validated(CloseRequestSerializer, request)
        period = close_month(hospital=caller_hospital(request), month=data["month"], user=request.user,
                             acknowledge_his_backlog=data["acknowledge_his_backlog"], note=data["note"])
        return Response(ClosedPeriodSerializer(period, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class MonthlyReportView(APIView):
    """The 月报 (CSV) of a closed month, as stored; X-Content-SHA256 is the hash recorded at close."""

    read_roles = BOOK_READERS
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _FirstRenderer

    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="CSV")})
    def get(self, request: Request, pk: int) -> FileResponse:
        period = get_object_or_404(visible_to(request.user, ClosedPeriod.objects.all()), pk=pk)
        try:
            handle = period.report_csv.open("rb")
        except (FileNotFoundError, ValueError):
            raise Refused(Refusal.NOT_FOUND, what=f"monthly report of {period.month:%Y-%m}") from None
        response = FileResponse(handle, as_attachment=True, content_type="text/csv",
                                filename=f"monthly-report-{period.hospital_id}-{period.month:%Y-%m}.csv")
        response["X-Content-SHA256"] = period.csv_sha256
        return response


urlpatterns = [
    path("periods/", MonthListView.as_view(), name="period-list"),
    path("periods/close/", CloseMonthView.as_view(), name="period-close"),
    path("periods/<int:pk>/report.csv", MonthlyReportView.as_view(), name="period-report"),
]
