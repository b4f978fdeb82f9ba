"""Smart cabinets (智能柜): door sessions, the tag-set comparison on close, takes and put-backs.

On door close the cabinet reports every tag it sees. Compared, set-based, with what the ledger
says is in the cabinet: units no longer seen are TAKEN by whoever opened the door; units taken
earlier and seen again are put back (IN_CABINET); tags of units that belong elsewhere, or of no
unit, are recorded on the session and never absorbed into stock. An expired unit is never taken
(by close or by scan): one missing at close is locked as EXPIRED by the cabinet device instead.

Order of events: sessions are matched by the device's `occurred_at`, not by arrival. A close older
than the cabinet's last applied close is recorded as STALE, not applied, and alerted (the newer
close already describes the cabinet); a close with no open is applied without a user (attributed
to the cabinet device); a second open supersedes a session still open.

Trust: a device time more than SPD_DEVICE_MAX_CLOCK_AHEAD_SECONDS ahead of the server is replaced
by the server's (flagged on the session), so a wrong clock never makes the present STALE; a read
missing too large a share of the cabinet's units is held as SUSPECT (see `reader_check`) instead of
marking them all TAKEN.
"""
import datetime
import re
from dataclasses import dataclass
from types import ModuleType

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet, Value
from django.utils import timezone

from inventory.actors import Actor
from inventory.date_window import max_clock_ahead
from inventory.errors import Problem, Refusal, Refused
from inventory.models import CabinetSession, Hospital, Location, Movement, StockOrder, Unit, UnitStatus, User
from inventory.services.dated_entry import refuse_bad_moment, unit_history_problems
from inventory.services.idempotency import run_once
from inventory.services.labelling import normalise_epc
from inventory.services.ledger import (
    expiry_lock_problem,
    move_unit,
    move_units,
    quarantine_problem,
    recall_lock_problem,
    transition_problem,
)
from inventory.validators import refuse_personal_ids

APPLIED = (CabinetSession.Status.CLOSED, CabinetSession.Status.CLOSED_WITHOUT_OPEN)


def open_session(
    *, device: object, cabinet: Location, occurred_at: datetime.datetime, user_ref: str = "", badge: str = "",
    event: object = None, received_at: datetime.datetime | None = None,
) -> CabinetSession:
    """Start a session for whoever opened the door (by username or badge). An unknown person is
    recorded (badge kept) and their takes are attributed to the cabinet device. A time beyond the
    accepted clock skew is replaced by the server's (`received_at`) and flagged."""
    user = _person(cabinet.hospital, user_ref, badge)
    now = received_at or timezone.now()
    moment, ahead = device_time(occurred_at, now)
    with transaction.atomic():
        _lock_cabinet(cabinet.pk)
        if _last_applied_close(cabinet, after=moment, now=now):
            status = CabinetSession.Status.STALE
        else:
            status = CabinetSession.Status.OPEN
            # A session opened "in the future" by a wrong clock never blocks the present: superseded too.
            CabinetSession.objects.filter(cabinet=cabinet, status=CabinetSession.Status.OPEN).filter(
                Q(opened_at__lte=moment) | Q(opened_at__gt=now + max_clock_ahead())
            ).update(status=CabinetSession.Status.ABANDONED)
        return CabinetSession.objects.create(
            cabinet=cabinet, device=device, user=user, badge=badge or "", status=status, opened_at=moment,
            open_event=event, device_clock_ahead_seconds=ahead,
        )


