"""Recalls (召回) and implant records (植入物登记) over the API, relative to /api/v1/:

    recalls/                          GET the hospital's recalls; POST open one (201; it locks at once)
    recalls/<id>/                     GET a recall, its progress and every affected item (a nurse: her departments')
    recalls/<id>/scan/                POST quarantine or return to supplier a scanned unit (or a lot item)
    recalls/<id>/items/<item>/follow-up/   POST mark a used item's patient follow-up (notified / not needed)
    recalls/<id>/close/               POST close (409 RECALL_NOT_CLOSABLE while in-stock items are unhandled)
    recalls/<id>/export.<csv|xlsx|pdf>     GET the regulator's export; X-Content-SHA256, X-CSV-SHA256
    implants/                         GET implant records (uses of unit-tracked high-value products)
    implants/export.<csv|xlsx|pdf>    GET them as a file (?encounter= for one encounter's record page)

Writers: administrators, SPD operators and warehouse keepers; follow-up also nurses (their
departments). Auditors read. The rules: inventory.services.recall.
"""
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, re_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.api.fields import BoundedDateField, caller_hospital, idempotency_key, validated
from inventory.api.reconciliation import _FirstRenderer
from inventory.errors import Refusal, Refused
from inventory.models import Location, Product, Recall, RecallItem, Role
from inventory.selectors.recall import (
    followed_in_members,
    implant_uses_visible_to,
    recall_items_visible_to,
    recalls_visible_to,
)
from inventory.selectors.scope import departments_of
from inventory.services import recall as recalls
from inventory.services.reports import content_type

RECALL_WRITERS = (Role.ADMIN, Role.SPD_OPERATOR, Role.WAREHOUSE)
FOLLOW_UP_WRITERS = (Role.ADMIN, Role.SPD_OPERATOR, Role.NURSE)


class RecallItemSerializer(serializers.ModelSerializer):
    serial = serializers.CharField(source="unit.serial", allow_null=True, default=None)
    udi = serializers.CharField(source="unit.udi", allow_null=True, default=None)
    location_name = serializers.CharField(source="location.name", allow_null=True, default=None)
    encounter = serializers.CharField(source="consumption.encounter", allow_null=True, default=None)
    surgery_id = serializers.CharField(source="consumption.surgery_id", allow_null=True, default=None)
    surgery_name = serializers.CharField(source="consumption.surgery_name", allow_null=True, default=None)
    doctor = serializers.CharField(source="consumption.doctor", allow_null=True, default=None)
    department = serializers.CharField(source="consumption.department.name", allow_null=True, default=None)
    used_at = serializers.DateTimeField(source="consumption.occurred_at", allow_null=True, default=None)

    class Meta:
        model = RecallItem
        fields = ["id", "kind", "unit", "serial", "udi", "lot", "quantity", "location", "location_name", "handling",
                  "follow_up", "note", "handled_at", "encounter", "surgery_id", "surgery_name", "doctor",
                  "department", "used_at"]


class RecallProgressSerializer(serializers.Serializer):
    in_stock = serializers.IntegerField()
    located = serializers.IntegerField()
    returned = serializers.IntegerField()
    used = serializers.IntegerField()
    notified = serializers.IntegerField()
    closable = serializers.BooleanField()


class RecallOpenerSerializer(serializers.Serializer):
    name = serializers.CharField()
    hospital = serializers.CharField(help_text="The opener's hospital: another member's for a followed recall")


class RecallSerializer(serializers.ModelSerializer):
    product_name = serializers.CharField(source="product.name")
    udi_di = serializers.CharField(source="product.udi_di")
    opened_by = serializers.SerializerMethodField()
    opened_for_alliance = serializers.CharField(
        read_only=True, help_text="The alliance on whose behalf another member's staff opened this recall here "
                                  "(a followed recall); empty for the hospital's own")

    class Meta:
        model = Recall
        fields = ["id", "scope", "product", "product_name", "udi_di", "lot", "serials", "reason", "source",
                  "notice_reference", "notice_date", "status", "opened_at", "opened_by", "opened_for_alliance",
                  "closed_at", "closing_note"]

    @extend_schema_field(RecallOpenerSerializer)
    def get_opened_by(self, recall: Recall) -> dict:
        user = recall.opened_by
        return {"name": user.get_full_name() or user.username, "hospital": user.hospital.name if user.hospital else ""}


