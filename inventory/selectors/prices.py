"""A product's price timeline: every supply agreement it was bought under, with the change that
started each one (reason, approver) — read from the agreements themselves, not from a copy."""
import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from inventory.models import PriceChange, Product, SupplyAgreement


@dataclass(frozen=True)
class PricePeriod:
    agreement: SupplyAgreement
    change: PriceChange | None  # the change that started this agreement; None: the first price

    @property
    def unit_price(self) -> Decimal:
        return self.agreement.unit_price

    def in_force_on(self, day: datetime.date) -> bool:
        return self.agreement.is_active and self.agreement.valid_from <= day <= self.agreement.valid_to

    @property
    def in_force(self) -> bool:
        return self.in_force_on(timezone.localdate())


def price_timeline(product: Product) -> list[PricePeriod]:
    """The product's agreements per supplier, oldest first, each with the change that started it."""
    agreements = SupplyAgreement.objects.filter(product=product).select_related(
        "supplier", "price_change__approved_by", "price_change__recorded_by"
    ).order_by("supplier__name", "supplier_id", "valid_from", "pk")
    return [PricePeriod(agreement, getattr(agreement, "price_change", None)) for agreement in agreements]
