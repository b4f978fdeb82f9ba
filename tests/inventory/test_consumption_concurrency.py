"""Races on the real PostgreSQL: row locks decide, and the database constraints back them up."""
import threading

import pytest
from django.db import connection

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import Charge, Consumption, Movement, Unit
from inventory.services.consumption import ClinicalContext, consume_unit
from inventory.services.stock import transfer_stock
from tests import factories
from tests.conftest import stock_units

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_nurses_using_the_same_unit_at_once_exactly_one_succeeds(
    hospital, keeper_actor, supplier, warehouse, product, cath_lab_store
):
    unit = stock_units(keeper_actor, supplier, warehouse, product, ["RACE"])[0]
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=[unit],
                   idempotency_key="to-store")
    nurses = [factories.UserFactory(hospital=hospital, roles=["nurse"]) for _ in range(2)]
    barrier = threading.Barrier(len(nurses))
    outcomes: list[str] = []

    def use(nurse, n):
        try:
            barrier.wait()
            consume_unit(actor=Actor(user=nurse), hospital=hospital, unit=unit, idempotency_key=f"nurse-{n}",
                         context=ClinicalContext(encounter=f"ZY{n}", department=cath_lab_store.department))
            outcomes.append("used")
        except Refused as refused:
            outcomes.append(refused.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=use, args=(nurse, n)) for n, nurse in enumerate(nurses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes) == ["ALREADY_CONSUMED", "used"]
    assert Consumption.objects.count() == 1
    assert Charge.objects.count() == 1
    assert Movement.objects.filter(kind="CONSUME").count() == 1
    assert Unit.objects.get(pk=unit.pk).status == "CONSUMED"