class RecallMemberPlaceSerializer(serializers.Serializer):
    location = serializers.CharField()
    quantity = serializers.IntegerField()


class RecallFollowedInSerializer(serializers.Serializer):
    """A member's part of a recall (stock transferred there): counts and places, no patient identity."""

    recall = serializers.IntegerField()
    hospital = serializers.CharField()
    status = serializers.CharField()
    stock_items = serializers.IntegerField()
    stock_quantity = serializers.IntegerField()
    handled = serializers.IntegerField()
    uses = serializers.IntegerField()
    followed_up = serializers.IntegerField()
    locations = RecallMemberPlaceSerializer(many=True)


class RecallFollowedFromSerializer(serializers.Serializer):
    recall = serializers.IntegerField()
    hospital = serializers.CharField()


class RecallDetailSerializer(RecallSerializer):
    progress = serializers.SerializerMethodField()
    items = serializers.SerializerMethodField()
    followed_in = serializers.SerializerMethodField(
        help_text="The recall's parts in other alliance members that received the item by transfer: counts only")
    followed_from = serializers.SerializerMethodField(
        help_text="The recall of another alliance member this one follows (the item was transferred from there)")

    class Meta(RecallSerializer.Meta):
        fields = [*RecallSerializer.Meta.fields, "progress", "items", "followed_in", "followed_from"]

    @extend_schema_field(RecallFollowedInSerializer(many=True))
    def get_followed_in(self, recall: Recall) -> list:
        return RecallFollowedInSerializer(followed_in_members(recall), many=True).data

    @extend_schema_field(RecallFollowedFromSerializer(allow_null=True))
    def get_followed_from(self, recall: Recall) -> dict | None:
        if recall.origin_id is None:
            return None
        return {"recall": recall.origin_id, "hospital": recall.origin.hospital.name}

    @extend_schema_field(RecallProgressSerializer)
    def get_progress(self, recall: Recall) -> dict:
        p = recalls.progress(recall)
        return {"in_stock": p.in_stock, "located": p.located, "returned": p.returned, "used": p.used,
                "notified": p.notified, "closable": p.closable}

    @extend_schema_field(RecallItemSerializer(many=True))
    def get_items(self, recall: Recall) -> list:
        return RecallItemSerializer(recall_items_visible_to(self.context["request"].user, recall), many=True).data


class OpenRecallSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=Recall.Scope.choices)
    product = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    udi_di = serializers.CharField(required=False, default="", allow_blank=True, max_length=64)
    lot = serializers.CharField(required=False, default="", allow_blank=True, max_length=64)
    serials = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list,
                                    max_length=1000)
    reason = serializers.CharField(max_length=2000)
    source = serializers.ChoiceField(choices=Recall.Source.choices)
    notice_reference = serializers.CharField(required=False, default="", allow_blank=True, max_length=100)
    notice_date = BoundedDateField()


class RecallScanSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["quarantine", "return"])
    code = serializers.CharField(required=False, default="", allow_blank=True, max_length=300)
    item = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    to_location = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)
    idempotency_key = serializers.CharField(required=False, max_length=128)

    def validate(self, data: dict) -> dict:
        if not data.get("code") and not data.get("item"):
            raise serializers.ValidationError({"code": "a scanned code or an item is required"})
        if data["action"] == "quarantine" and not data.get("to_location"):
            raise serializers.ValidationError({"to_location": "required to quarantine"})
        return data


class RecallFollowUpSerializer(serializers.Serializer):
    follow_up = serializers.ChoiceField(choices=[RecallItem.FollowUp.NOTIFIED, RecallItem.FollowUp.NOT_NEEDED])
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)


class RecallCloseSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)


def _recall(request: Request, pk: int) -> Recall:
    return get_object_or_404(recalls_visible_to(request.user), pk=pk)


def _detail(request: Request, recall: Recall, code: int = status.HTTP_200_OK) -> Response:
    recall.refresh_from_db()
    return Response(RecallDetailSerializer(recall, context={"request": request}).data, status=code)


