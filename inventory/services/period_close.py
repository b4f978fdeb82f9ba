"""The monthly close (月结): an SPD operator closes a month of one hospital; its books become final.

What closing does, in one transaction holding the hospital's row lock (which every insert into
the ledger, the consumptions and the HIS settlement lines waits for, see the migration's trigger):

1. checks the preconditions and refuses with every blocker listed (`month_blockers`): the month
   is over; the month before it is closed (months close in order) unless the ledger holds nothing
   before it; no count session of the month is open; a current, finished reconciliation run
   covers every day of it; no charge of the month waits for delivery to the HIS — or the operator
   acknowledged that backlog (the count is recorded with the close);
2. stores the closing snapshot per product × location × lot × owner with quantity and value
   (`PeriodBalance`, from `inventory.selectors.periods.ledger_fold`: the previous snapshot plus
   the month's movements), and its sums per product × location (`PeriodPlaceBalance`: where a
   day's table and ledger check start);
3. renders the month's 进销存 report (月报: the table of the month per product × location, then the
   closing balances with their value) as CSV and stores it with its SHA-256, and stores the table's
   flows (`PeriodFlow`: what a longer period's table adds up instead of the month's movements) and
   the month's received and expensed totals (what a longer period's totals add up);
4. locks the period: from then on nothing dated before the month's end is written
   (`refuse_closed_period`, called by every writer before it writes; the trigger on PostgreSQL).

Closing is final. There is no reopening: a correction found later is dated in the open period with
a reason (a reversing movement, a refund, a stocktake adjustment), as auditors expect of closed
books.
"""
import csv
import datetime
import hashlib
import io
from dataclasses import dataclass
from decimal import Decimal

from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone

from inventory.errors import Refusal, Refused
from inventory.models import (
    ChargeDelivery,
    ClosedPeriod,
    Hospital,
    Location,
    Movement,
    PeriodBalance,
    PeriodFlow,
    PeriodPlaceBalance,
    Product,
    ReconciliationRun,
    Role,
    User,
)
from inventory.selectors.periods import closed_through, ledger_fold, snapshot_before
from inventory.selectors.reconciliation import movement_totals, stock_flows
from inventory.selectors.settlements import period_bounds
from inventory.services.flow_table import store_month_flows
from inventory.services.reports import INVENTORY_COLUMNS, LOCATION_TOTALS_HEADER

MONTH_FORMAT = "%Y-%m"
HIS_BACKLOG_STATUSES = (ChargeDelivery.Status.PENDING, ChargeDelivery.Status.FAILED, ChargeDelivery.Status.GAVE_UP)


@dataclass(frozen=True)
class Blocker:
    """One reason a month cannot be closed yet. `acknowledgeable`: the operator may close anyway
    by acknowledging it (the HIS backlog: charges keep being delivered after the close)."""

    code: str
    message: str
    count: int = 0
    acknowledgeable: bool = False

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "count": self.count, "acknowledgeable": self.acknowledgeable}


def first_day(month: datetime.date) -> datetime.date:
    return month.replace(day=1)


def next_month(month: datetime.date) -> datetime.date:
    return (first_day(month) + datetime.timedelta(days=32)).replace(day=1)


