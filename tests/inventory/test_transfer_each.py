"""`transfer_units_each` / `transfer_locked_units_each`: the idempotency record is written after the
work, and a request with the same key still replays the first order — also when its units, moved by
that order, give it nothing left to move."""
import datetime

import pytest
from django.db import transaction

from inventory.errors import Refused
from inventory.models import IdempotencyRecord, Movement, StockOrder, Unit
from inventory.services.stock import transfer_locked_units_each, transfer_units_each
from tests.conftest import stock_units
from tests.factories import TODAY

pytestmark = pytest.mark.django_db


def locked(units):
    """The units locked and read again, as a receiving station's read gives them to the service."""
    return list(Unit.objects.select_for_update(of=("self",)).select_related("location")
                .filter(pk__in=[unit.pk for unit in units]).order_by("pk"))


def codes(problems):
    return [[problem.code for problem in unit_problems] for unit_problems in problems]


@pytest.fixture
def three(keeper_actor, supplier, warehouse, product):
    fresh, also, expired = stock_units(keeper_actor, supplier, warehouse, product, ["E1", "E2", "E3"])
    Unit.objects.filter(pk=expired.pk).update(expiry=TODAY - datetime.timedelta(days=1))
    return fresh, also, expired


def send_locked(keeper_actor, store, units, key):
    """One request: its own transaction, its units locked first (a receiving station's batch)."""
    with transaction.atomic():
        rows = {unit.pk: unit for unit in locked(units)}
        return transfer_locked_units_each(actor=keeper_actor, hospital=store.hospital, to_location=store,
                                          units=[rows[unit.pk] for unit in units], idempotency_key=key)


def test_the_record_is_written_once_with_the_order(keeper_actor, cath_lab_store, three):
    order, problems = send_locked(keeper_actor, cath_lab_store, three, "k")
    record = IdempotencyRecord.objects.get(key="k")
    assert (record.result_model, record.result_id) == ("inventory.StockOrder", order.pk)
    assert codes(problems) == [[], [], ["UNIT_EXPIRED_LOCKED"]]


@pytest.mark.parametrize("send", ["locked", "each"])
def test_the_same_key_again_replays_the_first_order_though_its_units_have_nothing_left_to_move(
    keeper_actor, cath_lab_store, three, send
):
    fresh, also, expired = three
    units = [fresh, also, fresh, expired]  # `fresh` scanned twice
    first, first_problems = send_locked(keeper_actor, cath_lab_store, units, "k")
    counts = (Movement.objects.count(), StockOrder.objects.count(), IdempotencyRecord.objects.count())

    if send == "locked":
        again, problems = send_locked(keeper_actor, cath_lab_store, units, "k")
    else:
        again, problems = transfer_units_each(actor=keeper_actor, hospital=cath_lab_store.hospital,
                                              to_location=cath_lab_store, units=units, idempotency_key="k")

    assert codes(first_problems) == [[], [], ["ALREADY_AT_LOCATION"], ["UNIT_EXPIRED_LOCKED"]]
    assert again.pk == first.pk
    # As before the record moved after the work: the first order's units as moved, the others refused by the replay.
    assert codes(problems) == [[], [], [], ["IDEMPOTENCY_CONFLICT"]]
    assert (Movement.objects.count(), StockOrder.objects.count(), IdempotencyRecord.objects.count()) == counts


def test_the_same_key_for_other_units_is_a_conflict_and_moves_nothing(keeper_actor, cath_lab_store, three):
    fresh, also, expired = three
    send_locked(keeper_actor, cath_lab_store, [fresh], "k")
    counts = (Movement.objects.count(), StockOrder.objects.count())

    with pytest.raises(Refused) as refused:
        send_locked(keeper_actor, cath_lab_store, [also], "k")

    assert refused.value.code == "IDEMPOTENCY_CONFLICT"
    assert (Movement.objects.count(), StockOrder.objects.count()) == counts
    assert Unit.objects.get(pk=also.pk).location_id != cath_lab_store.pk


def test_nothing_to_move_keeps_the_key_free(keeper_actor, cath_lab_store, three):
    _fresh, _also, expired = three
    order, problems = send_locked(keeper_actor, cath_lab_store, [expired], "k")
    assert order is None and codes(problems) == [["UNIT_EXPIRED_LOCKED"]]
    assert not IdempotencyRecord.objects.filter(key="k").exists()
