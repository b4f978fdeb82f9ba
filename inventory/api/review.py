"""Consumable review (耗材点评): use and cost by a dimension with growth, per-surgery cost by
procedure, 耗占比 per department and month, the revenue import, watched items and the 医保 top N.

Read by the whole hospital's book readers (administrators, warehouse keepers, SPD operators,
auditors); administrators and SPD operators import revenue and keep the watched list. The rules
live in `inventory.selectors.review` and `inventory.services.review` (docs/review.md).

URLs, relative to /api/v1/:
    review/                    GET use and cost by ?dimension= over ?start=&end= (环比, 同比)
    review/surgeries/          GET per-surgery cost by procedure, distribution per doctor, outliers
    review/ratio/              GET 耗占比 per department and month (?first_month=&last_month=)
    review/revenue/            POST import medical revenue (JSON rows or a CSV/XLSX/JSON file)
    review/watched-items/      GET list, POST add a watched product
    review/watched-items/<id>/ DELETE take a product off the list (kept inactive)
    review/red-lines/          GET the 耗占比 red lines, POST set (or remove) a department's
    review/top-settled/        GET top N 医保 codes by settled amount (imported HIS lines)
"""
import datetime
from decimal import Decimal

from django.db.models import QuerySet
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.api.fields import caller_hospital, validated
from inventory.api.permissions import REVIEW_READERS
from inventory.models import Product, RatioRedLine, Role, WatchedItem
from inventory.reports_database import on_reports
from inventory.selectors import review as selectors
from inventory.services import review as services

REVIEW_WRITERS = (Role.ADMIN, Role.SPD_OPERATOR)
EARLIEST, LATEST = datetime.date(2000, 1, 1), datetime.date(2100, 12, 31)


def _in_range(value: datetime.date) -> datetime.date:
    if not EARLIEST <= value <= LATEST:
        raise serializers.ValidationError("Must be between 2000-01-01 and 2100-12-31.")
    return value


class PeriodQuerySerializer(serializers.Serializer):
    start = serializers.DateField(required=False, validators=[_in_range], help_text="Default: first of this month")
    end = serializers.DateField(required=False, validators=[_in_range], help_text="Default: today (inclusive)")
    high_value = serializers.BooleanField(required=False, default=False, help_text="High-value (高值) only")

    def validate(self, data: dict) -> dict:
        today = timezone.localdate()
        data.setdefault("start", today.replace(day=1))
        data.setdefault("end", max(today, data["start"]))
        if data["end"] < data["start"]:
            raise serializers.ValidationError({"end": "Must not be before start."})
        if (data["end"] - data["start"]).days > 366 * 5:
            raise serializers.ValidationError({"end": "The period may not exceed five years."})
        return data


class ReviewQuerySerializer(PeriodQuerySerializer):
    dimension = serializers.ChoiceField(choices=list(selectors.DIMENSIONS), default="department")


class ReviewRowSerializer(serializers.Serializer):
    key = serializers.CharField(allow_null=True, help_text="The id or code of the value (department id, doctor…)")
    label = serializers.CharField()
    quantity = serializers.IntegerField()
    uses = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    previous_amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    year_ago_amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    period_growth = serializers.DecimalField(max_digits=18, decimal_places=1, allow_null=True, help_text="环比 %")
    year_growth = serializers.DecimalField(max_digits=18, decimal_places=1, allow_null=True, help_text="同比 %")


class ReviewSerializer(serializers.Serializer):
    dimension = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    rows = ReviewRowSerializer(many=True)


def _period(data: dict) -> selectors.Period:
    return selectors.Period(data["start"], data["end"])


class ReviewView(APIView):
    """Use and cost by department, doctor, procedure, product, product class or supplier."""
    read_roles = REVIEW_READERS

    @on_reports
    @extend_schema(parameters=[ReviewQuerySerializer], responses={200: ReviewSerializer})
    def get(self, request: Request) -> Response:
        query = ReviewQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        rows = selectors.review(hospital=caller_hospital(request), dimension=data["dimension"], period=_period(data),
                                high_value_only=data["high_value"])
        return Response(ReviewSerializer({"dimension": data["dimension"], "start": data["start"], "end": data["end"],
                                          "rows": rows}).data)


class SurgeryQuerySerializer(PeriodQuerySerializer):
    procedure = serializers.CharField(required=False, default="", max_length=200, allow_blank=True)


class DoctorSerializer(serializers.Serializer):
    doctor = serializers.CharField()
    count = serializers.IntegerField()
    median = serializers.DecimalField(max_digits=18, decimal_places=2)
    p90 = serializers.DecimalField(max_digits=18, decimal_places=2)
    outliers = serializers.IntegerField()


