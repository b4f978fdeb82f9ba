"""The 进销存 reconciliation (DESIGN.md §4, flow 6): for one hospital and one period, check that
purchases, stock, use and HIS billing agree, and record each disagreement as a typed Finding that
names its product, unit or lot, location, encounter and amounts, with the evidence rows.

A period is a range of local calendar days (settings.TIME_ZONE), end day included: a day for the
nightly run, any range on demand. The reads are set-based (inventory.selectors.reconciliation);
this module holds the rules.

What is checked
    INVENTORY_MISMATCH  per product × location, the ledger's balance (net of every movement) against
        what is in stock (units at the location in a stock status + lot balances), both read now in
        one statement. The period's 进销存 table (opening + received + transferred in − out −
        consumed + refunded − returned − scrapped ± adjusted = closing) is stored with the run, as
        rows of its own (StockFlowRow, written from the ledger in SQL:
        inventory.services.flow_table); its closing plus the movements since the period is that
        ledger balance, so the check is the same whether the period ended today or a month ago.
    USED_NOT_BILLED (漏收) / BILLED_NOT_USED (虚记) / BILLED_QTY_EXCEEDS_USED (多记)
        per (encounter, HIS charge code): the period's consumptions (refunded ones excluded)
        against the HIS settlement lines that answer them (see "Billing window"). Refund lines are
        negative and net out. Used more than billed, also in part, is USED_NOT_BILLED.
    SUBSTITUTION (串换)  a line naming one of our charges, or matched to a use of the same code,
        whose charge code is not the used product's, or which carries a 医保 code other than the
        used product's (a non-医保 or out-of-catalog item billed as a 医保 item: the product has no
        医保 code and the line has one). A line without a 医保 code is not compared on it (self-pay
        lines may carry none). For lines naming no charge: when one encounter has a use left
        wholly unbilled and a billing wholly unused of the same quantity under another code, the
        pair is one SUBSTITUTION instead of a 漏收 and a 虚记.
    Price rules (自查自纠), per positive line matched to the use it bills, at most one per line:
        ZERO_COST_BILLED             the unit is a gift or cost 0, and the line bills an amount > 0;
        PRICE_NOT_ADJUSTED           billed price ≠ purchase price, equal to a price of an agreement
                                     of the product that ended before the day of use, and to no
                                     agreement valid that day;
        MULTI_SUPPLIER_HIGHEST_PRICE ≥ 2 suppliers hold active agreements valid that day at different
                                     prices, the billed price is the highest, the unit cost less;
        PRICE_ABOVE_PURCHASE         billed price above the unit's purchase price (零差率).
        Precedence: SUBSTITUTION, then the order above. A line is reported once, under the most
        specific rule that explains it (a substituted line billed at the other product's price is a
        substitution, not also a price finding).
    CONSIGNMENT_UNSETTLED  a consignment use of the period, not refunded, on no confirmed supplier
        statement although one of its supplier covers the day of use (left off, typically because
        it was registered late), or older than SPD_RECON_CONSIGNMENT_SETTLE_DAYS.
    EXPIRED_IN_STOCK  units and lot quantities in stock at the end of the period (by the ledger)
        whose expiry is before the period's last day.
    SET_PARTNER_MISSING (配套组件缺用)  a component of a set (PackDefinition kind SET, e.g. an IOL and
        its injector) used in the period on an encounter where a partner was not used within
        SPD_SET_PARTNER_WINDOW_HOURS of it: the rule of `processing.set_partner_gaps`, the same one
        the hourly alert applies (unit and lot components). A use whose window is still open when
        the run is computed is not reported yet. The amount at stake is the missing partners' cost
        (used without being recorded is a 漏收 risk; not used at all, the set was broken).

Billing window
    The HIS settles a day or more after use. A line answers the use of the period when the use it
    bills is in the period: the consumption of our charge it names (`spd_charge_id` at import: exact),
    else the latest use of the same encounter and charge code from SPD_RECON_BILLING_GRACE_DAYS
    before its settlement to the end of the settlement day, else the latest use of the encounter in
    that window; a line matching no use is placed by its settlement time. Billing later than the
    grace is not seen: the use stays USED_NOT_BILLED. Hence the nightly job reconciles the day whose
    window has closed: today − 1 − grace days (with the default grace of 2, three days ago). Lines
    naming no charge are matched by heuristic; several uses of one item on one encounter around
    midnight may then be attributed to the later day.

Runs
    One current run per (hospital, period), enforced by a partial unique index. Asking again returns
    it; `rerun=True` creates a new current run and keeps the earlier one (is_current=False,
    `supersedes`). A run is created RUNNING and committed, then computed in a second transaction
    that holds its row lock, deletes the run's own findings, writes them again and marks it DONE. On
    PostgreSQL, when no transaction surrounds the call (a task, a command), the run's reads go on a
    second connection while the first writes its 进销存 table (`_reconcile_storing_table`).
    Its CSV, XLSX and PDF reports are rendered by a task of their own, queued when the run commits
    (`queue_reports`; at once with tasks in process): the findings and the 进销存 table can be read
    meanwhile, the run says `has_reports` once the files are stored, and the nightly job queues
    again the reports of any DONE run still without them. A worker killed mid-way rolls that transaction back and PostgreSQL releases
    its lock: the redelivered task finds the run RUNNING and unlocked and computes it in place, so
    the period still has exactly one current run. A concurrent second request for the same run
    waits on the lock and then finds it DONE. A run that failed is FAILED with the error, and is
    computed again when asked for again.

Settings (read at each run, with these defaults)
    SPD_RECON_BILLING_GRACE_DAYS       2   days the HIS may take to settle a use
    SPD_RECON_CONSIGNMENT_SETTLE_DAYS  45  days after which an unsettled consignment use is reported
    SPD_RECON_MAX_PERIOD_DAYS          366 longest period one run may cover
    SPD_RECON_TEST_PAUSE_SECONDS       0   test hook only: pause mid-run, inside the transaction
"""
import datetime
import functools
import logging
import operator
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from inventory.errors import Refusal, Refused
from inventory.models import (
    Consumption,
    Finding,
    Hospital,
    Location,
    PackMember,
    Product,
    ReconciliationRun,
    Unit,
    User,
)
from inventory.selectors.reconciliation import (
    READS_WORK_MEM,
    AgreementPrice,
    BilledTotal,
    FlowRow,
    PeriodBilling,
    UsageTotal,
    agreements_by_product,
    cents,
    expired_lots_in_stock,
    expired_units_in_stock,
    ledger_against_stock,
    period_billing,
    period_totals,
    stock_at_places,
    stock_flows,
    unsettled_consignment_uses,
    uses_of_encounters,
    without_jit,
)
from inventory.selectors.settlements import period_bounds
from inventory.services.flow_table import insert_flow_rows, store_flow_rows
from inventory.services.processing import member_name, set_partner_gaps, set_partner_window
from inventory.services.reports import REPORT_FIELDS
from inventory.services.sql_rows import write_rows
from inventory.task_queue import RECONCILE_TASK, RENDER_REPORTS_TASK, queue_task, tasks_run_in_process

