"""The one-day reconciliation run from one closed month's snapshot, on a benchmark database, beside
the bare GROUP BY of bench/reconciliation.py — a quicker measure than the full benchmark (which
closes every month of the history first), for comparing code versions and dataset lengths.

The month before the dataset's last day is folded from the whole ledger and stored as the only
closed month (ClosedPeriod + PeriodBalance, as `close_month` stores it, without its report and
preconditions); the last day is then run `--repeat` times (`run_reconciliation(rerun=True)`, the
reports left to the worker as in the benchmark) and computed (`reconcile()`). The closed month is
removed at the end unless `--keep` (a later call finds it and does not fold again).

    .venv/bin/python bench/day_with_snapshot.py --database-url postgres://…/bench_h14 --repeat 3
    .venv/bin/python bench/day_with_snapshot.py --code /path/to/other/checkout …   # that code, this script
    .venv/bin/python bench/day_with_snapshot.py --year …   # the year up to that day instead of the day
    .venv/bin/python bench/day_with_snapshot.py --day 2026-12-01 …   # another day after the snapshot

The dataset's last day is not an ordinary day: the generator dates there every use planned after
the end (22,969 uses on the full one-year dataset, 805 a day on average, 3,939 on the 1st of its
last month); `--day` runs a day of the same month instead, from the same snapshot.

With `--year` the period run is the last 365 days of the dataset (as bench/reconciliation.py's year
run); it opens from no snapshot (none is closed before its start), so without `--close-all` this
measures the year run without the full benchmark's twelve closes.

`--close-all` closes every month of the history before the last day's month through `close_month`
(snapshot, the month's flows, 月报, lock — as bench/reconciliation.py's "with monthly snapshots"
figures do; the days not yet reconciled are run first, the HIS backlog acknowledged), instead of
folding one month. A single month stored by this script without it is removed first; months
already closed by an earlier `--close-all --keep` are kept as they are. The closes are made by the
code that runs (`--code`): to compare two checkouts on closed months, close with the newer one and
`--keep`, then alternate.

Prints one line per repetition and a JSON line with every figure and the load average.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the closed month in place")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose code runs (default: this one)")
    parser.add_argument("--label", default="")
    parser.add_argument("--profile", type=Path, help="write a pyinstrument profile of the first run here")
    parser.add_argument("--year", action="store_true", help="run the last 365 days instead of the last day")
    parser.add_argument("--day", type=datetime.date.fromisoformat,
                        help="run this day (after the snapshot's month) instead of the dataset's last day")
    parser.add_argument("--close-all", action="store_true",
                        help="close every month before the last day's month with close_month (kept with --keep)")
    args = parser.parse_args()
    code = args.code.resolve()
    sys.path.insert(0, str(code))
    os.chdir(code)
    from bench.run import configure_environment

    configure_environment(args.database_url, ROOT / "bench/results")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    from django.utils import timezone

    from bench.reconciliation import NET_SQL, _bare, _reports_by_worker, _timed
    from inventory.models import ClosedPeriod, Hospital, Movement, PeriodBalance, User
    from inventory.selectors.periods import ledger_fold
    from inventory.selectors.settlements import period_bounds
    from inventory.services.period_close import first_day, month_bounds
    from inventory.services.reconciliation import reconcile, run_reconciliation
    from inventory.simulation.scale_data import existing_dataset

    dataset = existing_dataset()
    hospital = Hospital.objects.get(pk=dataset["hospital_id"])
    last_day = datetime.date.fromisoformat(dataset["period_end"])
    month = first_day(first_day(last_day) - datetime.timedelta(days=1))
    day = args.day or last_day
    first = day
    if args.year:
        first = max(datetime.date.fromisoformat(dataset["period_start"]), day - datetime.timedelta(days=364))
    _, end_instant = period_bounds(day, day)
    figures: dict = {"label": args.label, "database": args.database_url.rsplit("/", 1)[-1], "code": str(code),
                     "day": day.isoformat(), "first": first.isoformat(), "snapshot": f"{month:%Y-%m}", "repetitions": []}
    if args.close_all:
        figures["closes"] = _close_every_month(hospital, datetime.date.fromisoformat(dataset["period_start"]), last_day)
    period = ClosedPeriod.objects.filter(hospital=hospital, month=month).first()
    if period is None:
        operator, _ = User.objects.get_or_create(username="bench-operator", defaults={"hospital": hospital, "password": "!"})
        starts_at, ends_at = month_bounds(month)
        seconds, balances = _timed(lambda: ledger_fold(hospital, ends_at, None))
        period = ClosedPeriod.objects.create(hospital=hospital, month=month, starts_at=starts_at, ends_at=ends_at,
                                             closed_by=operator, note="bench/day_with_snapshot.py")
        PeriodBalance.objects.bulk_create([
            PeriodBalance(period=period, product_id=row.product_id, location_id=row.location_id, lot=row.lot,
                          owner=row.owner, quantity=row.quantity, value=row.value) for row in balances
        ], batch_size=5000)
        from inventory.services import period_close

        if hasattr(period_close, "store_place_balances"):  # the snapshot per place, where the code has it
            period_close.store_place_balances(period)
            period.save(update_fields=["places_stored"])
        with connection.cursor() as cursor:  # as the close does once committed
            cursor.execute(f"ANALYZE {PeriodBalance._meta.db_table}")
            if getattr(period, "places_stored", False):
                cursor.execute("ANALYZE inventory_periodplacebalance")
        figures["fold_seconds"] = round(seconds, 2)
        print(f"folded {month:%Y-%m} from the whole ledger in {seconds:.1f} s: {len(balances):,} balances", flush=True)
    figures["ledger"] = Movement.objects.filter(hospital=hospital).count()
    figures["since_snapshot"] = Movement.objects.filter(hospital=hospital, occurred_at__gte=period.ends_at).count()
    figures["balances"] = PeriodBalance.objects.filter(period=period).count()
    figures["closed_months"] = ClosedPeriod.objects.filter(hospital=hospital).count()
    try:
        with _reports_by_worker():
            for repetition in range(args.repeat):
                load = os.getloadavg()[0]
                bare, _rows = _bare(NET_SQL, hospital.pk, end_instant)
                profiler = None
                if args.profile and repetition == 0:
                    from pyinstrument import Profiler

                    profiler = Profiler(interval=0.0005)
                    profiler.start()
                run_seconds, run = _timed(lambda: run_reconciliation(hospital=hospital, period_start=first,
                                                                     period_end=day, rerun=True))
                if profiler is not None:
                    profiler.stop()
                    args.profile.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
                computed, _outcome = _timed(lambda: reconcile(hospital, first, day))
                after = _bare(NET_SQL, hospital.pk, end_instant)[0]
                sample = {"load": round(load, 2), "bare": round(bare, 3), "bare_after": round(after, 3),
                          "run": round(run_seconds, 3), "reconcile": round(computed, 3),
                          "run_ratio": round(run_seconds / min(bare, after), 2),
                          "reconcile_ratio": round(computed / min(bare, after), 2), "findings": run.findings.count()}
                figures["repetitions"].append(sample)
                print(f"{args.label} #{repetition + 1} {timezone.now():%H:%M:%S}: {sample}", flush=True)
    finally:
        if not args.keep:
            _remove_closes(ClosedPeriod.objects.filter(hospital=hospital))
    print(json.dumps(figures))
    return 0


def _remove_closes(periods) -> None:
    """Delete closed months (their balances, their stored flows where the code has them, their 月报)."""
    from django.apps import apps

    from inventory.models import PeriodBalance

    periods = list(periods)
    for period in periods:
        if period.report_csv and period.report_csv.storage.exists(period.report_csv.name):
            period.report_csv.storage.delete(period.report_csv.name)
    PeriodBalance.objects.filter(period__in=periods).delete()
    for name in ("PeriodFlow", "PeriodPlaceBalance"):  # where the code has them
        if any(model.__name__ == name for model in apps.get_app_config("inventory").get_models()):
            apps.get_model("inventory", name).objects.filter(period__in=periods).delete()
    for period in periods:
        period.delete()


def _close_every_month(hospital, first_day_of_data: datetime.date, last_day: datetime.date) -> dict:
    """Close every month before `last_day`'s with `close_month`, as bench/reconciliation.py does
    (each day covered by a run first; the HIS backlog acknowledged); the seconds of each close."""
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from bench.reconciliation import _reports_by_worker, _timed
    from inventory.models import ClosedPeriod, Movement, Role, User
    from inventory.services.period_close import close_month, first_day, next_month, unreconciled_days
    from inventory.services.reconciliation import run_reconciliation

    operator, _ = User.objects.get_or_create(username="bench-operator", defaults={"hospital": hospital, "password": "!"})
    operator.groups.add(Group.objects.get_or_create(name=Role.SPD_OPERATOR.value)[0])
    quick = ClosedPeriod.objects.filter(hospital=hospital, note="bench/day_with_snapshot.py")
    if quick.exists():
        _remove_closes(quick)
        print("removed the month folded by this script without --close-all", flush=True)
    first = Movement.objects.filter(hospital=hospital).order_by("occurred_at").values_list("occurred_at", flat=True)[0]
    month = first_day(timezone.localdate(first))
    seconds = {}
    with _reports_by_worker():
        while month < first_day(last_day):
            if not ClosedPeriod.objects.filter(hospital=hospital, month=month).exists():
                missing = unreconciled_days(hospital, month)
                if missing:  # one run for the month's days not covered, as the nightly runs would have
                    run_reconciliation(hospital=hospital, period_start=missing[0], period_end=missing[-1])
                took, _ = _timed(lambda month=month: close_month(hospital=hospital, month=month, user=operator,
                                                                 acknowledge_his_backlog=True))
                seconds[f"{month:%Y-%m}"] = round(took, 2)
                print(f"closed {month:%Y-%m} in {took:.1f} s", flush=True)
            month = next_month(month)
    return seconds


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    sys.exit(code)
