"""Dated entry: stock moved on paper during an outage is entered later with the moment it happened.

The stock-moving services take an optional `occurred_at` (the movement's time; `recorded_at` keeps
when it was entered). A date is believed only when it fits the ledger:

- not in the future beyond the allowed clock skew (SPD_DEVICE_MAX_CLOCK_AHEAD_SECONDS, 300 s):
  OCCURRED_IN_FUTURE, 400;
- not in a closed month (月结): PERIOD_CLOSED, 409;
- not before what the ledger already says of the item (HISTORY_CONTRADICTED, 409): a unit's new
  movement may not be dated before its latest one (its receipt, the transfer that brought it to
  where it is: a use cannot precede them, a move cannot precede the unit's existence); a lot
  quantity may not leave a place at a moment from which on the place did not hold it — the lot's
  running balance there, from that moment on, must always cover the quantity, so that no later
  movement is left drawing stock that was not there.
"""
import contextlib
import contextvars
import datetime
from collections.abc import Iterator

from django.db.models import Max
from django.utils import timezone

from inventory.date_window import max_clock_ahead
from inventory.errors import Problem, Refusal, Refused
from inventory.models import Location, Movement, Product, Unit
from inventory.services.period_close import refuse_closed_period

# The demo hospital's history (inventory/simulation/demo_history.py) backdates a month of uses onto
# stock it receives at seeding time: it alone turns the ledger-history checks off, for its seeding.
_HISTORY_CHECKS = contextvars.ContextVar("spd_history_checks", default=True)


@contextlib.contextmanager
def history_checks_suspended() -> Iterator[None]:
    """For the demo seeder only: backdated entries are not compared with the ledger's history
    (the future and closed-month checks stay)."""
    token = _HISTORY_CHECKS.set(False)
    try:
        yield
    finally:
        _HISTORY_CHECKS.reset(token)


def _shown(moment: datetime.datetime) -> str:
    return timezone.localtime(moment).isoformat(timespec="seconds")


def refuse_bad_moment(*, hospital_id: int, occurred_at: datetime.datetime | None,
                      now: datetime.datetime | None = None) -> datetime.datetime:
    """The moment a write is dated (`occurred_at`, else now), refused when it is in the future or in
    a closed month. Called before anything is written."""
    now = now or timezone.now()
    moment = occurred_at or now
    ahead = max_clock_ahead()
    if moment > now + ahead:
        raise Refused(Refusal.OCCURRED_IN_FUTURE, moment=_shown(moment), seconds=int(ahead.total_seconds()))
    refuse_closed_period(hospital_id=hospital_id, moment=moment)
    return moment


def unit_history_problems(units: list[Unit], moment: datetime.datetime) -> list[Problem]:
    """The units whose latest movement is after `moment` (a backdated entry would precede it)."""
    if not _HISTORY_CHECKS.get():
        return []
    latest = dict(
        Movement.objects.filter(unit__in=[unit.pk for unit in units]).values("unit").annotate(last=Max("occurred_at"))
        .values_list("unit", "last")
    )
    return [
        Problem(Refusal.HISTORY_CONTRADICTED, {"item": unit.serial, "moment": _shown(moment),
                                               "last": _shown(latest[unit.pk])}, unit.pk)
        for unit in units if unit.pk in latest and latest[unit.pk] > moment
    ]


def lot_history_problem(product: Product, lot: str, location: Location, quantity: int,
                        moment: datetime.datetime) -> Problem | None:
    """Why `quantity` of the lot cannot have left `location` at `moment`, or None if it can: the
    lot's running balance there must cover it at `moment` and at every later movement."""
    if not _HISTORY_CHECKS.get():
        return None
    incoming = Movement.objects.filter(product=product, lot=lot, unit__isnull=True, to_location=location)
    outgoing = Movement.objects.filter(product=product, lot=lot, unit__isnull=True, from_location=location)
    changes = sorted(
        [(at, pk, amount) for pk, at, amount in incoming.values_list("pk", "occurred_at", "quantity")]
        + [(at, pk, -amount) for pk, at, amount in outgoing.values_list("pk", "occurred_at", "quantity")]
    )
    running = sum(change for at, _, change in changes if at <= moment)
    lowest = running
    for at, _, change in changes:
        if at > moment:
            running += change
            lowest = min(lowest, running)
    if lowest < quantity:
        last = changes[-1][0] if changes else None
        return Problem(Refusal.HISTORY_CONTRADICTED, {"item": f"{product} {lot}", "moment": _shown(moment),
                                                      "last": _shown(last) if last else "—"})
    return None
