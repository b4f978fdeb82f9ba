import json

import pytest
from rest_framework.test import APIClient

from devices.models import Device, DeviceEvent
from inventory.models import Movement, Unit
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from tests import factories
from tests.conftest import api_client_for, scan_every_line
from tests.factories import gs1_udi

pytestmark = pytest.mark.django_db
WHEN = "2026-11-23T09:30:00+08:00"


def event(event_id="e1", kind="heartbeat", payload=None, **extra):
    return {"event_id": event_id, "kind": kind, "occurred_at": WHEN, "payload": payload or {}, **extra}


def make_device(hospital, code="SCAN-1", **fields):
    device = Device(hospital=hospital, code=code, name=code, kind=Device.Kind.WEDGE_SCANNER, **fields)
    token = device.issue_token()
    device.save()
    return device, token


def device_client(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {token}")
    return client


def post(client, body):
    return client.post("/api/v1/devices/events/", json.dumps(body), content_type="application/json")


@pytest.fixture
def device(hospital):
    return make_device(hospital)


@pytest.fixture
def client(device):
    return device_client(device[1])


def test_heartbeat_is_stored_processed_and_marks_the_device_online(client, device):
    response = post(client, event())
    assert response.status_code == 201, response.data
    assert response.data["status"] == "PROCESSED"
    stored = DeviceEvent.objects.get()
    assert (stored.kind, stored.event_id, stored.device) == ("heartbeat", "e1", device[0])
    device[0].refresh_from_db()
    assert device[0].is_online


def test_replay_returns_the_first_outcome_and_a_different_body_is_409(client):
    first = post(client, event(kind="temperature", payload={"celsius": 4.5}))
    again = post(client, event(kind="temperature", payload={"celsius": 4.5}))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.data["id"] == first.data["id"]
    conflict = post(client, event(kind="temperature", payload={"celsius": 9.0}))
    assert conflict.status_code == 409
    assert conflict.data["code"] == "EVENT_CONFLICT"
    assert DeviceEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (event(kind="teleport"), "UNKNOWN_EVENT_KIND"),
        (event(event_id=""), "INVALID_EVENT"),
        ({"event_id": "x", "kind": "scan", "occurred_at": "yesterday"}, "INVALID_EVENT"),
        ({"event_id": "x", "kind": "scan", "occurred_at": "2026-11-23T09:30:00"}, "INVALID_EVENT"),
        (event(payload=[1, 2]), "INVALID_EVENT"),
        ([], "INVALID_BATCH"),
        ([event("a"), event("b", kind="nope")], "UNKNOWN_EVENT_KIND"),
        (event(event_id="a\u0000b"), "INVALID_EVENT"),
        (event(payload={"code": "x\u0000"}), "INVALID_EVENT"),
    ],
)
def test_malformed_events_are_400_and_store_nothing(client, body, code):
    response = post(client, body)
    assert response.status_code == 400
    assert response.data["code"] == code
    assert not DeviceEvent.objects.exists()


def test_malformed_json_and_oversized_bodies_are_refused(client, settings):
    broken = client.post("/api/v1/devices/events/", "{not json", content_type="application/json")
    assert broken.status_code == 400
    assert broken.data["code"] == "PARSE_ERROR"
    settings.SPD_DEVICE_EVENT_MAX_BYTES = 1000
    huge = post(client, event(payload={"epcs": ["E" * 24] * 100}))
    assert huge.status_code == 413
    assert not DeviceEvent.objects.exists()


def test_batch_is_applied_in_order_with_per_event_outcomes(client):
    post(client, event("old", kind="temperature", payload={"celsius": 5}))
    body = {"events": [event("b1"), event("old", kind="temperature", payload={"celsius": 6}), event("b2")]}
    response = post(client, body)
    assert response.status_code == 200
    assert [(o["event_id"], o["status"]) for o in response.data["events"]] == [
        ("b1", "PROCESSED"), ("old", "REJECTED"), ("b2", "PROCESSED"),
    ]
    assert response.data["events"][1]["error_code"] == "EVENT_CONFLICT"


def test_a_device_posts_only_for_itself_and_its_hospital(client, hospital, other_hospital):
    make_device(hospital, code="OTHER")
    assert post(client, event(device="OTHER")).status_code == 403
    assert post(client, event(hospital=other_hospital.code)).status_code == 403
    assert post(client, event(device="SCAN-1", hospital=hospital.code)).status_code == 201


def test_bad_tokens_and_people_cannot_post_events(keeper):
    assert post(device_client("wrong-token"), event()).status_code == 401
    assert post(APIClient(), event()).status_code in (401, 403)
    assert post(api_client_for(keeper), event()).status_code == 403
    assert not DeviceEvent.objects.exists()