def close_session(
    *, device: object, cabinet: Location, occurred_at: datetime.datetime, epcs: list[str], event: object = None,
    received_at: datetime.datetime | None = None,
) -> CabinetSession:
    """Apply the cabinet's full tag inventory at door close: takes, put-backs, unknown and misplaced tags.

    - A close older than the last applied one is STALE: recorded, not applied, alerted.
    - A read missing too large a share of the units the cabinet should hold (`reader_check`) is
      SUSPECT: nothing is taken, the raw read is kept, an alert is raised, and the session waits
      for the next read (the cabinet is asked to read again, or its next `inventory`), which is
      applied to it if it passes, or if it confirms the suspect read tag for tag (not an empty one);
      a person may also accept the suspect read (`accept_suspect_read`).
    - A session that is still SUSPECT when another session closes is ABANDONED: that close's
      read describes the cabinet from then on.
    """
    now = received_at or timezone.now()
    moment, ahead = device_time(occurred_at, now)
    seen = _normalised(epcs)
    with transaction.atomic():
        _lock_cabinet(cabinet.pk)
        opened, suspect, later_close = _sessions_at_close(cabinet, moment=moment, now=now)
        if suspect is not None and (opened is None or opened.opened_at < suspect.closed_at):
            session = suspect  # the cabinet reading again after a suspect read
        elif opened is not None:
            session = opened
            if suspect is not None:
                _supersede(suspect, by=session)
        else:
            session = CabinetSession(cabinet=cabinet, device=device, status=CabinetSession.Status.CLOSED_WITHOUT_OPEN)
        was_suspect = session.status == CabinetSession.Status.SUSPECT
        session.closed_at, session.close_event, session.tags_seen = moment, event, len(seen)
        session.device_clock_ahead_seconds = ahead if ahead is not None else session.device_clock_ahead_seconds
        if later_close:
            session.status = CabinetSession.Status.STALE
            session.save()
            _alerts().report_stale_close(session=session)
            return session
        diff = compare_with_contents(cabinet, seen)
        return _apply_or_hold(session, diff, seen, epcs, event, device, was_suspect)


def interim_read(
    *, device: object, cabinet: Location, occurred_at: datetime.datetime, epcs: list[str], event: object = None,
    received_at: datetime.datetime | None = None,
) -> CabinetSession | None:
    """An `inventory` read: informative, except that it is the next read a SUSPECT session waits
    for. Then it is checked like a close and applied to that session if it passes. Returns the
    suspect session it was used for, or None."""
    moment, _ = device_time(occurred_at, received_at or timezone.now())
    seen = _normalised(epcs)
    with transaction.atomic():
        _lock_cabinet(cabinet.pk)
        session = _pending_suspect(cabinet, before=moment)
        if session is None:
            return None
        diff = compare_with_contents(cabinet, seen)
        return _apply_or_hold(session, diff, seen, epcs, event, device, was_suspect=True, close_event=False)


def _apply_or_hold(
    session: CabinetSession, diff: "CabinetDiff", seen: set[str], epcs: list[str], event: object, device: object,
    was_suspect: bool, close_event: bool = True,
) -> CabinetSession:
    check = reader_check(device, diff, seen)
    if check["verdict"] == SUSPECT and was_suspect and _confirms(session, seen):
        check["verdict"] = CONFIRMED  # the same read twice, not an empty one: believed
    session.read_check = check
    if check["verdict"] == SUSPECT:
        session.status = CabinetSession.Status.SUSPECT
        read = {"event": getattr(event, "pk", None), "at": timezone.now().isoformat(), "epcs": list(epcs),
                "seen": sorted(seen), **{k: check[k] for k in ("expected", "missing")}}
        session.suspect_reads = [*session.suspect_reads, read]
        session.save()
        _alerts().report_cabinet_read(session=session)
        return session
    if was_suspect:
        session.status = CabinetSession.Status.CLOSED if session.opened_at else CabinetSession.Status.CLOSED_WITHOUT_OPEN
        if not close_event:
            session.tags_seen = len(seen)
    elif session.status == CabinetSession.Status.OPEN:
        session.status = CabinetSession.Status.CLOSED
    if session.pk is None:
        session.save()  # a close with no open: its movements name the session
    _apply(session, diff, device)
    session.save()
    if was_suspect:
        _alerts().report_cabinet_read(session=session)
    return session


