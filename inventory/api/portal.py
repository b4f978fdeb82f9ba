"""The supplier portal over the API (`/api/v1/portal/…`), for a supplier's own users only.

- `portal/purchase-orders/`: the orders addressed to the caller's supplier, across hospitals.
- `portal/certificates/`: the supplier's certificates; POST (multipart) uploads one with its scan
  (PDF, PNG or JPEG, at most SPD_CERTIFICATE_MAX_BYTES), shown to the hospitals.
- `portal/settlement-statements/`: the consignment settlement statements the hospitals issued to the
  caller's supplier (lines without any encounter or department); `{id}/confirm/` agrees with one,
  `{id}/dispute/` (a reason) sends it back to the hospital, `{id}/export/?format=csv|xlsx|pdf`
  downloads it. Wrong stage: 409 SETTLEMENT_STAGE.
- `portal/shipping-notices/`: advance shipping notices (ASN, 电子送货单). POST one against an order
  with its lines (a unit's full `udi`, or `product` + `lot` + `expiry` + `quantity`): the lines that
  can be delivered are kept on a DRAFT, the others come back in `refused_lines` with their reasons.
  `{id}/lines/` adds lines the same way, `{id}/lines/{line_no}/` (DELETE) removes one,
  `{id}/submit/` turns the draft into the hospital's delivery note awaiting acceptance.

Another supplier's order or notice answers 404; hospital users (and alliance administrators) are
not portal users (403), and portal users reach nothing of a hospital's own endpoints (403 there).
"""
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from django.urls import include, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from inventory.actors import Actor
from inventory.api.fields import BoundedDateField, validated
from inventory.errors import Refusal, Refused
from inventory.models import (
    AdvanceShippingNotice,
    AsnLine,
    Certificate,
    Product,
    PurchaseOrder,
    PurchaseOrderLine,
    Role,
    SupplierSettlement,
)
from inventory.selectors.portal_statements import person, portal_statements, statement_events, statement_lines
from inventory.services.portal import (
    AsnLineInput,
    RefusedLine,
    add_asn_lines,
    create_asn,
    portal_certificates,
    portal_notices,
    portal_orders,
    remove_asn_line,
    submit_asn,
    upload_certificate,
)
from inventory.services.settlement_workflow import dispute_statement, supplier_confirm_statement
from inventory.services.statement_files import FORMATS, statement_file


class SupplierPortalAccess(BasePermission):
    """Signed-in users of a supplier holding the supplier role; nobody else."""

    message = "The supplier portal is for a supplier's own users."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(
            user and user.is_authenticated and user.supplier_id is not None and not user.is_superuser
            and user.groups.filter(name=Role.SUPPLIER.value).exists()
        )


# --- input ---------------------------------------------------------------------------------------


class _OwnOrderField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self) -> QuerySet:
        return portal_orders(self.context["request"].user)


class _OrderedProductField(serializers.PrimaryKeyRelatedField):
    """A product on one of the caller's supplier's orders (no other product id means anything here)."""

    def get_queryset(self) -> QuerySet:
        user = self.context["request"].user
        return Product.objects.filter(order_lines__order__in=portal_orders(user)).distinct()


class AsnLineInputSerializer(serializers.Serializer):
    udi = serializers.CharField(required=False, allow_blank=False, max_length=300, trim_whitespace=False,
                                help_text="A unit's full UDI as printed on its label")
    product = _OrderedProductField(required=False, queryset=Product.objects.none())
    lot = serializers.CharField(required=False, default="", allow_blank=True, max_length=64)
    expiry = BoundedDateField(required=False, allow_null=True, default=None)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000, default=1)

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("udi")) == bool(attrs.get("product")):
            raise serializers.ValidationError("give either udi (one unit) or product with lot, expiry and quantity")
        return attrs


