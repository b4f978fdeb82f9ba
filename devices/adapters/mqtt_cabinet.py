"""Smart cabinets over MQTT: `spd/<hospital>/cabinets/<device>/events` into the device ingest path.

A cabinet publishes the same JSON it would POST to /api/v1/devices/events/ (one event, a list,
or {"events": [...]}) with QoS 1. `handle_message` is the pure part — topic and bytes in, result
dicts out — and calls `ingest_event` / `ingest_batch` exactly as the HTTP endpoint does, so a
replayed event id returns the first outcome and a reused id with another body is refused with
EVENT_CONFLICT. Every outcome, rejections included, is published back on
`spd/<hospital>/cabinets/<device>/results` (QoS 1) as {"results": [...]}, so the cabinet and its
vendor can see what happened to each event.

A cabinet that lost an answer asks again with {"outcome_of": ["<event id>", ...]} on its events
topic; the stored outcome of each is published on its results topic (status UNKNOWN for an event
never stored). The same question over HTTP: GET /api/v1/devices/events/outcomes/?event_id=…

Every message refused in whole or in part (unparseable, unknown device, wrong topic, refused
events) also leaves a dead letter (devices/dead_letters.py) for operators.

`MqttCabinetBridge` is the long-running part (`manage.py run_mqtt_bridge`). Delivery guarantees:

- MQTT 3.1.1 persistent session (`clean_session=False`, a fixed client id): the broker keeps
  the subscription and queues QoS 1 messages while the bridge is down (up to the shipped
  config's `max_queued_messages`), and delivers them when a bridge with the same client id
  reconnects. Run one bridge per client id: two bridges with the same id take the session from
  each other in turn.
- Manual acknowledgement (paho `manual_ack`): an incoming message is acknowledged (PUBACK) only
  when the broker has acknowledged its answer on the results topic. A bridge that dies before
  that — before the event is stored, or after but before its answer is safe at the broker —
  never acknowledges it, so the broker delivers it again to the next bridge. The redelivery is
  harmless: ingest is idempotent by (device, event_id), so an event stored before the crash is
  found, not applied a second time, and its answer is published (marked replayed).
- When the database is unreachable the bridge retries a few times, then does not acknowledge the
  message and stops (`failure` is set); the command exits non-zero so that its supervisor
  restarts it, and the broker redelivers. A message that fails in any other way fails the same
  way every time, so it is acknowledged, logged, kept as a dead letter and answered with
  INTERNAL_ERROR rather than blocking every event queued behind it.
- The command writes a heartbeat (BridgeHeartbeat) every few seconds; the mqtt_bridge_scan job
  raises MQTT_BRIDGE_DOWN for each hospital with MQTT cabinets when none is fresh.

Who may publish on a cabinet's topic is the broker's business: devices/broker_auth.py gives each
cabinet its own credential and an ACL to its own two topics; TLS (mqtts://, settings.MQTT_TLS_*)
protects them on the wire. The bridge still accepts only active CABINET_MQTT devices, and only on
the topic of their own hospital.
"""
import json
import logging
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import InterfaceError, OperationalError, close_old_connections, connections
from django.utils import timezone
from paho.mqtt.enums import CallbackAPIVersion

from devices.dead_letters import record_rejected_message
from devices.models import BridgeHeartbeat, Device
from devices.selectors import MAX_OUTCOME_QUERY, event_outcomes
from devices.services import EventRejected, ingest_body
from inventory.api.parsers import unstorable_text

logger = logging.getLogger(__name__)

TOPIC_FILTER = "spd/+/cabinets/+/events"
DEFAULT_CLIENT_ID = "spd-cabinet-bridge"
# Pauses before each retry while the database is unreachable; the whole run stays well inside
# the keep-alive, since paho cannot send PINGREQ while a message is being handled.
DEFAULT_RETRY_DELAYS = (1.0, 2.0, 4.0)
# The key of a question about earlier events: {"outcome_of": ["<event id>", ...]}.
OUTCOME_QUERY = "outcome_of"

_TRANSIENT = (OperationalError, InterfaceError)


class TopicError(ValueError):
    """A topic that is not `spd/<hospital>/cabinets/<device>/events`."""


def parse_topic(topic: str) -> tuple[str, str]:
    """The (hospital code, device code) named by a cabinet events topic, or TopicError."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "spd" or parts[2] != "cabinets" or parts[4] != "events":
        raise TopicError(f"topic {topic!r} is not spd/<hospital>/cabinets/<device>/events")
    hospital_code, device_code = parts[1], parts[3]
    if not hospital_code or not device_code:
        raise TopicError(f"topic {topic!r} names no hospital or no device")
    return hospital_code, device_code


def results_topic(topic: str) -> str | None:
    """Where the outcomes of a message on `topic` are published; None for a topic that is not a cabinet's."""
    try:
        hospital_code, device_code = parse_topic(topic)
    except TopicError:
        return None
    return f"spd/{hospital_code}/cabinets/{device_code}/results"


