"""Device event ingest: store the raw event and process it, exactly once per event id.

Every adapter (HTTP endpoint, MQTT bridge, serial reader) calls `ingest_event` or `ingest_batch`.
An event, or a whole batch, is stored and processed in one transaction: a handler that fails rolls
back only its savepoint and leaves the event stored as REFUSED or FAILED with the reason; if the
transaction itself fails nothing is kept and the device, which has no acknowledgement, sends the
same events again. A replay of the same (device, event_id) returns the stored outcome and applies
nothing; the same id with a different body is refused (409).

Out-of-order delivery: events are stored in arrival order but carry the device's `occurred_at`;
handlers that depend on order (cabinet sessions) compare `occurred_at`, never arrival order, and
`last_seen` only moves forward.
"""
import datetime
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from devices.models import Device, DeviceEvent
from inventory.errors import Refusal, Refused

logger = logging.getLogger(__name__)

MAX_EVENT_ID_LENGTH = 128
MAX_BATCH = 500


class EventRejected(Exception):
    """An event that cannot be accepted at all (malformed, conflicting); nothing was stored."""

    def __init__(self, code: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status


@dataclass(frozen=True)
class IngestOutcome:
    event: DeviceEvent
    replayed: bool

    def as_dict(self) -> dict:
        event = self.event
        return {
            "event_id": event.event_id, "kind": event.kind, "status": event.status, "replayed": self.replayed,
            "result": event.result, "error_code": event.error_code, "error_detail": event.error_detail,
        }


Handler = Callable[[DeviceEvent], dict]
_HANDLERS: dict[str, Handler] = {}


def handles(kind: str) -> Callable[[Handler], Handler]:
    """Register the processor of one event kind (the inventory side registers cabinet kinds)."""

    def register(handler: Handler) -> Handler:
        _HANDLERS[kind] = handler
        return handler

    return register


def validate_event(body: object) -> tuple[str, str, datetime.datetime, dict]:
    """The (event_id, kind, occurred_at, payload) of a well-formed event body, or EventRejected."""
    if not isinstance(body, dict):
        raise EventRejected("INVALID_EVENT", "an event is a JSON object")
    if _contains_nul(body):
        raise EventRejected("INVALID_EVENT", "text fields may not contain the NUL character")
    event_id, kind, occurred_at, payload = (body.get(k) for k in ("event_id", "kind", "occurred_at", "payload"))
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH:
        raise EventRejected("INVALID_EVENT", f"event_id must be a string of 1 to {MAX_EVENT_ID_LENGTH} characters")
    if kind not in DeviceEvent.Kind.values:
        raise EventRejected(
            "UNKNOWN_EVENT_KIND", f"kind {kind!r} is not one of {', '.join(DeviceEvent.Kind.values)}"
        )
    moment = parse_datetime(occurred_at) if isinstance(occurred_at, str) else None
    if moment is None or timezone.is_naive(moment):
        raise EventRejected("INVALID_EVENT", "occurred_at must be an ISO 8601 date-time with a time zone")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise EventRejected("INVALID_EVENT", "payload must be a JSON object")
    return event_id, kind, moment, payload


def _contains_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(key) or _contains_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


def body_hash(body: dict) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def ingest_event(*, device: Device, body: object) -> IngestOutcome:
    """Store one raw event (once per device + event_id) and process it, in one transaction.

    If the transaction fails nothing is kept and the device sends the event again; a handler that
    fails only rolls back its own savepoint, and the event is kept as FAILED or REFUSED."""
    event_id, kind, occurred_at, payload = validate_event(body)
    _check_addressed_to(device, body)
    digest = body_hash(body)
    with transaction.atomic():
        try:
            with transaction.atomic():
                event = DeviceEvent.objects.create(
                    device=device, event_id=event_id, kind=kind, occurred_at=occurred_at, payload=payload,
                    body_sha256=digest,
                )
        except IntegrityError:
            return IngestOutcome(_first_of_same_body(device, event_id, digest), replayed=True)
        _mark_seen(device)
        process_event(event)
    return IngestOutcome(event, replayed=False)


def _first_of_same_body(device: Device, event_id: str, digest: str) -> DeviceEvent:
    """The stored event a replay designates, or EVENT_CONFLICT if it was sent with another body."""
    first = DeviceEvent.objects.get(device=device, event_id=event_id)
    if first.body_sha256 != digest:
        raise EventRejected(
            "EVENT_CONFLICT", f"event_id {event_id} was already received with a different body", status=409
        )
    return first


def ingest_body(*, device: Device, body: object) -> IngestOutcome | list[dict]:
    """Ingest what a device sent in one request or message: one event, a list, or {"events": [...]}.

    One event gives its outcome; a batch gives the list of per-event outcome dicts.
    """
    if isinstance(body, list) or (isinstance(body, dict) and "events" in body):
        events = body if isinstance(body, list) else body["events"]
        if not isinstance(events, list):
            raise EventRejected("INVALID_BATCH", "events must be a list")
        return ingest_batch(device=device, bodies=events)
    return ingest_event(device=device, body=body)


def ingest_batch(*, device: Device, bodies: list) -> list[dict]:
    """Ingest several events in order, in one transaction (if it fails the device resends the
    batch, and event ids make that safe). The whole batch is checked first: one malformed event
    rejects the batch and stores nothing; conflicts are reported per event."""
    if not bodies or len(bodies) > MAX_BATCH:
        raise EventRejected("INVALID_BATCH", f"a batch holds 1 to {MAX_BATCH} events")
    for index, body in enumerate(bodies):
        try:
            validate_event(body)
            _check_addressed_to(device, body)
        except EventRejected as rejected:
            raise EventRejected(rejected.code, f"event {index}: {rejected.detail}", rejected.status) from None
    with transaction.atomic():
        outcomes = []
        for body in bodies:
            try:
                outcomes.append(ingest_event(device=device, body=body).as_dict())
            except EventRejected as rejected:
                outcomes.append({"event_id": body["event_id"], "status": "REJECTED", "error_code": rejected.code,
                                 "error_detail": rejected.detail})
    return outcomes


def process_event(event: DeviceEvent) -> None:
    """Run the kind's handler in its own transaction and record how it went on the event."""
    handler = _HANDLERS.get(event.kind)
    try:
        with transaction.atomic():
            event.result = handler(event) if handler else {}
            event.status = DeviceEvent.Status.PROCESSED
    except Refused as refused:
        event.status, event.error_code, event.error_detail = DeviceEvent.Status.REFUSED, refused.code, refused.detail
    except Exception as error:  # a device must never be able to take the ingest path down
        logger.exception("processing %s failed", event)
        event.status, event.error_code, event.error_detail = DeviceEvent.Status.FAILED, "ERROR", repr(error)
    event.processed_at = timezone.now()
    event.save(update_fields=["status", "result", "error_code", "error_detail", "processed_at"])


def _check_addressed_to(device: Device, body: dict) -> None:
    """A device posts only for itself and its own hospital."""
    claimed_device, claimed_hospital = body.get("device"), body.get("hospital")
    if claimed_device is not None and claimed_device != device.code:
        raise EventRejected("WRONG_DEVICE", "a device may only send its own events", status=403)
    if claimed_hospital is not None and claimed_hospital != device.hospital.code:
        raise EventRejected("WRONG_HOSPITAL", "a device may only send events for its own hospital", status=403)


def _mark_seen(device: Device) -> None:
    now = timezone.now()
    Device.objects.filter(pk=device.pk).filter(Q(last_seen__isnull=True) | Q(last_seen__lt=now)).update(last_seen=now)
    device.last_seen = now


def authenticate_device(token: str) -> Device | None:
    if not token:
        return None
    return Device.objects.select_related("hospital", "location").filter(
        token_hash=Device.hash_token(token), is_active=True
    ).first()


@handles(DeviceEvent.Kind.HEARTBEAT)
def _heartbeat(event: DeviceEvent) -> dict:
    return {"last_seen": event.device.last_seen.isoformat() if event.device.last_seen else None}


@handles(DeviceEvent.Kind.TEMPERATURE)
def _temperature(event: DeviceEvent) -> dict:
    celsius = event.payload.get("celsius")
    if not isinstance(celsius, (int, float)) or isinstance(celsius, bool) or not -80 <= celsius <= 80:
        raise Refused(Refusal.INVALID_REQUEST, detail="temperature payload needs celsius between -80 and 80")
    return {"celsius": celsius}
