from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class TrackingMode(models.TextChoices):
    UNIT = "UNIT", _("Per unit (一物一码)")
    LOT = "LOT", _("Per lot")


class Product(models.Model):
    """A catalog item of one hospital (院内目录), identified by its UDI-DI."""

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="products")
    internal_code = models.CharField(_("internal code (院内码)"), max_length=32)
    name = models.CharField(_("name"), max_length=200)
    specification = models.CharField(_("specification / model (规格型号)"), max_length=200, blank=True)
    category = models.CharField(_("category"), max_length=100, blank=True)
    manufacturer = models.ForeignKey("inventory.Manufacturer", on_delete=models.PROTECT, related_name="products")
    registration_certificate = models.ForeignKey(
        "inventory.Certificate", null=True, blank=True, on_delete=models.PROTECT, related_name="products"
    )
    udi_di = models.CharField(_("UDI-DI"), max_length=64, help_text=_("GTIN-14 or another issuer's DI"))
    nhsa_code = models.CharField(_("医保耗材编码"), max_length=32, blank=True)
    his_charge_code = models.CharField(_("HIS charge code"), max_length=32, blank=True)
    unit_of_measure = models.CharField(_("unit of measure"), max_length=16, default="个")
    is_high_value = models.BooleanField(_("high value (高值)"), default=False)
    tracking = models.CharField(_("tracking mode"), max_length=4, choices=TrackingMode.choices)
    storage_min_c = models.DecimalField(
        _("lowest storage temperature °C"), max_digits=5, decimal_places=1, null=True, blank=True
    )
    storage_max_c = models.DecimalField(
        _("highest storage temperature °C"), max_digits=5, decimal_places=1, null=True, blank=True
    )
    is_consignment = models.BooleanField(_("consignment (寄售)"), default=False)
    min_shelf_life_days = models.PositiveIntegerField(
        _("minimum remaining shelf life at acceptance (days)"), null=True, blank=True,
        help_text=_("Empty: the site default (SPD_MIN_SHELF_LIFE_DAYS)."),
    )
    return_deadline_hours = models.PositiveIntegerField(
        _("return deadline for taken units (hours)"), null=True, blank=True,
        help_text=_("Empty: the deadline of the location the unit was taken from."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("product")
        ordering = ["hospital", "internal_code"]
        constraints = [
            models.UniqueConstraint(fields=["hospital", "internal_code"], name="product_code_per_hospital"),
            models.UniqueConstraint(fields=["hospital", "udi_di"], name="product_di_per_hospital"),
        ]

    def __str__(self) -> str:
        return f"{self.internal_code} {self.name}"

    @property
    def is_cold_chain(self) -> bool:
        return self.storage_min_c is not None or self.storage_max_c is not None


class SupplyAgreement(models.Model):
    """Supplier × product × purchase price × validity (供货协议), from the procurement platform."""

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="agreements")
    supplier = models.ForeignKey("inventory.Supplier", on_delete=models.PROTECT, related_name="agreements")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="agreements")
    unit_price = models.DecimalField(
        _("purchase price"), max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    valid_from = models.DateField(_("valid from"))
    valid_to = models.DateField(_("valid to"))
    platform_reference = models.CharField(_("procurement platform reference"), max_length=64, blank=True)
    vbp_contract = models.CharField(_("VBP contract (集采合同)"), max_length=64, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("supply agreement")
        ordering = ["hospital", "product", "-valid_from"]
        constraints = [
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="agreement_price_not_negative"),
            models.CheckConstraint(condition=Q(valid_to__gte=models.F("valid_from")), name="agreement_dates"),
        ]

    def __str__(self) -> str:
        return f"{self.supplier} × {self.product} @ {self.unit_price}"
