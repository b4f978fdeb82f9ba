"""The county alliance (医共体) over the API: its catalog, adoption by members, and its dashboard.

- `alliance/entries/[?q=&category=&adopted=true|false]`: the alliance catalog as the caller's
  hospital sees it (`adopted_here`); POST a new entry, PATCH one — the alliance's stewards only
  (services.alliance_catalog); a change of name, specification, classes, 医保 code, manufacturer or
  certificate is written to every member product linked to the entry (`members_changed`).
  `{id}/` adds the alliance's agreements and the members' linked products (every member for
  alliance staff and stewards, the caller's own otherwise).
- `alliance/entries/{id}/agreements/`: POST an alliance supply agreement (it reaches every member
  that adopted the entry). `alliance/agreements/{id}/price-change/`: a dated price change with a
  reason and an approver; each member's agreement made from it changes the same way.
- `alliance/adoptions/`: a member adopts entries — chosen by id, or every entry matching a class
  and/or a search — keeping its own internal code and HIS charge code (`codes`).
- `alliance/dashboard/[?expiry_days=&use_days=]`: stock and near-expiry per member, transfer
  suggestions, use per member, VBP progress per member and for the alliance (alliance staff).
"""
from typing import Any

from django.db.models import QuerySet
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.actors import Actor
from inventory.alliance import ALLIANCE_KEEPERS, ALLIANCE_ROLES, alliance_of
from inventory.api.fields import BoundedDateField, caller_hospital, validated
from inventory.errors import Refusal, Refused
from inventory.models import (
    AllianceAgreement,
    AllianceEntry,
    AlliancePriceChange,
    Certificate,
    Manufacturer,
    Role,
    Supplier,
    TrackingMode,
    User,
)
from inventory.selectors.alliance import alliance_dashboard, catalog_entries, entry_members
from inventory.services.alliance_catalog import (
    ADOPTERS,
    add_agreement,
    adopt_entries,
    change_alliance_price,
    create_entry,
    update_entry,
)

KEEPER_ROLES = (Role.ADMIN, Role.SPD_OPERATOR, *ALLIANCE_KEEPERS)
MAX_ADOPT = 20_000


def _entries_of(user: User) -> QuerySet:
    alliance = alliance_of(user)
    return AllianceEntry.objects.filter(alliance=alliance) if alliance else AllianceEntry.objects.none()


class AllianceEntrySerializer(serializers.ModelSerializer):
    adopted_here = serializers.BooleanField(read_only=True, help_text="Adopted by the caller's hospital")
    member_count = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Members that adopted it (alliance staff and stewards only)"
    )

    class Meta:
        model = AllianceEntry
        fields = [
            "id", "alliance", "keeper", "code", "name", "specification", "category", "udi_di", "nhsa_code",
            "manufacturer", "registration_certificate", "unit_of_measure", "is_high_value", "tracking", "is_active",
            "adopted_here", "member_count",
        ]
        read_only_fields = fields

    def to_representation(self, instance: AllianceEntry) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["member_count"] = getattr(instance, "member_count", None)
        return data


class AllianceEntryInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=200)
    udi_di = serializers.CharField(max_length=64)
    manufacturer = serializers.PrimaryKeyRelatedField(queryset=Manufacturer.objects.all())
    tracking = serializers.ChoiceField(choices=TrackingMode.choices)
    specification = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    category = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    nhsa_code = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    unit_of_measure = serializers.CharField(max_length=16, required=False, default="个")
    is_high_value = serializers.BooleanField(required=False, default=False)
    registration_certificate = serializers.PrimaryKeyRelatedField(
        queryset=Certificate.objects.filter(kind=Certificate.Kind.REGISTRATION), required=False, allow_null=True,
        default=None,
    )


class AllianceEntryChangeSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    specification = serializers.CharField(max_length=200, required=False, allow_blank=True)
    category = serializers.CharField(max_length=100, required=False, allow_blank=True)
    nhsa_code = serializers.CharField(max_length=32, required=False, allow_blank=True)
    udi_di = serializers.CharField(max_length=64, required=False)
    manufacturer = serializers.PrimaryKeyRelatedField(queryset=Manufacturer.objects.all(), required=False)
    registration_certificate = serializers.PrimaryKeyRelatedField(
        queryset=Certificate.objects.filter(kind=Certificate.Kind.REGISTRATION), required=False, allow_null=True,
    )
    unit_of_measure = serializers.CharField(max_length=16, required=False)
    is_high_value = serializers.BooleanField(required=False)
    tracking = serializers.ChoiceField(choices=TrackingMode.choices, required=False)
    is_active = serializers.BooleanField(required=False)


