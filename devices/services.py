"""Device event ingest: store the raw event and process it, exactly once per event id.

Every adapter (HTTP endpoint, MQTT bridge, serial reader) calls `ingest_event` or `ingest_batch`.
An event, or a whole batch, is stored and processed in one transaction: a handler that fails rolls
back only its savepoint and leaves the event stored as REFUSED or FAILED with the reason; if the
transaction itself fails nothing is kept and the device, which has no acknowledgement, sends the
same events again. A replay of the same (device, event_id) returns the stored outcome and applies
nothing; the same id with a different body is refused (409).

Two orders, one guarantee. Events whose handlers refer to their stored row (a cabinet session
keeps its door events by id) are stored first, then processed, then their outcome is written.
Scans, heartbeats and temperatures are processed first and stored after, each with its outcome, in
one INSERT (`handles(…, needs_event_row=False)`): the unique (device, event_id) index still
decides which request applies an event. A concurrent request with the same id waits on that index
entry until the first commits; its INSERT then fails, its savepoint — processing included — is
rolled back, and it answers the first outcome (a replay). Either order takes the device's row
(`last_seen`, always written) before anything else it locks: two requests of one device never lock
in opposite orders, whichever order each takes.

Out-of-order delivery: events are stored in arrival order but carry the device's `occurred_at`;
handlers that depend on order (cabinet sessions) compare `occurred_at`, never arrival order, and
`last_seen` only moves forward.

Device clocks: an `occurred_at` outside the accepted window (inventory/date_window.py) refuses the
event before anything is stored (DATE_OUT_OF_RANGE); one ahead of the server by more than the
accepted skew is stored as sent (the cabinet service then uses the arrival time). Both raise a
DEVICE_CLOCK_SKEW alert for the device.
"""
import datetime
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter

from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet, Value
from django.db.models.base import ModelState
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from devices.models import Device, DeviceEvent
from inventory.date_window import accepted_window, max_clock_ahead, readable, window_problem
from inventory.errors import Refusal, Refused
from inventory.lookups import AnyOf
from inventory.services.alerts import report_device_clock

logger = logging.getLogger(__name__)

MAX_EVENT_ID_LENGTH = 128
MAX_BATCH = 500
DATE_OUT_OF_RANGE = "DATE_OUT_OF_RANGE"


class EventRejected(Exception):
    """An event that cannot be accepted at all (malformed, conflicting); nothing was stored."""

    def __init__(self, code: str, detail: str, status: int = 400, params: dict | None = None) -> None:
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status
        self.params = params or {}  # the placeholders of the refusal's zh/en message (inventory/errors.py)


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
# Processes a run of consecutive events of one kind together: for each event in order, its result
# or the Refused that refuses it. It must change nothing that its events' own handlers would not.
BatchHandler = Callable[[list[DeviceEvent]], list[dict | Refused]]
_HANDLERS: dict[str, Handler] = {}
_BATCH_HANDLERS: dict[str, BatchHandler] = {}
# The kinds whose handlers never refer to their event's stored row: processed first, then stored
# with their outcome in one INSERT (see the module's docstring).
_STORED_AFTER: set[str] = set()
OUTCOME_FIELDS = ["status", "result", "error_code", "error_detail", "processed_at"]
_KINDS = frozenset(DeviceEvent.Kind.values)


def handles(kind: str, *, needs_event_row: bool = True) -> Callable[[Handler], Handler]:
    """Register the processor of one event kind (the inventory side registers cabinet kinds).

    `needs_event_row=False` declares that the handler (and the kind's batch handler) never refers
    to the stored event — its id —, so that its events can be stored after they are processed."""

    def register(handler: Handler) -> Handler:
        _HANDLERS[kind] = handler
        if needs_event_row:
            _STORED_AFTER.discard(kind)
        else:
            _STORED_AFTER.add(kind)
        return handler

    return register


def handles_batch(kind: str) -> Callable[[BatchHandler], BatchHandler]:
    """Register the processor of a run of events of one kind (scans of one batch)."""

    def register(handler: BatchHandler) -> BatchHandler:
        _BATCH_HANDLERS[kind] = handler
        return handler

    return register


