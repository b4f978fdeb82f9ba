"""Benchmark 8 — the county alliance of 18 hospitals (the alliance dataset: `bench/run.py --alliance`).

(a) **The night.** The nightly reconciliation of every member for the dataset's last day, as
production runs it: one `reconcile_hospital_period` Celery task per member, queued at once on Redis
and worked by a real Celery worker started here (`celery -A spd worker -P prefork -c <CPUs>`, a
queue of its own); each run queues its reports' task (CSV, XLSX, PDF) on the same worker, as in
production. Timed: from queueing to the last member's reports stored (the night's work), and to the
last run done; per member, its run (`started_at` → `finished_at`, stored by the run itself).
Baselines, measured in the same repetition just before the night, one member after the other on
the otherwise idle connection: each member's bare GROUP BY over its ledger up to the day's end
(bench/reconciliation.py's `NET_SQL`); the night's total is set against their sum and against the
night window (`NIGHT_WINDOW`: 4 h, 00:00–04:00).

(b) **The alliance dashboard** (`/alliance/` and `GET /api/v1/alliance/dashboard/`): the stock and
near-expiry per member, the transfer suggestions, the use per member, the VBP progress
(`selectors.alliance.alliance_dashboard`) and the transfers between members
(`selectors.alliance_transfers.transfers_between_members`), read for the alliance auditor.
Baseline: the bare SQL computing the same figures (the `*_SQL` statements below, eight, fetched; a
contract's end is its planned end — the dataset records no extension); the benchmark checks that
both find the same figures.
Target: ≤ 3× the bare SQL.
"""
from __future__ import annotations

import datetime
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from bench.figures import Figure, Target
from bench.harness import Context
from bench.reconciliation import NET_SQL, _forget_reports

ROOT = Path(__file__).resolve().parent.parent
NIGHT_WINDOW = datetime.timedelta(hours=4)  # 00:00–04:00: after the day's HIS settlement, before the morning
NIGHT_TARGET = NIGHT_WINDOW / 2  # within the window with at least half of it to spare
WORKER_BOOT = """
import os, sys
from django.conf import settings
settings.CELERY_TASK_DEFAULT_QUEUE = os.environ["BENCH_QUEUE"]  # where each run queues its reports' task
from celery.bin.celery import main
sys.exit(main())
"""

# --- (b) the dashboard's bare SQL -------------------------------------------------------------------