def accept_suspect_read(*, session: CabinetSession, user: User, note: str) -> CabinetSession:
    """A person who has looked into the cabinet confirms its last suspect read (it really was
    emptied, say): the read is applied to the session as its close, the takes are the session's
    user's (else the device's), and the decision names who accepted it and why."""
    note = (note or "").strip()
    if not note:
        raise Refused(Refusal.NOTE_REQUIRED)
    refuse_personal_ids(note=note)
    with transaction.atomic():
        _lock_cabinet(session.cabinet_id)
        locked = CabinetSession.objects.select_for_update().select_related("cabinet", "device").get(pk=session.pk)
        if locked.status != CabinetSession.Status.SUSPECT or not locked.suspect_reads:
            raise Refused(Refusal.SESSION_NOT_SUSPECT, session=locked.pk)
        seen = set(locked.suspect_reads[-1]["seen"])
        diff = compare_with_contents(locked.cabinet, seen)
        locked.read_check = {
            **reader_check(locked.device, diff, seen), "verdict": ACCEPTED, "accepted_by": user.pk,
            "accepted_at": timezone.now().isoformat(), "note": note[:500],
        }
        locked.tags_seen = len(seen)
        locked.status = CabinetSession.Status.CLOSED if locked.opened_at else CabinetSession.Status.CLOSED_WITHOUT_OPEN
        _apply(locked, diff, locked.device)
        locked.save()
        _alerts().report_cabinet_read(session=locked)
        return locked


def _apply(session: CabinetSession, diff: "CabinetDiff", device: object) -> None:
    """Write the session's takes, put-backs and expiry locks, and note them on the session (the
    caller saves it: once, with its status)."""
    cabinet, occurred_at = session.cabinet, session.closed_at
    actor = Actor(user=session.user) if session.user else Actor(device=device)
    document = (Movement.DocumentType.CABINET_SESSION, session.pk)
    today = timezone.localdate(occurred_at)
    expired = [unit for unit in diff.taken if expiry_lock_problem(unit, today)]
    taken = [unit for unit in diff.taken if unit not in expired]
    # Past its expiry date a unit is locked: missing at close, it is recorded as expired, never as taken.
    move_units(units=expired, kind=Movement.Kind.EXPIRE, to_status=UnitStatus.EXPIRED, to_location=cabinet,
               actor=Actor(device=device), document=document, occurred_at=occurred_at,
               idempotency_keys=[f"cabinet-session:{session.pk}:expire:{unit.pk}" for unit in expired],
               note="expired unit not seen at door close: locked, not taken")
    move_units(units=taken, kind=Movement.Kind.CABINET_TAKE, to_status=UnitStatus.TAKEN, to_location=cabinet,
               actor=actor, document=document, occurred_at=occurred_at, reported_fact=True,
               idempotency_keys=[f"cabinet-session:{session.pk}:take:{unit.pk}" for unit in taken])
    move_units(units=diff.returned, kind=Movement.Kind.CABINET_RETURN, to_status=UnitStatus.IN_CABINET,
               to_location=cabinet, actor=actor, document=document, occurred_at=occurred_at,
               idempotency_keys=[f"cabinet-session:{session.pk}:return:{unit.pk}" for unit in diff.returned])
    session.taken = [_unit_summary(unit) for unit in taken]
    session.returned = [_unit_summary(unit) for unit in diff.returned]
    session.unknown_tags = diff.unknown
    session.misplaced = diff.misplaced


# --- device clocks and reader faults -----------------------------------------------------------------

# The verdicts of a read: held, believed, believed because read twice alike, accepted by a person.
SUSPECT, OK, CONFIRMED, ACCEPTED = "SUSPECT", "OK", "CONFIRMED", "ACCEPTED"