def rejection(code: str, detail: str, event_id: object = None) -> dict:
    """A result for something that was not stored; the same shape as a rejected event of a batch."""
    return {"event_id": event_id, "status": "REJECTED", "error_code": code, "error_detail": detail}


def handle_message(topic: str, payload: bytes) -> list[dict]:
    """Ingest the events of one MQTT message; return one result per event, or one rejection.

    Never raises for anything a device sends (bad topic, oversized or malformed JSON, unknown
    device, wrong hospital, invalid or conflicting events): those are logged, returned as
    rejections and kept as one dead letter for the message, and nothing of them is stored as an
    event. An {"outcome_of": [...]} question is answered with the stored outcomes. Database
    errors do propagate.
    """
    results, device, hospital_code = _handle(topic, payload)
    rejected = [result for result in results if result["status"] == "REJECTED"]
    for result in rejected:
        logger.warning(
            "MQTT %s: event %s rejected: %s %s",
            topic, result["event_id"], result["error_code"], result["error_detail"],
        )
    if rejected:
        record_rejected_message(
            topic=topic, payload=payload, rejected=rejected, device=device, hospital_code=hospital_code,
            device_code=topic.split("/")[3] if hospital_code else None,
        )
    return results


def _handle(topic: str, payload: bytes) -> tuple[list[dict], Device | None, str | None]:
    try:
        hospital_code, device_code = parse_topic(topic)
    except TopicError as error:
        return [rejection("INVALID_TOPIC", str(error))], None, None
    limit = settings.SPD_DEVICE_EVENT_MAX_BYTES
    if len(payload) > limit:
        return [rejection("PAYLOAD_TOO_LARGE", f"{len(payload)} bytes; at most {limit} bytes")], None, hospital_code
    try:
        body = json.loads(payload, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError too
        return [rejection("INVALID_JSON", f"the message is not UTF-8 JSON: {error}")], None, hospital_code
    if (where := unstorable_text(body, refuse_nul=False)) is not None:  # NUL: ingest refuses it per event
        return [rejection("INVALID_JSON", f"text at {where or '/'} holds an unpaired surrogate")], None, hospital_code
    device = (
        Device.objects.select_related("hospital", "location")
        .filter(code=device_code, kind=Device.Kind.CABINET_MQTT, is_active=True)
        .first()
    )
    if device is None:
        return [rejection("UNKNOWN_DEVICE", f"no active MQTT cabinet {device_code!r}")], None, hospital_code
    if device.hospital.code != hospital_code:
        detail = f"cabinet {device_code} does not belong to hospital {hospital_code!r}"
        return [rejection("WRONG_HOSPITAL", detail)], device, hospital_code
    if isinstance(body, dict) and OUTCOME_QUERY in body:
        return _outcomes(device, body[OUTCOME_QUERY]), device, hospital_code
    try:
        outcome = ingest_body(device=device, body=body)
        return (outcome if isinstance(outcome, list) else [outcome.as_dict()]), device, hospital_code
    except EventRejected as rejected:
        event_id = body.get("event_id") if isinstance(body, dict) else None
        return [rejection(rejected.code, rejected.detail, event_id)], device, hospital_code


def _outcomes(device: Device, event_ids: object) -> list[dict]:
    if (
        not isinstance(event_ids, list) or not 0 < len(event_ids) <= MAX_OUTCOME_QUERY
        or not all(isinstance(event_id, str) for event_id in event_ids)
    ):
        detail = f"{OUTCOME_QUERY} must be a list of 1 to {MAX_OUTCOME_QUERY} event ids (strings)"
        return [rejection("INVALID_QUERY", detail)]
    return event_outcomes(device=device, event_ids=event_ids)


def _refuse_constant(name: str) -> None:
    # As DRF's JSON parser does: NaN and Infinity are not JSON, and no database stores them.
    raise ValueError(f"{name} is not valid JSON")


class MqttCabinetBridge:
    """Subscribe to every cabinet's events topic and feed the messages to `handle_message`.

    `start()` returns at once: paho's network thread connects, reconnects (1 s to 30 s back-off),
    subscribes again after every connect, and calls `on_message` for each message. `stop()`
    disconnects without ending the persistent session.
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        topic_filter: str = TOPIC_FILTER,
        keepalive: int = 60,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
            raise ValueError(f"broker URL {url!r} is not mqtt://[user:password@]host[:port] or mqtts://…")
        self.host = parsed.hostname
        self.port = parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)
        self.client_id, self.topic_filter, self.keepalive = client_id, topic_filter, keepalive
        self.retry_delays = tuple(retry_delays)
        self.failure: BaseException | None = None
        self.session_present: bool | None = None
        self.subscribed = threading.Event()
        self.connected = False
        self.messages = self.rejected = 0
        self.last_message_at = None
        self._stopping = threading.Event()
        # The incoming (mid, qos) to acknowledge once the broker has acknowledged the answer, by the
        # answer's mid. Only the network thread touches it (on_message, on_publish, on_disconnect).
        self._pending_acks: dict[int, tuple[int, int]] = {}

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if parsed.username:
            client.username_pw_set(unquote(parsed.username), unquote(parsed.password or "") or None)
        if parsed.scheme == "mqtts":
            client.tls_set(ca_certs=ca_file or None, certfile=cert_file or None, keyfile=key_file or None)
        elif ca_file or cert_file:
            raise ValueError(f"TLS files are given but the broker URL {url!r} is not mqtts://")
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self.client = client

    def start(self) -> None:
        """Connect in the background; a broker that is down now is retried, not an error."""
        self._stopping.clear()
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect and end the network thread. The session, and what is queued in it, stays."""
        self._stopping.set()
        self.client.disconnect()
        self.client.loop_stop()

    def wait_until_subscribed(self, timeout: float) -> bool:
        return self.subscribed.wait(timeout)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            logger.error("MQTT broker %s:%s refused the connection: %s", self.host, self.port, reason_code)
            return
        self.connected = True
        self.session_present = flags.session_present
        logger.info(
            "connected to MQTT broker %s:%s as %s (session present: %s)",
            self.host, self.port, self.client_id, flags.session_present,
        )
        # Queued messages may already be arriving; subscribing again is harmless and covers a
        # session the broker has expired or lost.
        client.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list, properties: Any
    ) -> None:
        if any(code.is_failure for code in reason_codes):
            logger.error("MQTT broker refused the subscription to %s: %s", self.topic_filter, reason_codes)
            return
        logger.info("subscribed to %s", self.topic_filter)
        self.subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.subscribed.clear()
        self.connected = False
        # Acknowledgements belong to a connection: what was not acknowledged comes again.
        self._pending_acks.clear()
        if not self._stopping.is_set():
            # A broker closes the older connection when a second client logs in with the same id.
            logger.warning(
                "lost the MQTT broker (%s); reconnecting. If this repeats, another bridge may be using client id %s",
                reason_code, self.client_id,
            )
        # This runs in the network thread: give back the database connection that thread holds.
        connections.close_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            results = self._handle_with_retries(message.topic, message.payload)
        except _TRANSIENT as error:
            self.failure = error
            logger.critical(
                "database unavailable; message on %s left unacknowledged for redelivery, bridge stopping",
                message.topic,
            )
            raise  # no PUBACK: paho re-raises and its network thread ends
        except Exception:
            logger.exception("message on %s could not be processed; dropped", message.topic)
            results = [rejection("INTERNAL_ERROR", "the message could not be processed")]
            self._keep_dead_letter(message, results)
        self.messages += 1
        self.rejected += any(result["status"] == "REJECTED" for result in results)
        self.last_message_at = timezone.now()
        reply_topic = results_topic(message.topic)
        if reply_topic is None:
            self._ack(message.mid, message.qos)
            return
        info = client.publish(reply_topic, json.dumps({"results": results}, cls=DjangoJSONEncoder), qos=1)
        if message.qos:
            self._pending_acks[info.mid] = (message.mid, message.qos)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        incoming = self._pending_acks.pop(mid, None)
        if incoming is not None:
            self._ack(*incoming)

    def _ack(self, mid: int, qos: int) -> None:
        if qos:
            self.client.ack(mid, qos)

    @staticmethod
    def _keep_dead_letter(message: mqtt.MQTTMessage, results: list[dict]) -> None:
        try:
            close_old_connections()
            try:
                hospital_code, device_code = parse_topic(message.topic)
            except TopicError:
                hospital_code = device_code = None
            record_rejected_message(
                topic=message.topic, payload=message.payload, rejected=results, hospital_code=hospital_code,
                device_code=device_code,
            )
        except Exception:
            logger.exception("the dead letter of a message on %s could not be stored either", message.topic)

    def _handle_with_retries(self, topic: str, payload: bytes) -> list[dict]:
        for delay in self.retry_delays:
            try:
                return self._handle_once(topic, payload)
            except _TRANSIENT:
                logger.warning("database error on a message on %s; retrying in %s s", topic, delay, exc_info=True)
                if self._stopping.wait(delay):
                    raise
        return self._handle_once(topic, payload)

    @staticmethod
    def _handle_once(topic: str, payload: bytes) -> list[dict]:
        close_old_connections()
        try:
            return handle_message(topic, payload)
        finally:
            close_old_connections()


def record_heartbeat(bridge: MqttCabinetBridge, *, started_at: Any) -> None:
    """Write `bridge`'s sign of life (BridgeHeartbeat) now; called by its command every few seconds."""
    BridgeHeartbeat.objects.update_or_create(
        client_id=bridge.client_id,
        defaults={
            "hostname": socket.gethostname()[:255], "pid": os.getpid(), "started_at": started_at,
            "beat_at": timezone.now(), "connected": bridge.connected, "messages": bridge.messages,
            "rejected": bridge.rejected, "last_message_at": bridge.last_message_at,
        },
    )