def validate_event(
    body: object, window: tuple[datetime.datetime, datetime.datetime] | None = None
) -> tuple[str, str, datetime.datetime, dict]:
    """The (event_id, kind, occurred_at, payload) of a well-formed event body, or EventRejected;
    its time checked against `window` (`accepted_window()`, taken once for a batch) if given."""
    if not isinstance(body, dict):
        raise EventRejected("INVALID_EVENT", "an event is a JSON object")
    if _contains_nul(body):
        raise EventRejected("INVALID_EVENT", "text fields may not contain the NUL character")
    event_id, kind, occurred_at, payload = (body.get(k) for k in ("event_id", "kind", "occurred_at", "payload"))
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH:
        raise EventRejected("INVALID_EVENT", f"event_id must be a string of 1 to {MAX_EVENT_ID_LENGTH} characters")
    if kind not in _KINDS:
        raise EventRejected(
            "UNKNOWN_EVENT_KIND", f"kind {kind!r} is not one of {', '.join(DeviceEvent.Kind.values)}"
        )
    try:
        moment = parse_datetime(occurred_at) if isinstance(occurred_at, str) else None
    except ValueError:  # well formed but impossible, e.g. 2026-02-30
        moment = None
    if moment is None or timezone.is_naive(moment):
        raise EventRejected("INVALID_EVENT", "occurred_at must be an ISO 8601 date-time with a time zone")
    if problem := window_problem(moment, window=window):
        low, high = window or accepted_window()
        raise EventRejected(DATE_OUT_OF_RANGE, f"occurred_at {problem}: check the device's clock", params={
            "date": occurred_at, "earliest": timezone.localdate(low), "latest": timezone.localdate(high)})
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise EventRejected("INVALID_EVENT", "payload must be a JSON object")
    return event_id, kind, moment, payload


def _validated(
    device: Device, body: object, window: tuple[datetime.datetime, datetime.datetime] | None = None
) -> tuple[str, str, datetime.datetime, dict]:
    """`validate_event`, and a DEVICE_CLOCK_SKEW alert when the device's time is not believable
    (the event itself is refused and not stored: a device resends it once its clock is right)."""
    try:
        return validate_event(body, window)
    except EventRejected as rejected:
        if rejected.code == DATE_OUT_OF_RANGE:
            report_device_clock(device=device, problem=rejected.detail, details={"event_id": body.get("event_id")})
        raise


def _watch_clock(device: Device, events: list[DeviceEvent]) -> None:
    """Alert on a device clock ahead of the server by more than the accepted skew (the cabinet
    service uses the server's time for such events). No query when the clock is right: the alert is
    resolved by the periodic device scan (`scan_devices`)."""
    worst = max(events, key=lambda event: event.occurred_at - event.received_at)
    ahead = worst.occurred_at - worst.received_at
    if ahead > max_clock_ahead():
        report_device_clock(
            device=device,
            problem=f"its clock is {int(ahead.total_seconds())} s ahead of the server's (event {worst.event_id})",
            details={"event_id": worst.event_id, "ahead_seconds": int(ahead.total_seconds()),
                     "occurred_at": worst.occurred_at.isoformat(), "received_at": worst.received_at.isoformat()},
        )


def _contains_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(key) or _contains_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


# The canonical JSON of an event's body, whose hash tells a replay from a conflict: one encoder for
# every body (`json.dumps` with options builds one per call).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def body_hash(body: dict) -> str:
    return hashlib.sha256(_CANONICAL.encode(body).encode()).hexdigest()


def ingest_event(*, device: Device, body: object) -> IngestOutcome:
    """Store one raw event (once per device + event_id) and process it, in one transaction.

    If the transaction fails nothing is kept and the device sends the event again; a handler that
    fails only rolls back its own savepoint, and the event is kept as FAILED or REFUSED."""
    event_id, kind, occurred_at, payload = _validated(device, body)
    _check_addressed_to(device, body)
    digest = body_hash(body)
    event = DeviceEvent(device=device, event_id=event_id, kind=kind, occurred_at=occurred_at, payload=payload,
                        body_sha256=digest)
    with transaction.atomic():
        if kind in _STORED_AFTER and (first := _stored(device, {event_id}).get(event_id)) is not None:
            return IngestOutcome(_same_body(first, digest), replayed=True)
        ingest = _process_then_store if kind in _STORED_AFTER else _store_then_process
        if not ingest(device, [event], process=lambda events: _run_handler(events[0])):
            return IngestOutcome(_first_of_same_body(device, event_id, digest), replayed=True)
        _watch_clock(device, [event])
    return IngestOutcome(event, replayed=False)


