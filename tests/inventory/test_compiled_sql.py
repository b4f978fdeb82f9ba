"""The use's guard and lock compiled once per shape: the same SQL, parameters and rows as the ORM's."""
import datetime
import itertools

import pytest
from django.db import connection
from django.utils import timezone

from inventory.models import ClinicalTeam, ClinicalTeamMember, Location, Movement, Unit
from inventory.services import consumption as service
from inventory.services.compiled_sql import compile_shape, sentinel_int
from inventory.services.ledger import _UNIT_MOVE_GUARDS, could_refuse_unit_move, could_refuse_unit_move_sql
from inventory.services.stock import transfer_stock
from tests.conftest import stock_units

pytestmark = pytest.mark.django_db

MOMENTS = [datetime.datetime(2026, 3, 4, 5, 6, 7, 8, tzinfo=datetime.UTC), timezone.now()]


@pytest.mark.parametrize("kind", list(Movement.Kind.values))
def test_the_guard_of_a_unit_move_compiled_once_is_the_orm_s_for_every_shape_and_values(kind):
    to_locations = [None, Location(pk=91, kind=Location.Kind.QUARANTINE), Location(pk=92, kind=Location.Kind.DEPARTMENT_STORE)]
    documents = [None, (Movement.DocumentType.ALLIANCE_TRANSFER, 5), (Movement.DocumentType.CONSUMPTION, None)]
    for to_location, document, location_id in itertools.product(to_locations, documents, [None, 17]):
        for number, moment in enumerate(MOMENTS):  # the second time from the cache
            unit = Unit(pk=1000 + number, hospital_id=3 + number, product_id=40 + number,
                        location_id=location_id and location_id + number)
            given = {"kind": kind, "unit": unit, "to_location": to_location, "document": document, "moment": moment}
            assert could_refuse_unit_move_sql(**given) == could_refuse_unit_move(**given).query.sql_with_params()
    if connection.vendor == "postgresql":  # SQLite prepares the moment as text: compiled each time there
        assert all(compiled is not None for (vendor, (shape_kind, *_)), compiled in _UNIT_MOVE_GUARDS.compiled.items()
                   if vendor == "postgresql" and shape_kind == kind)


def test_a_value_the_backend_changes_is_not_cached():
    def build(values):
        return Unit.objects.filter(pk=values["pk"], serial=str(values["serial"]))

    assert compile_shape(build, lambda: {"pk": sentinel_int(), "serial": sentinel_int()}) is None
    compiled = compile_shape(build, lambda: {"pk": sentinel_int()} | {"serial": 7})
    assert compiled is not None and compiled.params({"pk": 5}) == build({"pk": 5, "serial": 7}).query.sql_with_params()[1]


@pytest.fixture
def units_in_store(keeper_actor, supplier, warehouse, product, cath_lab_store):
    units = stock_units(keeper_actor, supplier, warehouse, product, ["C1", "C2"])
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store, units=units,
                   idempotency_key="to-store")
    return units


def _as_read(unit: Unit) -> dict:
    return {
        "unit": {field.attname: getattr(unit, field.attname) for field in Unit._meta.concrete_fields},
        "product": unit.product.__dict__ | {"_state": None},
        "location": unit.location.__dict__ | {"_state": None},
        "department": unit.location.department.__dict__ | {"_state": None},
        "annotations": [unit.billing_name, unit.billing_factor, unit.closed_through, unit.doctor_team_id],
    }


@pytest.mark.parametrize("team_looked_up", [False, True])
def test_the_lock_of_a_use_compiled_once_reads_what_the_orm_reads(units_in_store, warehouse, department, team_looked_up):
    hospital = warehouse.hospital
    team = ClinicalTeam.objects.create(hospital=hospital, department=department, code="T1", name="一组")
    ClinicalTeamMember.objects.create(team=team, doctor="D1", since=datetime.date(2020, 1, 1))
    day = timezone.localdate()
    for unit in units_in_store:  # the second unit from the cache
        values = {"pk": unit.pk, "hospital_id": hospital.pk, "doctor": "D1", "day": day, "department_id": department.pk}
        context = service.ClinicalContext(encounter="ZY1", department=department, doctor="D1" if team_looked_up else "")
        locked = service._lock_unit(unit.pk, hospital, context=context, team_day=day)
        by_orm = service._unit_lock(team_looked_up, values).first()
        assert _as_read(locked) == _as_read(by_orm)
        assert locked.doctor_team_id == (team.pk if team_looked_up else None)
        assert not locked._state.adding and locked._state.db == by_orm._state.db
        rows = service._UNIT_LOCKS.rows_for(team_looked_up)
        if connection.vendor == "postgresql":
            assert rows is not None  # SQLite prepares the day as text: compiled each time there
            first = service._UNIT_LOCKS._first_of(service._unit_lock(team_looked_up, values))
            assert (rows.compiled.sql, rows.compiled.params(values)) == first.query.sql_with_params()


def test_the_lock_of_a_use_refuses_another_hospital_s_unit(units_in_store, department):
    from inventory.errors import Refused
    from tests import factories

    other = factories.HospitalFactory(code="OTHER")
    assert other.pk != units_in_store[0].hospital_id
    context = service.ClinicalContext(encounter="ZY1", department=department)
    with pytest.raises(Refused):
        service._lock_unit(units_in_store[0].pk, other, context=context, team_day=timezone.localdate())
