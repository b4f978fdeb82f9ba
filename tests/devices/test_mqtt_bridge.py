"""The MQTT cabinet bridge against the real Mosquitto, and the cabinet simulator against a live server.

Every test uses its own hospital and device codes, its own client ids and a topic filter for its
own device, so that runs in parallel (SQLite and PostgreSQL, several checkouts) on one broker
never see each other's messages; the persistent sessions the tests create are removed afterwards.
"""
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from paho.mqtt.enums import CallbackAPIVersion

from devices.adapters import mqtt_cabinet
from devices.adapters.mqtt_cabinet import MqttCabinetBridge, TopicError, handle_message, parse_topic
from devices.management.commands.simulate_cabinet import session_events
from devices.models import Device, DeviceEvent, RejectedMessage
from inventory.models import Unit
from inventory.services.labelling import bind_tag
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.stock import transfer_stock
from tests import factories
from tests.conftest import scan_every_line
from tests.factories import gs1_udi

WHEN = "2026-11-23T09:30:00+08:00"
TIMEOUT = 5.0
MANAGE_PY = Path(__file__).resolve().parents[2] / "manage.py"


def unique() -> str:
    return uuid.uuid4().hex[:10].upper()


def event(event_id: str, kind: str = "heartbeat", payload: dict | None = None) -> dict:
    return {"event_id": event_id, "kind": kind, "occurred_at": WHEN, "payload": payload or {}}


def wait_for(condition: Callable[[], object], timeout: float = TIMEOUT) -> object:
    """Poll until `condition()` is truthy; return it, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"not true after {timeout} s: {condition.__doc__ or condition}")
        time.sleep(0.02)
    return value


def broker_url() -> str:
    return os.environ["MQTT_URL"]


def broker_address() -> tuple[str, int]:
    parsed = urlparse(broker_url())
    return parsed.hostname or "127.0.0.1", parsed.port or 1883


def forget_session(client_id: str) -> None:
    """Connect once with a clean session: the broker drops what it kept under this client id."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.connect(*broker_address())
    client.disconnect()


class Cabinet:
    """A test's view of the broker: publishes as the cabinet, collects what the bridge answers."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.topic = f"spd/{device.hospital.code}/cabinets/{device.code}/events"
        self.answers: queue.Queue[tuple[str, dict]] = queue.Queue()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-cabinet-{unique()}")
        self.client.on_message = lambda client, userdata, message: self.answers.put(
            (message.topic, json.loads(message.payload))
        )
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(*broker_address())
        self.client.subscribe(f"spd/+/cabinets/{device.code}/results", qos=1)
        self.client.loop_start()
        assert subscribed.wait(TIMEOUT), "the broker did not confirm the results subscription"

    def publish(self, body: object, topic: str | None = None) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        info = self.client.publish(topic or self.topic, payload, qos=1)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published(), "the broker did not acknowledge the publication"

    def answer(self, event_id: str | None = None, error_code: str | None = None) -> tuple[str, dict]:
        """The (topic, result) of the next answer about `event_id` (or carrying `error_code`)."""
        deadline = time.monotonic() + TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                topic, message = self.answers.get(timeout=left)
            except queue.Empty:
                break
            for result in message["results"]:
                if (event_id is None or result["event_id"] == event_id) and (
                    error_code is None or result.get("error_code") == error_code
                ):
                    return topic, result
        pytest.fail(f"no answer about {event_id or error_code} within {TIMEOUT} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def device(db) -> Device:
    code = unique()
    hospital = factories.HospitalFactory(code=f"MQ{code}")
    return Device.objects.create(hospital=hospital, code=f"CAB-{code}", name="导管室智能柜", kind=Device.Kind.CABINET_MQTT)


@pytest.fixture
def publisher(device) -> Iterator[Cabinet]:
    cabinet = Cabinet(device)
    yield cabinet
    cabinet.close()


@pytest.fixture
def start_bridge(device) -> Iterator[Callable[..., MqttCabinetBridge]]:
    """Start a bridge for this test's device (same client id each call unless told otherwise)."""
    default_client_id = f"test-bridge-{unique()}"
    started: list[MqttCabinetBridge] = []

    def start(client_id: str = default_client_id, **options: object) -> MqttCabinetBridge:
        bridge = MqttCabinetBridge(
            broker_url(), client_id=client_id, topic_filter=f"spd/+/cabinets/{device.code}/events", **options
        )
        started.append(bridge)
        bridge.start()
        assert bridge.wait_until_subscribed(TIMEOUT), "the bridge did not subscribe"
        return bridge

    yield start
    for bridge in started:
        bridge.stop()
    for client_id in {bridge.client_id for bridge in started}:
        forget_session(client_id)


def stored(device: Device, event_id: str) -> list[DeviceEvent]:
    return list(DeviceEvent.objects.filter(device=device, event_id=event_id))