class AllianceAgreementSerializer(serializers.ModelSerializer):
    class Meta:
        model = AllianceAgreement
        fields = [
            "id", "entry", "supplier", "unit_price", "valid_from", "valid_to", "platform_reference", "vbp_contract",
            "is_active",
        ]
        read_only_fields = fields


class AllianceAgreementInputSerializer(serializers.Serializer):
    supplier = serializers.PrimaryKeyRelatedField(queryset=Supplier.objects.all())
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    valid_from = BoundedDateField()
    valid_to = BoundedDateField()
    platform_reference = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    vbp_contract = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class AlliancePriceChangeInputSerializer(serializers.Serializer):
    new_price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    effective_from = BoundedDateField()
    reason = serializers.CharField(max_length=500)
    approved_by = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True))


class AlliancePriceChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlliancePriceChange
        fields = [
            "id", "entry", "previous", "agreement", "old_price", "new_price", "effective_from", "reason",
            "approved_by", "recorded_by", "recorded_at", "members_changed",
        ]
        read_only_fields = fields


class AllianceMemberPriceSerializer(serializers.Serializer):
    agreement = serializers.IntegerField(source="pk")
    supplier = serializers.IntegerField(source="supplier_id")
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    valid_from = serializers.DateField()
    valid_to = serializers.DateField()
    alliance_agreement = serializers.IntegerField(source="alliance_agreement_id", allow_null=True)


class AllianceMemberSerializer(serializers.Serializer):
    hospital = serializers.IntegerField(source="hospital.pk")
    hospital_name = serializers.CharField(source="hospital.name")
    product = serializers.IntegerField(source="product.pk")
    internal_code = serializers.CharField(source="product.internal_code")
    his_charge_code = serializers.CharField(source="product.his_charge_code")
    prices = AllianceMemberPriceSerializer(many=True)


class AllianceEntryDetailSerializer(AllianceEntrySerializer):
    agreements = serializers.SerializerMethodField()
    members = serializers.SerializerMethodField()

    class Meta(AllianceEntrySerializer.Meta):
        fields = [*AllianceEntrySerializer.Meta.fields, "agreements", "members"]
        read_only_fields = fields

    @extend_schema_field(AllianceAgreementSerializer(many=True))
    def get_agreements(self, entry: AllianceEntry) -> list[dict]:
        return AllianceAgreementSerializer(entry.agreements.order_by("supplier_id", "-valid_from"), many=True).data

    @extend_schema_field(AllianceMemberSerializer(many=True))
    def get_members(self, entry: AllianceEntry) -> list[dict]:
        return AllianceMemberSerializer(entry_members(self.context["request"].user, entry), many=True).data


class AllianceEntryUpdateResultSerializer(AllianceEntryDetailSerializer):
    members_changed = serializers.SerializerMethodField()

    class Meta(AllianceEntryDetailSerializer.Meta):
        fields = [*AllianceEntryDetailSerializer.Meta.fields, "members_changed"]
        read_only_fields = fields

    def get_members_changed(self, entry: AllianceEntry) -> int:
        return self.context.get("members_changed", 0)


class AllianceAdoptCodeSerializer(serializers.Serializer):
    entry = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    internal_code = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    his_charge_code = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")


