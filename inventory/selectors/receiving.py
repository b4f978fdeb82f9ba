"""What an acceptance looks like line by line and per product, for the people checking a delivery
against the paper delivery note (送货单) and for the printed acceptance record (验收单).

Decided lines are shown as decided; open lines as acceptance would decide them now
(`services.receiving.preview_note`): accepted, rejected, or a unit nobody scanned yet (unverified).
"""
from dataclasses import dataclass, field
from decimal import Decimal

from inventory.models import AcceptanceRecord, DeliveryLine, DeliveryNote
from inventory.services.receiving import LinePreview, needs_scan, preview_note

ACCEPT, REJECT, UNVERIFIED = "accept", "reject", "unverified"


@dataclass(frozen=True)
class ReviewLine:
    """One line of the note with its verdict: decided (`record`) or as acceptance would decide now."""

    line: DeliveryLine
    verdict: str
    reasons: list[dict]
    record: AcceptanceRecord | None = None

    @property
    def decided(self) -> bool:
        return self.record is not None

    @property
    def accepted(self) -> bool:
        return self.verdict == ACCEPT

    @property
    def scanned(self) -> bool:
        return self.line.scanned_at is not None

    @property
    def amount(self) -> Decimal:
        """What the accepted quantity costs the hospital (a gift costs nothing)."""
        if self.record is not None and self.record.is_gift:
            return Decimal("0.00")
        return self.line.unit_price * self.line.quantity


@dataclass
class ProductTotal:
    """One product's quantities on the note: delivered, and how many are accepted, rejected or unverified."""

    code: str
    name: str
    specification: str
    lines: int = 0
    delivered: int = 0
    accepted: int = 0
    rejected: int = 0
    unverified: int = 0
    accepted_amount: Decimal = Decimal("0.00")


@dataclass
class AcceptanceReview:
    note: DeliveryNote
    lines: list[ReviewLine]
    products: list[ProductTotal] = field(default_factory=list)

    def of(self, verdict: str) -> list[ReviewLine]:
        return [line for line in self.lines if line.verdict == verdict]

    @property
    def tally(self) -> dict[str, int]:
        """The counts a scanning person watches: lines, scanned, accepted, rejected, not yet scanned."""
        return {
            "lines": len(self.lines),
            "scanned": sum(1 for line in self.lines if line.scanned),
            "accept": sum(1 for line in self.lines if line.verdict == ACCEPT),
            "reject": sum(1 for line in self.lines if line.verdict == REJECT),
            "unverified": sum(1 for line in self.lines if line.verdict == UNVERIFIED),
        }

    @property
    def totals(self) -> ProductTotal:
        total = ProductTotal(code="", name="", specification="")
        for product in self.products:
            total.lines += product.lines
            total.delivered += product.delivered
            total.accepted += product.accepted
            total.rejected += product.rejected
            total.unverified += product.unverified
            total.accepted_amount += product.accepted_amount
        return total

    @property
    def open_count(self) -> int:
        return sum(1 for line in self.lines if not line.decided)


def review_line(preview: LinePreview) -> ReviewLine:
    verdict = REJECT if preview.problems else UNVERIFIED if needs_scan(preview.line) else ACCEPT
    return ReviewLine(preview.line, verdict, [problem.as_dict() for problem in preview.problems])


def acceptance_review(note: DeliveryNote) -> AcceptanceReview:
    """Every line of the note in line order with its verdict, and the totals per product."""
    decided = [
        ReviewLine(
            line, ACCEPT if line.acceptance.decision == AcceptanceRecord.Decision.ACCEPTED else REJECT,
            line.acceptance.reasons, line.acceptance,
        )
        for line in note.lines.filter(acceptance__isnull=False).select_related(
            "product", "acceptance__decided_by", "unit", "scanned_by"
        )
    ]
    lines = sorted(decided + [review_line(preview) for preview in preview_note(note)], key=lambda r: r.line.line_no)
    return AcceptanceReview(note, lines, product_totals(lines))


def product_totals(lines: list[ReviewLine]) -> list[ProductTotal]:
    """Quantities per product, in the order products first appear on the note; lines whose product
    is not in the catalog are counted together under their raw code's absence ("?")."""
    totals: dict[object, ProductTotal] = {}
    for review in lines:
        product = review.line.product
        key = product.pk if product else None
        total = totals.get(key)
        if total is None:
            total = totals[key] = ProductTotal(
                code=product.internal_code if product else "?", name=product.name if product else "",
                specification=product.specification if product else "",
            )
        quantity = review.line.quantity
        total.lines += 1
        total.delivered += quantity
        if review.verdict == ACCEPT:
            total.accepted += quantity
            total.accepted_amount += review.amount
        elif review.verdict == REJECT:
            total.rejected += quantity
        else:
            total.unverified += quantity
    return list(totals.values())
