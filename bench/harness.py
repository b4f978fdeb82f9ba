"""The benchmark run: the dataset, the workloads, the benchmarks in order, the report.

`run_benchmarks` expects Django to be set up on a PostgreSQL database (bench/run.py does that for
`make bench`; tests/test_bench_smoke.py calls it on the test database).
"""
from __future__ import annotations

import contextlib
import datetime
import secrets
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.figures import Figure, Report

BENCHMARKS = ("ingest", "cabinet", "reconciliation", "api", "ui", "replenishment", "review", "alliance")
# Those that need the alliance dataset (`--alliance`); the others need the one-hospital dataset.
ALLIANCE_BENCHMARKS = ("alliance",)
HOSPITAL_BENCHMARKS = tuple(name for name in BENCHMARKS if name not in ALLIANCE_BENCHMARKS)


@dataclass(frozen=True)
class Workload:
    """How much each benchmark does per repetition (the dataset size is separate)."""

    repeat: int
    ingest_events: int  # scan events per figure and repetition
    ingest_batch: int  # events per batch call / HTTP request (the API takes at most 500)
    cabinet_units: int  # tagged units in the benchmark cabinet
    cabinet_missing: int  # of them, not in the door-close read (taken)
    cabinet_duplicates: int  # tags read twice
    cabinet_unknown: int  # tags bound to no unit
    cabinet_cycles: int  # timed door closes per repetition (the median is the repetition's sample)
    recon_repeat: int  # the reconciliation is long: its own repetition count
    api_clients: int
    api_requests: int  # requests per client, per endpoint and repetition
    api_warmup: int  # requests per client before measuring
    ui_requests: int  # renders per page and repetition (the median is the repetition's sample)
    gunicorn_workers: int = 3  # as the web container runs (spd/gunicorn_conf.py, GUNICORN_WORKERS)


WORKLOADS = {
    "full": Workload(repeat=5, ingest_events=1000, ingest_batch=500, cabinet_units=500, cabinet_missing=20,
                     cabinet_duplicates=40, cabinet_unknown=3, cabinet_cycles=5, recon_repeat=3, api_clients=20,
                     api_requests=50, api_warmup=3, ui_requests=5),
    "small": Workload(repeat=5, ingest_events=50, ingest_batch=25, cabinet_units=500, cabinet_missing=20,
                      cabinet_duplicates=40, cabinet_unknown=3, cabinet_cycles=5, recon_repeat=3, api_clients=20,
                      api_requests=5, api_warmup=2, ui_requests=5),
    # A run that proves the harness works end to end, in seconds (tests/test_bench_smoke.py).
    "smoke": Workload(repeat=1, ingest_events=6, ingest_batch=3, cabinet_units=30, cabinet_missing=3,
                      cabinet_duplicates=4, cabinet_unknown=3, cabinet_cycles=1, recon_repeat=1, api_clients=2,
                      api_requests=3, api_warmup=1, ui_requests=1, gunicorn_workers=1),
}
# The alliance dataset: nights (recon_repeat) of 18 reconciliations each, dashboards (repeat).
WORKLOADS["alliance"] = WORKLOADS["full"]
WORKLOADS["alliance-small"] = WORKLOADS["smoke"]


@dataclass
class Options:
    size: str = "full"
    workload: str | None = None  # default: the size's own
    only: tuple[str, ...] = BENCHMARKS
    rebuild: bool = False
    repeat: int | None = None
    database_url: str = ""
    results_dir: Path = Path("bench/results")
    profile: tuple[str, ...] = ()
    raise_errors: bool = False
    progress: Callable[[str], None] = print
    years: int = 1  # of history in the dataset (Size.with_years)


@dataclass
class Context:
    """What every benchmark gets: the dataset, its hospital, the workload, where to write."""

    dataset: dict
    workload: Workload
    options: Options
    run_id: str
    progress: Callable[[str], None]
    started: float = field(default_factory=time.monotonic)

    @property
    def hospital(self):
        from inventory.models import Hospital

        return Hospital.objects.get(pk=self.dataset["hospital_id"])

    @property
    def period(self) -> tuple[datetime.date, datetime.date]:
        return (datetime.date.fromisoformat(self.dataset["period_start"]),
                datetime.date.fromisoformat(self.dataset["period_end"]))

    def log(self, message: str) -> None:
        self.progress(f"[{time.monotonic() - self.started:7.1f} s] {message}")

    @contextlib.contextmanager
    def profiled(self, name: str) -> Iterator[None]:
        """Profile the block with pyinstrument when asked (`--profile NAME`): bench/results/profile-NAME.txt."""
        if name not in self.options.profile:
            yield
            return
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        try:
            yield
        finally:
            profiler.stop()
            path = self.options.results_dir / f"profile-{name}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
            self.log(f"profile written to {path}")


def run_benchmarks(options: Options) -> Report:
    """Build or reuse the dataset, run the chosen benchmarks, and return the report (not yet written)."""
    from django.db import connection

    from inventory.simulation.alliance_data import ALLIANCE_SIZES, ensure_alliance
    from inventory.simulation.scale_data import SIZES, ensure_dataset

    workload = WORKLOADS[options.workload or options.size]
    if options.repeat:
        workload = Workload(**{**asdict(workload), "repeat": options.repeat,
                               "recon_repeat": min(workload.recon_repeat, options.repeat)})
    started = time.monotonic()
    if options.size in ALLIANCE_SIZES:
        dataset = ensure_alliance(ALLIANCE_SIZES[options.size], rebuild=options.rebuild, progress=options.progress)
    else:
        size = SIZES[options.size] if options.years == 1 else SIZES[options.size].with_years(options.years)
        dataset = ensure_dataset(size, rebuild=options.rebuild, progress=options.progress)
    applicable = ALLIANCE_BENCHMARKS if "alliance" in dataset else HOSPITAL_BENCHMARKS
    context = Context(dataset, workload, options, run_id=f"{time.strftime('%m%d%H%M%S')}{secrets.token_hex(2)}",
                      progress=options.progress)
    report = Report(context={
        "size": options.size, "years": options.years, "workload": asdict(workload), "dataset": dataset,
        "database": connection.settings_dict["NAME"], "postgresql": connection.cursor().connection.info.server_version,
        "errors": {},
    })
    modules = _modules()
    for name in BENCHMARKS:
        if name not in options.only:
            continue
        if name not in applicable:
            context.log(f"benchmark {name} skipped: it needs the {'alliance' if name in ALLIANCE_BENCHMARKS else 'one-hospital'}"
                        " dataset")
            continue
        context.log(f"benchmark {name}")
        try:
            report.extend(modules[name].run(context))
        except Exception as error:  # one broken benchmark must not hide the others' figures
            if options.raise_errors:
                raise
            context.log(f"benchmark {name} FAILED: {error!r}")
            report.context["errors"][name] = traceback.format_exc()
            report.extend([Figure(name, "benchmark failed", "", available=False, note=repr(error)[:300])])
    report.context["seconds"] = round(time.monotonic() - started, 1)
    return report


def _modules() -> dict:
    from bench import alliance, api, cabinet, ingest, reconciliation, replenishment, review, ui

    return {"ingest": ingest, "cabinet": cabinet, "reconciliation": reconciliation, "api": api, "ui": ui,
            "replenishment": replenishment, "review": review, "alliance": alliance}