class AsnInputSerializer(serializers.Serializer):
    purchase_order = _OwnOrderField(queryset=PurchaseOrder.objects.none())
    number = serializers.CharField(max_length=64, help_text="The delivery note number (送货单号)")
    lines = AsnLineInputSerializer(many=True, allow_empty=False, max_length=2000)


class AsnLinesInputSerializer(serializers.Serializer):
    lines = AsnLineInputSerializer(many=True, allow_empty=False, max_length=2000)


def _line_inputs(lines: list[dict]) -> list[AsnLineInput]:
    return [
        AsnLineInput(udi=line.get("udi", ""), product=line.get("product"), lot=line["lot"], expiry=line["expiry"],
                     quantity=line["quantity"])
        for line in lines
    ]


# --- output --------------------------------------------------------------------------------------


class PortalOrderLineSerializer(serializers.ModelSerializer):
    product_code = serializers.CharField(source="product.internal_code")
    product_name = serializers.CharField(source="product.name")
    specification = serializers.CharField(source="product.specification")
    udi_di = serializers.CharField(source="product.udi_di")
    outstanding = serializers.IntegerField()

    class Meta:
        model = PurchaseOrderLine
        fields = [
            "line_no", "product", "product_code", "product_name", "specification", "udi_di", "quantity", "unit_price",
            "platform_reference", "delivered_quantity", "outstanding",
        ]
        read_only_fields = fields


class PortalOrderSerializer(serializers.ModelSerializer):
    hospital_name = serializers.CharField(source="hospital.name")
    lines = PortalOrderLineSerializer(many=True)

    class Meta:
        model = PurchaseOrder
        fields = ["id", "hospital", "hospital_name", "number", "status", "ordered_at", "promised_date", "lines"]
        read_only_fields = fields


class AsnLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = AsnLine
        fields = ["line_no", "raw_udi", "product", "lot", "serial", "expiry", "quantity"]
        read_only_fields = fields


class ProblemSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    reason = serializers.CharField(required=False)


class RefusedLineSerializer(serializers.Serializer):
    position = serializers.IntegerField(help_text="The line's place in the lines sent (1-based)")
    udi = serializers.CharField()
    problems = ProblemSerializer(many=True)


class AsnSerializer(serializers.ModelSerializer):
    lines = AsnLineSerializer(many=True, read_only=True)
    refused_lines = serializers.SerializerMethodField(help_text="Lines of this request not kept, with reasons")

    class Meta:
        model = AdvanceShippingNotice
        fields = [
            "id", "hospital", "purchase_order", "number", "status", "created_at", "submitted_at", "delivery_note",
            "lines", "refused_lines",
        ]
        read_only_fields = fields

    @extend_schema(responses=RefusedLineSerializer(many=True))
    def get_refused_lines(self, asn: AdvanceShippingNotice) -> list[dict]:
        refused: list[RefusedLine] = self.context.get("refused", [])
        return [line.as_dict() for line in refused]


# --- views ---------------------------------------------------------------------------------------


class PortalOrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The purchase orders addressed to the caller's supplier, across the hospitals it serves."""

    permission_classes = [SupplierPortalAccess]
    serializer_class = PortalOrderSerializer
    filterset_fields = ["status", "hospital"]

    def get_queryset(self) -> QuerySet:
        lines = PurchaseOrderLine.objects.select_related("product").order_by("line_no")
        return portal_orders(self.request.user).select_related("hospital").prefetch_related(Prefetch("lines", lines))


class PortalNoticeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Advance shipping notices (电子送货单) of the caller's supplier."""

    permission_classes = [SupplierPortalAccess]
    serializer_class = AsnSerializer
    filterset_fields = ["status", "purchase_order"]

    def get_queryset(self) -> QuerySet:
        return portal_notices(self.request.user).prefetch_related(
            Prefetch("lines", AsnLine.objects.order_by("line_no"))
        )

    def _answer(self, pk: int, refused: list[RefusedLine], code: int = status.HTTP_200_OK) -> Response:
        asn = self.get_queryset().get(pk=pk)
        return Response(AsnSerializer(asn, context={"refused": refused}).data, status=code)

    @extend_schema(request=AsnInputSerializer, responses={201: AsnSerializer})
    def create(self, request: Request) -> Response:
        data = validated(AsnInputSerializer, request)
        asn, refused = create_asn(
            actor=Actor(user=request.user), order=data["purchase_order"], number=data["number"],
            lines=_line_inputs(data["lines"]),
        )
        return self._answer(asn.pk, refused, status.HTTP_201_CREATED)

    @extend_schema(request=AsnLinesInputSerializer, responses={200: AsnSerializer})
    @action(detail=True, methods=["post"], url_path="lines")
    def add_lines(self, request: Request, pk: str) -> Response:
        """Add lines to the draft: the good ones are kept, the others come back with their reasons."""
        asn = self.get_object()
        data = validated(AsnLinesInputSerializer, request)
        asn, refused = add_asn_lines(actor=Actor(user=request.user), asn=asn, lines=_line_inputs(data["lines"]))
        return self._answer(asn.pk, refused)

    @extend_schema(request=None, responses={200: AsnSerializer})
    @action(detail=True, methods=["delete"], url_path=r"lines/(?P<line_no>\d{1,9})")
    def remove_line(self, request: Request, pk: str, line_no: str) -> Response:
        asn = self.get_object()
        remove_asn_line(actor=Actor(user=request.user), asn=asn, line_no=int(line_no))
        return self._answer(asn.pk, [])

    @extend_schema(request=None, responses={200: AsnSerializer})
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str) -> Response:
        """Submit: the notice becomes the hospital's delivery note, awaiting acceptance."""
        asn = self.get_object()
        submit_asn(actor=Actor(user=request.user), asn=asn)
        return self._answer(asn.pk, [])


class CertificateUploadSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Certificate.Kind.choices)
    number = serializers.CharField(max_length=100)
    valid_from = BoundedDateField()
    valid_to = BoundedDateField()
    file = serializers.FileField(help_text="The scan: PDF, PNG or JPEG")


class PortalCertificateSerializer(serializers.ModelSerializer):
    file = serializers.FileField(read_only=True, allow_null=True)

    class Meta:
        model = Certificate
        fields = ["id", "kind", "number", "valid_from", "valid_to", "file", "uploaded_by"]
        read_only_fields = fields


class PortalCertificateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's supplier's certificates (资质证照); upload one with its scan."""

    permission_classes = [SupplierPortalAccess]
    serializer_class = PortalCertificateSerializer
    parser_classes = [MultiPartParser]

    def get_queryset(self) -> QuerySet:
        return portal_certificates(self.request.user).order_by("valid_to", "pk")

    @extend_schema(request={"multipart/form-data": CertificateUploadSerializer}, responses={201: PortalCertificateSerializer})
    def create(self, request: Request) -> Response:
        data = validated(CertificateUploadSerializer, request)
        certificate = upload_certificate(
            actor=Actor(user=request.user), kind=data["kind"], number=data["number"], valid_from=data["valid_from"],
            valid_to=data["valid_to"], file=data["file"],
        )
        return Response(self.get_serializer(certificate).data, status=status.HTTP_201_CREATED)


# --- consignment settlement statements ------------------------------------------------------------


class PortalStatementLineSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    product = serializers.IntegerField(source="product_id")
    product_code = serializers.CharField()
    product_name = serializers.CharField()
    specification = serializers.CharField()
    udi = serializers.CharField()
    serial = serializers.CharField()
    lot = serializers.CharField()
    used_on = serializers.DateField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)


class PortalStatementEventSerializer(serializers.Serializer):
    kind = serializers.CharField()
    at = serializers.DateTimeField()
    by = serializers.SerializerMethodField()
    reason = serializers.CharField()

    def get_by(self, event) -> str:
        return person(event.by)


class PortalStatementSerializer(serializers.ModelSerializer):
    hospital_name = serializers.CharField(source="hospital.name")
    line_count = serializers.IntegerField()
    total_quantity = serializers.IntegerField()
    total_amount = serializers.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        model = SupplierSettlement
        fields = ["id", "hospital", "hospital_name", "period_start", "period_end", "stage", "line_count",
                  "total_quantity", "total_amount"]
        read_only_fields = fields


class PortalStatementDetailSerializer(PortalStatementSerializer):
    lines = serializers.SerializerMethodField()
    events = serializers.SerializerMethodField(help_text="Every step: issued, confirmed, disputed, reopened, settled")

    class Meta(PortalStatementSerializer.Meta):
        fields = [*PortalStatementSerializer.Meta.fields, "lines", "events"]
        read_only_fields = fields

    @extend_schema(responses=PortalStatementLineSerializer(many=True))
    def get_lines(self, statement: SupplierSettlement) -> list[dict]:
        return PortalStatementLineSerializer(statement_lines(statement), many=True).data

    @extend_schema(responses=PortalStatementEventSerializer(many=True))
    def get_events(self, statement: SupplierSettlement) -> list[dict]:
        return PortalStatementEventSerializer(statement_events(statement), many=True).data


class PortalDisputeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, help_text="What the supplier disagrees with")


class PortalStatementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Consignment settlement statements (寄售结算单) the hospitals issued to the caller's supplier."""

    permission_classes = [SupplierPortalAccess]
    filterset_fields = ["stage", "hospital"]

    def get_queryset(self) -> QuerySet:
        return portal_statements(self.request.user)

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return PortalStatementSerializer if self.action == "list" else PortalStatementDetailSerializer

    def _answer(self, pk: int) -> Response:
        return Response(PortalStatementDetailSerializer(self.get_queryset().get(pk=pk)).data)

    @extend_schema(request=None, responses={200: PortalStatementDetailSerializer})
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str) -> Response:
        """Agree with the statement: the hospital may then settle it."""
        statement = self.get_object()
        supplier_confirm_statement(settlement=statement, actor=Actor(user=request.user))
        return self._answer(statement.pk)

    @extend_schema(request=PortalDisputeSerializer, responses={200: PortalStatementDetailSerializer})
    @action(detail=True, methods=["post"])
    def dispute(self, request: Request, pk: str) -> Response:
        """Dispute the statement with a reason: it goes back to the hospital."""
        statement = self.get_object()
        data = validated(PortalDisputeSerializer, request)
        dispute_statement(settlement=statement, actor=Actor(user=request.user), reason=data["reason"])
        return self._answer(statement.pk)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=list(FORMATS), description="csv (default), xlsx or pdf")],
        responses={200: OpenApiResponse(OpenApiTypes.BINARY, description="The statement as CSV, XLSX or PDF")},
    )
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str) -> HttpResponse:
        """Download the statement: CSV (UTF-8 with BOM), XLSX or PDF."""
        statement = self.get_object()
        file_format = request.query_params.get("format", "csv")
        if file_format not in FORMATS:
            raise Refused(Refusal.CHOICE_UNKNOWN, field="format", choices=", ".join(FORMATS), value=file_format[:40])
        file = statement_file(statement, file_format)
        response = HttpResponse(file.content, content_type=file.content_type)
        response["Content-Disposition"] = f'attachment; filename="{file.filename}"'
        return response

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # `?format=` names the file to download here, not a DRF renderer: answer JSON for everything else.
        if self.action == "export":
            renderer = self.renderer_classes[0]()
            return renderer, renderer.media_type
        return super().perform_content_negotiation(request, force)


router = SimpleRouter()
router.register("portal/purchase-orders", PortalOrderViewSet, basename="portal-order")
router.register("portal/shipping-notices", PortalNoticeViewSet, basename="portal-notice")
router.register("portal/certificates", PortalCertificateViewSet, basename="portal-certificate")
router.register("portal/settlement-statements", PortalStatementViewSet, basename="portal-statement")

urlpatterns = [path("", include(router.urls))]
