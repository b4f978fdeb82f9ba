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
    unit_of_measure = models.CharField(
        _("base unit (库存单位)"), max_length=16, default="个",
        help_text=_("The unit stock, the ledger and uses are counted in; packaging units are whole multiples of it."),
    )
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
    expensed_on_issue = models.BooleanField(
        _("expensed to the department (科室领用即消耗)"), default=False,
        help_text=_(
            "A non-chargeable item (gauze, gloves): it has no HIS charge code, is never billed to a patient, "
            "and is expensed to the department when the department receives it or counts it."
        ),
    )

    # Adopted from the county alliance's catalog (医共体统一目录): name, specification, classes and the
    # alliance's prices follow the entry (services.alliance_catalog); codes stay the member's own.
    alliance_entry = models.ForeignKey(
        "inventory.AllianceEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="member_products",
        verbose_name=_("alliance catalog entry"),
    )

    class Meta:
        verbose_name = _("product")
        ordering = ["hospital", "internal_code"]
        constraints = [
            models.UniqueConstraint(fields=["hospital", "internal_code"], name="product_code_per_hospital"),
            models.UniqueConstraint(fields=["hospital", "udi_di"], name="product_di_per_hospital"),
            # Expensed items are the non-chargeable ones: a charge code would say the opposite. They
            # are counted by lot (a unit-tracked item is high-value and billed per unit).
            models.CheckConstraint(
                condition=Q(expensed_on_issue=False) | Q(his_charge_code="", tracking="LOT"),
                name="expensed_product_not_chargeable",
            ),
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
    # Made from the alliance's agreement when the product was adopted (or by an alliance price change).
    alliance_agreement = models.ForeignKey(
        "inventory.AllianceAgreement", null=True, blank=True, on_delete=models.PROTECT,
        related_name="member_agreements", verbose_name=_("alliance agreement"),
    )

    class Meta:
        verbose_name = _("supply agreement")
        ordering = ["hospital", "product", "-valid_from"]
        constraints = [
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="agreement_price_not_negative"),
            models.CheckConstraint(condition=Q(valid_to__gte=models.F("valid_from")), name="agreement_dates"),
        ]

    def __str__(self) -> str:
        return f"{self.supplier} × {self.product} @ {self.unit_price}"


class PackagingUnit(models.Model):
    """A named packaging of a product (包装单位: 盒, 箱) holding a whole number of base units.

    Stock and the ledger stay in the product's base unit (`Product.unit_of_measure`); a packaging
    unit only converts quantities at the edges: a delivery received in the purchase unit, a charge
    sent in the billing unit (约定计价单位), a quantity shown as "3 盒 4 支". A product without a
    flagged packaging unit buys and bills in its base unit (factor 1). Opening a box (拆零) is no
    movement: a partial box is simply base units.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="packaging_units")
    name = models.CharField(_("unit name"), max_length=16)
    factor = models.PositiveIntegerField(
        _("base units per unit"), validators=[MinValueValidator(2)],
        help_text=_("How many base units one of this unit holds (e.g. 盒 = 10 支)."),
    )
    is_purchase_unit = models.BooleanField(_("purchase unit (采购单位)"), default=False)
    is_billing_unit = models.BooleanField(_("billing unit (约定计价单位)"), default=False)

    class Meta:
        verbose_name = _("packaging unit")
        ordering = ["product", "-factor"]
        constraints = [
            models.UniqueConstraint(fields=["product", "name"], name="packaging_unit_name_per_product"),
            models.UniqueConstraint(fields=["product", "factor"], name="packaging_unit_factor_per_product"),
            models.UniqueConstraint(
                fields=["product"], condition=Q(is_purchase_unit=True), name="one_purchase_unit_per_product"
            ),
            models.UniqueConstraint(
                fields=["product"], condition=Q(is_billing_unit=True), name="one_billing_unit_per_product"
            ),
            models.CheckConstraint(condition=Q(factor__gte=2), name="packaging_unit_factor_above_one"),
            models.CheckConstraint(condition=~Q(name=""), name="packaging_unit_named"),
        ]

    def __str__(self) -> str:
        return f"{self.name} = {self.factor} {self.product.unit_of_measure}"
