"""Django admin for IT and administrators. Stock never changes here: the ledger and the documents
that move stock are read-only; stock moves only through the services (API and web UI)."""
from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError
from django.db.models import URLField

from inventory import models
from inventory.errors import Refused
from inventory.services.replenishment import checked_par_level, delete_par_level, save_par_level


class ReadOnlyAdmin(admin.ModelAdmin):
    """Visible for inspection; changed only by the services that keep the ledger consistent."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (*BaseUserAdmin.fieldsets, ("SPD", {"fields": ("hospital", "departments", "badge")}))
    list_display = ("username", "last_name", "first_name", "hospital", "is_active", "is_superuser")
    list_filter = ("hospital", "groups", "is_active")


@admin.register(models.Hospital)
class HospitalAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "alliance", "is_lead")


@admin.register(models.Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "hospital", "kind")
    list_filter = ("hospital", "kind")


@admin.register(models.Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "hospital", "kind", "department", "return_deadline_hours", "is_active")
    list_filter = ("hospital", "kind", "is_active")


@admin.register(models.Supplier)
class SupplierAdmin(admin.ModelAdmin):
    list_display = ("name", "uscc", "is_active", "owner_hospital")
    list_filter = ("owner_hospital",)
    search_fields = ("name", "uscc")


@admin.register(models.Manufacturer)
class ManufacturerAdmin(admin.ModelAdmin):
    list_display = ("name", "country", "uscc", "owner_hospital")
    list_filter = ("owner_hospital",)
    search_fields = ("name",)


@admin.register(models.Certificate)
class CertificateAdmin(admin.ModelAdmin):
    list_display = ("kind", "number", "supplier", "manufacturer", "valid_from", "valid_to", "owner_hospital")
    list_filter = ("kind", "owner_hospital")
    search_fields = ("number",)


class PackagingUnitInline(admin.TabularInline):
    model = models.PackagingUnit
    extra = 0


@admin.register(models.Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("internal_code", "name", "specification", "hospital", "tracking", "is_consignment", "is_active")
    list_filter = ("hospital", "tracking", "is_high_value", "is_consignment", "expensed_on_issue")
    inlines = (PackagingUnitInline,)
    search_fields = ("internal_code", "name", "udi_di", "nhsa_code", "his_charge_code")


@admin.register(models.SupplyAgreement)
class SupplyAgreementAdmin(admin.ModelAdmin):
    list_display = ("product", "supplier", "unit_price", "valid_from", "valid_to", "is_active")
    list_filter = ("hospital", "supplier", "is_active")

    def get_readonly_fields(self, request: object, obj: models.SupplyAgreement | None = None) -> tuple[str, ...]:
        # A price changes only by a new dated agreement with a reason and an approver (services.prices).
        return ("unit_price",) if obj is not None else ()


class ParLevelAdminForm(forms.ModelForm):
    """The service's checks as form errors (nothing saved): the admin's save goes through it."""

    class Meta:
        model = models.ParLevel
        fields = ("location", "product", "minimum", "target", "maximum")

    def clean(self) -> dict:
        cleaned = super().clean()
        location = cleaned.get("location", self.instance.location if self.instance.pk else None)
        product = cleaned.get("product", self.instance.product if self.instance.pk else None)
        if location is not None and product is not None and cleaned.get("minimum") is not None:
            try:
                checked_par_level(location=location, product=product, minimum=cleaned["minimum"],
                                  target=cleaned.get("target"), maximum=cleaned.get("maximum"))
            except Refused as refused:
                raise ValidationError(refused.detail) from refused
        return cleaned


@admin.register(models.ParLevel)
class ParLevelAdmin(admin.ModelAdmin):
    """Saved and deleted by the replenishment service, as the SPD pages do: a par level's place and
    product are fixed once it exists (its suggestions were computed for them); to move one, delete it
    and add the new one."""

    form = ParLevelAdminForm
    list_display = ("location", "product", "minimum", "target", "maximum", "updated_by", "updated_at")

    def get_readonly_fields(self, request, obj: models.ParLevel | None = None) -> tuple[str, ...]:
        return ("location", "product", "updated_by", "updated_at") if obj is not None else ("updated_by", "updated_at")

    def save_model(self, request, obj, form, change) -> None:
        saved = save_par_level(user=request.user, location=obj.location, product=obj.product, minimum=obj.minimum,
                               target=obj.target, maximum=obj.maximum, par_level=obj if change else None)
        obj.pk, obj.updated_by, obj.updated_at = saved.pk, saved.updated_by, saved.updated_at

    def delete_model(self, request, obj) -> None:
        delete_par_level(par_level=obj, user=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for par_level in queryset:
            delete_par_level(par_level=par_level, user=request.user)


@admin.register(models.Movement)
class MovementAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "product", "unit", "lot", "quantity", "from_location", "to_location", "occurred_at")
    list_filter = ("hospital", "kind")
    search_fields = ("idempotency_key", "lot", "unit__serial")


for model in (
    models.Unit, models.LotBalance, models.DeliveryNote, models.AcceptanceRecord, models.StockOrder,
    models.Consumption, models.Charge, models.ChargeDelivery, models.CabinetSession, models.HisSettlementLine,
    models.SupplierSettlement, models.ReconciliationRun, models.Alert, models.TagBinding, models.LotCostLayer,
    models.LotMovementLayer, models.FindingDisposition, models.BackgroundJob,
):
    admin.site.register(model, ReadOnlyAdmin)


@admin.register(models.NotificationRule)
class NotificationRuleAdmin(admin.ModelAdmin):
    """Who hears of which alerts, by e-mail or group robot (model.clean checks each channel's target)."""

    list_display = ("name", "hospital", "kind", "channel", "min_severity", "quiet_start", "quiet_end", "digest",
                    "is_active")
    list_filter = ("hospital", "channel", "kind", "min_severity", "is_active")
    search_fields = ("name", "recipients")
    formfield_overrides = {URLField: {"assume_scheme": "https"}}


@admin.register(models.Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "rule", "severity", "status", "attempts", "next_attempt_at", "sent_at", "subject")
    list_filter = ("hospital", "status", "kind")
    search_fields = ("subject", "dedup_key")


@admin.register(models.VbpContract)
class VbpContractAdmin(admin.ModelAdmin):
    """VBP contracts are entered here; their progress is on /purchasing/vbp/ and the API."""

    list_display = ("number", "name", "ratio", "start_date", "period", "owner_hospital")
    filter_horizontal = ("products", "substitutes")


admin.site.register(models.VbpAllocation)


# Consumable review (docs/review.md): watched items, monthly revenue from the HIS, 耗占比 red lines.
@admin.register(models.WatchedItem)
class WatchedItemAdmin(admin.ModelAdmin):
    list_display = ("product", "hospital", "reason", "is_active")
    list_filter = ("hospital", "is_active")
    raw_id_fields = ("product",)


@admin.register(models.DepartmentRevenue)
class DepartmentRevenueAdmin(admin.ModelAdmin):
    list_display = ("department", "month", "revenue", "import_batch", "imported_at")
    list_filter = ("hospital",)


@admin.register(models.RatioRedLine)
class RatioRedLineAdmin(admin.ModelAdmin):
    list_display = ("department", "hospital", "max_percent")
    list_filter = ("hospital",)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ClinicalTeamMemberInline(ReadOnlyInline):
    model = models.ClinicalTeamMember


@admin.register(models.ClinicalTeam)
class ClinicalTeamAdmin(ReadOnlyAdmin):
    """Clinical teams (诊疗组) and their doctors with dated membership: a use is reviewed under the
    team its doctor was in on the day. Read-only here: they are kept on /clinical-teams/ and over
    the API, where services.clinical_teams refuses a doctor in two teams of a department on a day."""
    list_display = ("code", "name", "department", "hospital", "is_active")
    list_filter = ("hospital", "is_active")
    search_fields = ("code", "name", "members__doctor")
    inlines = [ClinicalTeamMemberInline]


# Supplier evaluation (docs/evaluation.md): sets and runs are made and scored through the services
# (they collect the computed values, freeze a used set, check AHP matrices and score ranges); here
# they are inspected, and a draft corrected. What is settled stays read-only: a finalised run with
# its suppliers, values and weights (the database refuses changing them too), and a frozen set.

class IndicatorInline(admin.TabularInline):
    model = models.Indicator
    fk_name = "indicator_set"
    extra = 0
    fields = ("code", "name", "parent", "position", "source", "direction", "weight", "score_min", "score_max")

    def has_add_permission(self, request, obj=None) -> bool:
        return obj is None or not obj.is_frozen

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or not obj.is_frozen

    def has_delete_permission(self, request, obj=None) -> bool:
        return obj is None or not obj.is_frozen


@admin.register(models.IndicatorSet)
class IndicatorSetAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "hospital", "created_by", "created_at", "frozen_at")
    list_filter = ("hospital",)
    readonly_fields = ("created_by", "created_at", "frozen_at")
    inlines = [IndicatorInline]

    def has_add_permission(self, request) -> bool:
        return False  # a set is made by the service (a new version, or the seeds' default set)

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or not obj.is_frozen

    def has_delete_permission(self, request, obj=None) -> bool:
        return obj is None or not obj.is_frozen