logger = logging.getLogger(__name__)

Kind = Finding.Kind
Status = ReconciliationRun.Status
KIND_ORDER = {kind: index for index, kind in enumerate(Kind.values)}
EVIDENCE_LIMIT = 50  # rows of evidence kept per finding; the count is kept too


def _setting(name: str, default: int | float) -> int | float:
    value = getattr(settings, name, default)
    return default if value in (None, "") else type(default)(value)


def billing_grace_days() -> int:
    return int(_setting("SPD_RECON_BILLING_GRACE_DAYS", 2))


def nightly_day(today: datetime.date | None = None) -> datetime.date:
    """The day the nightly job reconciles: the last one whose billing window has closed."""
    return (today or timezone.localdate()) - datetime.timedelta(days=1 + billing_grace_days())


# --- runs ------------------------------------------------------------------------------------------


def run_reconciliation(
    *, hospital: Hospital, period_start: datetime.date, period_end: datetime.date,
    requested_by: User | None = None, rerun: bool = False,
) -> ReconciliationRun:
    """The current run of the hospital's period, computed: the one already DONE, or made now.

    Exactly one current run per (hospital, period), also under concurrent requests and after a
    worker died mid-run (see the module doc). With `rerun`, a new current run replaces the
    current one, which is kept as superseded. Raises whatever the computation raised, after
    marking the run FAILED.
    """
    check_period(period_start, period_end)
    run = _current_run(hospital, period_start, period_end, requested_by, rerun)
    return _compute(run.pk)


def check_period(period_start: datetime.date, period_end: datetime.date) -> None:
    """Refuse a period no run can cover (backwards, or longer than SPD_RECON_MAX_PERIOD_DAYS): asked
    before a run is queued in the background, so that the person hears it at once."""
    max_days = int(_setting("SPD_RECON_MAX_PERIOD_DAYS", 366))
    if period_end < period_start:
        raise Refused(Refusal.PERIOD_INVALID, start=period_start, end=period_end)
    if (period_end - period_start).days + 1 > max_days:
        raise Refused(Refusal.PERIOD_TOO_LONG, days=max_days)


def unsettled_days(period_start: datetime.date, period_end: datetime.date,
                   today: datetime.date | None = None) -> int:
    """How many days of the period the HIS may still be settling (after `nightly_day`): their
    use may yet be billed, so a run now can show 漏收 that are only late billing."""
    last_settled = nightly_day(today)
    if period_end <= last_settled:
        return 0
    return (period_end - max(period_start, last_settled + datetime.timedelta(days=1))).days + 1


def run_nightly_reconciliation(today: datetime.date | None = None) -> dict:
    """Queue the nightly run of every hospital, one task each (see `nightly_day` for which day).

    One task per hospital, so that a failure or a killed worker affects one hospital's run only;
    each task is idempotent (the run is unique per hospital and period). Finished runs whose
    reports were never stored (their task lost) get them queued again.
    """
    day = nightly_day(today)
    hospitals = list(Hospital.objects.order_by("pk").values_list("pk", flat=True))
    for hospital_id in hospitals:
        queue_task(RECONCILE_TASK, hospital_id, day.isoformat(), day.isoformat())
    without_reports = ReconciliationRun.objects.filter(status=Status.DONE).filter(
        Q(csv_sha256="") | Q(xlsx_sha256="") | Q(pdf_sha256="")).order_by("pk")
    requeued = []
    for run in without_reports:
        queue_reports(run)
        requeued.append(run.pk)
    return {"period_start": day.isoformat(), "period_end": day.isoformat(), "hospitals": hospitals,
            "reports_requeued": requeued}