def readable_events(queryset: QuerySet) -> QuerySet:
    """Stored events loaded safely: a time that cannot be loaded or shown (a year 0 or 10000 in some
    zone, stored before dates were checked) is left unloaded and `occurred_at_readable` is null,
    so one such row never fails a list or a replay."""
    return queryset.defer("occurred_at").annotate(occurred_at_readable=readable("occurred_at"))


def _first_of_same_body(device: Device, event_id: str, digest: str) -> DeviceEvent:
    """The stored event a replay designates, or EVENT_CONFLICT if it was sent with another body."""
    return _same_body(readable_events(DeviceEvent.objects.filter(device=device, event_id=event_id)).get(), digest)


def _same_body(first: DeviceEvent, digest: str) -> DeviceEvent:
    if first.body_sha256 != digest:
        raise _conflict(first.event_id)
    return first


def _stored(device: Device, event_ids: set[str]) -> dict[str, DeviceEvent]:
    """The events of `device` already stored under these ids, by id."""
    found = readable_events(DeviceEvent.objects.filter(AnyOf(F("event_id"), list(event_ids)), device=device)).order_by()
    return {event.event_id: event for event in found}


def _process_then_store(device: Device, events: list[DeviceEvent], *, process: Callable, ids: bool = True) -> bool:
    """Process new events and store them with their outcomes in one INSERT, in a savepoint; False,
    with nothing kept, when another request stored one of their ids meanwhile. The device's row
    first: its requests never take their locks in opposite orders. `ids=False`: the events' primary
    keys are not read back (a batch answers with event ids and outcomes only)."""
    try:
        with transaction.atomic():
            _mark_seen(device)
            process(events)
            _insert_events(events, ids=ids)
    except IntegrityError:  # a handler's own errors are caught in its savepoint: this is the INSERT's
        return False
    return True


