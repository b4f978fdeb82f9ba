"""Reservations under real concurrency on PostgreSQL: nobody is proposed what another has reserved."""
import datetime
from collections import Counter
from decimal import Decimal

import pytest

from inventory.models import StockReservation
from inventory.services.receiving import LineInput
from inventory.services.reservations import reserve_fefo
from tests.concurrency import run_together
from tests.factories import TODAY, gs1_udi
from tests.inventory.test_fefo import receive

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_eight_reservers_of_one_lot_never_hold_more_than_is_on_hand(keeper_actor, supplier, warehouse, lot_product):
    receive(keeper_actor, supplier, warehouse, [
        LineInput(Decimal("3.50"), product=lot_product, lot="A", expiry=TODAY + datetime.timedelta(days=100), quantity=7),
        LineInput(Decimal("3.50"), product=lot_product, lot="B", expiry=TODAY + datetime.timedelta(days=300), quantity=6),
    ], "DN-RACE-L")

    def reserve(index):
        return reserve_fefo(hospital=warehouse.hospital, location=warehouse, product=lot_product, quantity=3,
                            holder=("PICK_LIST_LINE", index))

    outcomes = run_together(8, reserve)
    assert not [o for o in outcomes if isinstance(o, Exception)]
    held = Counter()
    for reservation in StockReservation.objects.filter(is_active=True):
        held[reservation.lot] += reservation.quantity
    assert held == {"A": 7, "B": 6}
    assert sum(o[0].proposed for o in outcomes) == 13


def test_eight_reservers_of_three_units_get_each_unit_once(keeper_actor, supplier, warehouse, product):
    receive(keeper_actor, supplier, warehouse, [
        LineInput(Decimal("1200.00"), udi=gs1_udi(product.udi_di, serial=f"R{n}")) for n in range(3)
    ], "DN-RACE-U")

    def reserve(index):
        return reserve_fefo(hospital=warehouse.hospital, location=warehouse, product=product, quantity=1,
                            holder=("PICK_LIST_LINE", index))

    outcomes = run_together(8, reserve)
    assert not [o for o in outcomes if isinstance(o, Exception)]
    units = list(StockReservation.objects.filter(is_active=True).values_list("unit_id", flat=True))
    assert len(units) == 3 == len(set(units))
    assert sorted(o[0].proposed for o in outcomes) == [0] * 5 + [1] * 3