def device_time(occurred_at: datetime.datetime, now: datetime.datetime) -> tuple[datetime.datetime, int | None]:
    """The time a session uses for a device's `occurred_at`, and how far ahead the device's clock
    was when that time is not believed (more than SPD_DEVICE_MAX_CLOCK_AHEAD_SECONDS ahead of the
    server): then the server's time is used, so that a wrong clock never puts a session in the future
    where it would make every later close of the cabinet STALE."""
    ahead = occurred_at - now
    if ahead > max_clock_ahead():
        return now, int(ahead.total_seconds())
    return occurred_at, None


def reader_thresholds(device: object) -> tuple[float, int]:
    """(share, minimum units) of the reader check: the cabinet device's `config`
    (`suspect_missing_share`, `suspect_min_units`), else SPD_CABINET_SUSPECT_SHARE (0.5) and
    SPD_CABINET_SUSPECT_MIN_UNITS (4)."""
    config = getattr(device, "config", None) or {}
    share = config.get("suspect_missing_share")
    if share is None:
        share = getattr(settings, "SPD_CABINET_SUSPECT_SHARE", None)
    minimum = config.get("suspect_min_units")
    if minimum is None:
        minimum = getattr(settings, "SPD_CABINET_SUSPECT_MIN_UNITS", None)
    return float(0.5 if share is None else share), int(4 if minimum is None else minimum)


def reader_check(device: object, diff: "CabinetDiff", seen: set[str]) -> dict:
    """Is this read believable? A read that misses more than the share (or all) of the tagged units
    the cabinet should hold, when it should hold at least the minimum, is SUSPECT: a reader fault
    (antenna, door ajar, interference) is likelier than one person taking most of a cabinet."""
    share, minimum = reader_thresholds(device)
    expected, missing = diff.expected, len(diff.taken)
    suspect = expected >= minimum and expected > 0 and (missing == expected or missing / expected > share)
    return {
        "verdict": SUSPECT if suspect else OK, "expected": expected, "missing": missing,
        "seen_expected": expected - missing, "tags_seen": len(seen), "max_share": share, "min_units": minimum,
    }


def _confirms(session: CabinetSession, seen: set[str]) -> bool:
    """A re-read that sees exactly what the last suspect read saw, and saw something."""
    last = session.suspect_reads[-1] if session.suspect_reads else None
    return bool(seen) and last is not None and set(last.get("seen", [])) == seen


def _pending_suspect(cabinet: Location, *, before: datetime.datetime) -> CabinetSession | None:
    return _pending_suspects(cabinet, before=before).first()


def _pending_suspects(cabinet: Location, *, before: datetime.datetime) -> QuerySet:
    return CabinetSession.objects.filter(
        cabinet=cabinet, status=CabinetSession.Status.SUSPECT, closed_at__lte=before
    ).order_by("-closed_at", "-id")


def _sessions_at_close(
    cabinet: Location, *, moment: datetime.datetime, now: datetime.datetime
) -> tuple[CabinetSession | None, CabinetSession | None, bool]:
    """What a close at `moment` finds under the cabinet's lock, each session with its user (the takes'
    actor): the open session it ends (the latest opened by then), the suspect session waiting for a
    new read (`_pending_suspects`), and whether a later close was applied already
    (`_applied_closes_after`). On PostgreSQL in one query (UNION ALL), written out: compiling the same
    three parts with the ORM cost a close more CPU than the SQL's own work."""
    if connection.vendor == "postgresql":
        sessions = list(CabinetSession.objects.raw(_SESSIONS_AT_CLOSE, [
            cabinet.pk, CabinetSession.Status.OPEN, moment,
            cabinet.pk, CabinetSession.Status.SUSPECT, moment,
            cabinet.pk, *APPLIED, moment, now + max_clock_ahead(),
        ]))
        for session in sessions:  # the user's columns, as select_related("user") would read them
            values = [getattr(session, f"user__{name}") for name in _USER_FIELDS]
            session.user = User.from_db(User.objects.db, _USER_FIELDS, values) if session.user_id else None
    else:  # SQLite: no LIMIT inside a UNION, so one query each
        opened = CabinetSession.objects.filter(
            cabinet=cabinet, status=CabinetSession.Status.OPEN, opened_at__lte=moment
        ).order_by("-opened_at", "-id")
        parts = [
            (opened, "opened"),
            (_pending_suspects(cabinet, before=moment), "suspect"),
            (_applied_closes_after(cabinet, after=moment, now=now).order_by(), "later"),
        ]
        sessions = [session for query, role in parts
                    for session in query.select_related("user").annotate(role=Value(role))[:1]]
    found = {session.role: session for session in sessions}
    for session in found.values():
        session.cabinet = cabinet  # already in hand: not read lazily later
    return found.get("opened"), found.get("suspect"), "later" in found


