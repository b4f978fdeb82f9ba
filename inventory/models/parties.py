import datetime

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from inventory.validators import validate_uscc


class Supplier(models.Model):
    """A supplier or distributor (配送商). Shared by the hospitals of one instance, kept by one of them."""

    name = models.CharField(_("name"), max_length=200)
    uscc = models.CharField(
        _("unified social credit code (统一社会信用代码)"), max_length=18, unique=True, validators=[validate_uscc]
    )
    contact = models.CharField(_("contact"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    # Shared by the alliance, kept by one hospital: it (or an alliance steward) alone may change the
    # record — see selectors.scope.shared_record_problem.
    owner_hospital = models.ForeignKey(
        "inventory.Hospital", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("kept by (维护医院)"),
        help_text=_("The hospital that entered this shared record and keeps it up to date; empty: the alliance."),
    )

    class Meta:
        verbose_name = _("supplier")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Manufacturer(models.Model):
    """A manufacturer or registrant (注册人). Foreign manufacturers have no USCC."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    uscc = models.CharField(
        _("unified social credit code"), max_length=18, blank=True, validators=[validate_uscc]
    )
    country = models.CharField(_("country"), max_length=2, default="CN")
    # Shared by the alliance, kept by one hospital: it (or an alliance steward) alone may change the
    # record — see selectors.scope.shared_record_problem.
    owner_hospital = models.ForeignKey(
        "inventory.Hospital", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("kept by (维护医院)"),
        help_text=_("The hospital that entered this shared record and keeps it up to date; empty: the alliance."),
    )

    class Meta:
        verbose_name = _("manufacturer")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Certificate(models.Model):
    """A licence or certificate (资质证照) held by a supplier or a manufacturer."""

    class Kind(models.TextChoices):
        BUSINESS_LICENCE = "BUSINESS_LICENCE", _("Business licence (营业执照)")
        DISTRIBUTION_LICENCE = "DISTRIBUTION_LICENCE", _("Device distribution licence (经营许可证)")
        PRODUCTION_LICENCE = "PRODUCTION_LICENCE", _("Device production licence (生产许可证)")
        REGISTRATION = "REGISTRATION", _("Product registration certificate (注册证)")
        AUTHORISATION = "AUTHORISATION", _("Authorisation letter (授权书)")

    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    number = models.CharField(_("number"), max_length=100)
    supplier = models.ForeignKey(
        Supplier, null=True, blank=True, on_delete=models.PROTECT, related_name="certificates"
    )
    manufacturer = models.ForeignKey(
        Manufacturer, null=True, blank=True, on_delete=models.PROTECT, related_name="certificates"
    )
    valid_from = models.DateField(_("valid from"))
    valid_to = models.DateField(_("valid to"))
    # Shared by the alliance, kept by one hospital: it (or an alliance steward) alone may change the
    # record — see selectors.scope.shared_record_problem.
    owner_hospital = models.ForeignKey(
        "inventory.Hospital", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("kept by (维护医院)"),
        help_text=_("The hospital that entered this shared record and keeps it up to date; empty: the alliance."),
    )
    # The scanned certificate (PDF or image) a supplier uploaded through the portal (services.portal).
    file = models.FileField(_("scanned certificate"), upload_to="certificates/%Y/%m/", blank=True, default="")
    uploaded_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("uploaded by"),
    )

    class Meta:
        verbose_name = _("certificate")
        ordering = ["valid_to"]
        constraints = [
            models.CheckConstraint(
                condition=Q(supplier__isnull=False, manufacturer__isnull=True)
                | Q(supplier__isnull=True, manufacturer__isnull=False),
                name="certificate_has_one_holder",
            ),
            models.CheckConstraint(condition=Q(valid_to__gte=models.F("valid_from")), name="certificate_dates"),
            models.UniqueConstraint(fields=["kind", "number"], name="certificate_number_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.number}"

    def is_valid_on(self, day: datetime.date) -> bool:
        return self.valid_from <= day <= self.valid_to
