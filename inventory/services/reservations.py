"""Reserving stock for a document that will move it later (pick lists; packs being assembled).

`reserve_fefo` takes the FEFO proposal (`inventory/selectors/fefo.py`) and holds it: nobody else
is then proposed those units or that part of a lot. Lock order as everywhere: the candidate units
(by id), then the candidate lot balances (by id); the proposal is computed after the locks are
held, so two reservers of one product at one location queue and the second sees what the first
reserved. A unit's reservation is also unique in the database (partial UNIQUE index).
"""
from django.db import transaction
from django.utils import timezone

from inventory.models import Hospital, Location, LotBalance, Product, StockReservation, TrackingMode, Unit
from inventory.selectors.fefo import PICKABLE_UNIT_STATUSES, FefoProposal, Holder, propose_fefo


def reserve_fefo(
    *, hospital: Hospital, location: Location, product: Product, quantity: int, holder: Holder,
) -> tuple[FefoProposal, list[StockReservation]]:
    """Reserve up to `quantity` of `product` at `location` for `holder`, first expiry first out.

    Returns the proposal (its `shortfall` is what could not be reserved) and the reservations
    written, one per unit or per lot. Nothing is moved and nothing is written to the ledger.
    """
    with transaction.atomic():
        lock_for_reserving(location=location, product=product)
        proposal = propose_fefo(hospital=hospital, location=location, product=product, quantity=quantity)
        reservations = StockReservation.objects.bulk_create(
            StockReservation(
                hospital=hospital, product=product, location=location, unit_id=pick.unit_id,
                lot_balance_id=pick.lot_balance_id, lot=pick.lot, expiry=pick.expiry, quantity=pick.quantity,
                holder_type=holder[0], holder_id=holder[1],
            )
            for pick in proposal.picks
        )
        return proposal, reservations


def lock_for_reserving(*, location: Location, product: Product) -> None:
    """Take the row locks a reservation of `product` at `location` needs (see the module docstring);
    also for services that swap reservations inside their own transaction."""
    if product.tracking == TrackingMode.UNIT:
        list(
            Unit.objects.select_for_update(of=("self",)).filter(
                product=product, location=location, status__in=PICKABLE_UNIT_STATUSES
            ).order_by("pk").values_list("pk", flat=True)
        )
    else:
        list(
            LotBalance.objects.select_for_update().filter(product=product, location=location)
            .order_by("pk").values_list("pk", flat=True)
        )


def release_reservations(*, holder_type: str, holder_ids: list[int]) -> int:
    """End the active reservations of these holders (stock moved, line cancelled); returns how many."""
    return StockReservation.objects.filter(
        holder_type=holder_type, holder_id__in=holder_ids, is_active=True
    ).update(is_active=False, released_at=timezone.now())
