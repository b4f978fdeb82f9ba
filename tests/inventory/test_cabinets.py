import datetime
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from devices.models import Device, DeviceEvent
from inventory.models import CabinetSession, Movement, Unit, UnitStatus
from inventory.services.cabinets import close_session, open_session, overdue_takes
from inventory.services.labelling import bind_tag
from inventory.services.stock import transfer_stock
from tests import factories
from tests.conftest import stock_units

pytestmark = pytest.mark.django_db
T0 = datetime.datetime(2026, 11, 23, 9, 0, tzinfo=datetime.UTC)


def epc(n: int) -> str:
    return f"3034257BF400B7800000{n:04X}"


@pytest.fixture
def nurse(hospital, cabinet):
    user = factories.UserFactory(username="nurse1", hospital=hospital, roles=["nurse"], badge="BADGE-7")
    user.departments.add(cabinet.department)
    return user


@pytest.fixture
def cabinet_device(hospital, cabinet):
    device = Device(hospital=hospital, code="CAB-1", name="柜1", kind=Device.Kind.CABINET_HTTP, location=cabinet)
    token = device.issue_token()
    device.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {token}")
    device.client = client
    return device


@pytest.fixture
def stocked_cabinet(keeper_actor, supplier, warehouse, product, cabinet):
    units = stock_units(keeper_actor, supplier, warehouse, product, [f"C{n}" for n in range(5)])
    for n, unit in enumerate(units):
        bind_tag(unit=unit, epc=epc(n), actor=keeper_actor)
    transfer_stock(actor=keeper_actor, hospital=cabinet.hospital, to_location=cabinet, units=units,
                   idempotency_key="to-cabinet")
    return list(Unit.objects.order_by("serial"))


def send(device, event_id, kind, at, **payload):
    body = {"event_id": event_id, "kind": kind, "occurred_at": at.isoformat(), "payload": payload}
    response = device.client.post("/api/v1/devices/events/", json.dumps(body), content_type="application/json")
    assert response.status_code in (200, 201), response.data
    return response.data


def statuses(units):
    return [Unit.objects.get(pk=u.pk).status for u in units]


def test_units_not_seen_at_close_are_taken_by_the_badge_holder(cabinet_device, stocked_cabinet, nurse):
    send(cabinet_device, "o1", "door_open", T0, badge="BADGE-7")
    seen = [epc(0), epc(1), epc(2)]
    send(cabinet_device, "i1", "inventory", T0 + datetime.timedelta(seconds=5), epcs=seen + seen)
    result = send(cabinet_device, "c1", "door_close", T0 + datetime.timedelta(seconds=9), epcs=seen + [epc(0)] * 3)

    assert result["status"] == "PROCESSED", result
    assert statuses(stocked_cabinet) == ["IN_CABINET"] * 3 + ["TAKEN"] * 2
    takes = Movement.objects.filter(kind="CABINET_TAKE")
    assert takes.count() == 2
    assert {m.actor_user for m in takes} == {nurse}
    session = CabinetSession.objects.get(status="CLOSED")
    assert (session.user, session.tags_seen, len(session.taken)) == (nurse, 3, 2)


def test_taken_units_seen_again_are_put_back_and_strangers_are_flagged(
    cabinet_device, stocked_cabinet, nurse, keeper_actor, supplier, warehouse, product
):
    elsewhere = stock_units(keeper_actor, supplier, warehouse, product, ["W1"])[0]
    bind_tag(unit=elsewhere, epc=epc(99), actor=keeper_actor)
    send(cabinet_device, "o1", "door_open", T0, user="nurse1")
    send(cabinet_device, "c1", "door_close", T0 + datetime.timedelta(minutes=1), epcs=[epc(0), epc(1), epc(2)])
    send(cabinet_device, "o2", "door_open", T0 + datetime.timedelta(minutes=5), user="nurse1")
    all_back = [epc(n) for n in range(5)] + [epc(99), "E280DEADBEEF0001"]
    result = send(cabinet_device, "c2", "door_close", T0 + datetime.timedelta(minutes=6), epcs=all_back)

    assert statuses(stocked_cabinet) == ["IN_CABINET"] * 5
    assert Movement.objects.filter(kind="CABINET_RETURN").count() == 2
    assert result["result"]["unknown_tags"] == ["E280DEADBEEF0001"]
    assert [m["unit"] for m in result["result"]["misplaced"]] == [elsewhere.pk]
    elsewhere.refresh_from_db()
    assert (elsewhere.status, elsewhere.location) == ("IN_STOCK", warehouse)


def test_replayed_and_late_closes_change_nothing_twice(cabinet_device, stocked_cabinet, nurse):
    send(cabinet_device, "o1", "door_open", T0, badge="BADGE-7")
    seen = [epc(0), epc(1), epc(2)]
    send(cabinet_device, "c1", "door_close", T0 + datetime.timedelta(seconds=30), epcs=seen)
    replay = send(cabinet_device, "c1", "door_close", T0 + datetime.timedelta(seconds=30), epcs=seen)
    assert replay["id"] == DeviceEvent.objects.get(event_id="c1").pk
    late = send(cabinet_device, "c0", "door_close", T0 + datetime.timedelta(seconds=10), epcs=[epc(n) for n in range(5)])

    assert late["result"]["session_status"] == "STALE"
    assert statuses(stocked_cabinet) == ["IN_CABINET"] * 3 + ["TAKEN"] * 2
    assert Movement.objects.filter(kind__in=["CABINET_TAKE", "CABINET_RETURN"]).count() == 2


