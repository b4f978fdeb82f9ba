"""The HIS side of billing: settlement lines the HIS sends us, and our charges' delivery to the HIS.

Imports and manual resends are for administrators and SPD operators; every user of the hospital
(auditors included) reads. All of it is scoped to the caller's hospital. The rules live in
`inventory.services.his`.

URLs, relative to /api/v1/ (`urlpatterns` below):
    his/settlements/                   GET list, POST import (JSON lines or a CSV/XLSX file)
    his/deliveries/                    GET the outbox: each charge's delivery to the HIS
    his/deliveries/<id>/resend/        POST queue a failing delivery again
"""
import django_filters
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.api import filters as api_filters
from inventory.api import sync
from inventory.api.fields import RFC3339DateTimeField, caller_hospital, validated
from inventory.api.permissions import BOOK_READERS
from inventory.date_window import readable
from inventory.models import ChargeDelivery, HisSettlementLine, Role
from inventory.selectors.scope import visible_to
from inventory.selectors.stock import StockScope
from inventory.services import his

HIS_OPERATORS = (Role.ADMIN, Role.SPD_OPERATOR)


class HisSettlementLineSerializer(serializers.ModelSerializer):
    settled_at = RFC3339DateTimeField(
        source="settled_at_readable", read_only=True, allow_null=True,
        help_text="Null on a quarantined line, or when the stored value cannot be shown",
    )

    class Meta:
        model = HisSettlementLine
        fields = [
            "id", "his_line_id", "encounter", "his_charge_code", "nhsa_code", "quantity", "unit_price", "amount",
            "settled_at", "charge", "import_batch", "imported_at", "settled_at_as_sent", "quarantined_at",
        ]


class SettlementImportSerializer(serializers.Serializer):
    batch = serializers.CharField(max_length=64, help_text="A name for this import, e.g. the HIS export's id")
    lines = serializers.ListField(
        child=serializers.DictField(), allow_empty=False,
        help_text="Settlement lines: his_line_id, encounter, his_charge_code, nhsa_code (optional), quantity, "
        "unit_price, amount, settled_at (ISO 8601 with offset, or a date), spd_charge_id (optional)",
    )


class SettlementUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV (UTF-8 or GBK) or XLSX, first row naming the columns")
    batch = serializers.CharField(max_length=64, required=False, help_text="Default: the file's name")


class ImportReportSerializer(serializers.Serializer):
    batch = serializers.CharField()
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Lines already imported with the same content")
    linked = serializers.IntegerField(help_text="New lines linked to one of our charges")
    released = serializers.IntegerField(help_text="Quarantined lines sent again with a good date")


class SettlementLineFilter(api_filters.FilterSet):
    settled_after = django_filters.IsoDateTimeFilter(field_name="settled_at", lookup_expr="gte")
    settled_before = django_filters.IsoDateTimeFilter(field_name="settled_at", lookup_expr="lt")
    batch = django_filters.CharFilter(field_name="import_batch")
    charge = django_filters.NumberFilter(field_name="charge_id")

    class Meta:
        model = HisSettlementLine
        fields = ["encounter", "his_charge_code", "nhsa_code", "his_line_id"]


class SettlementLineView(generics.ListAPIView):
    """The HIS's settlement lines (结算明细) held for reconciliation; POST imports more, all or nothing."""
    read_roles = BOOK_READERS

    serializer_class = HisSettlementLineSerializer
    filterset_class = SettlementLineFilter
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    write_roles = HIS_OPERATORS

    def get_queryset(self) -> QuerySet:
        # A settled_at that cannot be loaded or shown (stored before dates were checked) is listed as
        # null: one bad line must not fail the hospital's whole list.
        return visible_to(self.request.user, HisSettlementLine.objects.all()).defer("settled_at").annotate(
            settled_at_readable=readable("settled_at")
        )

    @extend_schema(
        request={"application/json": SettlementImportSerializer, "multipart/form-data": SettlementUploadSerializer},
        responses={201: ImportReportSerializer, 200: ImportReportSerializer},
    )
    def post(self, request: Request) -> Response:
        """Import settlement lines; any bad row refuses all (400, each row listed); a changed line is 409.

        Lines already held with the same content are skipped, so a file can be imported again: the
        answer is 201 when lines were added, 200 when all were already held.
        """
        hospital = caller_hospital(request)
        if request.content_type.startswith("multipart/form-data"):
            upload = validated(SettlementUploadSerializer, request)
            rows = his.parse_settlement_file(upload["file"], upload["file"].name)
            batch = upload.get("batch") or upload["file"].name[:64]
        else:
            data = validated(SettlementImportSerializer, request)
            rows, batch = data["lines"], data["batch"]
        report = his.import_settlement_lines(hospital=hospital, rows=rows, batch=batch)
        return Response(
            ImportReportSerializer(report.as_dict()).data,
            status=status.HTTP_201_CREATED if report.created or report.released else status.HTTP_200_OK,
        )


class ChargeDeliverySerializer(serializers.ModelSerializer):
    kind = serializers.CharField(source="charge.kind", read_only=True)
    encounter = serializers.CharField(source="charge.encounter", read_only=True)
    his_charge_code = serializers.CharField(source="charge.his_charge_code", read_only=True)
    amount = serializers.DecimalField(source="charge.amount", max_digits=14, decimal_places=2, read_only=True)

    class Meta:
        model = ChargeDelivery
        fields = [
            "id", "charge", "kind", "encounter", "his_charge_code", "amount", "status", "attempts", "next_attempt_at",
            "last_error", "first_failed_at", "his_reference", "delivered_at",
        ]


class DeliveryFilter(api_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=ChargeDelivery.Status.choices)
    failing_since_before = django_filters.IsoDateTimeFilter(field_name="first_failed_at", lookup_expr="lte")
    charge = django_filters.NumberFilter(field_name="charge_id")

    class Meta:
        model = ChargeDelivery
        fields = ["status"]


def _deliveries(request: Request) -> QuerySet:
    return StockScope.of(request.user).charge_deliveries().select_related("charge")


class DeliveryListView(generics.ListAPIView):
    """Our charges' delivery to the HIS (the outbox): status, attempts, last error, HIS reference.

    Integrators keeping a copy: `?cursor=` pages in id order without a count, `?updated_after=` keeps
    the deliveries queued or attempted since (docs/api-sync.md)."""

    serializer_class = ChargeDeliverySerializer
    filterset_class = DeliveryFilter
    pagination_class = sync.SyncPagination
    sync_recorded_field = "charge__created_at"
    sync_changed_after = staticmethod(sync.deliveries_changed_after)

    def get_queryset(self) -> QuerySet:
        return _deliveries(self.request).order_by("-charge__created_at", "-pk")


class DeliveryResendView(APIView):
    """Send a FAILED or GAVE_UP delivery again at the next relay run (attempts are kept)."""

    write_roles = HIS_OPERATORS

    @extend_schema(request=None, responses={200: ChargeDeliverySerializer})
    def post(self, request: Request, pk: int) -> Response:
        delivery = get_object_or_404(_deliveries(request), pk=pk)
        return Response(ChargeDeliverySerializer(his.resend(delivery)).data)


urlpatterns = [
    path("his/settlements/", SettlementLineView.as_view(), name="his-settlements"),
    path("his/deliveries/", DeliveryListView.as_view(), name="his-deliveries"),
    path("his/deliveries/<int:pk>/resend/", DeliveryResendView.as_view(), name="his-delivery-resend"),
]