class RecallListView(ListAPIView):
    """The hospital's recalls, newest first; POST opens one."""

    write_roles = RECALL_WRITERS
    serializer_class = RecallSerializer

    def get_queryset(self):
        return recalls_visible_to(self.request.user)

    @extend_schema(request=OpenRecallSerializer, responses={201: RecallDetailSerializer})
    def post(self, request: Request) -> Response:
        data = validated(OpenRecallSerializer, request)
        hospital = caller_hospital(request)
        product = None
        if data.get("product"):
            product = Product.objects.filter(hospital=hospital, pk=data["product"]).first()
            if product is None:
                raise Refused(Refusal.INVALID_REQUEST, detail="product: not in this hospital's catalog", field="product")
        recall = recalls.open_recall(
            hospital=hospital, user=request.user, scope=data["scope"], product=product, udi_di=data["udi_di"],
            lot=data["lot"], serials=data["serials"], reason=data["reason"], source=data["source"],
            notice_reference=data["notice_reference"], notice_date=data["notice_date"],
        )
        return _detail(request, recall, status.HTTP_201_CREATED)


class RecallDetailView(APIView):
    """A recall with its progress and every affected item the caller may see."""

    @extend_schema(responses={200: RecallDetailSerializer})
    def get(self, request: Request, pk: int) -> Response:
        recall = _recall(request, pk)
        recalls.refresh(recall)
        return _detail(request, recall)


class RecallScanView(APIView):
    """Quarantine or return to the supplier one affected stock item (a scanned unit, or a lot item)."""

    write_roles = RECALL_WRITERS

    @extend_schema(request=RecallScanSerializer, responses={200: RecallItemSerializer})
    def post(self, request: Request, pk: int) -> Response:
        recall = _recall(request, pk)
        data = validated(RecallScanSerializer, request)
        item = None
        if data.get("item"):
            item = recall.items.filter(pk=data["item"]).first()
            if item is None:
                raise Refused(Refusal.RECALL_SCAN_NOT_AFFECTED, item=data["item"], recall=recall.label, field="item")
        to_location = None
        if data.get("to_location"):
            to_location = Location.objects.filter(hospital=recall.hospital, pk=data["to_location"]).first()
            if to_location is None:
                raise Refused(Refusal.INVALID_REQUEST, detail="to_location: not a location of this hospital",
                              field="to_location")
        handled = recalls.handle_scan(
            recall=recall, user=request.user, action=data["action"], code=data["code"], item=item,
            to_location=to_location, note=data["note"], idempotency_key=idempotency_key(request, data),
        )
        return Response(RecallItemSerializer(handled).data)


class RecallFollowUpView(APIView):
    """Mark a used item's patient follow-up (a nurse: uses of her departments)."""

    write_roles = FOLLOW_UP_WRITERS

    @extend_schema(request=RecallFollowUpSerializer, responses={200: RecallItemSerializer})
    def post(self, request: Request, pk: int, item_pk: int) -> Response:
        recall = _recall(request, pk)
        item = get_object_or_404(recall_items_visible_to(request.user, recall), pk=item_pk)
        data = validated(RecallFollowUpSerializer, request)
        done = recalls.record_follow_up(recall=recall, item=item, user=request.user, follow_up=data["follow_up"],
                                        note=data["note"])
        return Response(RecallItemSerializer(done).data)


class RecallCloseView(APIView):
    """Close the recall: refused (409 RECALL_NOT_CLOSABLE) while an in-stock item is unhandled."""

    write_roles = RECALL_WRITERS

    @extend_schema(request=RecallCloseSerializer, responses={200: RecallDetailSerializer})
    def post(self, request: Request, pk: int) -> Response:
        recall = _recall(request, pk)
        data = validated(RecallCloseSerializer, request)
        closed = recalls.close_recall(recall=recall, user=request.user, note=data["note"])
        return _detail(request, closed)


FILE_RESPONSES = {(200, content_type(fmt)): OpenApiResponse(OpenApiTypes.BINARY, description="CSV, XLSX or PDF")
                  for fmt in ("csv", "xlsx", "pdf")}


def file_response(data: bytes, fmt: str, filename: str, csv_sha256: str) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type(fmt))
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-SHA256"] = recalls.sha256(data)
    response["X-CSV-SHA256"] = csv_sha256
    return response