UNITS_SQL = """
    SELECT hospital_id, count(*), sum(unit_cost),
           count(*) FILTER (WHERE expiry BETWEEN %(today)s AND %(horizon)s),
           sum(unit_cost) FILTER (WHERE expiry BETWEEN %(today)s AND %(horizon)s),
           count(*) FILTER (WHERE expiry < %(today)s)
      FROM inventory_unit WHERE hospital_id = ANY(%(ids)s) AND status = ANY(%(held)s)
     GROUP BY hospital_id
"""
LOTS_SQL = """
    SELECT b.hospital_id, sum(c.quantity), sum(c.quantity * c.unit_cost),
           sum(c.quantity) FILTER (WHERE b.expiry BETWEEN %(today)s AND %(horizon)s),
           sum(c.quantity * c.unit_cost) FILTER (WHERE b.expiry BETWEEN %(today)s AND %(horizon)s),
           sum(c.quantity) FILTER (WHERE b.expiry < %(today)s)
      FROM inventory_lotcostlayer c JOIN inventory_lotbalance b ON b.id = c.balance_id
     WHERE b.hospital_id = ANY(%(ids)s) AND c.quantity > 0
     GROUP BY b.hospital_id
"""
USE_SQL = """
    SELECT hospital_id, sum(quantity) FILTER (WHERE kind = 'CONSUME'), sum(quantity) FILTER (WHERE kind = 'UNCONSUME')
      FROM inventory_movement
     WHERE hospital_id = ANY(%(ids)s) AND kind IN ('CONSUME', 'UNCONSUME')
       AND occurred_at >= %(since)s AND occurred_at < %(until)s
     GROUP BY hospital_id
"""
AMOUNT_SQL = """
    SELECT hospital_id, sum(unit_price * quantity) FROM inventory_consumption
     WHERE hospital_id = ANY(%(ids)s) AND refunded_at IS NULL AND occurred_at >= %(since)s AND occurred_at < %(until)s
     GROUP BY hospital_id
"""
TRANSFERABLE_SQL = """
    SELECT u.hospital_id, p.alliance_entry_id, u.lot, u.expiry, count(*)
      FROM inventory_unit u JOIN inventory_product p ON p.id = u.product_id
      JOIN inventory_location l ON l.id = u.location_id
     WHERE u.hospital_id = ANY(%(ids)s) AND u.owner = 'HOSPITAL' AND u.status = ANY(%(held)s)
       AND p.alliance_entry_id IS NOT NULL AND l.kind NOT IN ('QUARANTINE', 'IN_TRANSIT')
     GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT b.hospital_id, p.alliance_entry_id, b.lot, b.expiry, sum(c.quantity)
      FROM inventory_lotcostlayer c JOIN inventory_lotbalance b ON b.id = c.balance_id
      JOIN inventory_product p ON p.id = b.product_id JOIN inventory_location l ON l.id = b.location_id
     WHERE b.hospital_id = ANY(%(ids)s) AND b.owner = 'HOSPITAL' AND c.quantity > 0
       AND p.alliance_entry_id IS NOT NULL AND l.kind NOT IN ('QUARANTINE', 'IN_TRANSIT')
     GROUP BY 1, 2, 3, 4
"""
ENTRY_USE_SQL = """
    SELECT m.hospital_id, p.alliance_entry_id,
           sum(m.quantity) FILTER (WHERE m.kind = 'CONSUME'), sum(m.quantity) FILTER (WHERE m.kind = 'UNCONSUME')
      FROM inventory_movement m JOIN inventory_product p ON p.id = m.product_id
     WHERE m.hospital_id = ANY(%(ids)s) AND p.alliance_entry_id = ANY(%(entries)s)
       AND m.kind IN ('CONSUME', 'UNCONSUME') AND m.occurred_at >= %(since)s AND m.occurred_at < %(until)s
     GROUP BY 1, 2
"""
VBP_SQL = """
    WITH used AS (
        SELECT cp.vbpcontract_id AS contract_id, m.hospital_id,
               sum(CASE WHEN m.kind = 'CONSUME' THEN m.quantity ELSE -m.quantity END) AS used
          FROM inventory_vbpcontract_products cp JOIN inventory_vbpcontract c ON c.id = cp.vbpcontract_id
          JOIN inventory_movement m ON m.product_id = cp.product_id
         WHERE m.hospital_id = ANY(%(ids)s) AND m.kind IN ('CONSUME', 'UNCONSUME')
           AND m.occurred_at >= (c.start_date::timestamp AT TIME ZONE %(zone)s)
           AND m.occurred_at < LEAST(%(until)s, (CASE c.period WHEN 'FIXED' THEN c.fixed_end_date + 1
                                                 WHEN 'ONE_YEAR' THEN (c.start_date + interval '1 year')::date
                                                 ELSE (c.start_date + interval '2 years')::date END
                                                )::timestamp AT TIME ZONE %(zone)s)
         GROUP BY 1, 2
    )
    SELECT a.contract_id, a.hospital_id, a.reported_demand, c.ratio, coalesce(u.used, 0)
      FROM inventory_vbpallocation a JOIN inventory_vbpcontract c ON c.id = a.contract_id
      LEFT JOIN used u ON u.contract_id = a.contract_id AND u.hospital_id = a.hospital_id
     WHERE a.hospital_id = ANY(%(ids)s)
"""
FLOWS_SQL = """
    SELECT t.from_hospital_id, t.to_hospital_id,
           count(DISTINCT t.id) FILTER (WHERE t.created_at >= %(flow_since)s),
           count(DISTINCT t.id) FILTER (WHERE t.created_at >= %(flow_since)s AND t.kind = 'EMERGENCY'),
           count(DISTINCT t.id) FILTER (WHERE t.status = 'IN_TRANSIT'),
           coalesce(sum(l.value) FILTER (WHERE t.status = 'IN_TRANSIT'), 0),
           coalesce(sum(l.value) FILTER (WHERE t.status = 'RECEIVED' AND t.received_at >= %(flow_since)s), 0)
      FROM inventory_alliancetransfer t LEFT JOIN inventory_alliancetransferline l ON l.transfer_id = t.id
     WHERE t.alliance = %(alliance)s AND (t.created_at >= %(flow_since)s OR t.status = 'IN_TRANSIT')
     GROUP BY 1, 2
"""


def run(context: Context) -> list[Figure]:
    return [*_night(context), *_dashboard(context)]


# --- (a) the night --------------------------------------------------------------------------------


