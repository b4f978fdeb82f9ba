"""Master-data CRUD (主数据): hospitals, departments, locations, parties, certificates, catalog, agreements.

Reference data is plain create/read/update/delete, so generic viewsets are enough here; stock never
moves through this module. Two rules shape everything in it:

- Hospital scoping. A user works inside their own hospital: hospital-owned rows of another
  hospital do not exist for them (404 on access, absent from lists, "does not exist" when referred
  to in input). Superusers without a hospital are alliance administrators (医共体) and see all.
  Suppliers, manufacturers and certificates are shared by the whole alliance: everyone reads them,
  only the hospital that keeps one (`owner_hospital`) or an alliance steward (alliance
  administrator; administrator or SPD operator of the lead hospital) changes it, and a certificate
  another hospital's acceptance relies on only a steward (`selectors.scope.shared_record_problem`).
- Master data that stock, documents or other master data still refer to is PROTECTed in the
  database; deleting it answers 409 IN_USE (deactivate it instead) rather than a server error.
"""

import copy
import datetime
from collections import Counter
from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import ProtectedError, QuerySet
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.filters import SearchFilter
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.routers import DefaultRouter

from devices.identification import is_valid_gtin
from inventory.api import filters as api_filters
from inventory.api.history import HistoryActions
from inventory.api.permissions import MASTER_DATA_EDITORS
from inventory.errors import Refusal, Refused
from inventory.models import (
    Certificate,
    Department,
    Hospital,
    Location,
    Manufacturer,
    PackagingUnit,
    Product,
    Role,
    Supplier,
    SupplyAgreement,
    TrackingMode,
    User,
)
from inventory.selectors.scope import sees_all_hospitals, shared_record_problem, visible_to
from inventory.services.alliance_catalog import kept_field_problem

# --- scoping -------------------------------------------------------------------------------------


def _request_user(serializer: serializers.BaseSerializer) -> User | None:
    request = serializer.context.get("request")
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