# Topics


def test_events_topic_names_hospital_and_device():
    assert parse_topic("spd/H001/cabinets/CAB-7/events") == ("H001", "CAB-7")


@pytest.mark.parametrize(
    "topic",
    [
        "spd/H001/cabinets/CAB-7/results", "spd/H001/cabinets/CAB-7", "spd/H001/cabinets/CAB-7/events/x",
        "spd//cabinets/CAB-7/events", "spd/H001/cabinets//events", "his/H001/cabinets/CAB-7/events",
        "spd/H001/scanners/CAB-7/events", "", "/spd/H001/cabinets/CAB-7/events",
    ],
)
def test_any_other_topic_is_refused_with_a_clear_error(topic):
    with pytest.raises(TopicError, match="spd/<hospital>/cabinets/<device>/events|names no"):
        parse_topic(topic)


# handle_message without a broker


@pytest.mark.django_db
def test_a_batch_message_stores_each_event(device):
    topic = f"spd/{device.hospital.code}/cabinets/{device.code}/events"
    body = {"events": [event("b1"), event("b2", "temperature", {"celsius": 6.5})]}
    results = handle_message(topic, json.dumps(body).encode())
    assert [(r["event_id"], r["status"]) for r in results] == [("b1", "PROCESSED"), ("b2", "PROCESSED")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b'{"event_id": "x", ', "INVALID_JSON"),
        (b"\xff\xfe not utf-8", "INVALID_JSON"),
        (b'{"event_id": "n1", "kind": "temperature", "occurred_at": "' + WHEN.encode() + b'", '
         b'"payload": {"celsius": NaN}}', "INVALID_JSON"),
        (b"[" * 3000, "INVALID_JSON"),
        (b'"a string"', "INVALID_EVENT"),
        (b'{"events": {"event_id": "x"}}', "INVALID_BATCH"),
        (b"x" * 5000, "PAYLOAD_TOO_LARGE"),
    ],
    ids=["truncated", "not-utf8", "nan", "deeply-nested", "not-an-object", "events-not-a-list", "oversized"],
)
def test_malformed_or_oversized_messages_are_rejected_and_store_nothing(device, settings, payload, code):
    settings.SPD_DEVICE_EVENT_MAX_BYTES = 4096
    topic = f"spd/{device.hospital.code}/cabinets/{device.code}/events"
    [result] = handle_message(topic, payload)
    assert (result["status"], result["error_code"]) == ("REJECTED", code)
    assert not DeviceEvent.objects.exists()


@pytest.mark.django_db
def test_only_active_mqtt_cabinets_are_accepted(device):
    topic = f"spd/{device.hospital.code}/cabinets/{device.code}/events"
    Device.objects.filter(pk=device.pk).update(kind=Device.Kind.CABINET_HTTP)
    [result] = handle_message(topic, json.dumps(event("k1")).encode())
    assert result["error_code"] == "UNKNOWN_DEVICE"
    Device.objects.filter(pk=device.pk).update(kind=Device.Kind.CABINET_MQTT, is_active=False)
    [result] = handle_message(topic, json.dumps(event("k1")).encode())
    assert result["error_code"] == "UNKNOWN_DEVICE"
    assert not DeviceEvent.objects.exists()


# The bridge on the real broker


