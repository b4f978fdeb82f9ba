"""The supplier portal over the API (`/api/v1/portal/…`), for a supplier's own users only.

- `portal/purchase-orders/`: the orders addressed to the caller's supplier, across hospitals.
- `portal/certificates/`: the supplier's certificates; POST (multipart) uploads one with its scan
  (PDF, PNG or JPEG, at most SPD_CERTIFICATE_MAX_BYTES), shown to the hospitals.
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
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from inventory.actors import Actor
from inventory.api.fields import BoundedDateField, validated
from inventory.models import (
    AdvanceShippingNotice,
    AsnLine,
    Certificate,
    Product,
    PurchaseOrder,
    PurchaseOrderLine,
    Role,
)
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


router = SimpleRouter()
router.register("portal/purchase-orders", PortalOrderViewSet, basename="portal-order")
router.register("portal/shipping-notices", PortalNoticeViewSet, basename="portal-notice")
router.register("portal/certificates", PortalCertificateViewSet, basename="portal-certificate")

urlpatterns = [path("", include(router.urls))]