def _store_then_process(device: Device, events: list[DeviceEvent], *, process: Callable) -> bool:
    """Store new events, then process them and write their outcomes; False, with nothing kept, when
    another request stored one of their ids meanwhile."""
    try:
        with transaction.atomic():
            _mark_seen(device)
            _insert_events(events)
    except IntegrityError:
        return False
    process(events)
    _save_outcomes(events)
    return True


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
    rejects the batch and stores nothing; conflicts are reported per event.

    Set-based: one query finds the ids already stored, runs of scans are processed together
    (`handles_batch`), and one INSERT stores the new events with their outcomes — or, when the
    batch holds a kind whose handler needs the stored row, one INSERT before processing and one
    UPDATE of the outcomes after. A replay (an id stored before, or twice in the batch) answers the
    first event's outcome; if another request stores one of the ids meanwhile, the batch's work is
    rolled back and its events are ingested one at a time."""
    if not bodies or len(bodies) > MAX_BATCH:
        raise EventRejected("INVALID_BATCH", f"a batch holds 1 to {MAX_BATCH} events")
    incoming = []
    window = accepted_window()  # one moment for the batch, as its events share one received_at
    for index, body in enumerate(bodies):
        try:
            incoming.append(_Incoming(body, *_validated(device, body, window), body_hash(body)))
            _check_addressed_to(device, body)
        except EventRejected as rejected:
            raise EventRejected(rejected.code, f"event {index}: {rejected.detail}", rejected.status,
                                rejected.params) from None
    with transaction.atomic():
        answers, new_events = _answers(device, incoming)
        if new_events:
            if all(event.kind in _STORED_AFTER for event in new_events):
                stored = _process_then_store(device, new_events, process=process_events, ids=False)
            else:
                stored = _store_then_process(device, new_events, process=process_events)
            if not stored:
                return [_ingest_one(device, item.body) for item in incoming]
            _watch_clock(device, new_events)
    return [answer if isinstance(answer, dict) else answer.as_dict() for answer in answers]


@dataclass(frozen=True)
class _Incoming:
    body: dict
    event_id: str
    kind: str
    occurred_at: datetime.datetime
    payload: dict
    digest: str


def _answers(device: Device, incoming: list["_Incoming"]) -> tuple[list, list[DeviceEvent]]:
    """The answer for each body (an outcome, or the rejection dict of a conflict) and the events
    not stored yet, in batch order (built, not saved)."""
    first_of = _stored(device, {item.event_id for item in incoming})
    answers: list[IngestOutcome | dict] = []
    new_events = []
    # The new events are copies of one (received now, pending): building hundreds of model instances
    # from keyword arguments cost more than the INSERT that stores them.
    template = DeviceEvent(device=device)
    for item in incoming:
        first = first_of.get(item.event_id)
        if first is None:
            first = first_of[item.event_id] = _copy_of(template)
            first.event_id, first.kind, first.occurred_at = item.event_id, item.kind, item.occurred_at
            first.payload, first.body_sha256, first.result = item.payload, item.digest, {}
            new_events.append(first)
            answers.append(IngestOutcome(first, replayed=False))
        elif first.body_sha256 != item.digest:
            answers.append(_rejection(item.event_id, _conflict(item.event_id)))
        else:
            answers.append(IngestOutcome(first, replayed=True))
    return answers, new_events


def _copy_of(template: DeviceEvent) -> DeviceEvent:
    """A new event (not saved) with the field values of `template` (not saved either): what
    `copy.copy` gives, without its detour through pickling (`Model.__reduce__`), ~5 µs an event."""
    event = DeviceEvent.__new__(DeviceEvent)
    event.__dict__.update(template.__dict__)
    event._state = ModelState()
    event.device = template.device
    return event


# The columns a new event is stored with, and their PostgreSQL types.
_EVENT_COLUMNS = {"device_id": "bigint", "event_id": "text", "kind": "text", "occurred_at": "timestamptz",
                  "received_at": "timestamptz", "payload": "jsonb", "body_sha256": "text", "status": "text",
                  "result": "jsonb", "error_code": "text", "error_detail": "text", "processed_at": "timestamptz"}
_EVENT_MOMENTS = [name for name, sql_type in _EVENT_COLUMNS.items() if sql_type == "timestamptz"]


def _insert_events(events: list[DeviceEvent], *, ids: bool = True) -> None:
    """`bulk_create` of new events, as they stand (pending, or with their outcome); with `ids=False`
    their primary keys are not read back on PostgreSQL (nor set: the events are not used as saved
    rows after). On PostgreSQL
    one INSERT … SELECT FROM jsonb_to_recordset(…), the rows sent as one JSON document: building
    the INSERT of 500 events field by field in Django, or sending one array per column (psycopg
    escapes every quote of every payload and outcome in Python), cost more than PostgreSQL's work
    to store them."""
    if not events:
        return
    if connection.vendor != "postgresql":
        DeviceEvent.objects.bulk_create(events)
        return
    texts: dict[datetime.datetime, str] = {}  # a batch's events share their received_at and processed_at
    rows = []
    for event in events:
        row = {name: getattr(event, name) for name in _EVENT_COLUMNS}
        for name in _EVENT_MOMENTS:
            if (moment := row[name]) is not None:
                row[name] = texts.get(moment) or texts.setdefault(moment, moment.isoformat())
        rows.append(row)
    names = ", ".join(_EVENT_COLUMNS)
    columns = ", ".join(f"{name} {sql_type}" for name, sql_type in _EVENT_COLUMNS.items())
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {DeviceEvent._meta.db_table} ({names}) SELECT {names} "  # names from the model
            f"FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) AS ({columns})) WITH ORDINALITY "
            f"AS event({names}, position) ORDER BY position" + (" RETURNING event_id, id" if ids else ""),
            [json.dumps(rows)],
        )
        if not ids:
            return
        pks = dict(cursor.fetchall())  # the new events of a batch have distinct ids
    for event in events:
        event.pk = pks[event.event_id]
        event._state.adding, event._state.db = False, connection.alias


def _ingest_one(device: Device, body: dict) -> dict:
    try:
        return ingest_event(device=device, body=body).as_dict()
    except EventRejected as rejected:
        return _rejection(body["event_id"], rejected)


def _rejection(event_id: str, rejected: EventRejected) -> dict:
    return {"event_id": event_id, "status": "REJECTED", "error_code": rejected.code, "error_detail": rejected.detail}


def _conflict(event_id: str) -> EventRejected:
    return EventRejected("EVENT_CONFLICT", f"event_id {event_id} was already received with a different body", status=409)


def process_events(events: list[DeviceEvent]) -> None:
    """Process events in order: a run of consecutive events of a kind with a batch handler
    together, each other event in its own savepoint; each event's outcome is set on it (the caller
    stores it)."""
    for kind, run in groupby(events, key=attrgetter("kind")):
        run = list(run)
        if kind in _BATCH_HANDLERS:
            _run_batch_handler(_BATCH_HANDLERS[kind], run)
        else:
            for event in run:
                _run_handler(event)


def _save_outcomes(events: list[DeviceEvent]) -> None:
    """Write the events' outcome fields in one statement. On PostgreSQL an UPDATE … FROM unnest(…)
    of one array per column: Django's bulk_update compiles a CASE per field and row, which took more
    time than processing a batch of 500 scans."""
    if connection.vendor != "postgresql":
        DeviceEvent.objects.bulk_update(events, OUTCOME_FIELDS)
        return
    result = DeviceEvent._meta.get_field("result")
    columns = {
        "id": ("bigint", [event.pk for event in events]),
        "status": ("text", [event.status for event in events]),
        "result": ("jsonb", [result.get_db_prep_value(event.result, connection) for event in events]),
        "error_code": ("text", [event.error_code for event in events]),
        "error_detail": ("text", [event.error_detail for event in events]),
        "processed_at": ("timestamptz", [event.processed_at for event in events]),
    }
    arrays = ", ".join(f"%s::{sql_type}[]" for sql_type, _ in columns.values())
    assignments = ", ".join(f"{name} = outcome.{name}" for name in OUTCOME_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {DeviceEvent._meta.db_table} AS event SET {assignments} "  # names from the model
            f"FROM unnest({arrays}) AS outcome({', '.join(columns)}) WHERE event.id = outcome.id",
            [values for _, values in columns.values()],
        )


def _run_handler(event: DeviceEvent) -> None:
    handler = _HANDLERS.get(event.kind)
    try:
        with transaction.atomic():
            _record(event, handler(event) if handler else {})
    except Exception as error:
        _record(event, error)


def _run_batch_handler(handler: BatchHandler, events: list[DeviceEvent]) -> None:
    try:
        with transaction.atomic():
            outcomes = handler(events)
    except Exception:  # the run's work is rolled back; one event at a time tells which one fails
        logger.exception("processing %d %s events together failed", len(events), events[0].kind)
        for event in events:
            _run_handler(event)
        return
    processed_at = timezone.now()  # the run's events were processed together
    for event, outcome in zip(events, outcomes, strict=True):
        _record(event, outcome, processed_at)


def _record(event: DeviceEvent, outcome: dict | Exception, processed_at: datetime.datetime | None = None) -> None:
    if isinstance(outcome, Refused):
        event.status, event.error_code, event.error_detail = DeviceEvent.Status.REFUSED, outcome.code, outcome.detail
    elif isinstance(outcome, Exception):  # a device must never be able to take the ingest path down
        logger.error("processing %s failed", event, exc_info=outcome)
        event.status, event.error_code, event.error_detail = DeviceEvent.Status.FAILED, "ERROR", repr(outcome)
    else:
        event.result, event.status = outcome, DeviceEvent.Status.PROCESSED
    event.processed_at = processed_at or timezone.now()


def _check_addressed_to(device: Device, body: dict) -> None:
    """A device posts only for itself and its own hospital."""
    claimed_device, claimed_hospital = body.get("device"), body.get("hospital")
    if claimed_device is not None and claimed_device != device.code:
        raise EventRejected("WRONG_DEVICE", "a device may only send its own events", status=403)
    if claimed_hospital is not None and claimed_hospital != device.hospital.code:
        raise EventRejected("WRONG_HOSPITAL", "a device may only send events for its own hospital", status=403)


def _mark_seen(device: Device) -> None:
    """`last_seen` moved forward, never back. The row is written (and so locked) even when a later
    moment is already there: the lock that orders a device's requests (module docstring)."""
    now = timezone.now()
    Device.objects.filter(pk=device.pk).update(last_seen=Greatest(Coalesce("last_seen", Value(now)), Value(now)))
    device.last_seen = now


def authenticate_device(token: str) -> Device | None:
    if not token:
        return None
    return Device.objects.select_related("hospital", "location").filter(
        token_hash=Device.hash_token(token), is_active=True
    ).first()


@handles(DeviceEvent.Kind.HEARTBEAT, needs_event_row=False)
def _heartbeat(event: DeviceEvent) -> dict:
    return {"last_seen": event.device.last_seen.isoformat() if event.device.last_seen else None}


@handles(DeviceEvent.Kind.TEMPERATURE, needs_event_row=False)
def _temperature(event: DeviceEvent) -> dict:
    celsius = event.payload.get("celsius")
    if not isinstance(celsius, (int, float)) or isinstance(celsius, bool) or not -80 <= celsius <= 80:
        raise Refused(Refusal.TEMPERATURE_PAYLOAD_INVALID)
    return {"celsius": celsius}