def month_bounds(month: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """[start, end) instants of a calendar month in settings.TIME_ZONE."""
    return period_bounds(first_day(month), next_month(month) - datetime.timedelta(days=1))


# --- the lock ----------------------------------------------------------------------------------------


def refuse_closed_period(*, hospital_id: int, moment: datetime.datetime | None) -> None:
    """Refuse (409 PERIOD_CLOSED) to write anything of the hospital dated `moment` when `moment` is
    in a closed month. Called by every writer of movements, consumptions and HIS settlement lines
    before it writes; on PostgreSQL a trigger refuses the same rows."""
    if moment is None:
        return
    through = closed_through(hospital_id)
    if through is not None and moment < through:
        raise Refused(Refusal.PERIOD_CLOSED, moment=timezone.localtime(moment).isoformat(timespec="seconds"),
                      month=timezone.localtime(moment).strftime(MONTH_FORMAT))


# --- preconditions -------------------------------------------------------------------------------


def open_count_sessions(hospital: Hospital, start: datetime.datetime, end: datetime.datetime) -> int:
    """Count sessions still open that hold stock of the month (inventory.services.stocktake)."""
    # Imported here: stocktake imports the ledger, which imports this module for its lock.
    from inventory.services.stocktake import open_sessions_in_period

    last_day = timezone.localdate(end - datetime.timedelta(microseconds=1))
    return open_sessions_in_period(hospital=hospital, start=timezone.localdate(start), end=last_day).count()


def month_blockers(hospital: Hospital, month: datetime.date, *, now: datetime.datetime | None = None) -> list[Blocker]:
    """Every reason `month` of `hospital` cannot be closed now (empty: it can)."""
    now = now or timezone.now()
    month = first_day(month)
    start, end = month_bounds(month)
    label = month.strftime(MONTH_FORMAT)
    blockers = []
    if ClosedPeriod.objects.filter(hospital=hospital, month=month).exists():
        return [Blocker(Refusal.PERIOD_ALREADY_CLOSED.name, Refusal.PERIOD_ALREADY_CLOSED.message(month=label))]
    if end > now:
        blockers.append(Blocker("MONTH_NOT_OVER", _text("The month is not over.", "该月尚未结束。")))
    through = closed_through(hospital.pk)
    if through is not None and through > start:
        blockers.append(Blocker("LATER_MONTH_CLOSED", _text("A later month is already closed.", "其后的月份已月结。")))
    elif (through is None and Movement.objects.filter(hospital=hospital, occurred_at__lt=start).exists()) or (
        through is not None and through < start
    ):
        blockers.append(Blocker("PREVIOUS_MONTH_OPEN", _text(
            "The month before is not closed (months close in order).", "上一个月尚未月结（须按月份顺序月结）。")))
    if sessions := open_count_sessions(hospital, start, end):
        blockers.append(Blocker("COUNT_SESSIONS_OPEN", _text(
            f"{sessions} count session(s) of the month are still open.", f"本月还有 {sessions} 个盘点未完成。"), sessions))
    if missing := unreconciled_days(hospital, month):
        shown = ", ".join(day.strftime("%m-%d") for day in missing[:10]) + (" …" if len(missing) > 10 else "")
        blockers.append(Blocker("DAYS_NOT_RECONCILED", _text(
            f"{len(missing)} day(s) have no finished reconciliation run: {shown}",
            f"{len(missing)} 天没有完成的对账：{shown}"), len(missing)))
    if backlog := his_backlog(hospital, end):
        blockers.append(Blocker("HIS_BACKLOG", _text(
            f"{backlog} charge(s) of the month or before are not yet delivered to the HIS.",
            f"本月及以前还有 {backlog} 条收费未送达 HIS。"), backlog, acknowledgeable=True))
    return blockers


def _text(english: str, chinese: str) -> str:
    from django.utils.translation import get_language

    return chinese if (get_language() or "").startswith("zh") else english


def unreconciled_days(hospital: Hospital, month: datetime.date) -> list[datetime.date]:
    """The days of the month no current, finished reconciliation run covers."""
    first, last = first_day(month), next_month(month) - datetime.timedelta(days=1)
    covered: set[datetime.date] = set()
    runs = ReconciliationRun.objects.filter(
        hospital=hospital, is_current=True, status=ReconciliationRun.Status.DONE, period_start__lte=last,
        period_end__gte=first,
    ).values_list("period_start", "period_end")
    for period_start, period_end in runs:
        day = max(period_start, first)
        while day <= min(period_end, last):
            covered.add(day)
            day += datetime.timedelta(days=1)
    days = [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]
    return [day for day in days if day not in covered]


def his_backlog(hospital: Hospital, end: datetime.datetime) -> int:
    """Charges made before `end` whose delivery to the HIS is not (yet) accepted."""
    return ChargeDelivery.objects.filter(
        charge__hospital=hospital, charge__created_at__lt=end, status__in=HIS_BACKLOG_STATUSES
    ).count()


# --- closing ----------------------------------------------------------------------------------------


def close_month(
    *, hospital: Hospital, month: datetime.date, user: User, acknowledge_his_backlog: bool = False, note: str = "",
    now: datetime.datetime | None = None,
) -> ClosedPeriod:
    """Close `month` of `hospital`: snapshot, 月报 with its hash, lock. All or nothing; refused with
    every blocker (PERIOD_NOT_CLOSABLE) while any stands, except an acknowledged HIS backlog."""
    if not user.has_role(Role.ADMIN, Role.SPD_OPERATOR):
        raise Refused(Refusal.NOT_ALLOWED, action=_text("close a month", "月结"))
    if user.hospital_id is not None and user.hospital_id != hospital.pk:
        raise Refused(Refusal.NOT_FOUND, what="resource")
    month = first_day(month)
    start, end = month_bounds(month)
    with transaction.atomic():
        # Every insert into the ledger takes a key-share lock of its hospital's row (its foreign key,
        # and the trigger first of all): holding the row exclusively, the close sees every
        # movement committed before it, and none dated in the month can slip in after.
        Hospital.objects.select_for_update().get(pk=hospital.pk)
        blockers = month_blockers(hospital, month, now=now)
        standing = [b for b in blockers if not (b.acknowledgeable and acknowledge_his_backlog)]
        if standing:
            raise Refused(Refusal.PERIOD_NOT_CLOSABLE, month=month.strftime(MONTH_FORMAT),
                          blockers="; ".join(b.message for b in standing))
        backlog = sum(b.count for b in blockers if b.acknowledgeable)
        previous = snapshot_before(hospital.pk, start)
        period = ClosedPeriod.objects.create(
            hospital=hospital, month=month, starts_at=start, ends_at=end, closed_by=user, note=note,
            acknowledged_his_backlog=backlog,
        )
        balances = ledger_fold(hospital, end, previous)
        PeriodBalance.objects.bulk_create([
            PeriodBalance(period=period, product_id=row.product_id, location_id=row.location_id, lot=row.lot,
                          owner=row.owner, quantity=row.quantity, value=row.value)
            for row in balances
        ], batch_size=2000)
        store_place_balances(period)
        transaction.on_commit(lambda: refresh_statistics(PeriodBalance, PeriodPlaceBalance, PeriodFlow))
        flows = stock_flows(hospital, start, end)
        store_month_flows(period, flows)
        period.flows_stored = True
        (period.received_quantity, period.received_amount, period.expensed_quantity,
         period.expensed_amount) = movement_totals(hospital, start, end)
        data = render_monthly_report(hospital, period, flows, balances)
        period.report_csv.save(f"{hospital.pk}/{month:%Y-%m}.csv", ContentFile(data), save=False)
        period.csv_sha256 = hashlib.sha256(data).hexdigest()
        period.summary = {
            "rows": len(flows), "balances": len(balances),
            "closing_quantity": sum(row.quantity for row in balances),
            "closing_value": str(sum((row.value for row in balances), Decimal("0.00"))),
            "his_backlog_acknowledged": backlog,
        }
        period.save(update_fields=["report_csv", "csv_sha256", "summary", "flows_stored", "places_stored",
                                   "received_quantity",
                                   "received_amount", "expensed_quantity", "expensed_amount"])
    return period


def store_place_balances(period: ClosedPeriod) -> None:
    """Sum the snapshot's stored rows per product × location into its PeriodPlaceBalance rows (one
    statement) and mark the period `places_stored` (saved by the caller)."""
    place, balance = PeriodPlaceBalance._meta.db_table, PeriodBalance._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO {place} (period_id, product_id, location_id, quantity)
            SELECT period_id, product_id, location_id, SUM(quantity) FROM {balance} WHERE period_id = %s
             GROUP BY period_id, product_id, location_id""", [period.pk])  # table names from the models
    period.places_stored = True


def refresh_statistics(*models) -> None:
    """ANALYZE the tables once a snapshot is committed: a month's balances are a few per cent of the
    table, too few for autovacuum's threshold, and a planner that does not know the new period reads
    all of it where it should look up a few rows (the expired-lot check of the day's run), or
    expects a few rows where it adds up a year of stored flows. Outside the close's transaction, so
    that its lock on the tables' statistics is not held by the close."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in models:
                cursor.execute(f"ANALYZE {model._meta.db_table}")


REPORT_TITLE = "进销存月报"
# The 进销存 columns of the 月报 are those of the daily table (the reconciliation report's per-location
# totals, services/reports.py), received through processed, so that a month and its days add up alike.
FLOW_HEADER = ["库位编码", "库位", "院内码", "产品名称", *LOCATION_TOTALS_HEADER[LOCATION_TOTALS_HEADER.index("期初"):]]
FLOW_COLUMNS = INVENTORY_COLUMNS[INVENTORY_COLUMNS.index("opening"):]
BALANCE_HEADER = ["库位编码", "院内码", "批号", "所有权", "期末数量", "期末金额"]


def render_monthly_report(hospital: Hospital, period: ClosedPeriod, flows: list, balances: list) -> bytes:
    """The 月报 as CSV (UTF-8 with BOM, for Excel): who and what, the 进销存 table of the month, then
    the closing balances per lot and owner with their value. Deterministic for given data."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([REPORT_TITLE])
    writer.writerow(["医院", f"{hospital.code} {hospital.name}"])
    writer.writerow(["月份", period.month.strftime(MONTH_FORMAT)])
    writer.writerow(["月结人", period.closed_by.get_username()])
    writer.writerow(["月结时间", timezone.localtime(period.closed_at).isoformat(timespec="seconds")])
    writer.writerow([])
    writer.writerow(FLOW_HEADER)
    for row in flows:
        writer.writerow([_cell(v) for v in (
            row.location_code, row.location_name, row.product_code, row.product_name,
            *(getattr(row, name) for name in FLOW_COLUMNS))])
    writer.writerow([])
    writer.writerow(BALANCE_HEADER)
    products = dict(Product.objects.filter(pk__in={r.product_id for r in balances}).values_list("pk", "internal_code"))
    locations = dict(Location.objects.filter(pk__in={r.location_id for r in balances}).values_list("pk", "code"))
    for row in sorted(balances, key=lambda r: (locations[r.location_id], products[r.product_id], r.lot, r.owner)):
        writer.writerow([_cell(v) for v in (
            locations[row.location_id], products[row.product_id], row.lot, row.owner, row.quantity, row.value)])
    return buffer.getvalue().encode("utf-8-sig")


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value


# --- the month list ------------------------------------------------------------------------------


@dataclass
class MonthState:
    month: datetime.date
    closed: ClosedPeriod | None
    blockers: list[Blocker]

    @property
    def state(self) -> str:
        return "closed" if self.closed else "open"


def month_states(hospital: Hospital, *, count: int = 12, now: datetime.datetime | None = None) -> list[MonthState]:
    """The hospital's last `count` months (the current one first) with their state and blockers."""
    now = now or timezone.now()
    closed = {period.month: period for period in ClosedPeriod.objects.filter(hospital=hospital).select_related(
        "closed_by")}
    month = first_day(timezone.localdate(now))
    states = []
    for _ in range(count):
        period = closed.get(month)
        states.append(MonthState(month, period, [] if period else month_blockers(hospital, month, now=now)))
        month = first_day(month - datetime.timedelta(days=1))
    return states