def _current_run(
    hospital: Hospital, period_start: datetime.date, period_end: datetime.date, requested_by: User | None,
    rerun: bool,
) -> ReconciliationRun:
    period = {"hospital": hospital, "period_start": period_start, "period_end": period_end}
    try:
        with transaction.atomic():
            # Not its summary: a year's 进销存 table is megabytes of JSON, and only the flags change here.
            current = (ReconciliationRun.objects.select_for_update().filter(**period, is_current=True)
                       .defer("summary").first())
            if current is not None and not rerun:
                return current
            if current is not None:
                current.is_current = False
                changed = ["is_current"]
                if current.status != Status.DONE:
                    current.status, current.error = Status.FAILED, "superseded by a re-run before it finished"
                    changed += ["status", "error"]
                current.save(update_fields=changed)
            return ReconciliationRun.objects.create(**period, requested_by=requested_by, supersedes=current)
    except IntegrityError:
        # A concurrent request made the current run of this period first: that one it is.
        return ReconciliationRun.objects.get(**period, is_current=True)


def _compute(run_pk: int) -> ReconciliationRun:
    reads_apart = _reads_may_run_apart()
    try:
        with transaction.atomic():
            run = ReconciliationRun.objects.select_for_update(of=("self",)).select_related("hospital").get(pk=run_pk)
            if run.status != Status.DONE:
                # Only a DONE run has rows, all written in this transaction: none of an earlier attempt.
                outcome = _reconcile_storing_table(run, reads_apart)
                run.findings.all().delete()
                store_findings(run, outcome.findings)
                _pause_for_tests(run)
                run.status, run.error, run.finished_at = Status.DONE, "", timezone.now()
                run.summary = outcome.summary
                run.save()
    except Exception as error:
        _record_failure(run_pk, error)
        raise
    # Just computed, or a DONE run whose reports were lost on the way.
    if not run.has_reports and queue_reports(run):
        run.refresh_from_db(fields=REPORT_FIELDS)
    return run