class SurgerySerializer(serializers.Serializer):
    surgery_id = serializers.CharField()
    doctor = serializers.CharField()
    department = serializers.CharField()
    cost = serializers.DecimalField(max_digits=18, decimal_places=2)
    outlier = serializers.BooleanField()


class ProcedureSerializer(serializers.Serializer):
    procedure = serializers.CharField()
    count = serializers.IntegerField()
    median = serializers.DecimalField(max_digits=18, decimal_places=2)
    p90 = serializers.DecimalField(max_digits=18, decimal_places=2)
    fence = serializers.DecimalField(max_digits=18, decimal_places=2, help_text="Above it a surgery is an outlier")
    doctors = DoctorSerializer(many=True)
    surgeries = SurgerySerializer(many=True)


class SurgeryCostView(APIView):
    """Consumable cost per surgery by procedure; the distribution per doctor (count, median, p90)."""
    read_roles = REVIEW_READERS

    @on_reports
    @extend_schema(parameters=[SurgeryQuerySerializer], responses={200: ProcedureSerializer(many=True)})
    def get(self, request: Request) -> Response:
        query = SurgeryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        procedures = selectors.surgery_costs(hospital=caller_hospital(request), period=_period(data),
                                             high_value_only=data["high_value"], procedure=data["procedure"])
        return Response(ProcedureSerializer(procedures, many=True).data)


class RatioQuerySerializer(serializers.Serializer):
    first_month = serializers.DateField(required=False, validators=[_in_range], help_text="Default: 12 months ago")
    last_month = serializers.DateField(required=False, validators=[_in_range], help_text="Default: this month")

    def validate(self, data: dict) -> dict:
        today = timezone.localdate()
        data.setdefault("last_month", today)
        data.setdefault("first_month", data["last_month"].replace(year=data["last_month"].year - 1, day=1))
        if data["last_month"] < data["first_month"]:
            raise serializers.ValidationError({"last_month": "Must not be before first_month."})
        return data


class RatioRowSerializer(serializers.Serializer):
    department = serializers.IntegerField(source="department_id")
    department_name = serializers.CharField(source="department")
    month = serializers.DateField()
    cost = serializers.DecimalField(max_digits=18, decimal_places=2)
    revenue = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    percent = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True,
                                       help_text="耗占比 %, = consumable cost per 100 yuan of medical revenue")
    red_line = serializers.DecimalField(max_digits=8, decimal_places=2, allow_null=True)
    over_red_line = serializers.BooleanField()


class RatioView(APIView):
    """耗占比 per department and month: consumable cost / imported medical revenue, and the red line."""
    read_roles = REVIEW_READERS

    @on_reports
    @extend_schema(parameters=[RatioQuerySerializer], responses={200: RatioRowSerializer(many=True)})
    def get(self, request: Request) -> Response:
        query = RatioQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = selectors.consumable_ratio(hospital=caller_hospital(request), **query.validated_data)
        return Response(RatioRowSerializer(rows, many=True).data)


class RevenueRowSerializer(serializers.Serializer):
    department = serializers.CharField(max_length=32, help_text="Department code (科室编码)")
    month = serializers.CharField(max_length=10, help_text="YYYY-MM")
    revenue = serializers.CharField(max_length=32, help_text="Medical revenue excl. drugs and consumables, yuan")


class RevenueImportSerializer(serializers.Serializer):
    rows = RevenueRowSerializer(many=True, allow_empty=False)


class RevenueUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV (UTF-8 or GBK), XLSX or JSON; columns department, month, revenue")


class RevenueReportSerializer(serializers.Serializer):
    batch = serializers.CharField()
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()


class RevenueImportView(APIView):
    """Import departments' monthly medical revenue from the HIS; any bad row refuses all (400)."""
    read_roles = REVIEW_READERS
    write_roles = REVIEW_WRITERS
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        request={"application/json": RevenueImportSerializer, "multipart/form-data": RevenueUploadSerializer},
        responses={200: RevenueReportSerializer},
    )
    def post(self, request: Request) -> Response:
        hospital = caller_hospital(request)
        if request.content_type.startswith("multipart/form-data"):
            upload = validated(RevenueUploadSerializer, request)
            rows = services.parse_revenue_file(upload["file"], upload["file"].name)
        else:
            rows = [{"_row": n, **row} for n, row in enumerate(validated(RevenueImportSerializer, request)["rows"], 1)]
        report = services.import_revenue(hospital=hospital, rows=rows)
        services.scan_red_lines(hospital=hospital)
        return Response(RevenueReportSerializer(report.as_dict()).data, status=status.HTTP_200_OK)