class InUse(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "in_use"
    default_detail = _("This record is still in use and cannot be deleted.")


# --- serializers ---------------------------------------------------------------------------------


def _after(serializer: serializers.BaseSerializer, attrs: dict[str, Any], name: str) -> Any:
    """The value `name` will have once saved: partial updates keep the stored one."""
    if name in attrs:
        return attrs[name]
    return getattr(serializer.instance, name, None)


def _check_range(
    serializer: serializers.BaseSerializer, attrs: dict[str, Any], low: str, high: str, message: str
) -> None:
    start, end = _after(serializer, attrs, low), _after(serializer, attrs, high)
    if start is not None and end is not None and end < start:
        raise serializers.ValidationError({high: message})


class HospitalSerializer(serializers.ModelSerializer):
    """A hospital of the alliance (医共体)."""

    # Alliance-level facts: the code names the hospital in device topics, alliance and lead flag
    # describe the 医共体. Only alliance administrators change them; a hospital's admin edits its name.
    ALLIANCE_FIELDS = ("code", "alliance", "is_lead")

    class Meta:
        model = Hospital
        fields = ["id", "code", "name", "alliance", "is_lead"]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        user = _request_user(self)
        if user is not None and not sees_all_hospitals(user):
            for name in self.ALLIANCE_FIELDS:
                fields[name].read_only = True
        return fields


class HospitalOwnedSerializer(serializers.ModelSerializer):
    """Base for rows that belong to one hospital.

    `hospital` is the caller's own and cannot be chosen, except by alliance administrators when
    creating; it never changes afterwards. Relations in `scoped_relations` point to other
    hospital-owned rows: their choices are limited to what the caller sees, and they must belong
    to the same hospital as the row itself. `unique_in_hospital` lists (field, message) pairs for
    the per-hospital unique constraints, checked here so that a duplicate is a 400 on that field.
    """

    hospital = serializers.PrimaryKeyRelatedField(
        queryset=Hospital.objects.all(),
        required=False,
        help_text=_(
            "Set from the caller's hospital. Only alliance administrators (superusers without a "
            "hospital) choose it, and only when creating."
        ),
    )

    scoped_relations: tuple[str, ...] = ()
    unique_in_hospital: tuple[tuple[str, str], ...] = ()

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        user = _request_user(self)
        if user is None:  # schema generation: describe the alliance administrator's view
            return fields
        if self.instance is not None or not sees_all_hospitals(user):
            fields["hospital"] = serializers.PrimaryKeyRelatedField(read_only=True)
        for name in self.scoped_relations:
            fields[name].queryset = visible_to(user, fields[name].queryset)
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        hospital = self._target_hospital(attrs)
        attrs["hospital"] = hospital
        errors: dict[str, str] = {}
        for name in self.scoped_relations:
            related = _after(self, attrs, name)
            if related is not None and related.hospital_id != hospital.pk:
                errors[name] = _("“%(object)s” belongs to another hospital.") % {"object": related}
        model = self.Meta.model
        for name, message in self.unique_in_hospital:
            if name not in attrs:
                continue
            taken = model.objects.filter(hospital=hospital, **{name: attrs[name]})
            if self.instance is not None:
                taken = taken.exclude(pk=self.instance.pk)
            if taken.exists():
                errors[name] = message % {"value": attrs[name]}
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def _target_hospital(self, attrs: dict[str, Any]) -> Hospital:
        if self.instance is not None:
            return self.instance.hospital
        if attrs.get("hospital") is not None:
            return attrs["hospital"]
        user = _request_user(self)
        if user is None or user.hospital is None:
            raise serializers.ValidationError({"hospital": _("Choose the hospital this belongs to.")})
        return user.hospital


class DepartmentSerializer(HospitalOwnedSerializer):
    """A department of the hospital (科室)."""

    unique_in_hospital = (("code", _("A department with code “%(value)s” already exists in this hospital.")),)

    class Meta:
        model = Department
        fields = ["id", "hospital", "code", "name", "kind", "expense_at_count"]
        validators: list = []


class LocationSerializer(HospitalOwnedSerializer):
    """A place stock can be: central warehouse, department store, smart cabinet, operating room…"""

    scoped_relations = ("department", "parent")
    unique_in_hospital = (("code", _("A location with code “%(value)s” already exists in this hospital.")),)

    class Meta:
        model = Location
        fields = ["id", "hospital", "code", "name", "kind", "department", "parent", "is_active"]
        validators: list = []

    def validate_parent(self, parent: Location | None) -> Location | None:
        if self.instance is None:
            return parent
        # Walk up from the new parent: meeting this location means the tree would get a loop.
        ancestor = parent
        while ancestor is not None:
            if ancestor.pk == self.instance.pk:
                raise serializers.ValidationError(_("A location cannot be inside itself or one of its sub-locations."))
            ancestor = ancestor.parent
        return parent


class SupplierSerializer(serializers.ModelSerializer):
    """A supplier or distributor (配送商), identified by its unified social credit code."""

    # The model's validate_uscc (check character, GB 32100-2015) and unique index both become
    # field validators here, so a wrong or duplicate code is a 400 on `uscc`.
    class Meta:
        model = Supplier
        fields = ["id", "name", "uscc", "contact", "is_active", "owner_hospital"]
        read_only_fields = ["owner_hospital"]


class ManufacturerSerializer(serializers.ModelSerializer):
    """A manufacturer or registrant (注册人); foreign ones have no unified social credit code."""

    class Meta:
        model = Manufacturer
        fields = ["id", "name", "uscc", "country", "owner_hospital"]
        read_only_fields = ["owner_hospital"]


class CertificateSerializer(serializers.ModelSerializer):
    """A licence or certificate (资质证照) held by exactly one supplier or manufacturer."""

    file = serializers.FileField(read_only=True, allow_null=True, help_text="The scan uploaded by the supplier, if any")

    class Meta:
        model = Certificate
        fields = ["id", "kind", "number", "supplier", "manufacturer", "valid_from", "valid_to", "owner_hospital", "file"]
        # `file`: the scan a supplier uploaded through the portal (api/portal.py), shown to the hospitals.
        read_only_fields = ["owner_hospital", "file"]
        validators: list = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        supplier, manufacturer = _after(self, attrs, "supplier"), _after(self, attrs, "manufacturer")
        if (supplier is None) == (manufacturer is None):
            raise serializers.ValidationError(
                _("A certificate is held by exactly one party: give either a supplier or a manufacturer.")
            )
        _check_range(self, attrs, "valid_from", "valid_to", _("The end of validity is before its start."))
        kind, number = _after(self, attrs, "kind"), _after(self, attrs, "number")
        taken = Certificate.objects.filter(kind=kind, number=number)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError(
                {
                    "number": _("A %(kind)s numbered “%(number)s” already exists.")
                    % {"kind": Certificate.Kind(kind).label, "number": number}
                }
            )
        return attrs


class PackagingUnitSerializer(serializers.ModelSerializer):
    """A packaging unit of a product (包装单位): `factor` base units each (盒 = 10 支)."""

    factor = serializers.IntegerField(min_value=2, max_value=1_000_000, help_text=_("Base units per unit"))

    class Meta:
        model = PackagingUnit
        fields = ["name", "factor", "is_purchase_unit", "is_billing_unit"]
        validators: list = []


class ProductSerializer(HospitalOwnedSerializer):
    """A catalog item of the hospital (院内目录). A 14-digit UDI-DI must be a valid GTIN-14.

    `unit_of_measure` is the base unit stock is counted in; `packaging_units`, when sent, replaces
    the product's packaging units (a changed one is recorded in its history as removed and added).
    """

    packaging_units = PackagingUnitSerializer(
        many=True, required=False,
        help_text=_("Named packagings holding whole numbers of base units; at most one purchase and one billing unit."),
    )

    unique_in_hospital = (
        ("internal_code", _("A product with internal code “%(value)s” already exists in this hospital.")),
        ("udi_di", _("A product with UDI-DI “%(value)s” already exists in this hospital.")),
    )

    class Meta:
        model = Product
        fields = [
            "id",
            "hospital",
            "internal_code",
            "name",
            "specification",
            "category",
            "manufacturer",
            "registration_certificate",
            "udi_di",
            "nhsa_code",
            "his_charge_code",
            "unit_of_measure",
            "is_high_value",
            "tracking",
            "storage_min_c",
            "storage_max_c",
            "is_consignment",
            "min_shelf_life_days",
            "is_active",
            "expensed_on_issue",
            "packaging_units",
            "alliance_entry",
        ]
        read_only_fields = ["alliance_entry"]
        validators: list = []

    def validate_udi_di(self, value: str) -> str:
        # Fourteen digits is a GTIN-14 (GS1); other issuers' DIs (MA, HIBC) carry letters or dots.
        if len(value) == 14 and value.isascii() and value.isdigit() and not is_valid_gtin(value):
            raise serializers.ValidationError(
                _("“%(value)s” is not a valid GTIN-14: its check digit is wrong.") % {"value": value}
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None and (problem := kept_field_problem(self.instance, attrs)):
            raise Refused([problem])  # an adopted product's names follow the alliance catalog
        _check_range(
            self,
            attrs,
            "storage_min_c",
            "storage_max_c",
            _("The highest storage temperature is below the lowest."),
        )
        certificate = _after(self, attrs, "registration_certificate")
        manufacturer = _after(self, attrs, "manufacturer")
        if certificate is not None:
            # Acceptance checks this certificate's validity for every unit received.
            if certificate.kind != Certificate.Kind.REGISTRATION:
                raise serializers.ValidationError(
                    {"registration_certificate": _("This is not a product registration certificate (注册证).")}
                )
            if certificate.manufacturer_id != getattr(manufacturer, "pk", None):
                raise serializers.ValidationError(
                    {"registration_certificate": _("This registration certificate is held by another manufacturer.")}
                )
        if _after(self, attrs, "expensed_on_issue"):
            # Expensed to the department means never billed to a patient: no charge code; by lot.
            if _after(self, attrs, "his_charge_code"):
                raise serializers.ValidationError(
                    {"expensed_on_issue": _("An item expensed to the department has no HIS charge code; clear it.")}
                )
            if _after(self, attrs, "tracking") != TrackingMode.LOT:
                raise serializers.ValidationError(
                    {"expensed_on_issue": _("Only a lot-tracked item can be expensed to the department.")}
                )
        if "packaging_units" in attrs:
            base_unit = _after(self, attrs, "unit_of_measure") or Product._meta.get_field("unit_of_measure").default
            _check_packaging_units(attrs["packaging_units"], base_unit)
        return super().validate(attrs)

    def create(self, validated_data: dict[str, Any]) -> Product:
        units = validated_data.pop("packaging_units", None)
        product = super().create(validated_data)
        if units is not None:
            _replace_packaging_units(product, units)
        return product

    def update(self, instance: Product, validated_data: dict[str, Any]) -> Product:
        units = validated_data.pop("packaging_units", None)
        product = super().update(instance, validated_data)
        if units is not None:
            _replace_packaging_units(product, units)
        return product


def _check_packaging_units(units: list[dict[str, Any]], base_unit: str) -> None:
    """Each unit's problems under its index (`packaging_units[1].name`), before the database says it."""
    errors: dict[int, dict[str, str]] = {}
    names = [unit["name"].strip() for unit in units]
    factors = [unit["factor"] for unit in units]
    for index, unit in enumerate(units):
        if names[index] == base_unit:
            errors.setdefault(index, {})["name"] = _("“%(name)s” is the base unit.") % {"name": names[index]}
        elif names.index(names[index]) != index:
            errors.setdefault(index, {})["name"] = _("“%(name)s” appears twice.") % {"name": names[index]}
        if factors.index(unit["factor"]) != index:
            errors.setdefault(index, {})["factor"] = _("Another unit holds %(factor)s base units already.") % {
                "factor": unit["factor"]}
    for flag in ("is_purchase_unit", "is_billing_unit"):
        flagged = [index for index, unit in enumerate(units) if unit.get(flag)]
        for index in flagged[1:]:
            errors.setdefault(index, {})[flag] = _("Only one unit can be the purchase unit and one the billing unit.")
    if errors:
        raise serializers.ValidationError({"packaging_units": errors})


def _replace_packaging_units(product: Product, units: list[dict[str, Any]]) -> None:
    """Make the product's packaging units exactly `units`: unchanged ones stay, the rest are
    removed and (re)created, so that the one-purchase/one-billing constraints hold at each step."""
    wanted = {
        unit["name"].strip(): (unit["factor"], unit.get("is_purchase_unit", False), unit.get("is_billing_unit", False))
        for unit in units
    }
    kept = set()
    for existing in list(product.packaging_units.all()):
        if wanted.get(existing.name) == (existing.factor, existing.is_purchase_unit, existing.is_billing_unit):
            kept.add(existing.name)
        else:
            existing.delete()
    PackagingUnit.objects.bulk_create(
        PackagingUnit(product=product, name=name, factor=factor, is_purchase_unit=purchase, is_billing_unit=billing)
        for name, (factor, purchase, billing) in wanted.items() if name not in kept
    )
    getattr(product, "_prefetched_objects_cache", {}).pop("packaging_units", None)


class SupplyAgreementSerializer(HospitalOwnedSerializer):
    """Supplier × product × purchase price × validity (供货协议)."""

    scoped_relations = ("product",)

    class Meta:
        model = SupplyAgreement
        fields = [
            "id",
            "hospital",
            "supplier",
            "product",
            "unit_price",
            "valid_from",
            "valid_to",
            "platform_reference",
            "vbp_contract",
            "is_active",
        ]
        validators: list = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None and "unit_price" in attrs and attrs["unit_price"] != self.instance.unit_price:
            # A price changes only by a new dated agreement (services.prices, `price-changes/`).
            raise Refused(Refusal.PRICE_EDIT_REFUSED)
        _check_range(self, attrs, "valid_from", "valid_to", _("The end of validity is before its start."))
        return super().validate(attrs)


# --- filters -------------------------------------------------------------------------------------


class LocationFilter(api_filters.FilterSet):
    # Plain ids rather than model choices: a choice filter over every department would tell
    # another hospital's ids apart from ids that do not exist.
    department = filters.NumberFilter(field_name="department")
    parent = filters.NumberFilter(field_name="parent")

    class Meta:
        model = Location
        fields = ["kind", "department", "parent", "is_active"]


class CertificateFilter(api_filters.FilterSet):
    supplier = filters.NumberFilter(field_name="supplier")
    manufacturer = filters.NumberFilter(field_name="manufacturer")
    expiring_before = filters.DateFilter(
        field_name="valid_to", lookup_expr="lte", label=_("Valid to on or before this date")
    )

    class Meta:
        model = Certificate
        fields = ["kind", "supplier", "manufacturer", "expiring_before"]


class ProductFilter(api_filters.FilterSet):
    manufacturer = filters.NumberFilter(field_name="manufacturer")

    class Meta:
        model = Product
        fields = [
            "internal_code",
            "udi_di",
            "nhsa_code",
            "his_charge_code",
            "tracking",
            "is_high_value",
            "is_consignment",
            "is_active",
            "manufacturer",
        ]


class SupplyAgreementFilter(api_filters.FilterSet):
    supplier = filters.NumberFilter(field_name="supplier")
    product = filters.NumberFilter(field_name="product")
    active_on = filters.DateFilter(method="filter_active_on", label=_("Active and valid on this date"))

    class Meta:
        model = SupplyAgreement
        fields = ["supplier", "product", "is_active", "active_on"]

    def filter_active_on(self, queryset: QuerySet, name: str, value: datetime.date) -> QuerySet:
        return queryset.filter(is_active=True, valid_from__lte=value, valid_to__gte=value)


# --- viewsets ------------------------------------------------------------------------------------


_DESTROY_SCHEMA = extend_schema(
    responses={
        204: OpenApiResponse(description="Deleted."),
        409: OpenApiResponse(description="Still referenced (code IN_USE); deactivate it instead."),
    }
)


@extend_schema_view(destroy=_DESTROY_SCHEMA)
class MasterDataViewSet(HistoryActions, viewsets.ModelViewSet):
    """CRUD with a database conflict turned into a 400 and a protected delete into 409 IN_USE;
    `{id}/history/` lists an object's recorded changes (inventory/api/history.py)."""

    write_roles: tuple[Role, ...] = MASTER_DATA_EDITORS

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        self._save(serializer)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        self._save(serializer)

    def _save(self, serializer: serializers.BaseSerializer, **extra: Any) -> None:
        # Validation checked uniqueness already; this catches the concurrent request that won the race.
        try:
            with transaction.atomic():
                serializer.save(**extra)
        except IntegrityError as exc:
            raise serializers.ValidationError(
                _("This conflicts with a record saved meanwhile; reload and try again.")
            ) from exc

    def perform_destroy(self, instance: models.Model) -> None:
        try:
            instance.delete()
        except ProtectedError as exc:
            referrers = Counter(str(obj._meta.verbose_name) for obj in exc.protected_objects)
            listing = ", ".join(f"{count} × {name}" for name, count in sorted(referrers.items()))
            raise InUse(
                _("“%(object)s” is still referenced (%(listing)s) and cannot be deleted; deactivate it instead.")
                % {"object": instance, "listing": listing}
            ) from exc


class HospitalOwnedViewSet(MasterDataViewSet):
    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset.none()
        return visible_to(self.request.user, queryset)


class AllianceAdministrator(BasePermission):
    message = _("Only an alliance administrator may add or remove hospitals.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return sees_all_hospitals(request.user)


class HospitalViewSet(MasterDataViewSet):
    """Hospitals. A user sees their own; a hospital's admin edits its name; alliance admins do the rest."""

    queryset = Hospital.objects.all()
    serializer_class = HospitalSerializer
    write_roles = (Role.ADMIN,)
    filter_backends = [SearchFilter]
    search_fields = ["code", "name"]

    def get_permissions(self) -> list[BasePermission]:
        permissions = super().get_permissions()
        if self.action in ("create", "destroy"):
            permissions.append(AllianceAdministrator())
        return permissions

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset.none()
        return visible_to(self.request.user, queryset, hospital_field="pk")


class DepartmentViewSet(HospitalOwnedViewSet):
    """Departments (科室) of the caller's hospital."""

    queryset = Department.objects.all()
    serializer_class = DepartmentSerializer
    filter_backends = [api_filters.DjangoFilterBackend, SearchFilter]
    filterset_fields = ["kind", "code"]
    search_fields = ["name", "code"]


class LocationViewSet(HospitalOwnedViewSet):
    """Stock locations of the caller's hospital."""

    queryset = Location.objects.all()
    serializer_class = LocationSerializer
    filter_backends = [api_filters.DjangoFilterBackend, SearchFilter]
    filterset_class = LocationFilter
    search_fields = ["name", "code"]


class SharedMasterDataViewSet(MasterDataViewSet):
    """Alliance-wide records (suppliers, manufacturers, certificates): everyone reads them; a new one is
    kept by the hospital that creates it (by the alliance when an alliance administrator does); who may
    change or delete one is `selectors.scope.shared_record_problem`."""

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        keeper = self.request.user.hospital
        model = self.get_serializer_class().Meta.model
        self._refuse_unless_kept(model(**serializer.validated_data, owner_hospital=keeper))
        self._save(serializer, owner_hospital=keeper)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        self._refuse_unless_kept(serializer.instance)
        # The record as it would be: moving a certificate to another holder is checked for that holder too.
        changed = copy.copy(serializer.instance)
        for name, value in serializer.validated_data.items():
            setattr(changed, name, value)
        self._refuse_unless_kept(changed)
        self._save(serializer)

    def perform_destroy(self, instance: models.Model) -> None:
        self._refuse_unless_kept(instance)
        super().perform_destroy(instance)

    def _refuse_unless_kept(self, record: models.Model) -> None:
        if problem := shared_record_problem(self.request.user, record):
            raise Refused([problem])


class SupplierViewSet(SharedMasterDataViewSet):
    """Suppliers (配送商), shared by the alliance."""

    queryset = Supplier.objects.all()
    serializer_class = SupplierSerializer
    filter_backends = [api_filters.DjangoFilterBackend, SearchFilter]
    filterset_fields = ["uscc", "is_active"]
    search_fields = ["name", "uscc"]


class ManufacturerViewSet(SharedMasterDataViewSet):
    """Manufacturers and registrants (注册人), shared by the alliance."""

    queryset = Manufacturer.objects.all()
    serializer_class = ManufacturerSerializer
    filter_backends = [api_filters.DjangoFilterBackend, SearchFilter]
    filterset_fields = ["uscc", "country"]
    search_fields = ["name", "uscc"]


class CertificateViewSet(SharedMasterDataViewSet):
    """Licences and certificates (资质证照) of suppliers and manufacturers, shared by the alliance."""

    queryset = Certificate.objects.all()
    serializer_class = CertificateSerializer
    filter_backends = [api_filters.DjangoFilterBackend, SearchFilter]
    filterset_class = CertificateFilter
    search_fields = ["number"]


class ProductViewSet(HospitalOwnedViewSet):
    """The hospital's catalog (院内目录)."""

    queryset = Product.objects.prefetch_related("packaging_units")
    serializer_class = ProductSerializer
    filter_backends = [api_filters.DjangoFilterBackend, SearchFilter]
    filterset_class = ProductFilter
    search_fields = ["name", "specification"]


class SupplyAgreementViewSet(HospitalOwnedViewSet):
    """Supply agreements (供货协议): the price acceptance checks every delivery against."""

    queryset = SupplyAgreement.objects.all()
    serializer_class = SupplyAgreementSerializer
    filter_backends = [api_filters.DjangoFilterBackend]
    filterset_class = SupplyAgreementFilter


router = DefaultRouter()
router.register("hospitals", HospitalViewSet)
router.register("departments", DepartmentViewSet)
router.register("locations", LocationViewSet)
router.register("suppliers", SupplierViewSet)
router.register("manufacturers", ManufacturerViewSet)
router.register("certificates", CertificateViewSet)
router.register("products", ProductViewSet)
router.register("supply-agreements", SupplyAgreementViewSet)
