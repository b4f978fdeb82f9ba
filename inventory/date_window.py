"""Which dates from outside (devices, HIS imports) are believed, and how stored ones are read safely.

A device with a reset clock sends 1970 or 2000; a typo in an HIS export gives year 0001 or 9999.
Stored, such a moment is a trap: years outside 1–9999 in UTC (possible on PostgreSQL, which keeps
what +08:00 or -08:00 turns year 1 or 9999 into) cannot even be loaded into Python, and a
year-9999 moment overflows when shown in local time, so one row made a whole list fail.

- `window_problem` checks a date against the accepted window (±SPD_ACCEPTED_DATE_YEARS years of
  the moment we received it) before anything is stored.
- `readable` is the expression read paths show instead of a stored moment: the moment itself, or
  NULL when it cannot be represented, so a bad row already stored is listed, never fatal.

Settings (read at each use, with these defaults):
    SPD_ACCEPTED_DATE_YEARS              a date from outside may be this many years before or after
                                         now (5)
    SPD_DEVICE_MAX_CLOCK_AHEAD_SECONDS   a device's clock may be this far ahead of the server's (300)
"""
import datetime

from django.conf import settings
from django.db.models import DateTimeField, Q, Value
from django.db.models.expressions import Case, F, When
from django.utils import timezone

# Safe to load and to show in any time zone (±14 h): a day of margin inside Python's years 1–9999.
READABLE_FROM = datetime.datetime(1, 1, 2, tzinfo=datetime.UTC)
READABLE_TO = datetime.datetime(9999, 12, 30, tzinfo=datetime.UTC)
DAYS_PER_YEAR = 365.25


def accepted_years() -> int:
    value = getattr(settings, "SPD_ACCEPTED_DATE_YEARS", None)
    return int(value) if value not in (None, "") else 5


def max_clock_ahead() -> datetime.timedelta:
    """How far ahead of the server a device's clock may be before its times are not believed."""
    value = getattr(settings, "SPD_DEVICE_MAX_CLOCK_AHEAD_SECONDS", None)
    return datetime.timedelta(seconds=float(value) if value not in (None, "") else 300)


def accepted_window(now: datetime.datetime | None = None) -> tuple[datetime.datetime, datetime.datetime]:
    """The first and last moment accepted from outside, around `now` (default: the server's now)."""
    now = now or timezone.now()
    span = datetime.timedelta(days=round(accepted_years() * DAYS_PER_YEAR))
    return max(now - span, READABLE_FROM), min(now + span, READABLE_TO)


def window_problem(
    moment: datetime.datetime | datetime.date, now: datetime.datetime | None = None,
    *, window: tuple[datetime.datetime, datetime.datetime] | None = None,
) -> str | None:
    """Why `moment` (an aware date-time, or a date) is not accepted, or None if it is; against
    `window` (an `accepted_window()` already taken, e.g. once for a batch) if given."""
    low, high = window or accepted_window(now)
    try:
        if isinstance(moment, datetime.datetime):
            inside = low <= moment.astimezone(datetime.UTC) <= high
        else:
            inside = timezone.localdate(low) <= moment <= timezone.localdate(high)
    except (OverflowError, ValueError):
        inside = False
    if inside:
        return None
    return (f"{moment.isoformat()} is outside the accepted dates {timezone.localdate(low)} to "
            f"{timezone.localdate(high)} (within {accepted_years()} years of today)")


def readable(field: str) -> Case:
    """`field` where it can be loaded and shown, NULL where it cannot (year 0 or 10000 in some zone)."""
    return Case(
        When(Q(**{f"{field}__gte": READABLE_FROM, f"{field}__lte": READABLE_TO}), then=F(field)),
        default=Value(None), output_field=DateTimeField(),
    )