def test_inactive_device_is_refused(device):
    device[0].is_active = False
    device[0].save()
    assert post(device_client(device[1]), event()).status_code == 401


def test_events_of_another_hospitals_devices_are_invisible(client, other_hospital):
    post(client, event())
    stranger = factories.UserFactory(hospital=other_hospital)
    assert api_client_for(stranger).get("/api/v1/devices/events/").data["count"] == 0


@pytest.fixture
def unit_in_warehouse(keeper_actor, supplier, warehouse, product):
    note = receive_delivery_note(
        actor=keeper_actor, hospital=warehouse.hospital, supplier=supplier, number="DN", receiving_location=warehouse,
        lines=[LineInput(product.agreements.get().unit_price, udi=gs1_udi(product.udi_di, serial="S1", lot="L1"))],
        idempotency_key="dn",
    )
    scan_every_line(keeper_actor, note)
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc")
    return Unit.objects.get()


def test_scan_is_resolved_to_its_unit(client, unit_in_warehouse, product):
    response = post(client, event(kind="scan", payload={"code": gs1_udi(product.udi_di, serial="S1", lot="L1")}))
    assert response.data["status"] == "PROCESSED"
    assert response.data["result"]["unit"]["id"] == unit_in_warehouse.pk
    assert response.data["result"]["product"]["id"] == product.pk


def test_garbage_scan_is_stored_and_refused_with_reason(client):
    response = post(client, event(kind="scan", payload={"code": "%%garbage%%"}))
    assert response.status_code == 201
    assert (response.data["status"], response.data["error_code"]) == ("REFUSED", "UDI_UNPARSEABLE")


def test_station_in_receive_mode_moves_the_scanned_unit_once(hospital, cath_lab_store, unit_in_warehouse, product):
    station, token = make_device(
        hospital, code="CATH-STATION", location=cath_lab_store, scan_mode=Device.ScanMode.RECEIVE_INTO_LOCATION,
        config={"gs_substitute": "|"},
    )
    code = gs1_udi(product.udi_di, serial="S1", lot="L1").replace("\x1d", "|")
    client = device_client(token)
    first = post(client, event("s1", kind="scan", payload={"code": code}))
    assert first.data["status"] == "PROCESSED", first.data
    post(client, event("s1", kind="scan", payload={"code": code}))
    second_scan = post(client, event("s2", kind="scan", payload={"code": code}))
    assert second_scan.data["error_code"] == "ALREADY_AT_LOCATION"

    unit_in_warehouse.refresh_from_db()
    assert unit_in_warehouse.location == cath_lab_store
    transfer = Movement.objects.get(kind="TRANSFER")
    assert (transfer.actor_device, transfer.actor_user) == (station, None)


def test_user_station_resolves_a_scan_with_its_separator(api, unit_in_warehouse, product):
    code = gs1_udi(product.udi_di, serial="S1", lot="L1").replace("\x1d", "~")
    found = api.post("/api/v1/scans/resolve/", {"code": code, "separator": "~"}, format="json")
    assert found.data["unit"]["id"] == unit_in_warehouse.pk
    unknown = api.post("/api/v1/scans/resolve/", {"code": gs1_udi(factories.gtin(4242), serial="Q")}, format="json")
    assert unknown.data["problem"]["code"] == "PRODUCT_UNKNOWN"
    unreadable = api.post("/api/v1/scans/resolve/", {"code": "hello"}, format="json")
    assert (unreadable.status_code, unreadable.data["code"]) == (400, "UDI_UNPARSEABLE")


def test_registry_issues_a_token_once_and_stores_only_its_hash(hospital, operator):
    client = api_client_for(operator)
    created = client.post(
        "/api/v1/devices/", {"code": "CAB-9", "name": "柜9", "kind": "CABINET_MQTT"}, format="json"
    )
    assert created.status_code == 201, created.data
    token = client.post(f"/api/v1/devices/{created.data['id']}/issue-token/").data["token"]
    stored = Device.objects.get(code="CAB-9")
    assert token not in stored.token_hash
    assert stored.token_hash == Device.hash_token(token)
    assert post(device_client(token), event()).status_code == 201
    listed = client.get("/api/v1/devices/").data["results"][0]
    assert listed["is_online"] is True
    assert "token_hash" not in listed


def test_only_editors_manage_devices(keeper):
    response = api_client_for(keeper).post("/api/v1/devices/", {"code": "X", "name": "X", "kind": "RFID_READER"})
    assert response.status_code == 403