def test_run_mqtt_bridge_needs_a_broker(settings):
    settings.MQTT_URL = ""
    with pytest.raises(CommandError, match="no MQTT broker"):
        call_command("run_mqtt_bridge")
    with pytest.raises(CommandError, match="is not mqtt://"):
        call_command("run_mqtt_bridge", url="http://127.0.0.1:1883")


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_heartbeat_and_temperature_are_stored_processed_and_mark_the_cabinet_seen(device, publisher, start_bridge):
    start_bridge()
    publisher.publish(event("hb-1"))
    publisher.publish(event("t-1", "temperature", {"celsius": 5.5}))

    topic, result = publisher.answer("t-1")
    assert topic == f"spd/{device.hospital.code}/cabinets/{device.code}/results"
    assert (result["status"], result["replayed"], result["result"]) == ("PROCESSED", False, {"celsius": 5.5})
    heartbeat, temperature = wait_for(lambda: [*stored(device, "hb-1"), *stored(device, "t-1")])
    assert (heartbeat.kind, heartbeat.status) == ("heartbeat", DeviceEvent.Status.PROCESSED)
    assert (temperature.kind, temperature.status) == ("temperature", DeviceEvent.Status.PROCESSED)
    device.refresh_from_db()
    assert device.last_seen is not None


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_the_same_event_again_is_answered_as_replayed_and_stored_once(device, publisher, start_bridge):
    start_bridge()
    publisher.publish(event("hb-1"))
    assert publisher.answer("hb-1")[1]["replayed"] is False
    publisher.publish(event("hb-1"))

    _, again = publisher.answer("hb-1")
    assert (again["status"], again["replayed"]) == ("PROCESSED", True)
    assert len(stored(device, "hb-1")) == 1


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_the_same_event_id_with_another_body_is_refused_as_a_conflict(device, publisher, start_bridge):
    start_bridge()
    publisher.publish(event("t-1", "temperature", {"celsius": 5.5}))
    publisher.answer("t-1")
    publisher.publish(event("t-1", "temperature", {"celsius": 30.0}))

    _, refused = publisher.answer("t-1")
    assert (refused["status"], refused["error_code"]) == ("REJECTED", "EVENT_CONFLICT")
    [first] = stored(device, "t-1")
    assert first.payload == {"celsius": 5.5}


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_malformed_json_is_dropped_and_the_bridge_keeps_working(device, publisher, start_bridge):
    bridge = start_bridge()
    publisher.publish(b'{"event_id": "bad-1", "kind": "heartb')
    _, refused = publisher.answer(error_code="INVALID_JSON")
    assert refused["status"] == "REJECTED"
    assert not DeviceEvent.objects.filter(device=device).exists()

    publisher.publish(event("hb-2"))
    assert publisher.answer("hb-2")[1]["status"] == "PROCESSED"
    assert len(stored(device, "hb-2")) == 1
    assert bridge.failure is None


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_a_cabinet_on_another_hospitals_topic_is_rejected_and_nothing_is_stored(device, publisher, start_bridge):
    other = factories.HospitalFactory(code=f"MQX{unique()}")
    start_bridge()
    publisher.publish(event("hb-1"), topic=f"spd/{other.code}/cabinets/{device.code}/events")

    topic, refused = publisher.answer(error_code="WRONG_HOSPITAL")
    assert topic == f"spd/{other.code}/cabinets/{device.code}/results"
    assert not DeviceEvent.objects.filter(device=device).exists()
    device.refresh_from_db()
    assert device.last_seen is None


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_an_event_sent_while_the_bridge_is_down_is_delivered_when_it_reconnects(device, publisher, start_bridge):
    first = start_bridge()
    first.stop()  # a plain disconnect: the broker keeps the session and queues for it
    publisher.publish(event("while-down"))
    assert not stored(device, "while-down")

    second = start_bridge()  # the same client id
    assert second.session_present is True
    assert publisher.answer("while-down")[1]["status"] == "PROCESSED"
    [delivered] = stored(device, "while-down")
    assert delivered.status == DeviceEvent.Status.PROCESSED


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_a_message_is_acknowledged_only_once_its_answer_is_safe_at_the_broker(device, publisher, start_bridge):
    first = start_bridge()
    # As if the bridge died after storing the event and publishing its answer, before the broker
    # confirmed the answer: the incoming message must stay unacknowledged.
    first.client.on_publish = lambda *args: None
    publisher.publish(event("hb-1"))
    assert publisher.answer("hb-1")[1]["replayed"] is False
    first.stop()

    start_bridge()  # same client id: the broker delivers the unacknowledged message again
    _, again = publisher.answer("hb-1")
    assert (again["status"], again["replayed"]) == ("PROCESSED", True)
    assert len(stored(device, "hb-1")) == 1


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_an_acknowledged_message_is_not_delivered_again(device, publisher, start_bridge):
    first = start_bridge()
    publisher.publish(event("hb-1"))
    publisher.answer("hb-1")
    wait_for(lambda: not first._pending_acks)
    first.stop()

    start_bridge()
    publisher.publish(event("hb-2"))
    _, answer = publisher.answer()
    assert answer["event_id"] == "hb-2"


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_a_cabinet_asks_for_the_outcome_of_its_events_over_mqtt(device, publisher, start_bridge):
    start_bridge()
    publisher.publish(event("t-1", "temperature", {"celsius": 4.0}))
    publisher.answer("t-1")

    publisher.publish({"outcome_of": ["t-1", "never-sent"]})
    _, known = publisher.answer("t-1")
    assert (known["status"], known["result"], known["replayed"]) == ("PROCESSED", {"celsius": 4.0}, True)
    publisher.publish({"outcome_of": ["never-sent"]})
    assert publisher.answer("never-sent")[1]["status"] == "UNKNOWN"
    assert len(stored(device, "t-1")) == 1 and not stored(device, "never-sent")


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_event_the_database_could_not_take_is_not_acknowledged_and_comes_back(
    device, publisher, start_bridge, monkeypatch
):
    def database_down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(mqtt_cabinet, "ingest_body", database_down)
    failing = start_bridge(retry_delays=(0.05,))
    publisher.publish(event("hb-1"))
    wait_for(lambda: failing.failure is not None)
    failing.stop()
    monkeypatch.undo()
    assert not stored(device, "hb-1")

    start_bridge()
    assert publisher.answer("hb-1")[1]["status"] == "PROCESSED"
    assert len(stored(device, "hb-1")) == 1


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_a_message_that_fails_for_another_reason_is_answered_and_does_not_block_the_next(
    device, publisher, start_bridge, monkeypatch
):
    real_ingest = mqtt_cabinet.ingest_body

    def poisoned(*, device, body):
        if body["event_id"] == "poison":
            raise ValueError("a row the database refuses")
        return real_ingest(device=device, body=body)

    monkeypatch.setattr(mqtt_cabinet, "ingest_body", poisoned)
    bridge = start_bridge()
    publisher.publish(event("poison"))
    assert publisher.answer(error_code="INTERNAL_ERROR")[1]["status"] == "REJECTED"
    letter = wait_for(lambda: RejectedMessage.objects.filter(error_code="INTERNAL_ERROR").first())
    assert (letter.device, letter.hospital) == (device, device.hospital)
    publisher.publish(event("hb-after"))

    assert publisher.answer("hb-after")[1]["status"] == "PROCESSED"
    assert bridge.failure is None


