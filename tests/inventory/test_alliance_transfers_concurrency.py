"""An alliance transfer received twice at once is received once (real PostgreSQL, threads)."""
import pytest

from inventory.errors import Refused
from inventory.models import AllianceTransfer, Movement, Unit
from inventory.services.transfers import create_transfer, dispatch_transfer, receive_transfer, scan_transfer_item
from tests import factories
from tests.concurrency import run_together
from tests.conftest import stock_units

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_transfer_received_twice_at_once_is_received_once(hospital, warehouse, product, supplier, keeper_actor):
    member = factories.HospitalFactory(code="M1", alliance=hospital.alliance)
    store = factories.LocationFactory(hospital=member, code="CW")
    factories.ProductFactory(hospital=member, udi_di=product.udi_di, internal_code="M1-1")
    receivers = [factories.UserFactory(username=f"m1-keeper-{n}", hospital=member, roles=["warehouse"])
                 for n in range(4)]
    units = stock_units(keeper_actor, supplier, warehouse, product, ["R1", "R2"])
    transfer = create_transfer(user=keeper_actor.user, source_location=warehouse, to_hospital=member,
                               destination=store, units=units, kind="EMERGENCY", reason="抢救", idempotency_key="c-1")
    dispatch_transfer(user=keeper_actor.user, transfer=transfer, idempotency_key="c-d")
    for unit in units:
        scan_transfer_item(user=receivers[0], transfer=transfer, code=unit.udi)

    outcomes = run_together(4, lambda n: receive_transfer(user=receivers[n], transfer=transfer,
                                                          idempotency_key=f"c-r{n}"))
    received = [o for o in outcomes if isinstance(o, AllianceTransfer)]
    refused = [o for o in outcomes if isinstance(o, Refused)]
    assert len(received) == 1 and len(refused) == 3, outcomes
    assert {r.code for r in refused} == {"ALLIANCE_TRANSFER_ALREADY_RECEIVED"}
    assert Movement.objects.filter(kind=Movement.Kind.ALLIANCE_IN, hospital=member).count() == 2
    assert Movement.objects.filter(kind=Movement.Kind.ALLIANCE_OUT, hospital=hospital).count() == 2
    assert set(Unit.objects.filter(serial__in=["R1", "R2"]).values_list("hospital_id", flat=True)) == {member.pk}
