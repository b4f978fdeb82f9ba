"""A move's checks answer the same for a unit's `Unit` instance and its plain `UnitRow` (a receiving
station's batch reads its locked units as rows, every other move as instances)."""
import datetime

import pytest
from django.utils import timezone

from inventory.models import Location, Movement, StockOrder, Unit, UnitStatus
from inventory.services.ledger import UnitRow, held_unit_problems, recall_lock_problems
from inventory.services.stock import _OrderSpec, _unit_problems
from tests import factories
from tests.conftest import stock_units

pytestmark = pytest.mark.django_db


def as_row(unit: Unit) -> UnitRow:
    return UnitRow(unit.pk, unit.hospital_id, unit.product_id, unit.lot, unit.serial, unit.expiry, unit.status,
                   unit.status_since, unit.location_id, unit.location)


def answers(problems):
    return [(problem.code, problem.detail, problem.item) for problem in problems]


def test_a_moves_checks_answer_the_same_for_a_unit_and_its_row(
    keeper_actor, supplier, warehouse, cath_lab_store, product, hospital
):
    quarantine = factories.LocationFactory(hospital=hospital, code="QUAR", name="隔离区", kind=Location.Kind.QUARANTINE)
    movable, expired, used, there, held = stock_units(keeper_actor, supplier, warehouse, product,
                                                      ["R1", "R2", "R3", "R4", "R5"])
    Unit.objects.filter(pk=expired.pk).update(expiry=timezone.localdate() - datetime.timedelta(days=1))
    Unit.objects.filter(pk=used.pk).update(status=UnitStatus.CONSUMED)
    Unit.objects.filter(pk=there.pk).update(location=cath_lab_store)
    Unit.objects.filter(pk=held.pk).update(location=quarantine)
    spec = _OrderSpec(StockOrder.Kind.TRANSFER, Movement.Kind.TRANSFER, None, to_location=cath_lab_store)
    today = timezone.localdate()
    units = list(Unit.objects.select_related("location").order_by("pk"))

    for unit in units:
        assert answers(_unit_problems(as_row(unit), spec, None, today)) == answers(_unit_problems(unit, spec, None, today))
    assert [answers(_unit_problems(unit, spec, None, today)) != [] for unit in units] == [False, True, True, True, True]
    rows = [as_row(unit) for unit in units]
    assert answers(held_unit_problems(rows)) == answers(held_unit_problems(units))
    assert answers(recall_lock_problems(rows)) == answers(recall_lock_problems(units))

