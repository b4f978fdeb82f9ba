"""Races for stock an alliance transfer reserves (real PostgreSQL, threads on their own connections):
one wins, nothing is reserved or used twice."""
import datetime
from decimal import Decimal

import pytest
from django.db.models import Sum

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import AllianceTransfer, Consumption, LotBalance, StockReservation, UnitStatus
from inventory.services.consumption import ClinicalContext, consume_lot, consume_unit
from inventory.services.receiving import LineInput
from inventory.services.stock import LotQuantity, transfer_stock
from inventory.services.transfers import TransferLot, create_transfer
from tests import factories
from tests.concurrency import run_together
from tests.conftest import stock_units
from tests.factories import TODAY
from tests.inventory.test_alliance_transfers import Member
from tests.inventory.test_stock_moves import receive_and_accept

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HOLDER = StockReservation.Holder.ALLIANCE_TRANSFER_LINE


@pytest.fixture
def setting(hospital, keeper_actor, supplier, warehouse, product, lot_product, cath_lab_store):
    members = [Member(code, [product, lot_product]) for code in ("M1", "M2")]
    units = stock_units(keeper_actor, supplier, warehouse, product, ["K1"], lot="LK")
    receive_and_accept(keeper_actor, supplier, warehouse, [LineInput(
        Decimal("3.50"), product=lot_product, lot="L1", expiry=TODAY + datetime.timedelta(days=700), quantity=10)],
        "DN-L1")
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=units,
                   lots=[LotQuantity(lot_product, "L1", 10, warehouse)], idempotency_key="to-cath")
    nurse = factories.UserFactory(hospital=hospital, roles=["nurse"])
    nurse.departments.add(cath_lab_store.department)
    return members, units[0], nurse


def send(keeper, store, member, key, **what):
    return create_transfer(user=keeper, source_location=store, to_hospital=member.hospital,
                           destination=member.warehouse, idempotency_key=key, **what)


def reserved_lot_quantity(lot_product) -> int:
    return StockReservation.objects.filter(holder_type=HOLDER, is_active=True, product=lot_product).aggregate(
        total=Sum("quantity"))["total"] or 0


def test_two_transfers_racing_for_one_lot_quantity_one_wins(keeper_actor, lot_product, cath_lab_store, setting):
    members, _unit, _nurse = setting
    outcomes = run_together(2, lambda n: send(keeper_actor.user, cath_lab_store, members[n], f"t-{n}",
                                              lots=[TransferLot(lot_product, "L1", 6)]))
    won = [o for o in outcomes if isinstance(o, AllianceTransfer)]
    lost = [o for o in outcomes if isinstance(o, Refused)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert {p.code for p in lost[0].problems} == {"INSUFFICIENT_STOCK"}
    assert reserved_lot_quantity(lot_product) == 6 and AllianceTransfer.objects.count() == 1


def test_two_transfers_racing_for_one_unit_one_wins(keeper_actor, cath_lab_store, setting):
    members, unit, _nurse = setting
    outcomes = run_together(2, lambda n: send(keeper_actor.user, cath_lab_store, members[n], f"u-{n}", units=[unit]))
    assert sorted(type(o).__name__ for o in outcomes) == ["AllianceTransfer", "Refused"], outcomes
    assert StockReservation.objects.filter(holder_type=HOLDER, is_active=True, unit=unit).count() == 1


def test_a_transfer_and_a_use_racing_for_one_unit_one_wins(hospital, keeper_actor, cath_lab_store, setting):
    members, unit, nurse = setting
    context = ClinicalContext(encounter="ZY1", department=cath_lab_store.department, doctor="D1")

    def work(n: int):
        if n == 0:
            return send(keeper_actor.user, cath_lab_store, members[0], "race-t", units=[unit])
        return consume_unit(actor=Actor(user=nurse), hospital=hospital, unit=unit, context=context,
                            idempotency_key="race-u")

    transfer, use = run_together(2, work)
    assert isinstance(transfer, AllianceTransfer) != isinstance(use, Consumption), (transfer, use)
    unit.refresh_from_db()
    if isinstance(transfer, AllianceTransfer):
        assert isinstance(use, Refused) and use.code == "ALLIANCE_STOCK_RESERVED"
        assert unit.status == UnitStatus.IN_STOCK and not Consumption.objects.exists()
    else:
        assert unit.status == UnitStatus.CONSUMED and not StockReservation.objects.filter(unit=unit).exists()
        assert not AllianceTransfer.objects.exists()


def test_a_transfer_and_a_use_racing_for_one_lot_quantity_one_wins(
    hospital, keeper_actor, lot_product, cath_lab_store, setting,
):
    members, _unit, nurse = setting
    context = ClinicalContext(encounter="ZY2", department=cath_lab_store.department, doctor="D1")

    def work(n: int):
        if n == 0:
            return send(keeper_actor.user, cath_lab_store, members[0], "lot-t", lots=[TransferLot(lot_product, "L1", 6)])
        return consume_lot(actor=Actor(user=nurse), hospital=hospital, product=lot_product, lot="L1", quantity=6,
                           context=context, idempotency_key="lot-u", location=cath_lab_store)

    transfer, use = run_together(2, work)
    assert isinstance(transfer, AllianceTransfer) != isinstance(use, Consumption), (transfer, use)
    balance = LotBalance.objects.get(product=lot_product, location=cath_lab_store)
    used = Consumption.objects.aggregate(total=Sum("quantity"))["total"] or 0
    # Whoever won, what is reserved plus what is used never exceeds the ten there were.
    assert balance.quantity + used == 10 and reserved_lot_quantity(lot_product) + used == 6
    assert reserved_lot_quantity(lot_product) <= balance.quantity
    if isinstance(use, Refused):
        assert use.code == "ALLIANCE_LOT_RESERVED"
