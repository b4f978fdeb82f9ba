"""Nothing lost silently: dead letters, outcome questions, the bridge's heartbeat and alert, retention."""
import datetime
import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from devices.adapters.mqtt_cabinet import MqttCabinetBridge, handle_message, record_heartbeat
from devices.models import BridgeHeartbeat, Device, DeviceEvent, RejectedMessage
from devices.retention import purge_telemetry
from inventory.jobs import run_job
from inventory.models import Alert
from inventory.services.alerts import scan_mqtt_bridge
from tests import factories
from tests.conftest import api_client_for

WHEN = "2026-11-23T09:30:00+08:00"


def event(event_id: str, kind: str = "heartbeat", payload: dict | None = None) -> dict:
    return {"event_id": event_id, "kind": kind, "occurred_at": WHEN, "payload": payload or {}}


@pytest.fixture
def mqtt_device(hospital) -> Device:
    return Device.objects.create(hospital=hospital, code="CAB-M1", name="导管室智能柜", kind=Device.Kind.CABINET_MQTT)


def topic_of(device: Device, hospital_code: str | None = None) -> str:
    return f"spd/{hospital_code or device.hospital.code}/cabinets/{device.code}/events"


# Dead letters


@pytest.mark.django_db
def test_an_unparseable_message_is_kept_as_a_dead_letter_of_its_cabinets_hospital(mqtt_device):
    handle_message(topic_of(mqtt_device), b'{"event_id": "x", \xff')

    [letter] = RejectedMessage.objects.all()
    assert (letter.error_code, letter.hospital, letter.topic) == ("INVALID_JSON", mqtt_device.hospital, topic_of(mqtt_device))
    assert letter.payload == '{"event_id": "x", \\xff' and letter.payload_bytes == 19
    assert letter.results[0]["status"] == "REJECTED"


@pytest.mark.django_db
def test_an_unknown_device_is_a_dead_letter_of_the_hospital_its_topic_names_if_any(hospital):
    handle_message("spd/H001/cabinets/CAB-GHOST/events", json.dumps(event("e1")).encode())
    handle_message("spd/NOWHERE/cabinets/CAB-GHOST/events", json.dumps(event("e1")).encode())

    letters = {letter.topic: letter for letter in RejectedMessage.objects.all()}
    assert letters["spd/H001/cabinets/CAB-GHOST/events"].hospital == hospital
    assert letters["spd/NOWHERE/cabinets/CAB-GHOST/events"].hospital is None
    assert {letter.error_code for letter in letters.values()} == {"UNKNOWN_DEVICE"}
    assert {letter.device for letter in letters.values()} == {None}


@pytest.mark.django_db
def test_wrong_topics_and_wrong_hospitals_are_dead_letters(mqtt_device, other_hospital):
    handle_message("spd//cabinets/CAB-M1/events", b"{}")
    handle_message(topic_of(mqtt_device, other_hospital.code), json.dumps(event("e1")).encode())

    assert sorted(RejectedMessage.objects.values_list("error_code", flat=True)) == ["INVALID_TOPIC", "WRONG_HOSPITAL"]
    assert RejectedMessage.objects.get(error_code="WRONG_HOSPITAL").device == mqtt_device


@pytest.mark.django_db
def test_the_refused_events_of_a_batch_are_a_dead_letter_and_the_good_ones_are_stored(mqtt_device):
    handle_message(topic_of(mqtt_device), json.dumps(event("t-1", "temperature", {"celsius": 5.0})).encode())
    body = {"events": [event("ok-1"), event("t-1", "temperature", {"celsius": 9.0})]}
    results = handle_message(topic_of(mqtt_device), json.dumps(body).encode())

    assert [(r["event_id"], r["status"]) for r in results] == [("ok-1", "PROCESSED"), ("t-1", "REJECTED")]
    [letter] = RejectedMessage.objects.all()
    assert ([r["event_id"] for r in letter.results], letter.error_code) == (["t-1"], "EVENT_CONFLICT")
    assert letter.device == mqtt_device
    assert DeviceEvent.objects.get(event_id="ok-1").status == "PROCESSED"


@pytest.mark.django_db
def test_a_malformed_batch_is_one_dead_letter_and_stores_nothing(mqtt_device):
    body = {"events": [event("ok-1"), event("bad-1", "no-such-kind")]}
    [result] = handle_message(topic_of(mqtt_device), json.dumps(body).encode())

    assert result["error_code"] == "UNKNOWN_EVENT_KIND"
    assert RejectedMessage.objects.get().results == [result]
    assert not DeviceEvent.objects.exists()


@pytest.mark.django_db
def test_an_accepted_message_leaves_no_dead_letter(mqtt_device):
    handle_message(topic_of(mqtt_device), json.dumps(event("ok-1")).encode())
    assert not RejectedMessage.objects.exists()


@pytest.mark.django_db
def test_operators_list_their_hospitals_dead_letters_only(mqtt_device, other_hospital, operator):
    handle_message(topic_of(mqtt_device), b"not json")
    handle_message(f"spd/{other_hospital.code}/cabinets/CAB-X/events", b"{}")
    handle_message("spd/NOWHERE/cabinets/CAB-X/events", b"{}")

    mine = api_client_for(operator).get("/api/v1/devices/rejected-messages/").json()["results"]
    assert [(row["error_code"], row["device"]) for row in mine] == [("INVALID_JSON", "CAB-M1")]
    alliance = factories.UserFactory(username="alliance", hospital=None, is_superuser=True)
    assert api_client_for(alliance).get("/api/v1/devices/rejected-messages/").json()["count"] == 3
    assert api_client_for(operator).delete(f"/api/v1/devices/rejected-messages/{mine[0]['id']}/").status_code in (
        403, 405
    )
    assert RejectedMessage.objects.count() == 3