# `_sessions_at_close` on PostgreSQL: the same three parts as the ORM's filters above, in
# `_pending_suspects` and in `_applied_closes_after` (tests/inventory/test_cabinet*.py cover each).
_USER_FIELDS = tuple(field.attname for field in User._meta.concrete_fields)  # none needs a converter


def _sessions_part(role: str, where: str, order: str) -> str:
    users = ", ".join(f'u."{field.column}" AS "user__{field.attname}"' for field in User._meta.concrete_fields)
    return (f"(SELECT s.*, {users}, '{role}' AS role FROM {CabinetSession._meta.db_table} s "
            f"LEFT JOIN {User._meta.db_table} u ON u.id = s.user_id WHERE {where} {order} LIMIT 1)")


_SESSIONS_AT_CLOSE = " UNION ALL ".join([
    _sessions_part("opened", "s.cabinet_id = %s AND s.status = %s AND s.opened_at <= %s",
                   "ORDER BY s.opened_at DESC, s.id DESC"),
    _sessions_part("suspect", "s.cabinet_id = %s AND s.status = %s AND s.closed_at <= %s",
                   "ORDER BY s.closed_at DESC, s.id DESC"),
    _sessions_part("later", "s.cabinet_id = %s AND s.status IN (%s, %s) AND s.closed_at > %s AND s.closed_at <= %s", ""),
])


def _supersede(suspect: CabinetSession, *, by: CabinetSession) -> None:
    suspect.status = CabinetSession.Status.ABANDONED
    suspect.read_check = {**suspect.read_check, "superseded_by": by.pk}
    suspect.save(update_fields=["status", "read_check"])
    _alerts().report_cabinet_read(session=suspect)


