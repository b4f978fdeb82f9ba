"""Processing (加工) over the API, relative to /api/v1/:

- `GET pack-definitions/` (`?code=`, `?current=true`), `GET pack-definitions/{id}/`
- `POST pack-definitions/` `{"code", "name", "kind", "lines": [{"product", "quantity", "is_optional"}]}` —
  a code that exists gets its next version; the packs already made keep theirs.
- `GET pack-definitions/{id}/proposal/?station=` — what to take, first expiry first out, per line.
- `GET packs/`, `GET packs/{id}/` — with every member and where it went.
- `POST packs/` `{"definition", "station", "scans": [{"code", "quantity"}], "idempotency_key"}` — assemble.
- `POST packs/{id}/use/` `{"encounter", "department", "members"?: [member ids], …, "idempotency_key"}`
- `POST packs/{id}/break/` `{"idempotency_key"}` — 拆包.
- `POST labels/` `{"unit" | "lot_balance", "symbology", "copies", "reason"}` — the label PDF (logged).

Stock handlers define, assemble, break up and print; whoever may use items on patients may use a pack.
"""
from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from django.urls import include, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from inventory.actors import Actor
from inventory.api.clinical import CLINICAL_ROLES
from inventory.api.fields import (
    IdempotentInputSerializer,
    ScopedPrimaryKeyRelatedField,
    caller_hospital,
    idempotency_key,
    validated,
)
from inventory.api.permissions import STOCK_HANDLERS
from inventory.models import (
    ClinicalTeam,
    Department,
    LabelPrint,
    Location,
    LotBalance,
    Pack,
    PackDefinition,
    PackDefinitionLine,
    PackMember,
    Product,
    Unit,
)
from inventory.selectors.processing import fefo_proposals, packs_visible_to
from inventory.selectors.scope import visible_to
from inventory.services import labels, processing
from inventory.services.consumption import ClinicalContext


class DefinitionLineSerializer(serializers.ModelSerializer):
    product_name = serializers.CharField(source="product.name", read_only=True)

    class Meta:
        model = PackDefinitionLine
        fields = ["product", "product_name", "quantity", "is_optional"]


class DefinitionSerializer(serializers.ModelSerializer):
    lines = DefinitionLineSerializer(many=True, read_only=True)
    pack_gtin = serializers.CharField(source="pack_product.udi_di", read_only=True)

    class Meta:
        model = PackDefinition
        fields = ["id", "code", "version", "name", "kind", "is_current", "pack_product", "pack_gtin", "created_by",
                  "created_at", "lines"]


class LineInputSerializer(serializers.Serializer):
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all())
    quantity = serializers.IntegerField(min_value=-(2**31), max_value=2**31 - 1,
                                        help_text="At least 1 (anything less is refused with PACK_LINE_QUANTITY)")
    is_optional = serializers.BooleanField(default=False)


class DefinitionInputSerializer(serializers.Serializer):
    code = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$", max_length=32)
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=PackDefinition.Kind.choices)
    lines = LineInputSerializer(many=True, max_length=200)


class PickSerializer(serializers.Serializer):
    lot = serializers.CharField()
    expiry = serializers.DateField(allow_null=True)
    quantity = serializers.IntegerField()
    unit_id = serializers.IntegerField(allow_null=True)
    serial = serializers.CharField(allow_blank=True)
    lot_balance_id = serializers.IntegerField(allow_null=True)


class ProposalSerializer(serializers.Serializer):
    product = serializers.IntegerField(source="product.pk")
    product_name = serializers.CharField(source="product.name")
    requested = serializers.IntegerField()
    shortfall = serializers.IntegerField()
    is_optional = serializers.BooleanField()
    picks = PickSerializer(many=True)


class StationQuerySerializer(serializers.Serializer):
    station = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all())


class DefinitionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                        viewsets.GenericViewSet):
    """Pack (定数包), kit (手术包) and set definitions, every version."""

    serializer_class = DefinitionSerializer
    write_roles = STOCK_HANDLERS
    filterset_fields = ["code", "kind", "is_current"]

    def get_queryset(self) -> QuerySet:
        return visible_to(self.request.user, PackDefinition.objects.all()).select_related("pack_product") \
            .prefetch_related(Prefetch("lines", PackDefinitionLine.objects.select_related("product")))

    @extend_schema(request=DefinitionInputSerializer, responses={201: DefinitionSerializer})
    def create(self, request: Request) -> Response:
        data = validated(DefinitionInputSerializer, request)
        definition = processing.save_definition(
            user=request.user, hospital=caller_hospital(request), code=data["code"], name=data["name"],
            kind=data["kind"], lines=[processing.LineInput(**line) for line in data["lines"]],
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=definition.pk)).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("station", int, required=True)],
                   responses={200: ProposalSerializer(many=True)})
    @action(detail=True, pagination_class=None, filter_backends=[])
    def proposal(self, request: Request, pk: str) -> Response:
        """First expiry first out: what to take at the station for each line of this definition."""
        serializer = StationQuerySerializer(data=request.query_params, context={"request": request})
        serializer.is_valid(raise_exception=True)
        proposals = fefo_proposals(self.get_object(), serializer.validated_data["station"])
        return Response(ProposalSerializer(proposals, many=True).data)


class MemberSerializer(serializers.ModelSerializer):
    product_name = serializers.CharField(source="product.name", read_only=True)
    serial = serializers.CharField(source="unit.serial", read_only=True, allow_null=True, default=None)
    consumption_encounter = serializers.CharField(source="consumption.encounter", read_only=True, allow_null=True,
                                                  default=None)
    cost = serializers.SerializerMethodField()

    class Meta:
        model = PackMember
        fields = ["id", "product", "product_name", "unit", "serial", "lot", "expiry", "quantity", "unit_cost", "cost",
                  "state", "into_movement", "out_movement", "consumption", "consumption_encounter"]

    def get_cost(self, member: PackMember) -> str:
        return str(processing.member_cost(member))


class PackSerializer(serializers.ModelSerializer):
    serial = serializers.CharField(source="unit.serial", read_only=True)
    gtin = serializers.CharField(source="unit.di", read_only=True)
    status = serializers.CharField(source="unit.status", read_only=True)
    location = serializers.IntegerField(source="unit.location_id", read_only=True, allow_null=True)
    expiry = serializers.DateField(source="unit.expiry", read_only=True, allow_null=True)
    cost = serializers.DecimalField(source="unit.unit_cost", max_digits=12, decimal_places=2, read_only=True)
    version = serializers.IntegerField(source="definition.version", read_only=True)
    members = MemberSerializer(many=True, read_only=True)

    class Meta:
        model = Pack
        fields = ["id", "definition", "version", "unit", "serial", "gtin", "status", "location", "expiry", "cost",
                  "station", "assembled_by", "assembled_at", "emptied_at", "members"]


class ScanSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=300, help_text="The scanned UDI or label (GS may be sent as ASCII 29)")
    quantity = serializers.IntegerField(min_value=1, max_value=100000, default=1,
                                        help_text="For a lot's label: how many were taken of it")


class AssembleInputSerializer(IdempotentInputSerializer):
    definition = ScopedPrimaryKeyRelatedField(queryset=PackDefinition.objects.all())
    station = ScopedPrimaryKeyRelatedField(queryset=Location.objects.all())
    scans = ScanSerializer(many=True, max_length=500)


class UseInputSerializer(IdempotentInputSerializer):
    encounter = serializers.CharField(max_length=64)
    department = ScopedPrimaryKeyRelatedField(queryset=Department.objects.all())
    members = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False,
                                    allow_null=True, default=None, max_length=500,
                                    help_text="The members used; none given: the whole pack")
    surgery_id = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    surgery_name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    doctor = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    clinical_team = ScopedPrimaryKeyRelatedField(
        queryset=ClinicalTeam.objects.all(), required=False, allow_null=True,
        help_text="The clinical team (诊疗组); default: the doctor's team on the day of use",
    )


class PackViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Packs made at processing stations, with their members (lineage both ways)."""

    serializer_class = PackSerializer
    write_roles = STOCK_HANDLERS
    filterset_fields = ["definition", "station"]

    def get_queryset(self) -> QuerySet:
        return packs_visible_to(self.request.user)

    def get_permissions(self) -> list:
        if self.action == "use":
            self.write_roles = CLINICAL_ROLES
        return super().get_permissions()

    @extend_schema(request=AssembleInputSerializer, responses={201: PackSerializer})
    def create(self, request: Request) -> Response:
        data = validated(AssembleInputSerializer, request)
        pack = processing.assemble_pack(
            actor=Actor(user=request.user), hospital=caller_hospital(request), definition=data["definition"],
            station=data["station"], scans=[processing.MemberScan(**scan) for scan in data["scans"]],
            idempotency_key=idempotency_key(request, data),
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=pack.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=UseInputSerializer, responses={200: PackSerializer})
    @action(detail=True, methods=["post"])
    def use(self, request: Request, pk: str) -> Response:
        """Use the whole pack, or the members named, on an encounter: each member charged at its own cost."""
        pack = self.get_object()
        data = validated(UseInputSerializer, request)
        context = ClinicalContext(encounter=data["encounter"], department=data["department"],
                                  surgery_id=data["surgery_id"], surgery_name=data["surgery_name"],
                                  doctor=data["doctor"], clinical_team=data.get("clinical_team"))
        processing.use_pack(actor=Actor(user=request.user), hospital=caller_hospital(request), pack=pack,
                            context=context, member_ids=data["members"], idempotency_key=idempotency_key(request, data))
        return Response(self.get_serializer(self.get_queryset().get(pk=pack.pk)).data)

    @extend_schema(request=IdempotentInputSerializer, responses={200: PackSerializer})
    @action(detail=True, methods=["post"], url_path="break")
    def break_up(self, request: Request, pk: str) -> Response:
        """拆包: every member still in the pack back to stock where the pack is."""
        pack = self.get_object()
        data = validated(IdempotentInputSerializer, request)
        processing.break_pack(actor=Actor(user=request.user), hospital=caller_hospital(request), pack=pack,
                              idempotency_key=idempotency_key(request, data))
        return Response(self.get_serializer(self.get_queryset().get(pk=pack.pk)).data)


class LabelInputSerializer(serializers.Serializer):
    unit = ScopedPrimaryKeyRelatedField(queryset=Unit.objects.all(), required=False, allow_null=True, default=None)
    lot_balance = ScopedPrimaryKeyRelatedField(queryset=LotBalance.objects.all(), required=False, allow_null=True,
                                               default=None)
    symbology = serializers.ChoiceField(choices=LabelPrint.Symbology.choices, default=LabelPrint.Symbology.DATAMATRIX)
    copies = serializers.IntegerField(min_value=1, max_value=50, default=1)
    reason = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)

    def validate(self, data: dict) -> dict:
        if (data["unit"] is None) == (data["lot_balance"] is None):
            raise serializers.ValidationError({"unit": "give either a unit or a lot_balance"})
        return data


class _PdfOrJsonError(BaseContentNegotiation):
    """A label answers its PDF whatever the Accept header says; errors are JSON."""

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type

    def select_parser(self, request: Request, parsers: list):
        return parsers[0] if parsers else None


class LabelView(APIView):
    """Print the label of a unit (a pack's, or 院内码 for any unit) or of a lot: a PDF on label stock."""

    write_roles = STOCK_HANDLERS
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _PdfOrJsonError

    @extend_schema(request=LabelInputSerializer, responses={
        (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The labels, one page each"),
    })
    def post(self, request: Request) -> HttpResponse:
        data = validated(LabelInputSerializer, request)
        options = {"user": request.user, "symbology": data["symbology"], "copies": data["copies"],
                   "reason": data["reason"]}
        if data["unit"] is not None:
            pdf = labels.print_unit_labels(units=[data["unit"]], **options)
        else:
            pdf = labels.print_lot_label(balance=data["lot_balance"], **options)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = 'inline; filename="labels.pdf"'
        return response


router = SimpleRouter()
router.register("pack-definitions", DefinitionViewSet, basename="pack-definition")
router.register("packs", PackViewSet, basename="pack")

urlpatterns = [
    path("labels/", LabelView.as_view(), name="labels"),
    path("", include(router.urls)),
]
