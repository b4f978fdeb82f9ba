"""FEFO proposals (inventory/selectors/fefo.py) and reservations (inventory/services/reservations.py)."""
import datetime
from decimal import Decimal

import pytest

from inventory.errors import Refused
from inventory.models import LotBalance, StockReservation, Unit
from inventory.selectors.fefo import fefo_acceptable, propose_fefo
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.reservations import release_reservations, reserve_fefo
from tests import factories
from tests.conftest import scan_every_line
from tests.factories import TODAY, gs1_udi

pytestmark = pytest.mark.django_db

HOLDER = ("PICK_LIST_LINE", 1)


def receive(actor, supplier, location, lines, number):
    note = receive_delivery_note(
        actor=actor, hospital=location.hospital, supplier=supplier, number=number, receiving_location=location,
        lines=lines, idempotency_key=f"rcv-{number}",
    )
    scan_every_line(actor, note)
    accept_delivery_note(actor=actor, note=note, idempotency_key=f"acc-{number}")


def days(n):
    return TODAY + datetime.timedelta(days=n)


@pytest.fixture
def two_lots(keeper_actor, supplier, warehouse, lot_product):
    """Lot EARLY (3, expires in 200 days) and lot LATE (10, in 600 days), received late one first."""
    receive(keeper_actor, supplier, warehouse, [
        LineInput(Decimal("3.50"), product=lot_product, lot="LATE", expiry=days(600), quantity=10),
        LineInput(Decimal("3.50"), product=lot_product, lot="EARLY", expiry=days(200), quantity=3),
    ], "DN-LOTS")
    return {b.lot: b for b in LotBalance.objects.filter(product=lot_product, location=warehouse)}


@pytest.fixture
def three_units(keeper_actor, supplier, warehouse, product):
    """Units U-LATE (700 days), U-MID (400), U-SOON (300): received in that order."""
    lines = [
        LineInput(Decimal("1200.00"), udi=gs1_udi(product.udi_di, serial=serial, lot=f"B{serial}", expiry=days(d)))
        for serial, d in (("U-LATE", 700), ("U-MID", 400), ("U-SOON", 300))
    ]
    receive(keeper_actor, supplier, warehouse, lines, "DN-UNITS")
    return {unit.serial: unit for unit in Unit.objects.filter(product=product)}


def propose(warehouse, product, quantity, **kwargs):
    return propose_fefo(hospital=warehouse.hospital, location=warehouse, product=product, quantity=quantity, **kwargs)


def test_units_are_proposed_first_expiry_first(warehouse, product, three_units):
    proposal = propose(warehouse, product, 2)
    assert [pick.serial for pick in proposal.picks] == ["U-SOON", "U-MID"]
    assert proposal.is_complete


def test_a_lot_quantity_is_split_over_two_lots_earliest_first(warehouse, lot_product, two_lots):
    proposal = propose(warehouse, lot_product, 5)
    assert [(pick.lot, pick.quantity) for pick in proposal.picks] == [("EARLY", 3), ("LATE", 2)]
    assert [pick.lot_balance_id for pick in proposal.picks] == [two_lots["EARLY"].pk, two_lots["LATE"].pk]
    assert proposal.shortfall == 0


def test_one_lot_that_covers_the_quantity_is_not_split(warehouse, lot_product, two_lots):
    assert [(pick.lot, pick.quantity) for pick in propose(warehouse, lot_product, 2).picks] == [("EARLY", 2)]


def test_short_stock_is_proposed_as_far_as_it_goes_with_the_shortfall(warehouse, lot_product, two_lots):
    proposal = propose(warehouse, lot_product, 20)
    assert proposal.proposed == 13 and proposal.shortfall == 7 and not proposal.is_complete


def test_expired_lot_and_expired_unit_are_never_proposed(warehouse, product, lot_product, two_lots, three_units):
    LotBalance.objects.filter(pk=two_lots["EARLY"].pk).update(expiry=TODAY - datetime.timedelta(days=1))
    Unit.objects.filter(serial="U-SOON").update(expiry=TODAY - datetime.timedelta(days=1))
    assert [(p.lot, p.quantity) for p in propose(warehouse, lot_product, 5).picks] == [("LATE", 5)]
    assert [p.serial for p in propose(warehouse, product, 3).picks] == ["U-MID", "U-LATE"]


def test_a_unit_expiring_today_is_still_proposed(warehouse, product, three_units):
    Unit.objects.filter(serial="U-LATE").update(expiry=TODAY)
    assert propose(warehouse, product, 1).picks[0].serial == "U-LATE"


