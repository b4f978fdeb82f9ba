"""Races on the real PostgreSQL: one unit can never go into two packs."""
import pytest

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import Location, Pack, PackMember, Unit
from inventory.services.processing import LineInput, MemberScan, assemble_pack, save_definition
from tests import factories
from tests.concurrency import run_together
from tests.conftest import stock_units
from tests.factories import gs1_udi

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_stations_scanning_the_same_unit_at_once_make_one_pack(hospital, keeper, supplier, product):
    station = factories.LocationFactory(hospital=hospital, code="PROC", kind=Location.Kind.PROCESSING_STATION)
    unit = stock_units(Actor(user=keeper), supplier, station, product, ["RACE-1"])[0]
    definition = save_definition(user=keeper, hospital=hospital, code="KIT-1", name="单件包", kind="KIT",
                                 lines=[LineInput(product, 1)])
    code = gs1_udi(unit.di, serial=unit.serial, expiry=unit.expiry)

    def assemble(index: int) -> object:
        return assemble_pack(actor=Actor(user=keeper), hospital=hospital, definition=definition, station=station,
                             scans=[MemberScan(code)], idempotency_key=f"race-{index}")

    outcomes = run_together(8, assemble)
    made = [outcome for outcome in outcomes if isinstance(outcome, Pack)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, Refused)]
    assert len(made) == 1 and len(refused) == 7, outcomes
    assert {error.code for error in refused} == {"MEMBER_NOT_AT_STATION"}
    assert PackMember.objects.filter(unit=unit).count() == 1 and Pack.objects.count() == 1
    assert Unit.objects.get(pk=unit.pk).status == "IN_PACK"