def _night(context: Context) -> list[Figure]:
    from inventory.models import Finding, ReconciliationRun
    from inventory.selectors.settlements import period_bounds

    members = context.dataset["members"]
    ids = [member["hospital_id"] for member in members]
    _start, day = context.period
    _, end = period_bounds(day, day)
    cpus = os.cpu_count() or 1
    bare_sum = f"s Σ bare GROUP BY of the {len(members)} members"
    total = Figure("alliance", f"night: {len(members)} members reconciled in parallel (c={cpus}), last report stored",
                   "s", baseline_name=bare_sum,
                   target=Target(f"within the {_hours(NIGHT_WINDOW)} window 00:00–04:00 with half of it to spare "
                                 f"(≤ {_hours(NIGHT_TARGET)})",
                                 lambda f: f.median is not None and f.median <= NIGHT_TARGET.total_seconds()))
    runs_done = Figure("alliance", "  the night's runs alone (last run done)", "s", baseline_name=bare_sum)
    summed = Figure("alliance", "  Σ of the members' run times (the work)", "s", baseline_name=bare_sum)
    per_member = {
        member["hospital_id"]: Figure("alliance", f"  {member['code']} {member['name']} ({member['movements']:,} "
                                      "movements): its run", "s", baseline_name="s its bare GROUP BY")
        for member in members
    }
    worker = _Worker(context, cpus)
    findings: dict[str, int] = {}
    try:
        worker.start()
        for repetition in range(context.workload.recon_repeat):
            bare = {hospital: _bare(hospital, end) for hospital in ids}
            seconds_bare = sum(bare.values())
            night = worker.night(ids, day)
            total.add(night["reports"], seconds_bare)
            runs_done.add(night["runs"], seconds_bare)
            runs = night["by_hospital"]
            summed.add(sum(run_seconds for run_seconds, _ in runs.values()), seconds_bare)
            for hospital, (run_seconds, _run_pk) in runs.items():
                per_member[hospital].add(run_seconds, bare[hospital])
            context.log(f"alliance night {repetition + 1}: runs {night['runs']:.1f} s, reports {night['reports']:.1f} s; "
                        f"Σ runs {summed.samples[-1]:.1f} s; Σ bare {seconds_bare:.2f} s")
            findings = dict(sorted(_count_findings([pk for _, pk in runs.values()]).items()))
            failed = ReconciliationRun.objects.filter(pk__in=[pk for _, pk in runs.values()]).exclude(status="DONE")
            if failed.exists():
                raise RuntimeError(f"runs not DONE: {list(failed.values_list('hospital_id', 'status', 'error'))}")
    finally:
        worker.stop()
        for hospital in ids:
            _forget_reports(hospital)
    mismatches = findings.get(Finding.Kind.INVENTORY_MISMATCH, 0)
    margin = NIGHT_WINDOW.total_seconds() - (total.median or 0)
    total.note = (f"night window {_hours(NIGHT_WINDOW)} (00:00–04:00): margin {margin / 3600:.2f} h "
                  f"({margin / NIGHT_WINDOW.total_seconds():.1%} of it); worker pool prefork c={cpus}; the day "
                  f"{day}; findings of the last night {sum(findings.values())} ({findings}); "
                  f"{mismatches} INVENTORY_MISMATCH")
    if mismatches:
        total.note += ": the generated data is inconsistent"
    summed.note = "parallel speed-up Σ runs ÷ last run done: " + (
        f"{statistics.median(s / r for s, r in zip(summed.samples, runs_done.samples, strict=True)):.2f}×"
        if runs_done.samples else "—")
    return [total, runs_done, summed, *per_member.values()]


def _bare(hospital: int, end: datetime.datetime) -> float:
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(NET_SQL, {"hospital": hospital, "end": end})
        cursor.fetchall()
        return time.perf_counter() - started


def _count_findings(run_pks: list[int]) -> dict[str, int]:
    from django.db.models import Count

    from inventory.models import Finding

    rows = Finding.objects.filter(run_id__in=run_pks).values("kind").annotate(n=Count("pk")).order_by()
    return {row["kind"]: row["n"] for row in rows}


