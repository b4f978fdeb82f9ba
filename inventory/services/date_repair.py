"""Repair the dates stored before dates from outside were checked (`manage.py repair_dates`).

Until devices' and the HIS's dates were checked against the accepted window, a device event or a
settlement line could be stored with a year 1 or 9999 date (which made whole lists fail), and a
cabinet session could be stamped by a device clock days ahead (which made every later close of the
cabinet STALE). This finds them, set-based, and — only when asked to apply — repairs them:

    device events      occurred_at outside received_at ± SPD_ACCEPTED_DATE_YEARS: set to received_at;
                       the device's value is kept in `occurred_at_as_sent`, `date_repaired_at` set
    settlement lines   settled_at outside imported_at ± the same: quarantined — settled_at emptied
                       (no reconciliation period takes the line in), its value kept in
                       `settled_at_as_sent`, `quarantined_at` set; the HIS should send it again
    cabinet sessions   opened_at / closed_at beyond the accepted clock skew ahead of when its event
                       arrived, or outside the window: set to the event's arrival (else left, and
                       listed), with `device_clock_ahead_seconds` recording the difference
    movements          listed only: the ledger is append-only, a person corrects with a new movement

Values are read as text in SQL, so rows that Python cannot even load are listed and repaired.
Running it again finds nothing more to repair.
"""
import datetime
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import CharField, F, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from devices.models import DeviceEvent
from inventory.date_window import DAYS_PER_YEAR, accepted_years, max_clock_ahead, readable
from inventory.models import CabinetSession, HisSettlementLine, Movement

LISTED = 50  # rows listed per kind; all are counted and repaired
MAX_SECONDS = 2**31 - 1


@dataclass
class Found:
    """The rows of one kind whose dates are out of bounds: how many, and the first few as text."""

    kind: str
    action: str
    count: int = 0
    rows: list[dict] = field(default_factory=list)
    repairs: bool = True  # False: only listed


@dataclass
class RepairReport:
    applied: bool
    found: list[Found]

    @property
    def total(self) -> int:
        return sum(item.count for item in self.found)


def _span() -> datetime.timedelta:
    return datetime.timedelta(days=round(accepted_years() * DAYS_PER_YEAR))


def _outside(name: str, reference: str) -> Q:
    span = _span()
    return Q(**{f"{name}__lt": F(reference) - span}) | Q(**{f"{name}__gt": F(reference) + span})


def bad_events() -> QuerySet:
    return DeviceEvent.objects.filter(_outside("occurred_at", "received_at"), date_repaired_at__isnull=True)


def bad_settlement_lines() -> QuerySet:
    return HisSettlementLine.objects.filter(
        _outside("settled_at", "imported_at"), quarantined_at__isnull=True, settled_at__isnull=False
    )


def bad_movements() -> QuerySet:
    return Movement.objects.filter(_outside("occurred_at", "recorded_at"))


def bad_sessions() -> QuerySet:
    """Sessions whose open or close is ahead of its event's arrival by more than the accepted skew,
    or outside the window around it (a session without its event: around now)."""
    skew, now = max_clock_ahead(), timezone.now()
    conditions = Q()
    for name, event in (("opened_at", "open_event"), ("closed_at", "close_event")):
        arrived = f"{event}__received_at"
        conditions |= Q(**{f"{event}__isnull": False}) & (
            Q(**{f"{name}__gt": F(arrived) + skew}) | _outside(name, arrived)
        )
        conditions |= Q(**{f"{event}__isnull": True, f"{name}__gt": now + skew})
    return CabinetSession.objects.filter(conditions)


def _as_text(queryset: QuerySet, name: str, *extra: str) -> list[dict]:
    return list(queryset.order_by("pk").annotate(value=Cast(name, CharField(max_length=64))).values(
        "pk", "value", *extra)[:LISTED])


def repair_dates(*, apply: bool = False) -> RepairReport:
    """Find (and with `apply`, repair in one transaction) the stored dates out of bounds; see the module."""
    with transaction.atomic():
        events, lines, sessions, movements = bad_events(), bad_settlement_lines(), bad_sessions(), bad_movements()
        found = [
            Found("device events", "occurred_at set to received_at, the device's value kept", events.count(),
                  _as_text(events, "occurred_at", "event_id", "device__code", "received_at")),
            Found("HIS settlement lines", "quarantined: settled_at emptied, the HIS's value kept", lines.count(),
                  _as_text(lines, "settled_at", "his_line_id", "import_batch")),
            Found("cabinet sessions", "time set to its event's arrival, the difference flagged", sessions.count(),
                  _as_text(sessions, "closed_at", "cabinet_id", "status")),
            Found("movements", "listed only: the ledger is append-only", movements.count(),
                  _as_text(movements, "occurred_at", "kind", "unit_id"), repairs=False),
        ]
        if apply:
            now = timezone.now()
            text = CharField(max_length=64)
            # One UPDATE each; the right-hand sides all read the row as it was.
            events.update(occurred_at_as_sent=Cast("occurred_at", text), occurred_at=F("received_at"),
                          date_repaired_at=now)
            lines.update(settled_at_as_sent=Cast("settled_at", text), settled_at=None, quarantined_at=now)
            _repair_sessions(sessions)
    return RepairReport(applied=apply, found=found)


def _repair_sessions(sessions: QuerySet) -> None:
    """Few rows, one at a time: each side (open, close) that is not believable is set to its event's
    arrival (no event: to now, if it is in the future); the larger difference is kept as clock skew."""
    now = timezone.now()
    text = CharField(max_length=64)
    rows = sessions.select_related("open_event", "close_event").defer("opened_at", "closed_at").annotate(
        opened=readable("opened_at"), closed=readable("closed_at"),
        opened_text=Cast("opened_at", text), closed_text=Cast("closed_at", text),
    ).order_by("pk")
    for session in rows:
        changes, skews = {}, []
        for name, told, stored, event in (
            ("opened_at", session.opened, session.opened_text, session.open_event),
            ("closed_at", session.closed, session.closed_text, session.close_event),
        ):
            if stored is None:
                continue
            used = _believable_time(told, event.received_at if event else None, now)
            if used is not told:
                changes[name] = used
                skews.append(int((told - used).total_seconds()) if told is not None else MAX_SECONDS)
        if changes:
            skew = max(skews, key=abs)
            CabinetSession.objects.filter(pk=session.pk).update(
                **changes, device_clock_ahead_seconds=max(-MAX_SECONDS, min(MAX_SECONDS, skew))
            )


def _believable_time(
    told: datetime.datetime | None, arrived: datetime.datetime | None, now: datetime.datetime
) -> datetime.datetime | None:
    """`told` itself when believable, else the time to use instead: its event's arrival, or now."""
    reference = arrived or now
    if told is not None and told - reference <= max_clock_ahead() and (arrived is None or abs(told - arrived) <= _span()):
        return told
    return reference