def test_close_without_open_and_two_opens_are_recorded_not_crashes(cabinet_device, stocked_cabinet):
    no_open = send(cabinet_device, "c1", "door_close", T0, epcs=[epc(n) for n in range(4)])
    assert no_open["result"]["session_status"] == "CLOSED_WITHOUT_OPEN"
    take = Movement.objects.get(kind="CABINET_TAKE")
    assert (take.actor_user, take.actor_device) == (None, cabinet_device)

    send(cabinet_device, "o1", "door_open", T0 + datetime.timedelta(minutes=1), user="nobody-known")
    send(cabinet_device, "o2", "door_open", T0 + datetime.timedelta(minutes=2), badge="BADGE-7")
    assert list(CabinetSession.objects.order_by("id").values_list("status", flat=True)) == [
        "CLOSED_WITHOUT_OPEN", "ABANDONED", "OPEN",
    ]


def test_cabinet_events_from_a_device_without_a_cabinet_are_refused(hospital):
    device = Device(hospital=hospital, code="LOOSE", name="x", kind=Device.Kind.CABINET_MQTT)
    token = device.issue_token()
    device.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {token}")
    body = {"event_id": "c", "kind": "door_close", "occurred_at": T0.isoformat(), "payload": {"epcs": []}}
    response = client.post("/api/v1/devices/events/", json.dumps(body), content_type="application/json")
    assert (response.data["status"], response.data["error_code"]) == ("REFUSED", "DEVICE_NOT_AT_CABINET")


def test_take_and_put_back_by_scan_at_a_store_without_rfid(api, keeper_actor, supplier, warehouse, product, cath_lab_store):
    units = stock_units(keeper_actor, supplier, warehouse, product, ["S1"])
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store, units=units,
                   idempotency_key="to-store")
    taken = api.post("/api/v1/takes/", {"units": [units[0].pk], "idempotency_key": "t1"}, format="json")
    assert taken.status_code == 201, taken.data
    assert statuses(units) == ["TAKEN"]
    again = api.post("/api/v1/takes/", {"units": [units[0].pk], "idempotency_key": "t2"}, format="json")
    assert again.status_code == 409
    back = api.post("/api/v1/takes/put-back/", {"units": [units[0].pk], "idempotency_key": "p1"}, format="json")
    assert back.status_code == 201, back.data
    assert statuses(units) == ["IN_STOCK"]
    assert Unit.objects.get().location == cath_lab_store


def test_overdue_takes_use_the_product_deadline_before_the_locations(cabinet_device, stocked_cabinet, nurse, product, api):
    send(cabinet_device, "o1", "door_open", T0, badge="BADGE-7")
    send(cabinet_device, "c1", "door_close", T0, epcs=[epc(n) for n in range(4)])
    assert overdue_takes(product.hospital, now=T0 + datetime.timedelta(hours=23)) == []
    assert [u.serial for u in overdue_takes(product.hospital, now=T0 + datetime.timedelta(hours=25))] == ["C4"]
    product.return_deadline_hours = 2
    product.save()
    assert len(overdue_takes(product.hospital, now=T0 + datetime.timedelta(hours=3))) == 1
    listed = api.get("/api/v1/takes/overdue/").data
    assert [(u["serial"], u["deadline_hours"]) for u in listed] == [("C4", 2)]


def test_sessions_are_listed_for_the_hospital_only(cabinet_device, stocked_cabinet, api, other_hospital):
    send(cabinet_device, "o1", "door_open", timezone.now(), badge="nobody")
    assert api.get("/api/v1/cabinet-sessions/").data["count"] == 1
    from tests.conftest import api_client_for

    stranger = factories.UserFactory(hospital=other_hospital)
    assert api_client_for(stranger).get("/api/v1/cabinet-sessions/").data["count"] == 0


def test_a_500_tag_close_is_applied_with_a_bounded_number_of_queries(
    cabinet_device, keeper_actor, supplier, warehouse, product, cabinet, django_assert_max_num_queries
):
    units = stock_units(keeper_actor, supplier, warehouse, product, [f"B{n:03d}" for n in range(60)])
    Unit.objects.filter(pk__in=[u.pk for u in units]).update(location=cabinet, status=UnitStatus.IN_CABINET)
    for n, unit in enumerate(units):
        Unit.objects.filter(pk=unit.pk).update(epc=epc(1000 + n))
    seen = [epc(1000 + n) for n in range(58)] + [epc(5000 + n) for n in range(440)]
    with django_assert_max_num_queries(20):
        close_session(device=cabinet_device, cabinet=cabinet, occurred_at=T0, epcs=seen)
    assert Unit.objects.filter(status="TAKEN").count() == 2


@pytest.mark.postgres
def test_a_close_that_takes_units_costs_seven_statements_with_every_check(
    cabinet_device, stocked_cabinet, nurse, cabinet
):
    open_session(device=cabinet_device, cabinet=cabinet, occurred_at=T0, user_ref=nurse.username)
    seen = [epc(n) for n in range(3)] + [epc(9000)]  # two units missing, one tag of no unit
    with CaptureQueriesContext(connection) as queries:
        session = close_session(device=cabinet_device, cabinet=cabinet, occurred_at=T0 + datetime.timedelta(minutes=1),
                                epcs=seen)
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # The cabinet's lock; its sessions (with the user); its units (locked, with what a take reads); the
    # other tags; the movements (with the closed-month check); the units; the session.
    assert len(statements) == 7, "\n".join(statements)
    assert [u["unit"] for u in session.taken] == [stocked_cabinet[3].pk, stocked_cabinet[4].pk]
    assert session.unknown_tags == [epc(9000)] and session.status == CabinetSession.Status.CLOSED
    assert Movement.objects.filter(kind=Movement.Kind.CABINET_TAKE, actor_user=nurse).count() == 2
