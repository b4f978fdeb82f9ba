"""Volume-based procurement contracts (带量采购, VBP): agreed volumes and how use keeps pace with them.

A contract binds a hospital, or the alliance (医共体) through several hospitals, to buy an agreed
volume of its products over a period: each hospital's reported demand × the contract's ratio
(e.g. 60–80 %). The period starts at the execution date and runs one year, two years or to a fixed
end; extensions (顺延) are dated records, the latest giving the end. Progress and alerts are
`services.vbp` — volume used comes from the ledger's consumptions, never typed in.
"""
import datetime
import math
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class VbpContract(models.Model):
    class Period(models.TextChoices):
        ONE_YEAR = "ONE_YEAR", _("1 year")
        TWO_YEARS = "TWO_YEARS", _("2 years")
        FIXED = "FIXED", _("Fixed end date")

    number = models.CharField(_("contract number"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    owner_hospital = models.ForeignKey(
        "inventory.Hospital", on_delete=models.PROTECT, related_name="+", verbose_name=_("kept by (维护医院)")
    )
    products = models.ManyToManyField("inventory.Product", related_name="vbp_contracts", verbose_name=_("VBP products"))
    substitutes = models.ManyToManyField(
        "inventory.Product", blank=True, related_name="+", verbose_name=_("non-VBP substitutes"),
        help_text=_("Products whose use in place of the contract's is alerted."),
    )
    ratio = models.DecimalField(
        _("agreed share of the reported demand"), max_digits=4, decimal_places=3,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("1"))],
    )
    start_date = models.DateField(_("execution start date"))
    period = models.CharField(_("period"), max_length=16, choices=Period.choices)
    fixed_end_date = models.DateField(_("fixed end date"), null=True, blank=True)
    lag_threshold = models.DecimalField(
        _("lag threshold (percentage points)"), max_digits=5, decimal_places=2, default=Decimal("10"),
    )
    renewal_notice_days = models.PositiveIntegerField(_("renewal notice (days before the end)"), default=90)

    class Meta:
        verbose_name = _("VBP contract (带量采购合同)")
        ordering = ["-start_date", "number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(period="FIXED", fixed_end_date__isnull=False) | (~Q(period="FIXED") & Q(fixed_end_date=None)),
                name="vbp_fixed_end_only_for_fixed_period",
            ),
            models.CheckConstraint(condition=Q(ratio__gt=0, ratio__lte=1), name="vbp_ratio_range"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"

    @property
    def planned_end(self) -> datetime.date:
        if self.period == self.Period.FIXED:
            return self.fixed_end_date
        years = 1 if self.period == self.Period.ONE_YEAR else 2
        try:
            anniversary = self.start_date.replace(year=self.start_date.year + years)
        except ValueError:  # 29 February
            anniversary = self.start_date.replace(year=self.start_date.year + years, day=28)
        return anniversary - datetime.timedelta(days=1)

    def end_date(self) -> datetime.date:
        """The planned end, or the latest extension's (顺延)."""
        extension = self.extensions.order_by("-new_end_date").first()
        return max(self.planned_end, extension.new_end_date) if extension else self.planned_end


class VbpAllocation(models.Model):
    """One hospital's part of a contract: its reported demand, and from it the agreed volume."""

    contract = models.ForeignKey(VbpContract, on_delete=models.CASCADE, related_name="allocations")
    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="vbp_allocations")
    reported_demand = models.PositiveIntegerField(_("reported demand"))

    class Meta:
        verbose_name = _("VBP allocation")
        constraints = [models.UniqueConstraint(fields=["contract", "hospital"], name="vbp_allocation_unique")]

    def __str__(self) -> str:
        return f"{self.contract} · {self.hospital}"

    @property
    def agreed_volume(self) -> int:
        """Reported demand × ratio, rounded up: the volume the hospital is bound to buy."""
        return math.ceil(self.reported_demand * self.contract.ratio)


class VbpExtension(models.Model):
    """An extension (顺延) of a contract's period: a dated record, never an edit of the contract."""

    contract = models.ForeignKey(VbpContract, on_delete=models.PROTECT, related_name="extensions")
    new_end_date = models.DateField(_("new end date"))
    reason = models.CharField(_("reason"), max_length=500)
    recorded_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        verbose_name = _("VBP extension (顺延)")
        ordering = ["contract", "new_end_date"]
        constraints = [models.CheckConstraint(condition=~Q(reason=""), name="vbp_extension_has_reason")]

    def __str__(self) -> str:
        return f"{self.contract} → {self.new_end_date}"
