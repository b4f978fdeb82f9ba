"""Read paths of the charts: daily series over a range of days, one aggregate query per series.

Days are local calendar days in settings.TIME_ZONE, as in the reconciliation. The amounts are the
reconciliation's own: used = consumptions not refunded, at their unit price (the purchase price,
零差率); billed = the HIS settlement lines, each counted on the day of the use it bills
(`selectors.reconciliation.billed_lines`), so that a day's two amounts are what a run of that day
compares, and a line settled two days after the use still lands on the day of use.
"""
import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import ExpressionWrapper, F, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from inventory.models import Consumption, Hospital
from inventory.selectors.reconciliation import MONEY, billed_lines, cents
from inventory.selectors.settlements import period_bounds


@dataclass(frozen=True)
class DayAmounts:
    """What was used on patients and what the HIS billed for the uses of one day."""

    day: datetime.date
    used: Decimal
    billed: Decimal


def daily_use_and_billing(
    hospital: Hospital, first_day: datetime.date, last_day: datetime.date, *, grace: datetime.timedelta
) -> list[DayAmounts]:
    """One row per day from `first_day` to `last_day` (both included; days without activity are 0).

    `grace` is the billing window of the reconciliation (SPD_RECON_BILLING_GRACE_DAYS): billing of
    a use settled later than that is not seen, as in a run. Two queries, whatever the range.
    """
    start, end = period_bounds(first_day, last_day)
    zone = timezone.get_default_timezone()
    used = (
        Consumption.objects.filter(hospital=hospital, occurred_at__gte=start, occurred_at__lt=end,
                                   refunded_at__isnull=True)
        .annotate(day=TruncDate("occurred_at", tzinfo=zone))
        .values("day")
        .annotate(total=Sum(ExpressionWrapper(F("unit_price") * F("quantity"), output_field=MONEY)))
        .order_by()
    )
    billed = (
        billed_lines(hospital, start, end, grace)
        .annotate(day=TruncDate("attributed_at", tzinfo=zone))
        .values("day")
        .annotate(total=Sum("amount", output_field=MONEY))
        .order_by()
    )
    used_by_day = {row["day"]: cents(row["total"]) for row in used}
    billed_by_day = {row["day"]: cents(row["total"]) for row in billed}
    days = (first_day + datetime.timedelta(days=offset) for offset in range((last_day - first_day).days + 1))
    return [
        DayAmounts(day, used_by_day.get(day, cents(0)), billed_by_day.get(day, cents(0)))
        for day in days
    ]