def _lock_cabinet(pk: int) -> None:
    """One session change per cabinet at a time: the cabinet's row locked, as
    `Location.objects.select_for_update().get(pk=pk)` would, without building a Location (its ORM
    compile was a tenth of a close's CPU). DoesNotExist for no such location, as `get` raises."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""  # SQLite: no row locks
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {Location._meta.db_table} WHERE id = %s{lock}", [pk])
        if cursor.fetchone() is None:
            raise Location.DoesNotExist("Location matching query does not exist.")


def _alerts() -> ModuleType:
    from inventory.services import alerts  # imported here: the alerts module imports this one

    return alerts


@dataclass
class CabinetDiff:
    taken: list[Unit]
    returned: list[Unit]
    unknown: list[str]
    misplaced: list[dict]
    expected: int = 0  # tagged units IN_CABINET: those a read can find missing


def compare_with_contents(cabinet: Location, seen: set[str]) -> CabinetDiff:
    """Set-based: one locking query for the cabinet's expected contents (their tags and statuses
    only), one reading the units that changed, one for the other tags seen.

    An EXPIRED unit still in the cabinet is expected there (not misplaced) but is never taken or put back.
    A tag bound to another hospital's unit is reported as unknown, exactly like a tag bound to no
    unit: nothing about another hospital's units (which, where, in what state) reaches this one.
    """
    expected = list(
        Unit.objects.select_for_update().filter(
            location=cabinet, status__in=[UnitStatus.IN_CABINET, UnitStatus.TAKEN, UnitStatus.EXPIRED],
            epc__isnull=False,
        ).order_by("pk").values_list(*_DIFF_FIELDS)
    )
    # The few units that change are made from the same rows (Unit.from_db, as `.only()` does: what a
    # take, put-back or expiry lock reads of a unit; any other field would be read on access).
    taken = [_unit(row) for row in expected if row[_STATUS] == UnitStatus.IN_CABINET and row[_EPC] not in seen]
    returned = [_unit(row) for row in expected if row[_STATUS] == UnitStatus.TAKEN and row[_EPC] in seen]
    others = seen - {row[_EPC] for row in expected}
    misplaced = [
        {"epc": epc, "unit": pk, "status": status, "location": location_id, "hospital": hospital_id}
        for epc, pk, status, location_id, hospital_id in Unit.objects.filter(
            epc__in=others, hospital_id=cabinet.hospital_id
        ).values_list("epc", "pk", "status", "location_id", "hospital_id")
    ]
    known = {item["epc"] for item in misplaced}
    return CabinetDiff(
        taken, returned, sorted(others - known), sorted(misplaced, key=lambda item: item["epc"]),
        expected=sum(1 for row in expected if row[_STATUS] == UnitStatus.IN_CABINET),
    )


# What the close reads of each unit in the cabinet: the comparison's (pk, epc, status) and what the
# ledger's `move_units`, the expiry lock and the session's summary of a changed unit read — in the
# model's field order, which `Unit.from_db` expects.
_DIFF_FIELDS = tuple(field.attname for field in Unit._meta.concrete_fields if field.attname in {
    "id", "epc", "status", "hospital_id", "product_id", "lot", "serial", "expiry", "location_id"})
_EPC, _STATUS = _DIFF_FIELDS.index("epc"), _DIFF_FIELDS.index("status")


def _unit(row: tuple) -> Unit:
    return Unit.from_db(Unit.objects.db, _DIFF_FIELDS, row)


def take_by_scan(*, actor: Actor, hospital: Hospital, units: list[Unit], idempotency_key: str,
                 occurred_at: datetime.datetime | None = None) -> StockOrder:
    """Take units out of a store without RFID by scanning them (same movement as a cabinet take).
    `occurred_at`: a paper record entered later (inventory.services.dated_entry)."""
    return _scan_order(actor, hospital, units, idempotency_key, StockOrder.Kind.TAKE, occurred_at)


def put_back_by_scan(*, actor: Actor, hospital: Hospital, units: list[Unit], idempotency_key: str,
                     occurred_at: datetime.datetime | None = None) -> StockOrder:
    """Put taken units back where they were taken from, by scanning them."""
    return _scan_order(actor, hospital, units, idempotency_key, StockOrder.Kind.PUT_BACK, occurred_at)


def overdue_takes(hospital: Hospital, now: datetime.datetime | None = None) -> list[Unit]:
    """Units TAKEN and neither used nor put back within their deadline (product's, else location's)."""
    now = now or timezone.now()
    taken = Unit.objects.filter(hospital=hospital, status=UnitStatus.TAKEN).select_related("product", "location")
    return [
        unit for unit in taken.order_by("status_since")
        if unit.status_since + datetime.timedelta(hours=deadline_hours(unit)) < now
    ]


def deadline_hours(unit: Unit) -> int:
    if unit.product.return_deadline_hours is not None:
        return unit.product.return_deadline_hours
    return unit.location.return_deadline_hours if unit.location else 24


def _scan_order(actor: Actor, hospital: Hospital, units: list[Unit], key: str, kind: str,
                occurred_at: datetime.datetime | None = None) -> StockOrder:
    if not units:
        raise Refused(Refusal.NOTHING_SCANNED)
    if any(unit.hospital_id != hospital.pk for unit in units):
        raise Refused(Refusal.NOT_FOUND, what="unit")
    moment = refuse_bad_moment(hospital_id=hospital.pk, occurred_at=occurred_at)
    take = kind == StockOrder.Kind.TAKE
    movement_kind = Movement.Kind.CABINET_TAKE if take else Movement.Kind.CABINET_RETURN

    def perform() -> StockOrder:
        locked = list(Unit.objects.select_for_update(of=("self",)).select_related("location").filter(
            pk__in=[unit.pk for unit in units]).order_by("pk"))
        problems = []
        for unit in locked:
            if problem := _scan_problem(unit, take):
                problems.append(problem)
        if occurred_at is not None:
            problems += unit_history_problems(locked, moment)
        if problems:
            raise Refused(problems)
        order = StockOrder.objects.create(hospital=hospital, kind=kind, created_by=actor.user,
                                          created_by_device=actor.device, occurred_at=occurred_at or timezone.now())
        for unit in locked:
            move_unit(unit=unit, kind=movement_kind, to_status=UnitStatus.TAKEN if take else _put_back_status(unit),
                      to_location=unit.location, actor=actor, idempotency_key=f"{hospital.pk}:{key}:{unit.pk}",
                      document=(Movement.DocumentType.STOCK_ORDER, order.pk), occurred_at=order.occurred_at)
        return order

    payload = sorted(unit.pk for unit in units)
    order, _ = run_once(hospital=hospital, key=key, operation=f"scan_{kind.lower()}",
                        payload={"units": payload, "occurred_at": occurred_at.isoformat()} if occurred_at else payload,
                        perform=perform)
    return order


def _scan_problem(unit: Unit, take: bool) -> Problem | None:
    """Why this unit cannot be taken (or put back) by scan, or None."""
    if take:
        return (quarantine_problem(unit, releasing=False) or expiry_lock_problem(unit) or recall_lock_problem(unit)
                or transition_problem(unit, UnitStatus.TAKEN))
    if unit.status != UnitStatus.TAKEN:
        return Problem(Refusal.ILLEGAL_TRANSITION, {
            "unit": unit.serial, "current": unit.get_status_display(), "target": _put_back_status(unit).label,
        }, unit.pk)
    return transition_problem(unit, _put_back_status(unit))


def _put_back_status(unit: Unit) -> UnitStatus:
    return UnitStatus(unit.location.holds_units_as) if unit.location else UnitStatus.IN_STOCK


def _person(hospital: Hospital, user_ref: str, badge: str) -> User | None:
    if not user_ref and not badge:
        return None
    query = Q(username=user_ref) if user_ref else Q(badge=badge)
    return User.objects.filter(query, hospital=hospital, is_active=True).first()


def _last_applied_close(cabinet: Location, *, after: datetime.datetime, now: datetime.datetime) -> bool:
    """Was a later close applied? One stamped beyond the accepted skew (stored before clocks were
    bounded) is not believed, so it never makes the present STALE."""
    return _applied_closes_after(cabinet, after=after, now=now).exists()


def _applied_closes_after(cabinet: Location, *, after: datetime.datetime, now: datetime.datetime) -> QuerySet:
    return CabinetSession.objects.filter(
        cabinet=cabinet, status__in=APPLIED, closed_at__gt=after, closed_at__lte=now + max_clock_ahead()
    )


# An EPC already in the form `normalise_epc` gives (upper-case hex, 8 to 64 digits, even): kept as it is.
_NORMAL_EPC = re.compile(r"(?:[0-9A-F]{2}){4,32}")


def _normalised(epcs: list[str]) -> set[str]:
    seen = set()
    for epc in set(epcs):  # a tag read twice is the same text
        if _NORMAL_EPC.fullmatch(epc):
            seen.add(epc)
            continue
        try:
            seen.add(normalise_epc(epc))
        except Refused:
            seen.add(str(epc).strip().upper())  # an unreadable tag is reported as unknown, not dropped
    return seen


def _unit_summary(unit: Unit) -> dict:
    return {"unit": unit.pk, "epc": unit.epc, "serial": unit.serial, "product": unit.product_id}
