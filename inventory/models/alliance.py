"""The county alliance's catalog (医共体统一目录): entries the lead hospital keeps, the alliance's supply
agreements and VBP contracts for them, and the price changes of those agreements.

The alliance itself is `Hospital.alliance` (its name) with one `Hospital.is_lead`; its members are
the hospitals of the same name (inventory/alliance.py). A member adopts an entry by linking one of
its own products to it (`Product.alliance_entry`): the product keeps the member's internal code and
HIS charge code, while name, specification, classes and the alliance's prices come from the entry
(services.alliance_catalog). Member agreements made from an alliance agreement point back to it
(`SupplyAgreement.alliance_agreement`), so a price change of the alliance reaches each of them.
"""
from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inventory.models.catalog import TrackingMode


class AllianceEntry(models.Model):
    """One product of the alliance catalog (联盟目录条目), identified in its alliance by UDI-DI."""

    alliance = models.CharField(_("county alliance (医共体)"), max_length=200)
    keeper = models.ForeignKey(
        "inventory.Hospital", on_delete=models.PROTECT, related_name="+", verbose_name=_("kept by (维护医院)"),
        help_text=_("The lead hospital (or the alliance SPD centre) that keeps the alliance catalog."),
    )
    code = models.CharField(_("alliance code (联盟编码)"), max_length=32)
    name = models.CharField(_("name"), max_length=200)
    specification = models.CharField(_("specification / model (规格型号)"), max_length=200, blank=True)
    category = models.CharField(_("class (分类)"), max_length=100, blank=True)
    udi_di = models.CharField(_("UDI-DI"), max_length=64)
    nhsa_code = models.CharField(_("医保耗材编码"), max_length=32, blank=True)
    manufacturer = models.ForeignKey("inventory.Manufacturer", on_delete=models.PROTECT, related_name="+")
    registration_certificate = models.ForeignKey(
        "inventory.Certificate", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    unit_of_measure = models.CharField(_("base unit (库存单位)"), max_length=16, default="个")
    is_high_value = models.BooleanField(_("high value (高值)"), default=False)
    tracking = models.CharField(_("tracking mode"), max_length=4, choices=TrackingMode.choices)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("alliance catalog entry (联盟目录)")
        ordering = ["alliance", "code"]
        constraints = [
            models.UniqueConstraint(fields=["alliance", "code"], name="alliance_entry_code"),
            models.UniqueConstraint(fields=["alliance", "udi_di"], name="alliance_entry_di"),
            models.CheckConstraint(condition=~Q(alliance=""), name="alliance_entry_has_alliance"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class AllianceAgreement(models.Model):
    """The alliance's supply agreement for an entry (联盟供货协议), possibly under a VBP contract.

    Like a hospital's agreement its price is never edited in place: a change is a new dated
    agreement (services.alliance_catalog.change_alliance_price), and it flows to the members."""

    entry = models.ForeignKey(AllianceEntry, on_delete=models.PROTECT, related_name="agreements")
    supplier = models.ForeignKey("inventory.Supplier", on_delete=models.PROTECT, related_name="+")
    unit_price = models.DecimalField(
        _("purchase price"), max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    valid_from = models.DateField(_("valid from"))
    valid_to = models.DateField(_("valid to"))
    platform_reference = models.CharField(_("procurement platform reference"), max_length=64, blank=True)
    vbp_contract = models.CharField(_("VBP contract (集采合同)"), max_length=64, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("alliance supply agreement")
        ordering = ["entry", "-valid_from"]
        constraints = [
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="alliance_agreement_price_not_negative"),
            models.CheckConstraint(condition=Q(valid_to__gte=models.F("valid_from")), name="alliance_agreement_dates"),
        ]

    def __str__(self) -> str:
        return f"{self.supplier} × {self.entry} @ {self.unit_price}"


class AlliancePriceChange(models.Model):
    """A price change of an alliance agreement (联盟调价): what each member's own change came from."""

    entry = models.ForeignKey(AllianceEntry, on_delete=models.PROTECT, related_name="price_changes")
    previous = models.ForeignKey(AllianceAgreement, on_delete=models.PROTECT, related_name="+")
    agreement = models.ForeignKey(AllianceAgreement, on_delete=models.PROTECT, related_name="+")
    old_price = models.DecimalField(_("old price"), max_digits=12, decimal_places=2)
    new_price = models.DecimalField(_("new price"), max_digits=12, decimal_places=2)
    effective_from = models.DateField(_("effective from"))
    reason = models.CharField(_("reason"), max_length=500)
    approved_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    recorded_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    members_changed = models.PositiveIntegerField(_("member agreements changed"), default=0)

    class Meta:
        verbose_name = _("alliance price change (联盟调价)")
        ordering = ["-recorded_at"]

    def __str__(self) -> str:
        return f"{self.entry}: {self.old_price} → {self.new_price}"