# Asking for outcomes over HTTP


@pytest.mark.django_db
def test_a_device_asks_over_http_what_became_of_its_events(mqtt_device, hospital):
    other = Device.objects.create(hospital=hospital, code="CAB-M2", name="x", kind=Device.Kind.CABINET_MQTT)
    handle_message(topic_of(mqtt_device), json.dumps(event("t-1", "temperature", {"celsius": 5.0})).encode())
    handle_message(topic_of(other), json.dumps(event("theirs")).encode())
    token = mqtt_device.issue_token()
    mqtt_device.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {token}")

    answer = client.get("/api/v1/devices/events/outcomes/", {"event_id": ["t-1", "theirs", "lost"]})

    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [(r["event_id"], r["status"]) for r in results] == [("t-1", "PROCESSED"), ("theirs", "UNKNOWN"),
                                                                ("lost", "UNKNOWN")]
    assert results[0]["result"] == {"celsius": 5.0}
    unnamed = client.get("/api/v1/devices/events/outcomes/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert (unnamed.status_code, unnamed.json()["code"]) == (400, "EVENT_IDS_INVALID")
    assert unnamed.json()["detail"] == "请提供 1 到 500 个事件 id（event_id 参数）。" and unnamed.json()["problems"]
    assert APIClient().get("/api/v1/devices/events/outcomes/", {"event_id": "t-1"}).status_code in (401, 403)


# The bridge's heartbeat and the MQTT_BRIDGE_DOWN alert


@pytest.mark.django_db
def test_the_bridge_writes_its_heartbeat_with_its_counts():
    bridge = MqttCabinetBridge("mqtt://127.0.0.1:1", client_id="hb-bridge")
    bridge.connected, bridge.messages, bridge.rejected = True, 7, 2
    started = timezone.now()
    record_heartbeat(bridge, started_at=started)
    record_heartbeat(bridge, started_at=started)

    [beat] = BridgeHeartbeat.objects.all()
    assert (beat.client_id, beat.connected, beat.messages, beat.rejected) == ("hb-bridge", True, 7, 2)
    assert beat.started_at == started and beat.beat_at >= started


@pytest.mark.django_db
def test_bridge_down_is_raised_for_each_hospital_with_mqtt_cabinets_and_resolved_when_it_beats(
    mqtt_device, other_hospital
):
    Device.objects.create(hospital=other_hospital, code="SC-9", name="扫码枪", kind=Device.Kind.SERIAL_SCANNER)
    now = timezone.now()

    assert scan_mqtt_bridge(now=now).raised == 1  # never started
    [alert] = Alert.objects.filter(kind=Alert.Kind.MQTT_BRIDGE_DOWN)
    assert (alert.hospital, alert.severity, alert.status) == (mqtt_device.hospital, "CRITICAL", "OPEN")
    assert "never started" in alert.message

    BridgeHeartbeat.objects.create(client_id="b", started_at=now, beat_at=now - datetime.timedelta(seconds=30),
                                   connected=False)
    assert scan_mqtt_bridge(now=now, down_after_seconds=120).resolved == 0  # alive but not connected: still down

    BridgeHeartbeat.objects.filter(client_id="b").update(connected=True)
    assert scan_mqtt_bridge(now=now, down_after_seconds=120).resolved == 1
    alert.refresh_from_db()
    assert alert.status == "RESOLVED"

    later = now + datetime.timedelta(minutes=5)
    assert scan_mqtt_bridge(now=later, down_after_seconds=120).raised == 1  # silent since


@pytest.mark.django_db
def test_no_bridge_alert_without_mqtt_cabinets(hospital):
    assert scan_mqtt_bridge().raised == 0
    assert run_job("mqtt_bridge_scan") == {"raised": 0, "updated": 0, "resolved": 0}


# Retention


@pytest.mark.django_db
def test_old_heartbeats_and_temperatures_go_and_business_events_stay(mqtt_device, settings):
    settings.SPD_DEVICE_TELEMETRY_RETENTION_DAYS = 30
    now = timezone.now()

    def stored(event_id: str, kind: str, days_ago: int) -> DeviceEvent:
        return DeviceEvent.objects.create(
            device=mqtt_device, event_id=event_id, kind=kind, occurred_at=now, payload={},
            received_at=now - datetime.timedelta(days=days_ago), body_sha256="x",
        )

    stored("hb-old", "heartbeat", 31)
    stored("t-old", "temperature", 45)
    stored("hb-new", "heartbeat", 29)
    stored("t-new", "temperature", 1)
    for kind in ("scan", "door_open", "door_close", "inventory"):
        stored(f"{kind}-old", kind, 400)

    assert run_job("device_event_retention") == {"deleted": 2, "kept_days": 30}
    assert sorted(DeviceEvent.objects.values_list("event_id", flat=True)) == [
        "door_close-old", "door_open-old", "hb-new", "inventory-old", "scan-old", "t-new",
    ]
    assert purge_telemetry(now=now, days=1) == {"deleted": 1, "kept_days": 1}  # hb-new
    with pytest.raises(ValueError, match="at least 1"):
        purge_telemetry(days=0)