class RecallExportView(APIView):
    """The regulator's export of a recall (hospital-wide roles only); the PDF and XLSX carry the CSV's SHA-256."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = _FirstRenderer

    @extend_schema(responses=FILE_RESPONSES)
    def get(self, request: Request, pk: int, fmt: str) -> HttpResponse:
        recall = _recall(request, pk)
        if departments_of(request.user) is not None:
            raise Refused(Refusal.NOT_ALLOWED, action="export a recall")
        csv_data = recalls.export_csv(recall)
        data = {"csv": lambda: csv_data, "xlsx": lambda: recalls.export_xlsx(recall),
                "pdf": lambda: recalls.export_pdf(recall)}[fmt]()
        return file_response(data, fmt, f"recall-{recall.pk}.{fmt}", recalls.sha256(csv_data))


class ImplantSerializer(serializers.Serializer):
    consumption = serializers.IntegerField(source="pk")
    encounter = serializers.CharField()
    used_at = serializers.DateTimeField(source="occurred_at")
    product = serializers.CharField(source="product.name")
    specification = serializers.CharField(source="product.specification")
    udi = serializers.CharField(source="unit.udi")
    udi_di = serializers.CharField(source="product.udi_di")
    lot = serializers.CharField(source="unit.lot")
    serial = serializers.CharField(source="unit.serial")
    manufacturer = serializers.CharField(source="product.manufacturer.name")
    registration_certificate = serializers.CharField(source="product.registration_certificate.number",
                                                     allow_null=True, default=None)
    surgeon = serializers.CharField(source="doctor")
    surgery_id = serializers.CharField()
    surgery_name = serializers.CharField()
    department = serializers.CharField(source="department.name")


ENCOUNTER = OpenApiParameter("encounter", str, description="One HIS encounter's implants")


class ImplantListView(ListAPIView):
    """Implant records (植入物登记): every use of a unit-tracked high-value product, by encounter."""

    serializer_class = ImplantSerializer

    @extend_schema(parameters=[ENCOUNTER])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return implant_uses_visible_to(self.request.user, self.request.query_params.get("encounter", "")[:64])


class ImplantExportView(APIView):
    """Implant records as CSV/XLSX, or (with ?encounter=) the printable record page for the medical record (PDF)."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = _FirstRenderer

    @extend_schema(parameters=[ENCOUNTER], responses=FILE_RESPONSES)
    def get(self, request: Request, fmt: str) -> HttpResponse:
        encounter = request.query_params.get("encounter", "")[:64]
        uses = implant_uses_visible_to(request.user, encounter)
        return implant_file(request.user, uses, fmt, encounter)


def implant_file(user, uses, fmt: str, encounter: str) -> HttpResponse:
    import csv
    import io

    from inventory.spreadsheets import workbook

    rows = recalls.implant_rows(uses)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(recalls.IMPLANT_HEADER)
    writer.writerows(rows)
    csv_data = buffer.getvalue().encode("utf-8")
    if fmt == "csv":
        data = csv_data
    elif fmt == "xlsx":
        out = io.BytesIO()
        workbook(recalls.IMPLANT_HEADER, rows, "implants").save(out)
        data = out.getvalue()
    else:
        if not encounter:
            raise Refused(Refusal.INVALID_REQUEST, detail="encounter: required for the record page", field="encounter")
        data = recalls.implant_pdf(user.hospital, encounter, uses)
    name = f"implants-{encounter}" if encounter else "implants"
    return file_response(data, fmt, f"{name}.{fmt}", recalls.sha256(csv_data))


urlpatterns = [
    path("recalls/", RecallListView.as_view(), name="recall-list"),
    path("recalls/<int:pk>/", RecallDetailView.as_view(), name="recall-detail"),
    path("recalls/<int:pk>/scan/", RecallScanView.as_view(), name="recall-scan"),
    path("recalls/<int:pk>/items/<int:item_pk>/follow-up/", RecallFollowUpView.as_view(), name="recall-follow-up"),
    path("recalls/<int:pk>/close/", RecallCloseView.as_view(), name="recall-close"),
    re_path(r"^recalls/(?P<pk>\d+)/export\.(?P<fmt>csv|xlsx|pdf)$", RecallExportView.as_view(), name="recall-export"),
    path("implants/", ImplantListView.as_view(), name="implant-list"),
    re_path(r"^implants/export\.(?P<fmt>csv|xlsx|pdf)$", ImplantExportView.as_view(), name="implant-export"),
]