class WatchedItemSerializer(serializers.ModelSerializer):
    product_name = serializers.CharField(source="product.name", read_only=True)

    class Meta:
        model = WatchedItem
        fields = ["id", "product", "product_name", "reason", "is_active", "created_at"]
        read_only_fields = ["created_at"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and getattr(request.user, "hospital_id", None):
            self.fields["product"].queryset = Product.objects.filter(hospital_id=request.user.hospital_id)

    def validate_product(self, product: Product) -> Product:
        hospital = self.context["request"].user.hospital
        if WatchedItem.objects.filter(hospital=hospital, product=product).exists():
            raise serializers.ValidationError("This product is already watched.")
        return product


class WatchedItemView(generics.ListCreateAPIView):
    """The hospital's watched consumables (重点监控耗材); POST adds one."""
    read_roles = REVIEW_READERS
    write_roles = REVIEW_WRITERS
    serializer_class = WatchedItemSerializer

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return WatchedItem.objects.none()
        return WatchedItem.objects.filter(hospital=caller_hospital(self.request)).select_related("product")

    def perform_create(self, serializer: WatchedItemSerializer) -> None:
        serializer.save(hospital=caller_hospital(self.request))


class WatchedItemRemoveView(APIView):
    """Take a product off the watched list (kept inactive: its alerts still name it)."""
    read_roles = REVIEW_READERS
    write_roles = REVIEW_WRITERS

    @extend_schema(request=None, responses={200: WatchedItemSerializer})
    def delete(self, request: Request, pk: int) -> Response:
        item = services.unwatch_product(hospital=caller_hospital(request), item_id=pk)
        return Response(WatchedItemSerializer(item, context={"request": request}).data)


class ReviewRedLineSerializer(serializers.Serializer):
    department = serializers.IntegerField(source="department_id", min_value=1, max_value=2**31 - 1)
    department_name = serializers.CharField(source="department.name", read_only=True)
    max_percent = serializers.DecimalField(max_digits=6, decimal_places=2, allow_null=True,
                                           min_value=Decimal("0.01"), max_value=Decimal("9999"),
                                           help_text="The highest 耗占比 %; null removes the department's red line")


class ReviewRedLineView(APIView):
    """耗占比 red lines per department; POST sets one (or removes it with max_percent null) and
    scans the last complete month again."""
    read_roles = REVIEW_READERS
    write_roles = REVIEW_WRITERS

    @extend_schema(responses={200: ReviewRedLineSerializer(many=True)})
    def get(self, request: Request) -> Response:
        lines = RatioRedLine.objects.filter(hospital=caller_hospital(request)).select_related("department")
        return Response(ReviewRedLineSerializer(lines.order_by("department__code"), many=True).data)

    @extend_schema(request=ReviewRedLineSerializer, responses={200: ReviewRedLineSerializer(many=True)})
    def post(self, request: Request) -> Response:
        data = validated(ReviewRedLineSerializer, request)
        services.set_red_line(hospital=caller_hospital(request), department_id=data["department_id"],
                              max_percent=data["max_percent"])
        return self.get(request)


class TopQuerySerializer(PeriodQuerySerializer):
    limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=200)


class TopSettledSerializer(serializers.Serializer):
    nhsa_code = serializers.CharField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    quantity = serializers.IntegerField()


class TopSettledView(APIView):
    """Top N 医保耗材编码 by settled amount in the imported HIS settlement lines."""
    read_roles = REVIEW_READERS

    @extend_schema(parameters=[TopQuerySerializer], responses={200: TopSettledSerializer(many=True)})
    def get(self, request: Request) -> Response:
        query = TopQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        rows = selectors.top_settled(hospital=caller_hospital(request), period=_period(data), limit=data["limit"])
        return Response(TopSettledSerializer(rows, many=True).data)


urlpatterns = [
    path("review/", ReviewView.as_view(), name="review"),
    path("review/surgeries/", SurgeryCostView.as_view(), name="review-surgeries"),
    path("review/ratio/", RatioView.as_view(), name="review-ratio"),
    path("review/revenue/", RevenueImportView.as_view(), name="review-revenue"),
    path("review/watched-items/", WatchedItemView.as_view(), name="review-watched-items"),
    path("review/watched-items/<int:pk>/", WatchedItemRemoveView.as_view(), name="review-watched-item"),
    path("review/red-lines/", ReviewRedLineView.as_view(), name="review-red-lines"),
    path("review/top-settled/", TopSettledView.as_view(), name="review-top-settled"),
]