def _hours(delta: datetime.timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"


class _Worker:
    """A Celery worker on a queue of its own, on this database and broker, for the benchmark's nights."""

    def __init__(self, context: Context, concurrency: int) -> None:
        self.context, self.concurrency = context, concurrency
        self.queue = f"bench-alliance-{uuid.uuid4().hex[:10]}"
        self.log = context.options.results_dir / "alliance-worker.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        if settings.CELERY_BROKER_URL.startswith("memory://"):
            raise RuntimeError("the alliance night needs a real broker: set CELERY_BROKER_URL=redis://…")
        database = connection.settings_dict
        url = (f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST'] or '127.0.0.1'}:"
               f"{database['PORT'] or 5432}/{database['NAME']}")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "spd.settings", "DATABASE_URL": url,
               "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "CELERY_TASK_ALWAYS_EAGER": "0",
               "MEDIA_ROOT": str(settings.MEDIA_ROOT), "BENCH_QUEUE": self.queue, "PYTHONUNBUFFERED": "1"}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-c", WORKER_BOOT, "-A", "spd", "worker", "-P", "prefork", "-c", str(self.concurrency),
                 "-Q", self.queue, "-n", f"{self.queue}@%h", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "-l", "INFO"],
                cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
            )
        self._wait(lambda: "ready." in self.log.read_text(), 120, "the worker to be ready")
        self.context.log(f"alliance: Celery worker ready (prefork, c={self.concurrency}, queue {self.queue})")

    def night(self, hospital_ids: list[int], day: datetime.date) -> dict:
        """Queue every member's run of `day` at once; wait for the runs, then for their reports."""
        from inventory.models import ReconciliationRun
        from inventory.tasks import reconcile_hospital_period
        from spd.celery import app

        before = ReconciliationRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        eager = app.conf.task_always_eager
        app.conf.task_always_eager = False
        try:
            with app.connection_for_write(settings.CELERY_BROKER_URL) as broker:
                started = time.perf_counter()
                for hospital in hospital_ids:
                    reconcile_hospital_period.apply_async((hospital, day.isoformat(), day.isoformat(), True),
                                                          queue=self.queue, connection=broker)
        finally:
            app.conf.task_always_eager = eager
        runs = ReconciliationRun.objects.filter(pk__gt=before, hospital_id__in=hospital_ids, period_start=day,
                                                period_end=day)
        finished = ~_q_running()
        self._wait(lambda: runs.filter(finished).count() >= len(hospital_ids), 6 * 3600, "the night's runs")
        runs_done = time.perf_counter() - started
        self._wait(lambda: not runs.filter(_q_without_reports()).exists(), 6 * 3600, "the runs' reports")
        reports = time.perf_counter() - started
        by_hospital = {
            run.hospital_id: ((run.finished_at - run.started_at).total_seconds(), run.pk)
            for run in runs.only("pk", "hospital_id", "started_at", "finished_at")
        }
        return {"runs": runs_done, "reports": reports, "by_hospital": by_hospital}

    def _wait(self, condition, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker died waiting for {what}:\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._forget_queue()

    def _forget_queue(self) -> None:
        """Remove the queue of this benchmark and its bindings from the broker (Redis keeps them)."""
        if not settings.CELERY_BROKER_URL.startswith("redis"):
            return
        import redis

        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        client.delete(self.queue, f"_kombu.binding.{self.queue}", f"_kombu.binding_permanent.{self.queue}")


def _q_running():
    from django.db.models import Q

    return Q(status="RUNNING")


def _q_without_reports():
    from django.db.models import Q

    return Q(status="DONE") & (Q(csv_sha256="") | Q(xlsx_sha256="") | Q(pdf_sha256=""))


# --- (b) the dashboard ----------------------------------------------------------------------------


def _dashboard(context: Context) -> list[Figure]:
    from inventory.models import User
    from inventory.selectors.alliance import alliance_dashboard
    from inventory.selectors.alliance_transfers import transfers_between_members
    from inventory.simulation.alliance_data import ALLIANCE_AUDITOR

    figure = Figure("alliance", "dashboard: stock & near-expiry, suggestions, use, VBP, transfers (alliance auditor)",
                    "s", baseline_name="s the same figures in bare SQL",
                    target=Target("≤ 3× the bare SQL", lambda f: f.ratio is not None and f.ratio <= 3))
    auditor = User.objects.select_related("hospital").get(username=ALLIANCE_AUDITOR)
    alliance = auditor.hospital.alliance
    expiry_days = use_days = 90
    today = timezone.localdate()

    def selectors():
        user = User.objects.select_related("hospital").get(pk=auditor.pk)  # roles read afresh, as per request
        figures = alliance_dashboard(user, expiry_days=expiry_days, use_days=use_days, today=today)
        flows = transfers_between_members(alliance, days=use_days)
        return figures, flows

    for repetition in range(context.workload.repeat):
        bare_seconds, bare = _timed(lambda: _bare_dashboard(auditor, today, expiry_days, use_days))
        with context.profiled("alliance-dashboard") if repetition == 0 else _null():
            seconds, (figures, flows) = _timed(selectors)
        figure.add(seconds, bare_seconds)
    same = _same_figures(figures, flows, bare)
    figure.note = (f"{len(figures.members)} members, {sum(m.units for m in figures.members):,} units and "
                   f"{sum(m.lot_quantity for m in figures.members):,} lot quantity held, "
                   f"{sum(m.near_expiry_quantity for m in figures.members):,} near expiry; {len(figures.suggestions)} "
                   f"transfer suggestions; {len(figures.vbp)} VBP contracts; {len(flows)} member-to-member flows; "
                   f"bare SQL figures {'equal' if same is True else 'DIFFER: ' + same}")
    return [figure]


def _bare_dashboard(auditor, today: datetime.date, expiry_days: int, use_days: int) -> dict:
    """The dashboard's figures in bare SQL, fetched: the rows each figure rests on (what is left is
    arithmetic and the suggestions' greedy allocation over a few hundred near-expiry lots)."""
    from inventory.models import Hospital
    from inventory.selectors.stock import HELD

    zone = timezone.get_default_timezone()
    ids = list(Hospital.objects.filter(alliance=auditor.hospital.alliance).order_by("pk").values_list("pk", flat=True))
    since = today - datetime.timedelta(days=use_days - 1)
    params = {
        "ids": ids, "held": [str(status) for status in HELD], "today": today,
        "horizon": today + datetime.timedelta(days=expiry_days),
        "since": datetime.datetime.combine(since, datetime.time.min, tzinfo=zone),
        "until": datetime.datetime.combine(today + datetime.timedelta(days=1), datetime.time.min, tzinfo=zone),
        "zone": str(zone), "alliance": auditor.hospital.alliance,
        "flow_since": timezone.now() - datetime.timedelta(days=use_days),
    }
    result = {}
    with connection.cursor() as cursor:
        for name, sql in (("units", UNITS_SQL), ("lots", LOTS_SQL), ("use", USE_SQL), ("amount", AMOUNT_SQL),
                          ("transferable", TRANSFERABLE_SQL), ("vbp", VBP_SQL), ("flows", FLOWS_SQL)):
            cursor.execute(sql, params)
            result[name] = cursor.fetchall()
        near_entries = sorted({row[1] for row in result["transferable"]
                               if row[3] is not None and params["today"] <= row[3] <= params["horizon"]})
        cursor.execute(ENTRY_USE_SQL, {**params, "entries": near_entries})
        result["entry_use"] = cursor.fetchall()
    return result


def _same_figures(figures, flows, bare: dict) -> bool | str:
    """Whether the bare SQL found what the dashboard shows (per member: units, lot quantity, near
    expiry, use; VBP use; flows) — so the two timings are of the same work."""
    units = {row[0]: row for row in bare["units"]}
    lots = {row[0]: row for row in bare["lots"]}
    use = {row[0]: (row[1] or 0) - (row[2] or 0) for row in bare["use"]}
    for member in figures.members:
        pk = member.hospital.pk
        expected = (
            units.get(pk, (0, 0))[1], int(lots.get(pk, (0, 0))[1] or 0),
            (units.get(pk, (0,) * 6)[3] or 0) + int(lots.get(pk, (0,) * 6)[3] or 0), use.get(pk, 0),
        )
        shown = (member.units, member.lot_quantity, member.near_expiry_quantity, member.used_quantity)
        if expected != shown:
            return f"member {member.hospital.code}: bare {expected}, dashboard {shown}"
    vbp_used = {(row[0], row[1]): row[4] for row in bare["vbp"]}
    for rows in figures.vbp:
        for row in rows:
            if row.hospital is not None and vbp_used.get((row.contract.pk, row.hospital.pk)) != row.used:
                return f"VBP {row.contract.number} {row.hospital.code}: bare {vbp_used.get((row.contract.pk, row.hospital.pk))}, dashboard {row.used}"
    bare_flows = {(row[0], row[1]): (row[2], row[3], row[4]) for row in bare["flows"]}
    for flow in flows:
        if bare_flows.get((flow.from_hospital_id, flow.to_hospital_id)) != (flow.transfers, flow.emergency, flow.in_transit):
            return f"flow {flow.from_hospital}→{flow.to_hospital}"
    return True


def _timed(action):
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def _null():
    from contextlib import nullcontext

    return nullcontext()
