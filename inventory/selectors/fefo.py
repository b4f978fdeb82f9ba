"""First-expiry-first-out (FEFO, 近效期先出): which stock to take from a location for a product.

The proposal never offers expired stock (EXPIRED, or an expiry date already past), stock held in
quarantine or in transit on an alliance transfer, units that are not movable stock (taken, used, returned…), or stock another document
has reserved (`StockReservation`, e.g. another pick list line). It covers the quantity across as
many lots as needed, earliest expiry first (no expiry last, then lot, then id for a stable order),
and says how much it could not cover. Two queries at most, whatever the stock: this is a read;
`inventory/services/reservations.py` turns a proposal into reservations under row locks.
"""
import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from inventory.errors import Refusal, Refused
from inventory.models import Hospital, Location, LotBalance, Product, StockReservation, TrackingMode, Unit, UnitStatus

# Units at a location that may be moved on: accepted (not yet shelved), on a shelf, in a cabinet.
PICKABLE_UNIT_STATUSES = (UnitStatus.ACCEPTED, UnitStatus.IN_STOCK, UnitStatus.IN_CABINET)

Holder = tuple[str, int]


@dataclass(frozen=True)
class FefoPick:
    """One proposed take: a unit (quantity 1) or a quantity of one lot balance."""

    lot: str
    expiry: datetime.date | None
    quantity: int
    unit_id: int | None = None
    serial: str = ""
    lot_balance_id: int | None = None


@dataclass(frozen=True)
class FefoProposal:
    product: Product
    location: Location
    requested: int
    picks: list[FefoPick] = field(default_factory=list)

    @property
    def proposed(self) -> int:
        return sum(pick.quantity for pick in self.picks)

    @property
    def shortfall(self) -> int:
        return self.requested - self.proposed

    @property
    def is_complete(self) -> bool:
        return self.shortfall == 0

    @property
    def lots(self) -> list[str]:
        return list(dict.fromkeys(pick.lot for pick in self.picks))


def _active_reservations(ignoring: Iterable[Holder]) -> QuerySet[StockReservation]:
    held = StockReservation.objects.filter(is_active=True)
    for holder_type, holder_id in ignoring:
        held = held.exclude(holder_type=holder_type, holder_id=holder_id)
    return held


def available_units(
    *, hospital: Hospital, location: Location, product: Product, today: datetime.date | None = None,
    ignoring: Iterable[Holder] = (),
) -> QuerySet[Unit]:
    """Units of `product` at `location` that may be picked, in FEFO order."""
    today = today or timezone.localdate()
    if location.kind == Location.Kind.QUARANTINE or location.is_alliance_transit:
        return Unit.objects.none()
    reserved = _active_reservations(ignoring).filter(unit=OuterRef("pk"))
    return (
        Unit.objects.filter(
            hospital=hospital, product=product, location=location, status__in=PICKABLE_UNIT_STATUSES,
        )
        .filter(Q(expiry__isnull=True) | Q(expiry__gte=today))
        .exclude(Exists(reserved))
        .order_by(F("expiry").asc(nulls_last=True), "lot", "pk")
    )


def available_lots(
    *, hospital: Hospital, location: Location, product: Product, today: datetime.date | None = None,
    ignoring: Iterable[Holder] = (),
) -> QuerySet[LotBalance]:
    """Lot balances of `product` at `location` with something free to pick, in FEFO order,
    annotated with `free` = quantity − active reservations."""
    today = today or timezone.localdate()
    if location.kind == Location.Kind.QUARANTINE or location.is_alliance_transit:
        return LotBalance.objects.none()
    reserved = (
        _active_reservations(ignoring).filter(lot_balance=OuterRef("pk"))
        .order_by().values("lot_balance").annotate(total=Sum("quantity")).values("total")
    )
    return (
        LotBalance.objects.filter(hospital=hospital, product=product, location=location, quantity__gt=0)
        .filter(Q(expiry__isnull=True) | Q(expiry__gte=today))
        .annotate(free=F("quantity") - Coalesce(Subquery(reserved, output_field=IntegerField()), Value(0)))
        .filter(free__gt=0)
        .order_by(F("expiry").asc(nulls_last=True), "lot", "pk")
    )


def propose_fefo(
    *, hospital: Hospital, location: Location, product: Product, quantity: int, today: datetime.date | None = None,
    ignoring: Iterable[Holder] = (),
) -> FefoProposal:
    """What to take to cover `quantity` base units of `product` from `location`, first expiry first.

    Unit-tracked products get units, lot-tracked ones quantities of lots, split over as many lots
    as one cannot cover. `ignoring` names holders whose own reservations count as free (a line
    re-proposing for itself). Short stock is not an error: the proposal's `shortfall` says what is
    missing and the caller decides (partial fulfilment). Refused: QUANTITY_INVALID (not a whole
    number ≥ 1), NOT_FOUND (another hospital's product or location).
    """
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise Refused(Refusal.QUANTITY_INVALID)
    if location.hospital_id != hospital.pk:
        raise Refused(Refusal.NOT_FOUND, what="location")
    if product.hospital_id != hospital.pk:
        raise Refused(Refusal.NOT_FOUND, what="product")
    proposal = FefoProposal(product=product, location=location, requested=quantity)
    criteria = {"hospital": hospital, "location": location, "product": product, "today": today, "ignoring": ignoring}
    if product.tracking == TrackingMode.UNIT:
        for unit in available_units(**criteria).only("pk", "lot", "expiry", "serial")[:quantity]:
            proposal.picks.append(FefoPick(lot=unit.lot, expiry=unit.expiry, quantity=1, unit_id=unit.pk, serial=unit.serial))
        return proposal
    missing = quantity
    # Rows stream in FEFO order; the loop stops at the first lot that completes the quantity.
    for balance in available_lots(**criteria).only("pk", "lot", "expiry").iterator(chunk_size=50):
        take = min(balance.free, missing)
        proposal.picks.append(FefoPick(lot=balance.lot, expiry=balance.expiry, quantity=take, lot_balance_id=balance.pk))
        missing -= take
        if not missing:
            break
    return proposal


def fefo_acceptable(*, expiry: datetime.date | None, proposed_expiry: datetime.date | None) -> bool:
    """May stock expiring on `expiry` be picked where FEFO proposed stock expiring on `proposed_expiry`?

    The rule (a picker may take another lot than the proposed one when it is at hand): yes when it
    expires no later than the proposed one — taking older stock first is what FEFO wants — or on
    the same day. A later-expiring one is refused, because it would leave earlier stock to expire.
    Stock without an expiry date counts as expiring last.
    """
    if expiry is None:
        return proposed_expiry is None
    if proposed_expiry is None:
        return True
    return expiry <= proposed_expiry