def _reads_may_run_apart() -> bool:
    """Whether a run's reads may go on a connection of their own: on PostgreSQL, when the caller holds
    no transaction (a task, a command) — what the run reads is then committed, and another connection
    sees it. Inside a caller's transaction (a test's, a request's) they run on its connection."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _reconcile_storing_table(run: ReconciliationRun, reads_apart: bool) -> "Outcome":
    """The run's outcome, its 进销存 table stored as the run's rows (in the caller's transaction).

    With `reads_apart`, the two go side by side: the reads (`reconcile`) in a thread on a connection
    of their own while this connection writes the table (`insert_flow_rows`) — on the one-year
    benchmark's day, each ~0.5 s of one core. Each statement sees the data committed when it starts,
    as it does when they run one after the other: the ledger check compares the ledger with the stock
    in one statement, the table is one statement."""
    hospital, period = run.hospital, (run.period_start, run.period_end)
    if not reads_apart:
        outcome = reconcile(hospital, *period)
        store_table(run, outcome)
        return outcome
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"reconcile-{run.pk}") as pool:
        reading = pool.submit(_reconcile_apart, hospital, *period)
        insert_flow_rows(run, hospital, *period_bounds(*period))
        return reading.result()


def _reconcile_apart(hospital: Hospital, period_start: datetime.date, period_end: datetime.date) -> "Outcome":
    """`reconcile` on this thread's own connection, closed after: in a transaction of its own there,
    in which the billing's temporary tables live."""
    try:
        with transaction.atomic():
            return reconcile(hospital, period_start, period_end)
    finally:
        connection.close()


# A finding's columns as COPY writes them (its id from the table's identity), with their types.
_FINDING_COLUMNS = (
    ("run_id", "int8"), ("kind", "text"), ("product_id", "int8"), ("unit_id", "int8"), ("location_id", "int8"),
    ("lot", "text"), ("encounter", "text"), ("his_charge_code", "text"), ("expected", "numeric"),
    ("actual", "numeric"), ("amount", "numeric"), ("message", "text"), ("evidence", "jsonb"),
)


def store_findings(run: ReconciliationRun, findings: list[Finding]) -> None:
    """Write the run's findings, in their order: one binary COPY on PostgreSQL (a year's ~6,500
    findings took ~0.8 s through bulk_create, most of it quoting its arrays in Python), else
    bulk_create."""
    for finding in findings:
        finding.run = run
    if connection.vendor != "postgresql":
        Finding.objects.bulk_create(findings, batch_size=500)
        return
    values = operator.attrgetter(*(name for name, _ in _FINDING_COLUMNS))
    write_rows(Finding, [name for name, _ in _FINDING_COLUMNS], [kind for _, kind in _FINDING_COLUMNS],
              (values(finding) for finding in findings))


def queue_reports(run: ReconciliationRun) -> bool:
    """Have the reports of a DONE run rendered by a task of their own once the run is committed:
    the findings are there for all to read meanwhile (the XLSX of a large hospital's 进销存 table
    takes longer than the reconciliation itself). With tasks in process (embedded mode, tests)
    they are rendered now, and True is returned. A failure to queue or render is logged, not
    raised — the run is done; the nightly job queues again every run still without its reports."""
    def send() -> None:
        try:
            queue_task(RENDER_REPORTS_TASK, run.pk)
        except Exception:
            logger.exception("could not render or queue the reports of reconciliation run %s", run.pk)

    if tasks_run_in_process():
        send()
        return True
    transaction.on_commit(send)
    return False


def _record_failure(run_pk: int, error: Exception) -> None:
    try:
        ReconciliationRun.objects.filter(pk=run_pk).exclude(status=Status.DONE).update(
            status=Status.FAILED, error=f"{type(error).__name__}: {error}"[:2000], finished_at=timezone.now()
        )
    except DatabaseError:
        logger.exception("could not record the failure of reconciliation run %s", run_pk)


def _pause_for_tests(run: ReconciliationRun) -> None:
    """Test hook: hold the run mid-way (findings written, not committed) so a test can kill the worker."""
    seconds = float(_setting("SPD_RECON_TEST_PAUSE_SECONDS", 0.0))
    if seconds > 0:
        logger.warning("reconciliation run %s pausing %s s (SPD_RECON_TEST_PAUSE_SECONDS)", run.pk, seconds)
        time.sleep(seconds)


# --- the reconciliation itself -------------------------------------------------------------------


@dataclass
class Outcome:
    """What a reconciliation found (unsaved findings, in report order), its summary, and its 进销存
    table (stored as the run's StockFlowRow rows, not in the summary): computed when first read
    (`flows`), or written by the run straight from the ledger without passing through Python
    (`store_table`)."""

    findings: list[Finding]
    summary: dict
    hospital: Hospital
    bounds: tuple[datetime.datetime, datetime.datetime]  # [start, end) of the period

    @functools.cached_property
    def flows(self) -> list[FlowRow]:
        """The table, in its order."""
        return stock_flows(self.hospital, *self.bounds)

    @property
    def table(self) -> list[dict]:
        """The table as the run's stored rows read back (inventory.selectors.flow_table)."""
        return [row.as_dict() for row in self.flows]


def reconcile(hospital: Hospital, period_start: datetime.date, period_end: datetime.date) -> "Outcome":
    """Compute the findings, the summary and the 进销存 table of one hospital and period.

    Reads only. The same data gives the same findings in the same order.
    """
    start, end = period_bounds(period_start, period_end)
    grace = datetime.timedelta(days=billing_grace_days())
    # Every read without JIT compilation, in the memory the billing's sorts need (see without_jit).
    with connection.cursor() as cursor, without_jit(cursor, work_mem=READS_WORK_MEM):
        billing = period_billing(hospital, start, end, grace)
        context = _Context.load(hospital)
        findings = [
            *_inventory_findings(hospital, context),
            *_billing_findings(hospital, start, end, billing, context),
            *_consignment_findings(hospital, start, end, context),
            *_expiry_findings(hospital, period_end, end, context),
            *_set_partner_findings(hospital, start, end, context),
        ]
        totals = period_totals(hospital, start, end, billing)
    findings.sort(key=_finding_order)
    by_kind = {kind: {"count": 0, "amount": Decimal("0.00")} for kind in Kind.values}
    for finding in findings:
        by_kind[finding.kind]["count"] += 1
        by_kind[finding.kind]["amount"] += finding.amount
    summary = {
        "hospital": {"id": hospital.pk, "code": hospital.code, "name": hospital.name},
        "period": {"start": period_start.isoformat(), "end": period_end.isoformat(), "time_zone": settings.TIME_ZONE},
        "billing_grace_days": grace.days,
        "totals": totals.as_dict(),
        "findings": {
            "count": len(findings),
            "amount": str(cents(sum((finding.amount for finding in findings), Decimal(0)))),
            "by_kind": {kind: {"count": v["count"], "amount": str(cents(v["amount"]))} for kind, v in by_kind.items()},
        },
    }
    return Outcome(findings, summary, hospital, (start, end))


def store_table(run: ReconciliationRun, outcome: Outcome) -> int:
    """Write the outcome's 进销存 table as the run's rows: on PostgreSQL from the ledger in SQL
    (`insert_flow_rows`: the table is not built in Python unless it was read), else from
    `outcome.flows`."""
    if connection.vendor == "postgresql" and "flows" not in outcome.__dict__:
        return insert_flow_rows(run, outcome.hospital, *outcome.bounds)
    return store_flow_rows(run, outcome.flows)


def _finding_order(finding: Finding) -> tuple:
    return (
        KIND_ORDER[finding.kind], finding.product.internal_code if finding.product else "",
        finding.location.code if finding.location else "", finding.encounter, finding.his_charge_code, finding.lot,
        finding.unit.serial if finding.unit else "", finding.message,
    )


@dataclass
class _Context:
    """Names for messages: the hospital's locations, and the products the findings name — read in
    bulk as each step finds them (`with_products`, `with_charge_codes`), not the whole catalog (a
    large hospital's 20,000 products for a day's few thousand findings)."""

    hospital: Hospital
    products: dict[int, Product]
    locations: dict[int, Location]
    by_charge_code: dict[str, Product | None]  # the first product (by id) of each HIS charge code
    zone: datetime.tzinfo  # the current time zone, looked up once: per evidence row it cost half of `_local`

    @classmethod
    def load(cls, hospital: Hospital) -> "_Context":
        return cls(hospital, {}, Location.objects.filter(hospital=hospital).in_bulk(), {},
                   timezone.get_current_timezone())

    def with_products(self, pks: Iterable[int]) -> None:
        if missing := set(pks) - self.products.keys():
            self.products.update(Product.objects.filter(hospital=self.hospital, pk__in=missing).in_bulk())

    def with_charge_codes(self, codes: Iterable[str]) -> None:
        if missing := set(codes) - self.by_charge_code.keys():
            self.by_charge_code.update(dict.fromkeys(missing))
            for product in Product.objects.filter(hospital=self.hospital, his_charge_code__in=missing).order_by("pk"):
                if self.by_charge_code[product.his_charge_code] is None:
                    self.by_charge_code[product.his_charge_code] = product

    def product_label(self, product: Product | None) -> str:
        return f"{product.internal_code} {product.name}" if product else "?"


def _money(value: Decimal | int) -> str:
    return str(cents(value))


def _local(moment: datetime.datetime, zone: datetime.tzinfo | None = None) -> str:
    """The moment in local time (`zone`, else the current time zone), to the second."""
    return timezone.localtime(moment, zone).isoformat(timespec="seconds")


def _limited(rows: list[dict]) -> dict:
    return {"count": len(rows), "rows": rows[:EVIDENCE_LIMIT]}


# --- inventory ---------------------------------------------------------------------------------------


def _inventory_findings(hospital: Hospital, context: _Context) -> list[Finding]:
    differences = ledger_against_stock(hospital)
    context.with_products(difference.product_id for difference in differences)
    units, lots = stock_at_places(hospital, {(d.product_id, d.location_id) for d in differences})
    units_at, lots_at = defaultdict(list), defaultdict(list)
    for unit in units:
        units_at[(unit.product_id, unit.location_id)].append(unit)
    for lot in lots:
        lots_at[(lot.product_id, lot.location_id)].append(lot)
    findings = []
    for difference in differences:
        place = (difference.product_id, difference.location_id)
        product, location = context.products[difference.product_id], context.locations[difference.location_id]
        costs = [unit.unit_cost for unit in units_at[place]] + [lot.unit_cost for lot in lots_at[place]]
        gap = difference.ledger - difference.on_hand
        gap_text = f"实物短缺 {gap}" if gap > 0 else f"实物多出 {-gap}"
        findings.append(Finding(
            kind=Kind.INVENTORY_MISMATCH, product=product, location=location,
            expected=Decimal(difference.ledger), actual=Decimal(difference.on_hand),
            amount=cents(abs(gap) * max(costs, default=Decimal(0))),
            message=(
                f"{context.product_label(product)} 在 {location.name}：台账结存 {difference.ledger}，"
                f"实际在库 {difference.on_hand}（单件 {difference.units}，批次 {difference.lots}），{gap_text}"
            ),
            evidence={
                "ledger_balance": difference.ledger,
                "units": _limited([
                    {"unit": unit.pk, "serial": unit.serial, "status": unit.status} for unit in units_at[place]
                ]),
                "lot_balances": [
                    {"lot": lot.lot, "quantity": lot.quantity, "unit_cost": _money(lot.unit_cost)}
                    for lot in lots_at[place]
                ],
            },
        ))
    return findings


# --- usage against billing ---------------------------------------------------------------------------


def _billing_findings(
    hospital: Hospital, start: datetime.datetime, end: datetime.datetime, billing: PeriodBilling, context: _Context
) -> list[Finding]:
    # Only the keys whose used and billed quantities differ: every other key agrees.
    usage = {(used.encounter, used.code): used for used, _ in billing.differences if used is not None}
    billed = {(bill.encounter, bill.code): bill for _, bill in billing.differences if bill is not None}
    unbilled, unused, exceeding = [], [], []
    for key in usage.keys() | billed.keys():
        used = usage[key].quantity if key in usage else 0
        bill = billed[key].quantity if key in billed else 0
        if used > bill:
            if used:  # nothing used and a refund only: the refund of an earlier period's charge
                unbilled.append(key)
        elif bill > used:
            (exceeding if used else unused).append(key)
    for keys in (unbilled, unused, exceeding):
        keys.sort()
    pairs = _substitution_pairs(unbilled, unused, usage, billed)
    paired = {key for pair in pairs for key in pair}
    keys = {*unbilled, *unused, *exceeding}  # every key a finding below names (the pairs' included)
    uses = _usage_evidence(hospital, start, end, keys, context.zone)
    bills = _billing_evidence(billing, keys, context.zone)
    findings = [
        _line_finding(row, use, agreements, context)
        for row, use, agreements in _matched_lines(billing.suspect_lines, context)
    ]
    findings = [finding for finding in findings if finding is not None]
    context.with_products(usage[key].product_id for key in [*unbilled, *exceeding])
    context.with_charge_codes(code for _, code in unused)
    for key in unbilled:
        if key not in paired:
            findings.append(_quantity_finding(Kind.USED_NOT_BILLED, usage[key], billed.get(key), uses, bills, context))
    for key in unused:
        if key not in paired:
            findings.append(_quantity_finding(Kind.BILLED_NOT_USED, None, billed[key], uses, bills, context))
    for key in exceeding:
        findings.append(_quantity_finding(Kind.BILLED_QTY_EXCEEDS_USED, usage[key], billed[key], uses, bills, context))
    for used_key, billed_key in pairs:
        findings.append(_paired_substitution(usage[used_key], billed[billed_key], uses, bills, context))
    return findings


def _substitution_pairs(
    unbilled: list[tuple[str, str]], unused: list[tuple[str, str]], usage: dict[tuple[str, str], UsageTotal],
    billed: dict[tuple[str, str], BilledTotal],
) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """(used key, billed key) of one encounter: a use wholly unbilled, a billing (naming none of our
    charges) wholly unused, same quantity. Matched in key order, each key once."""
    candidates = [key for key in unused if billed[key].linked == 0]
    pairs = []
    for used_key in unbilled:
        if used_key in billed and billed[used_key].quantity > 0:
            continue
        match = next(
            (key for key in candidates if key[0] == used_key[0] and billed[key].quantity == usage[used_key].quantity),
            None,
        )
        if match is not None:
            candidates.remove(match)
            pairs.append((used_key, match))
    return pairs


def _usage_evidence(
    hospital: Hospital, start: datetime.datetime, end: datetime.datetime, keys: set[tuple[str, str]],
    zone: datetime.tzinfo,
) -> dict[tuple[str, str], list[dict]]:
    """The uses of each (encounter, charge code) of `keys`, oldest first: evidence rows. Their units'
    serials are read by id for the uses kept: joined to every use of the keys' encounters, the unit
    table was hashed whole (a year's ~2,900 keys)."""
    uses = [use for use in uses_of_encounters(hospital, start, end, {encounter for encounter, _ in keys}).values_list(
        "pk", "encounter", "product__his_charge_code", "occurred_at", "product__internal_code", "unit_id", "lot",
        "quantity", "unit_price") if (use[1], use[2]) in keys]
    serials = dict(Unit.objects.filter(pk__in={use[5] for use in uses if use[5] is not None}).values_list("pk", "serial"))
    rows = defaultdict(list)
    for pk, encounter, code, occurred_at, product, unit, lot, quantity, unit_price in uses:
        rows[(encounter, code)].append({
            "consumption": pk, "occurred_at": _local(occurred_at, zone), "product": product,
            "serial": serials.get(unit) or "", "lot": lot, "quantity": quantity, "unit_price": _money(unit_price),
        })
    return rows


def _billing_evidence(
    billing: PeriodBilling, keys: set[tuple[str, str]], zone: datetime.tzinfo
) -> dict[tuple[str, str], list[dict]]:
    """The lines of each (encounter, billed charge code) of `keys`, in settlement order: evidence rows."""
    return {key: [_line_row(line, zone) for line in billing.lines_of[key]] for key in keys if key in billing.lines_of}


def _line_row(line: dict, zone: datetime.tzinfo) -> dict:
    return {
        "his_line_id": line["his_line_id"], "settled_at": _local(line["settled_at"], zone),
        "his_charge_code": line["his_charge_code"], "nhsa_code": line["nhsa_code"], "quantity": line["quantity"],
        "unit_price": _money(line["unit_price"]), "amount": _money(line["amount"]), "charge": line["charge_id"],
    }


def _quantity_finding(
    kind: str, used: UsageTotal | None, billed: BilledTotal | None, uses: dict, bills: dict, context: _Context
) -> Finding:
    encounter, code = (used or billed).encounter, (used or billed).code
    used_quantity, billed_quantity = (used.quantity if used else 0), (billed.quantity if billed else 0)
    product = context.products.get(used.product_id) if used else _product_by_code(context, code)
    label = context.product_label(product) if product else f"收费编码 {code}"
    if kind == Kind.USED_NOT_BILLED:
        missing = used_quantity - billed_quantity
        amount = used.amount / used.quantity * missing
        message = f"就诊 {encounter} 使用 {label} {used_quantity} 件，HIS 收费 {billed_quantity} 件，漏收 {missing} 件"
    elif kind == Kind.BILLED_NOT_USED:
        amount = billed.amount
        message = f"就诊 {encounter} HIS 收费 {label} {billed_quantity} 件，本期无使用记录（虚记）"
    else:
        excess = billed_quantity - used_quantity
        amount = billed.amount / billed.quantity * excess
        message = f"就诊 {encounter} 使用 {label} {used_quantity} 件，HIS 收费 {billed_quantity} 件，多记 {excess} 件"
    return Finding(
        kind=kind, product=product, encounter=encounter, his_charge_code=code, expected=Decimal(used_quantity),
        actual=Decimal(billed_quantity), amount=cents(amount), message=message,
        evidence={"consumptions": _limited(uses.get((encounter, code), [])),
                  "his_lines": _limited(bills.get((encounter, code), []))},
    )


def _product_by_code(context: _Context, code: str) -> Product | None:
    return context.by_charge_code.get(code)


def _paired_substitution(used: UsageTotal, billed: BilledTotal, uses: dict, bills: dict, context: _Context) -> Finding:
    product = context.products.get(used.product_id)
    billed_product = _product_by_code(context, billed.code)
    billed_label = context.product_label(billed_product) if billed_product else "目录外项目"
    return Finding(
        kind=Kind.SUBSTITUTION, product=product, encounter=used.encounter, his_charge_code=billed.code,
        expected=used.amount, actual=billed.amount, amount=billed.amount,
        message=(
            f"就诊 {used.encounter} 使用 {context.product_label(product)}（收费编码 {used.code}）{used.quantity} 件未收费，"
            f"却按 {billed.code}（{billed_label}）收费 {billed.quantity} 件（串换）"
        ),
        evidence={"consumptions": _limited(uses.get((used.encounter, used.code), [])),
                  "his_lines": _limited(bills.get((billed.encounter, billed.code), []))},
    )


class _MatchedUse(NamedTuple):
    """The use a suspect line bills, as the code and price rules read it."""

    pk: int
    product: Product
    unit: Unit | None
    lot: str
    location_id: int | None
    occurred_at: datetime.datetime
    quantity: int
    unit_price: Decimal


def _matched_lines(
    lines: list[dict], context: _Context
) -> list[tuple[dict, _MatchedUse, list[AgreementPrice]]]:
    """Each line of `lines` (the period's positive lines that may break a code or price rule:
    `PeriodBilling.suspect_lines`, the others left out in SQL) with the use it bills and the price
    history of that product.

    The uses are read as rows, their units (serial, gift, supplier) by id, their products into the
    context: a year's ~1,700 uses read with their product, unit and supplier in one join hashed the
    whole unit table, and built four model instances per use."""
    uses = list(Consumption.objects.filter(pk__in={line["use_pk"] for line in lines}).values_list(
        "pk", "product_id", "unit_id", "lot", "location_id", "occurred_at", "quantity", "unit_price"))
    units = Unit.objects.select_related("supplier").only("serial", "is_gift", "supplier__name").in_bulk(
        {unit for _, _, unit, *_ in uses if unit is not None})
    products = {product for _, product, *_ in uses}
    if missing := products - context.products.keys():
        context.products.update(Product.objects.in_bulk(missing))
    matched = {
        pk: _MatchedUse(pk, context.products[product], units.get(unit) if unit is not None else None, *values)
        for pk, product, unit, *values in uses
    }
    agreements = agreements_by_product(context.hospital, products)
    return [(line, matched[line["use_pk"]], agreements.get(matched[line["use_pk"]].product.pk, [])) for line in lines]


def _line_finding(row: dict, use: _MatchedUse, agreements: list[AgreementPrice], context: _Context) -> Finding | None:
    """The one code or price finding of a billed line, by precedence (module doc), or None."""
    product, unit = use.product, use.unit
    quantity, billed_price, purchase_price = row["quantity"], row["unit_price"], use.unit_price
    subject = {
        "product": product, "unit": unit, "lot": use.lot, "location": context.locations.get(use.location_id),
        "encounter": row["encounter"], "his_charge_code": row["his_charge_code"],
    }
    what = f"{context.product_label(product)}" + (f" SN {unit.serial}" if unit else f" 批号 {use.lot}")
    line = row["his_line_id"]
    evidence = {"his_line": _line_row(row, context.zone), "consumption": {
        "consumption": use.pk, "occurred_at": _local(use.occurred_at, context.zone), "serial": unit.serial if unit else "",
        "lot": use.lot, "quantity": use.quantity, "unit_price": _money(purchase_price),
        "his_charge_code": product.his_charge_code, "nhsa_code": product.nhsa_code,
    }}
    if row["his_charge_code"] != product.his_charge_code or (row["nhsa_code"] and row["nhsa_code"] != product.nhsa_code):
        used_codes = f"{product.his_charge_code}/{product.nhsa_code or '非医保'}"
        return Finding(
            kind=Kind.SUBSTITUTION, **subject, expected=cents(purchase_price * quantity), actual=row["amount"],
            amount=row["amount"], evidence=evidence,
            message=(
                f"HIS 明细 {line}（就诊 {row['encounter']}）按收费编码 {row['his_charge_code']}/医保编码 "
                f"{row['nhsa_code'] or '无'} 收费，实际使用的是 {what}（{used_codes}）（串换）"
            ),
        )
    day = timezone.localdate(use.occurred_at, context.zone)
    valid = [a for a in agreements if a.is_active and a.valid_from <= day <= a.valid_to]
    evidence["agreements"] = [
        {"supplier": a.supplier, "unit_price": _money(a.unit_price), "valid_from": a.valid_from.isoformat(),
         "valid_to": a.valid_to.isoformat(), "active": a.is_active}
        for a in agreements
    ]
    price_gap = cents(abs(billed_price - purchase_price) * quantity)
    prices = {"expected": purchase_price, "actual": billed_price, "evidence": evidence}
    if (purchase_price == 0 or (unit is not None and unit.is_gift)) and row["amount"] > 0:
        return Finding(kind=Kind.ZERO_COST_BILLED, **subject, **prices, amount=row["amount"],
                       message=f"HIS 明细 {line} 对赠品/零成本耗材 {what} 收费 {_money(row['amount'])}")
    if (
        billed_price != purchase_price
        and any(a.unit_price == billed_price and a.valid_to < day for a in agreements)
        and not any(a.unit_price == billed_price for a in valid)
    ):
        current = ", ".join(sorted({_money(a.unit_price) for a in valid})) or "无"
        return Finding(
            kind=Kind.PRICE_NOT_ADJUSTED, **subject, **prices, amount=price_gap,
            message=(
                f"HIS 明细 {line} 按已失效的旧协议价 {_money(billed_price)} 收费 {what}，"
                f"使用日 {day} 的现行采购价 {current}，该件进价 {_money(purchase_price)}"
            ),
        )
    offers = {a.supplier_id: a.unit_price for a in valid}
    highest = max(offers.values(), default=None)
    if len(offers) >= 2 and len(set(offers.values())) >= 2 and billed_price == highest and purchase_price < highest:
        supplier = unit.supplier.name if unit else "批次"
        return Finding(
            kind=Kind.MULTI_SUPPLIER_HIGHEST_PRICE, **subject, **prices, amount=price_gap,
            message=(
                f"HIS 明细 {line} 按 {len(offers)} 家供应商中的最高价 {_money(billed_price)} 收费 {what}，"
                f"该件来自 {supplier}，进价 {_money(purchase_price)}"
            ),
        )
    if billed_price > purchase_price:
        return Finding(
            kind=Kind.PRICE_ABOVE_PURCHASE, **subject, **prices, amount=price_gap,
            message=f"HIS 明细 {line} 按 {_money(billed_price)} 收费 {what}，高于该件进价 {_money(purchase_price)}",
        )
    return None


# --- consignment, expiry ----------------------------------------------------------------------------


def _consignment_findings(
    hospital: Hospital, start: datetime.datetime, end: datetime.datetime, context: _Context
) -> list[Finding]:
    days = int(_setting("SPD_RECON_CONSIGNMENT_SETTLE_DAYS", 45))
    due_before = timezone.now() - datetime.timedelta(days=days)
    findings = []
    for use in unsettled_consignment_uses(hospital, start, end, due_before):
        unit = use.unit
        what = f"{context.product_label(use.product)}" + (f" SN {unit.serial}" if unit else f" 批号 {use.lot}")
        why = "其供应商该日已有确认的结算单，但本次使用未列入" if use.covered else f"使用已超过 {days} 天仍未结算"
        amount = cents(use.unit_price * use.quantity)
        findings.append(Finding(
            kind=Kind.CONSIGNMENT_UNSETTLED, product=use.product, unit=unit, lot=use.lot, location=use.location,
            encounter=use.encounter, his_charge_code=use.product.his_charge_code, expected=amount, actual=Decimal(0),
            amount=amount,
            message=f"寄售耗材 {what} 于 {use.used_on} 用于就诊 {use.encounter}（{_money(amount)}）：{why}",
            evidence={"consumption": use.pk, "occurred_at": _local(use.occurred_at, context.zone),
                      "recorded_at": _local(use.recorded_at, context.zone),
                      "supplier": unit.supplier.name if unit else "", "quantity": use.quantity,
                      "covered_by_confirmed_statement": bool(use.covered)},
        ))
    return findings


def _expiry_findings(hospital: Hospital, as_of: datetime.date, end: datetime.datetime, context: _Context) -> list[Finding]:
    findings = []
    for unit in expired_units_in_stock(hospital, as_of, end):
        location = context.locations[unit.place]
        findings.append(Finding(
            kind=Kind.EXPIRED_IN_STOCK, product=unit.product, unit=unit, lot=unit.lot, location=location,
            expected=Decimal(0), actual=Decimal(1), amount=cents(unit.unit_cost),
            message=f"{context.product_label(unit.product)} SN {unit.serial} 已于 {unit.expiry} 过期，期末仍在 {location.name}",
            evidence={"unit": unit.pk, "serial": unit.serial, "expiry": unit.expiry.isoformat(),
                      "status_at_end": unit.status_then, "status_now": unit.status},
        ))
    lots = expired_lots_in_stock(hospital, as_of, end)
    context.with_products(lot.product_id for lot in lots)
    for lot in lots:
        product, location = context.products[lot.product_id], context.locations[lot.location_id]
        findings.append(Finding(
            kind=Kind.EXPIRED_IN_STOCK, product=product, lot=lot.lot, location=location, expected=Decimal(0),
            actual=Decimal(lot.quantity), amount=cents(lot.unit_cost * lot.quantity),
            message=(
                f"{context.product_label(product)} 批号 {lot.lot} 已于 {lot.expiry} 过期，期末仍有 {lot.quantity} "
                f"在 {location.name}"
            ),
            evidence={"lot": lot.lot, "expiry": lot.expiry.isoformat(), "quantity_at_end": lot.quantity},
        ))
    return findings


# --- sets ---------------------------------------------------------------------------------------------


def _set_partner_findings(
    hospital: Hospital, start: datetime.datetime, end: datetime.datetime, context: _Context
) -> list[Finding]:
    window_hours = int(set_partner_window().total_seconds() // 3600)
    gaps = set_partner_gaps(hospital=hospital, now=timezone.now(), used_from=start, used_until=end)
    partner_ids = [partner.pk for gap in gaps for partner in gap.missing]
    elsewhere = defaultdict(list)  # what became of each missing partner: its uses on other encounters
    for member in PackMember.objects.filter(pk__in=partner_ids).select_related("consumption", "unit"):
        elsewhere[member.pk] = _partner_uses(member)
    findings = []
    for gap in gaps:
        member, pack_unit = gap.member, gap.member.pack.unit
        names = "、".join(member_name(partner) for partner in gap.missing)
        amount = cents(sum((partner.unit_cost * partner.quantity for partner in gap.missing), Decimal(0)))
        findings.append(Finding(
            kind=Kind.SET_PARTNER_MISSING, product=member.product, unit=member.unit, lot=member.lot,
            location=context.locations.get(gap.location_id), encounter=gap.encounter,
            his_charge_code=member.product.his_charge_code,
            expected=Decimal(sum(partner.quantity for partner in gap.missing)), actual=Decimal(0), amount=amount,
            message=(
                f"配套组件 {member_name(member)}（配套 {pack_unit.serial}）于 {timezone.localtime(gap.used_at):%Y-%m-%d %H:%M} "
                f"用于就诊 {gap.encounter}，配套的 {names} 未在同一就诊 {window_hours} 小时内使用"
            ),
            evidence={
                "pack": member.pack_id, "pack_serial": pack_unit.serial, "consumption": gap.consumption_id,
                "used_at": _local(gap.used_at, context.zone), "window_hours": window_hours,
                "missing": [{
                    "member": partner.pk, "product_code": partner.product.internal_code,
                    "product_name": partner.product.name, "serial": partner.unit.serial if partner.unit_id else "",
                    "lot": partner.lot, "quantity": partner.quantity, "state": partner.state,
                    "used_on": elsewhere[partner.pk],
                } for partner in gap.missing],
            },
        ))
    return findings


def _partner_uses(member: PackMember) -> list[dict]:
    """Where a missing partner went instead: its uses (unit) or its own use from the pack (lot)."""
    if member.unit_id:
        uses = Consumption.objects.filter(unit_id=member.unit_id, refunded_at__isnull=True)
    elif member.consumption_id:
        uses = Consumption.objects.filter(pk=member.consumption_id, refunded_at__isnull=True)
    else:
        return []
    return [{"encounter": encounter, "occurred_at": _local(at)}
            for encounter, at in uses.order_by("occurred_at").values_list("encounter", "occurred_at")]