class EvaluatedSupplierInline(ReadOnlyInline):
    model = models.EvaluatedSupplier
    fields = ("supplier", "score", "rank")


class EvaluationValueInline(ReadOnlyInline):
    model = models.EvaluationValue
    fields = ("supplier", "indicator", "value", "basis", "entered_by", "entered_at")


class EvaluationWeightInline(ReadOnlyInline):
    model = models.EvaluationWeight
    fields = ("indicator", "weight")


@admin.register(models.EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    list_display = ("name", "hospital", "period_start", "period_end", "weighting", "scoring", "status", "finalised_at")
    list_filter = ("hospital", "status")
    search_fields = ("name",)
    # A draft's name can be corrected here; its period, method, scores and finalisation go through
    # the services only (they collect the computed values and check what is entered).
    readonly_fields = ("hospital", "indicator_set", "period_start", "period_end", "weighting", "scoring", "ahp_matrix", "ahp_cr", "status",
                       "created_by", "created_at", "finalised_by", "finalised_at", "report_csv", "report_xlsx",
                       "report_pdf", "csv_sha256", "xlsx_sha256", "pdf_sha256")
    inlines = [EvaluatedSupplierInline, EvaluationValueInline, EvaluationWeightInline]

    def has_add_permission(self, request) -> bool:
        return False  # a run is made by the service, which collects its computed values

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or not obj.is_final

    def has_delete_permission(self, request, obj=None) -> bool:
        return obj is None or not obj.is_final