class AllianceAdoptionInputSerializer(serializers.Serializer):
    entries = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**31 - 1), required=False, max_length=MAX_ADOPT,
        help_text="Entry ids to adopt; or leave out and choose by category and/or q",
    )
    category = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    q = serializers.CharField(max_length=200, required=False, allow_blank=True, default="",
                              help_text="Code or UDI-DI prefix, or part of the name")
    codes = AllianceAdoptCodeSerializer(
        many=True, required=False, default=list, max_length=MAX_ADOPT,
        help_text="The member's own internal code and HIS charge code per entry (default: the alliance code)",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("entries") and not attrs["category"].strip() and not attrs["q"].strip():
            raise Refused(Refusal.ALLIANCE_NOTHING_CHOSEN)
        return attrs


class AllianceAdoptionSerializer(serializers.Serializer):
    adopted = serializers.IntegerField()
    linked = serializers.IntegerField()
    already = serializers.IntegerField()
    agreements = serializers.IntegerField()


class AllianceEntryListView(generics.ListAPIView):
    """The alliance catalog: list (every member) and create (the alliance's stewards)."""

    write_roles = KEEPER_ROLES
    serializer_class = AllianceEntrySerializer

    def get_queryset(self) -> QuerySet:
        params = self.request.query_params
        adopted = {"true": True, "false": False}.get(params.get("adopted", ""))
        return catalog_entries(
            self.request.user, text=params.get("q", "")[:200], category=params.get("category", "")[:100],
            adopted=adopted,
        )

    @extend_schema(parameters=[
        OpenApiParameter("q", str, required=False, description="Code or UDI-DI prefix, or part of the name"),
        OpenApiParameter("category", str, required=False),
        OpenApiParameter("adopted", str, enum=["true", "false"], required=False,
                         description="Adopted by the caller's hospital, or not"),
    ])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=AllianceEntryInputSerializer, responses={201: AllianceEntrySerializer})
    def post(self, request: Request) -> Response:
        data = validated(AllianceEntryInputSerializer, request)
        entry = create_entry(actor=Actor(user=request.user), **data)
        entry = catalog_entries(request.user).get(pk=entry.pk)
        return Response(AllianceEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class AllianceEntryDetailView(APIView):
    """One entry with its agreements and members; PATCH changes it and its members' products."""

    write_roles = KEEPER_ROLES

    def _entry(self, request: Request, pk: int) -> AllianceEntry:
        entry = catalog_entries(request.user).filter(pk=pk).first()
        if entry is None:
            raise Refused(Refusal.NOT_FOUND, what="alliance entry")
        return entry

    @extend_schema(responses={200: AllianceEntryDetailSerializer})
    def get(self, request: Request, pk: int) -> Response:
        return Response(AllianceEntryDetailSerializer(self._entry(request, pk), context={"request": request}).data)

    @extend_schema(request=AllianceEntryChangeSerializer, responses={200: AllianceEntryUpdateResultSerializer})
    def patch(self, request: Request, pk: int) -> Response:
        entry = self._entry(request, pk)
        serializer = AllianceEntryChangeSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changed = update_entry(actor=Actor(user=request.user), entry=entry, changes=dict(serializer.validated_data))
        return Response(AllianceEntryUpdateResultSerializer(
            self._entry(request, pk), context={"request": request, "members_changed": changed}
        ).data)


class AllianceAgreementCreateView(APIView):
    """A supply agreement of the alliance for the entry; every member that adopted it gets it."""

    write_roles = KEEPER_ROLES

    @extend_schema(request=AllianceAgreementInputSerializer, responses={201: AllianceAgreementSerializer})
    def post(self, request: Request, pk: int) -> Response:
        entry = _entries_of(request.user).filter(pk=pk).first()
        if entry is None:
            raise Refused(Refusal.NOT_FOUND, what="alliance entry")
        data = validated(AllianceAgreementInputSerializer, request)
        agreement = add_agreement(actor=Actor(user=request.user), entry=entry, **data)
        return Response(AllianceAgreementSerializer(agreement).data, status=status.HTTP_201_CREATED)


class AlliancePriceChangeView(APIView):
    """A dated price change of an alliance agreement, passed on to each member's agreement from it."""

    write_roles = KEEPER_ROLES

    @extend_schema(request=AlliancePriceChangeInputSerializer, responses={201: AlliancePriceChangeSerializer})
    def post(self, request: Request, pk: int) -> Response:
        agreement = AllianceAgreement.objects.filter(pk=pk, entry__in=_entries_of(request.user)).first()
        if agreement is None:
            raise Refused(Refusal.NOT_FOUND, what="alliance agreement")
        data = validated(AlliancePriceChangeInputSerializer, request)
        change = change_alliance_price(actor=Actor(user=request.user), agreement=agreement, **data)
        return Response(AlliancePriceChangeSerializer(change).data, status=status.HTTP_201_CREATED)


class AllianceAdoptionView(APIView):
    """A member adopts alliance catalog entries into its own catalog (all or nothing)."""

    write_roles = ADOPTERS

    @extend_schema(request=AllianceAdoptionInputSerializer, responses={201: AllianceAdoptionSerializer})
    def post(self, request: Request) -> Response:
        data = validated(AllianceAdoptionInputSerializer, request)
        hospital = caller_hospital(request)
        if data.get("entries"):
            entries = list(_entries_of(request.user).filter(pk__in=data["entries"]).order_by("code"))
            if len(entries) != len(set(data["entries"])):
                raise Refused(Refusal.NOT_FOUND, what="alliance entry")
        else:
            entries = list(catalog_entries(
                request.user, text=data["q"], category=data["category"], adopted=False
            )[:MAX_ADOPT])
        codes = {
            row["entry"]: {"internal_code": row["internal_code"], "his_charge_code": row["his_charge_code"]}
            for row in data["codes"]
        }
        result = adopt_entries(actor=Actor(user=request.user), hospital=hospital, entries=entries, codes=codes)
        return Response(AllianceAdoptionSerializer(result).data, status=status.HTTP_201_CREATED)


class AllianceMemberStockSerializer(serializers.Serializer):
    hospital = serializers.IntegerField(source="hospital.pk")
    hospital_name = serializers.CharField(source="hospital.name")
    units = serializers.IntegerField()
    lot_quantity = serializers.IntegerField()
    value = serializers.DecimalField(max_digits=16, decimal_places=2)
    near_expiry_quantity = serializers.IntegerField()
    near_expiry_value = serializers.DecimalField(max_digits=16, decimal_places=2)
    expired_quantity = serializers.IntegerField()
    used_quantity = serializers.IntegerField()
    used_amount = serializers.DecimalField(max_digits=16, decimal_places=2)


class AllianceSuggestionSerializer(serializers.Serializer):
    entry = serializers.IntegerField(source="entry_id")
    entry_code = serializers.CharField()
    entry_name = serializers.CharField()
    from_hospital = serializers.IntegerField(source="from_hospital.pk")
    from_hospital_name = serializers.CharField(source="from_hospital.name")
    lot = serializers.CharField()
    expiry = serializers.DateField()
    available = serializers.IntegerField()
    to_hospital = serializers.IntegerField(source="to_hospital.pk")
    to_hospital_name = serializers.CharField(source="to_hospital.name")
    receiver_use = serializers.IntegerField()
    receiver_stock = serializers.IntegerField()
    quantity = serializers.IntegerField()


class AllianceVbpRowSerializer(serializers.Serializer):
    contract = serializers.IntegerField(source="contract.pk")
    contract_number = serializers.CharField(source="contract.number")
    hospital = serializers.IntegerField(source="hospital.pk", allow_null=True, default=None,
                                        help_text="Null: the alliance, every hospital of the contract")
    agreed = serializers.IntegerField()
    used = serializers.IntegerField()
    used_pct = serializers.DecimalField(max_digits=7, decimal_places=1)
    elapsed_pct = serializers.DecimalField(max_digits=7, decimal_places=1)
    is_lagging = serializers.BooleanField()


class AllianceDashboardSerializer(serializers.Serializer):
    today = serializers.DateField()
    expiry_days = serializers.IntegerField()
    use_days = serializers.IntegerField()
    members = AllianceMemberStockSerializer(many=True)
    suggestions = AllianceSuggestionSerializer(many=True)
    vbp = serializers.SerializerMethodField()

    @extend_schema_field(AllianceVbpRowSerializer(many=True))
    def get_vbp(self, dashboard: Any) -> list[dict]:
        return AllianceVbpRowSerializer([row for rows in dashboard.vbp for row in rows], many=True).data


class AllianceDashboardView(APIView):
    """The alliance dashboard (alliance staff): every member's stock, near-expiry and use, transfer
    suggestions, and VBP progress per member and for the alliance."""

    read_roles = ALLIANCE_ROLES

    @extend_schema(
        parameters=[
            OpenApiParameter("expiry_days", int, required=False, description="Near-expiry window, days (default 90)"),
            OpenApiParameter("use_days", int, required=False, description="Recent-use window, days (default 90)"),
        ],
        responses={200: AllianceDashboardSerializer},
    )
    def get(self, request: Request) -> Response:
        expiry_days = _days(request.query_params.get("expiry_days"), "expiry_days")
        use_days = _days(request.query_params.get("use_days"), "use_days")
        dashboard = alliance_dashboard(request.user, expiry_days=expiry_days, use_days=use_days)
        return Response(AllianceDashboardSerializer(dashboard).data)


def _days(value: str | None, name: str) -> int:
    if value is None or value == "":
        return 90
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 730:
        raise Refused(Refusal.INVALID_REQUEST, detail=f"{name} must be a whole number of days from 1 to 730")
    return int(value)


urlpatterns = [
    path("alliance/entries/", AllianceEntryListView.as_view(), name="alliance-entries"),
    path("alliance/entries/<int:pk>/", AllianceEntryDetailView.as_view(), name="alliance-entry"),
    path("alliance/entries/<int:pk>/agreements/", AllianceAgreementCreateView.as_view(), name="alliance-agreements"),
    path("alliance/agreements/<int:pk>/price-change/", AlliancePriceChangeView.as_view(),
         name="alliance-price-change"),
    path("alliance/adoptions/", AllianceAdoptionView.as_view(), name="alliance-adoptions"),
    path("alliance/dashboard/", AllianceDashboardView.as_view(), name="alliance-dashboard"),
]