@pytest.mark.mqtt
def test_run_mqtt_bridge_stops_cleanly_on_sigterm():
    client_id, code = f"test-bridge-{unique()}", unique()
    process = subprocess.Popen(
        [sys.executable, str(MANAGE_PY), "run_mqtt_bridge", "--client-id", client_id,
         "--topic", f"spd/+/cabinets/{code}/events"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        deadline = time.monotonic() + 15
        while "subscribed to" not in lines.get(timeout=max(deadline - time.monotonic(), 0.01)):
            pass
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
        forget_session(client_id)
    process.stdout.close()
    assert "Stopped." in "".join(lines.queue)


# The simulator


def test_a_door_session_reads_tags_several_times_and_closes_with_the_set_seen():
    present = {f"E280116060000205{n:08X}" for n in range(20)}
    events = session_events({"badge": "B7"}, present, random.Random())
    assert [kind for kind, _ in events] == [
        "heartbeat", "door_open", "inventory", "inventory", "door_close", "temperature",
    ]
    assert events[1][1] == {"badge": "B7"}
    for kind, payload in events:
        if kind == "inventory":
            assert set(payload["epcs"]) == present
            assert len(payload["epcs"]) > len(present)  # duplicate reads
    assert events[4][1] == {"epcs": sorted(present)}
    assert 18 <= events[5][1]["celsius"] <= 26


@pytest.mark.django_db(transaction=True)
def test_simulate_cabinet_over_http_stores_a_whole_door_session(
    live_server, keeper_actor, supplier, product, warehouse, cabinet
):
    epcs = [f"E2801160600002054CC2{n:04X}" for n in range(3)]
    note = receive_delivery_note(
        actor=keeper_actor, hospital=warehouse.hospital, supplier=supplier, number="DN-SIM",
        receiving_location=warehouse, idempotency_key="rcv-sim",
        lines=[LineInput(product.agreements.get().unit_price, udi=gs1_udi(product.udi_di, serial=f"SIM{n}"))
               for n in range(3)],
    )
    scan_every_line(keeper_actor, note)
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-sim")
    units = list(Unit.objects.order_by("serial"))
    transfer_stock(actor=keeper_actor, hospital=cabinet.hospital, to_location=cabinet, units=units,
                   idempotency_key="to-cabinet")
    for unit, epc in zip(units, epcs, strict=True):
        bind_tag(unit=unit, epc=epc, actor=keeper_actor)
    device = Device(hospital=cabinet.hospital, location=cabinet, code="CAB-HTTP-1", name="智能柜",
                    kind=Device.Kind.CABINET_HTTP)
    token = device.issue_token()
    device.save()

    out = StringIO()
    call_command("simulate_cabinet", device="CAB-HTTP-1", via="http", url=live_server.url, token=token,
                 sessions=1, take=1, interval=0, user="keeper", stdout=out)

    events = list(DeviceEvent.objects.filter(device=device).order_by("id"))
    assert [e.kind for e in events] == ["heartbeat", "door_open", "inventory", "inventory", "door_close",
                                        "temperature"], out.getvalue()
    assert len({e.event_id for e in events}) == 6
    assert events[1].payload == {"user": "keeper"}
    left = events[4].payload["epcs"]
    assert len(left) == 2 and set(left) < set(epcs)
    assert all(set(e.payload["epcs"]) == set(left) for e in events[2:4])
    assert all(e.status != DeviceEvent.Status.FAILED for e in events), [(e.kind, e.error_detail) for e in events]
    assert "6 accepted, 0 refused" in out.getvalue()