def test_locked_and_used_units_are_never_proposed(warehouse, product, three_units):
    Unit.objects.filter(serial="U-SOON").update(status="EXPIRED")
    Unit.objects.filter(serial="U-MID").update(status="CONSUMED")
    assert [p.serial for p in propose(warehouse, product, 3).picks] == ["U-LATE"]


def test_quarantined_stock_is_never_proposed(keeper_actor, supplier, hospital, product, lot_product):
    quarantine = factories.LocationFactory(hospital=hospital, code="QZ", name="隔离区", kind="QUARANTINE")
    receive(keeper_actor, supplier, quarantine, [
        LineInput(Decimal("3.50"), product=lot_product, lot="Q1", expiry=days(300), quantity=5),
        LineInput(Decimal("1200.00"), udi=gs1_udi(product.udi_di, serial="QU1")),
    ], "DN-Q")
    assert propose(quarantine, lot_product, 1).picks == []
    assert propose(quarantine, product, 1).picks == []


def test_stock_elsewhere_is_not_proposed(warehouse, cath_lab_store, lot_product, two_lots):
    assert propose(cath_lab_store, lot_product, 1).picks == []


def test_reserved_stock_is_not_proposed_again_until_released(warehouse, product, lot_product, two_lots, three_units):
    hospital = warehouse.hospital
    first, _ = reserve_fefo(hospital=hospital, location=warehouse, product=lot_product, quantity=4, holder=HOLDER)
    assert [(p.lot, p.quantity) for p in first.picks] == [("EARLY", 3), ("LATE", 1)]
    second, _ = reserve_fefo(hospital=hospital, location=warehouse, product=lot_product, quantity=20, holder=("PICK_LIST_LINE", 2))
    assert [(p.lot, p.quantity) for p in second.picks] == [("LATE", 9)]
    assert second.shortfall == 11
    reserve_fefo(hospital=hospital, location=warehouse, product=product, quantity=1, holder=HOLDER)
    assert [p.serial for p in propose(warehouse, product, 3).picks] == ["U-MID", "U-LATE"]
    # The holder's own reservations count as free for itself.
    assert [p.serial for p in propose(warehouse, product, 1, ignoring=[HOLDER]).picks] == ["U-SOON"]
    assert release_reservations(holder_type="PICK_LIST_LINE", holder_ids=[1]) == 3
    assert [(p.lot, p.quantity) for p in propose(warehouse, lot_product, 4).picks] == [("EARLY", 3), ("LATE", 1)]


def test_reserving_writes_no_movement(warehouse, lot_product, two_lots):
    from inventory.models import Movement

    before = Movement.objects.count()
    reserve_fefo(hospital=warehouse.hospital, location=warehouse, product=lot_product, quantity=5, holder=HOLDER)
    assert Movement.objects.count() == before
    assert StockReservation.objects.filter(is_active=True).count() == 2
    assert LotBalance.objects.get(pk=two_lots["EARLY"].pk).quantity == 3


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "2", True])
def test_a_quantity_that_is_not_a_whole_number_of_at_least_one_is_refused(warehouse, lot_product, quantity):
    with pytest.raises(Refused) as refused:
        propose(warehouse, lot_product, quantity)
    assert refused.value.code == "QUANTITY_INVALID"


def test_another_hospitals_location_is_not_found(other_hospital, warehouse, lot_product):
    with pytest.raises(Refused) as refused:
        propose_fefo(hospital=other_hospital, location=warehouse, product=lot_product, quantity=1)
    assert refused.value.code == "NOT_FOUND"


def test_the_proposal_is_two_queries_at_most_however_many_lots(
    keeper_actor, supplier, warehouse, lot_product, django_assert_max_num_queries
):
    receive(keeper_actor, supplier, warehouse, [
        LineInput(Decimal("3.50"), product=lot_product, lot=f"M{n}", expiry=days(100 + n), quantity=1) for n in range(30)
    ], "DN-MANY")
    with django_assert_max_num_queries(1):
        proposal = propose(warehouse, lot_product, 25)
    assert proposal.proposed == 25 and proposal.lots[:2] == ["M0", "M1"]


@pytest.mark.parametrize(
    ("expiry", "proposed", "acceptable"),
    [
        (days(10), days(10), True), (days(5), days(10), True), (days(11), days(10), False),
        (None, days(10), False), (days(10), None, True), (None, None, True),
    ],
)
def test_fefo_acceptable_rule(expiry, proposed, acceptable):
    assert fefo_acceptable(expiry=expiry, proposed_expiry=proposed) is acceptable
