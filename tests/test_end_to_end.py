"""The whole SPD path on the real PostgreSQL, over the real HTTP endpoints, with a real (fake) HIS:
delivery → acceptance → cabinet → door session with duplicate reads → use → charge at the HIS → refund."""
import datetime
import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from devices.models import Device
from inventory.models import Charge, ChargeDelivery, Movement, Unit
from inventory.services.his import deliver_due_charges
from inventory.simulation.fake_his import FakeHis
from tests import factories
from tests.conftest import api_client_for
from tests.factories import gs1_udi

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def his(settings):
    with FakeHis(hang_seconds=2) as fake:
        settings.SPD_HIS_CHARGE_URL = fake.url
        settings.SPD_HIS_TIMEOUT_SECONDS = 0.5
        settings.SPD_HIS_BACKOFF_BASE_SECONDS = 1
        yield fake


def test_from_delivery_to_the_patients_bill_and_back(his, hospital, supplier, product, warehouse, cabinet, keeper):
    keeper_api = api_client_for(keeper)
    nurse = factories.UserFactory(username="nurse-e2e", hospital=hospital, roles=["nurse"], badge="B-77")
    nurse.departments.add(cabinet.department)
    device = Device(hospital=hospital, code="CAB-E2E", name="柜", kind=Device.Kind.CABINET_HTTP, location=cabinet)
    token = device.issue_token()
    device.save()
    cabinet_api = APIClient()
    cabinet_api.credentials(HTTP_AUTHORIZATION=f"Device {token}")

    # Delivery and acceptance.
    serials = ["E1", "E2", "E3"]
    note = keeper_api.post("/api/v1/delivery-notes/", {
        "supplier": supplier.pk, "number": "DN-E2E", "receiving_location": warehouse.pk, "idempotency_key": "dn",
        "lines": [{"udi": gs1_udi(product.udi_di, serial=s, lot="LOT9"), "unit_price": "1200.00"} for s in serials],
    }, format="json")
    assert note.status_code == 201, note.data
    for line in note.data["lines"]:  # the keeper scans each delivered unit against the note
        scanned = keeper_api.post(f"/api/v1/delivery-notes/{note.data['id']}/scan/", {"udi": line["raw_udi"]},
                                  format="json")
        assert scanned.status_code == 200 and scanned.data["scanned_by"] == keeper.pk
    accepted = keeper_api.post(f"/api/v1/delivery-notes/{note.data['id']}/accept/", {"idempotency_key": "acc"},
                               format="json")
    assert [line["acceptance"]["decision"] for line in accepted.data["lines"]] == ["ACCEPTED"] * 3

    # Tag and move into the cabinet.
    units = list(Unit.objects.order_by("serial"))
    epcs = [f"E28011600000000000000{n:03d}" for n in range(3)]
    for unit, epc in zip(units, epcs, strict=True):
        assert keeper_api.post(f"/api/v1/units/{unit.pk}/bind-tag/", {"epc": epc}).status_code == 200
    moved = keeper_api.post("/api/v1/transfers/", {
        "units": [u.pk for u in units], "to_location": cabinet.pk, "from_location": warehouse.pk,
        "idempotency_key": "to-cab",
    }, format="json")
    assert moved.status_code == 201, moved.data

    # The nurse opens the cabinet with her badge and takes E2; reads repeat tags.
    now = timezone.now()
    events = [
        {"event_id": "open-1", "kind": "door_open", "occurred_at": now.isoformat(), "payload": {"badge": "B-77"}},
        {"event_id": "inv-1", "kind": "inventory", "occurred_at": (now + datetime.timedelta(seconds=3)).isoformat(),
         "payload": {"epcs": [epcs[0], epcs[0], epcs[2]]}},
        {"event_id": "close-1", "kind": "door_close", "occurred_at": (now + datetime.timedelta(seconds=6)).isoformat(),
         "payload": {"epcs": [epcs[0], epcs[2], epcs[0], epcs[2], epcs[0]]}},
    ]
    posted = cabinet_api.post("/api/v1/devices/events/", json.dumps(events), content_type="application/json")
    assert [e["status"] for e in posted.data["events"]] == ["PROCESSED"] * 3
    taken = Unit.objects.get(serial="E2")
    assert taken.status == "TAKEN"
    assert Movement.objects.get(kind="CABINET_TAKE").actor_user == nurse

    # She scans it in the cath lab against the encounter: consumed and charged at its purchase price.
    nurse_api = api_client_for(nurse)
    used = nurse_api.post("/api/v1/consumptions/", {
        "udi": gs1_udi(product.udi_di, serial="E2", lot="LOT9"), "encounter": "ZY2026112300042",
        "department": cabinet.department.pk, "surgery_id": "OP-1", "doctor": "D001", "idempotency_key": "use-1",
    }, format="json")
    assert used.status_code == 201, used.data
    second_nurse = nurse_api.post("/api/v1/consumptions/", {
        "unit": taken.pk, "encounter": "ZY2", "department": cabinet.department.pk, "idempotency_key": "use-2",
    }, format="json")
    assert second_nurse.status_code == 409

    # The HIS is down for a while: the charge waits, then arrives exactly once.
    his.set_mode("fail")
    assert deliver_due_charges().failed == 1
    his.set_mode("ok")
    later = timezone.now() + datetime.timedelta(minutes=5)
    assert deliver_due_charges(now=later).delivered == 1
    assert deliver_due_charges(now=later).delivered == 0
    charge = Charge.objects.get(kind="CHARGE")
    [received] = his.received
    assert received.key == f"charge-{charge.pk}"
    assert received.body["encounter"] == "ZY2026112300042"
    assert received.body["unit_price"] == "1200.00"
    assert ChargeDelivery.objects.get(charge=charge).his_reference == received.his_reference

    # The surgeon did not implant it: refund, the unit goes back to stock, a negative charge follows.
    refund = nurse_api.post(f"/api/v1/consumptions/{used.data['id']}/refund/",
                            {"reason_code": "NOT_IMPLANTED", "idempotency_key": "refund-1"}, format="json")
    assert refund.status_code == 200, refund.data
    assert deliver_due_charges(now=later).delivered == 1
    assert [c.body["amount"] for c in his.received] == ["1200.00", "-1200.00"]
    taken.refresh_from_db()
    assert taken.status == "IN_STOCK"

    # The trace tells it all, oldest first.
    trace = keeper_api.get(f"/api/v1/units/{taken.pk}/trace/").data
    kinds = [event["kind"] for event in trace]
    assert kinds[:3] == ["ORIGIN", "DELIVERY", "ACCEPTANCE"]
    assert kinds[3:] == [
        "MOVEMENT_RECEIPT", "MOVEMENT_PUTAWAY", "MOVEMENT_TRANSFER", "MOVEMENT_CABINET_TAKE", "MOVEMENT_CONSUME",
        "MOVEMENT_UNCONSUME",
    ]
