"""Benchmark 1 — scan-event ingest: events/s through the device ingest path, against raw inserts.

Two kinds of scan, each sent as batches (`{"events": [...]}`):

- receipt scans: a receiving station (scan_mode RECEIVE_INTO_LOCATION) moves each scanned unit into
  its receiving area — the scan is resolved, the unit locked and transferred, the event and its
  outcome stored. The two stations sit at two receiving areas of their own and take turns, so one
  pool of units shuttles between them and the departments' stock stays as it was;
- consumption scans: a bedside scanner (scan_mode LOOKUP) resolves each scanned UDI to its unit,
  as before a use is registered (the use itself is benchmark 4).

Each goes through the service (`devices.services.ingest_batch`, in process) and through the HTTP
endpoint (`POST /api/v1/devices/events/` on gunicorn, one client). The baseline is the same number
of rows, of the same columns as a device event, inserted with raw psycopg into a plain table:
`executemany` in one transaction (the ratio's denominator), and COPY; a row-per-transaction
insert is shown too, as the price of committing each event on its own, and the GS1 parse of the
same codes alone (`parse_udi`, no database): a ceiling that no ingest path can pass — with the GS1
fast path for the common AIs, and (its own line) against biip alone on the same codes.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import random
import time
from contextlib import nullcontext

import psycopg
from django.utils import timezone
from psycopg.types.json import Jsonb

from bench.figures import Figure, Target
from bench.harness import Context
from bench.server import database_url, gunicorn

RAW_TABLE = "bench_raw_event"
RAW_COLUMNS = "device_id, event_id, kind, occurred_at, received_at, payload, body_sha256, status"
SERVICE_TARGET = Target("≥ 0.30× raw executemany", lambda figure: figure.ratio is not None and figure.ratio >= 0.30)
PARSE_TARGET = Target("≥ 0.5× the parse alone", lambda figure: figure.ratio is not None and figure.ratio >= 0.5)


def run(context: Context) -> list[Figure]:
    from devices.models import Device

    workload = context.workload
    devices = {device.code: device for device in Device.objects.select_related("hospital", "location").filter(
        code__in=["BENCH-RCV-1", "BENCH-RCV-2", "BENCH-BEDSIDE"])}
    tokens = {code: _issue_token(device) for code, device in devices.items()}
    per = "events/s"
    baseline = "rows/s raw executemany"
    figures = {
        "receipt-service": Figure("ingest", "receipt scans, service (ingest_batch)", per, baseline_name=baseline,
                                  target=SERVICE_TARGET, higher_is_better=True),
        "consumption-service": Figure("ingest", "consumption scans, service (ingest_batch)", per,
                                      baseline_name=baseline, target=SERVICE_TARGET, higher_is_better=True),
        "receipt-http": Figure("ingest", "receipt scans, HTTP batch endpoint", per, baseline_name=baseline,
                               higher_is_better=True),
        "consumption-http": Figure("ingest", "consumption scans, HTTP batch endpoint", per, baseline_name=baseline,
                                   higher_is_better=True),
        "copy": Figure("ingest", "raw COPY", "rows/s", baseline_name=baseline, higher_is_better=True),
        "autocommit": Figure("ingest", "raw INSERT, one transaction per row", "rows/s", baseline_name=baseline,
                             higher_is_better=True),
        "parse": Figure("ingest", "GS1 parse alone (parse_udi, no database)", "codes/s", baseline_name=baseline,
                        higher_is_better=True),
        "parse-fast": Figure("ingest", "GS1 parse: fast path (AIs 01/11/17/10/21) vs biip alone", "codes/s",
                             baseline_name="codes/s biip alone (parse_gs1 fast=False)", higher_is_better=True),
        # Issue 19's target: a receipt scan's database work should cost no more than its parse.
        "receipt-vs-parse": Figure("ingest", "receipt scans, service, against the GS1 parse alone (parse_udi)", per,
                                   baseline_name="codes/s parse_udi alone", target=PARSE_TARGET,
                                   higher_is_better=True),
        # The same target against biip's parse (the issue's "10k codes/s"): the fast path above outruns
        # even raw executemany of the events' rows, a ceiling no path that stores its events can reach.
        "receipt-vs-biip": Figure("ingest", "receipt scans, service, against biip's parse alone", per,
                                  baseline_name="codes/s biip alone (parse_gs1 fast=False)", target=PARSE_TARGET,
                                  higher_is_better=True),
    }
    n = workload.ingest_events
    with psycopg.connect(database_url()) as raw, gunicorn(
        workers=workload.gunicorn_workers, log_path=context.options.results_dir / "gunicorn.log"
    ) as server:
        _create_raw_table(raw)
        _analyze_events(raw)
        client = server.connection()
        for repetition in range(workload.repeat):
            rows = _raw_rows(n, context.run_id, repetition)
            executemany = n / _timed(lambda rows=rows: _executemany(raw, rows))
            figures["copy"].add(n / _timed(lambda rows=rows: _copy(raw, rows)), executemany)
            figures["autocommit"].add(n / _timed(lambda rows=rows: _autocommit(raw, rows)), executemany)
            codes = _random_codes(n)
            parsed = n / _timed(lambda codes=codes: _parse_all(codes))
            biip_alone = n / _timed(lambda codes=codes: _parse_all(codes, fast=False))
            figures["parse"].add(parsed, executemany)
            figures["parse-fast"].add(parsed, biip_alone)
            # The pool of units moves as a whole into the other station's receiving area, and back next time.
            station, codes = _shuttle(context, devices, 2 * n)
            for path, chunk in (("service", codes[:n]), ("http", codes[n:])):
                events = _scan_events(chunk, f"{context.run_id}-r{repetition}-{path}")
                with context.profiled(f"ingest-receipt-{path}") if repetition == 0 else nullcontext():
                    seconds, outcomes = _send(path, station, tokens[station.code], events, workload.ingest_batch, client)
                _check(outcomes, "receipt", expect_order=True)
                figures[f"receipt-{path}"].add(n / seconds, executemany)
            figures["receipt-vs-parse"].add(figures["receipt-service"].samples[-1], parsed)
            figures["receipt-vs-biip"].add(figures["receipt-service"].samples[-1], biip_alone)
            bedside = devices["BENCH-BEDSIDE"]
            for path in ("service", "http"):
                events = _scan_events(_random_codes(n), f"{context.run_id}-r{repetition}-lookup-{path}")
                with context.profiled(f"ingest-consumption-{path}") if repetition == 0 else nullcontext():
                    seconds, outcomes = _send(path, bedside, tokens[bedside.code], events, workload.ingest_batch, client)
                _check(outcomes, "consumption", expect_order=False)
                figures[f"consumption-{path}"].add(n / seconds, executemany)
            context.log(f"ingest repetition {repetition + 1}: executemany {executemany:,.0f} rows/s, receipt service "
                        f"{figures['receipt-service'].samples[-1]:,.0f}/s, consumption service "
                        f"{figures['consumption-service'].samples[-1]:,.0f}/s")
        client.close()
        with raw.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
        raw.commit()
    figures["receipt-service"].note = (
        f"{n} events per repetition in batches of {workload.ingest_batch}; each receipt scan locks and transfers one "
        "unit; a batch is one transaction, its receipt scans one StockOrder with one Movement per unit"
    )
    return list(figures.values())



def _issue_token(device) -> str:
    token = device.issue_token()
    device.save(update_fields=["token_hash"])
    return token


def _parse_all(codes: list[str], *, fast: bool = True) -> None:
    """Parse every code as the ingest path does (`parse_udi`), or with biip alone (`fast=False`)."""
    from devices.identification import parse_udi
    from devices.identification.gs1 import parse_gs1

    if not fast:
        for code in codes:
            parse_gs1(code, fast=False)
        return
    for code in codes:
        parse_udi(code)


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


# --- the baseline: raw psycopg into a plain table ----------------------------------------------------


def _create_raw_table(raw: psycopg.Connection) -> None:
    with raw.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
        cursor.execute(
            f"CREATE TABLE {RAW_TABLE} (id bigserial PRIMARY KEY, device_id bigint NOT NULL, "
            "event_id varchar(128) NOT NULL, kind varchar(16) NOT NULL, occurred_at timestamptz NOT NULL, "
            "received_at timestamptz NOT NULL, payload jsonb NOT NULL, body_sha256 varchar(64) NOT NULL, "
            "status varchar(16) NOT NULL)"
        )
    raw.commit()


def _analyze_events(raw: psycopg.Connection) -> None:
    """The device events' statistics, untimed, as autovacuum (off on the benchmark's server) keeps
    them: without any, the planner reads every stored event of a device to find a batch's ids."""
    with raw.cursor() as cursor:
        cursor.execute("ANALYZE devices_deviceevent")
    raw.commit()


def _raw_rows(n: int, run_id: str, repetition: int) -> list[tuple]:
    now = datetime.datetime.now(datetime.UTC)
    rows = []
    for k in range(n):
        payload = {"code": f"]d20106970000000123172801311025{k:04d}\x1d21SN{k:09d}"}
        digest = hashlib.sha256(json.dumps(payload).encode()).hexdigest()
        rows.append((1, f"raw-{run_id}-{repetition}-{k}", "scan", now, now, Jsonb(payload), digest, "PENDING"))
    return rows


def _truncate(raw: psycopg.Connection) -> None:
    with raw.cursor() as cursor:
        cursor.execute(f"TRUNCATE {RAW_TABLE}")
    raw.commit()


def _executemany(raw: psycopg.Connection, rows: list[tuple]) -> None:
    _truncate(raw)
    with raw.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {RAW_TABLE} ({RAW_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows)
    raw.commit()


def _copy(raw: psycopg.Connection, rows: list[tuple]) -> None:
    _truncate(raw)
    with raw.cursor() as cursor, cursor.copy(f"COPY {RAW_TABLE} ({RAW_COLUMNS}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    raw.commit()


def _autocommit(raw: psycopg.Connection, rows: list[tuple]) -> None:
    _truncate(raw)
    raw.autocommit = True
    try:
        with raw.cursor() as cursor:
            for row in rows:
                cursor.execute(f"INSERT INTO {RAW_TABLE} ({RAW_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", row)
    finally:
        raw.autocommit = False


# --- the measured paths ------------------------------------------------------------------------------


RECEIVING_AREAS = {"BENCH-RCV-1": ("RCV-A", "收货区A（基准测试）"), "BENCH-RCV-2": ("RCV-B", "收货区B（基准测试）")}


def _shuttle(context: Context, devices: dict, count: int):
    """The receiving station to scan at, and the codes of the `count` units to scan there.

    Each station sits at a receiving area of its own (created the first time, next to the central
    warehouse), so that the benchmark moves no department's stock: a pool of `count` units, taken
    once from the central warehouse, moves between the two areas, all of it each repetition.
    """
    from inventory.actors import Actor
    from inventory.models import Location, Unit, UnitStatus, User
    from inventory.services.stock import transfer_stock
    from inventory.simulation.scale_data import KEEPER

    hospital = context.hospital
    warehouse = Location.objects.get(hospital=hospital, code="CW")
    areas = {}
    for code, (area_code, name) in RECEIVING_AREAS.items():
        area, _ = Location.objects.get_or_create(
            hospital=hospital, code=area_code,
            defaults={"name": name, "kind": Location.Kind.CENTRAL_WAREHOUSE, "parent": warehouse,
                      "department_id": warehouse.department_id},
        )
        device = devices[code]
        if device.location_id != area.pk:
            device.location = area
            device.save(update_fields=["location"])
        areas[code] = area
    fresh = timezone.localdate() + datetime.timedelta(days=30)
    units = Unit.objects.filter(hospital=hospital, status=UnitStatus.IN_STOCK, expiry__gt=fresh)
    held = {code: list(units.filter(location=area).order_by("pk")) for code, area in areas.items()}
    source = max(held, key=lambda code: len(held[code]))
    target = next(code for code in held if code != source)
    keeper = Actor(user=User.objects.get(username=KEEPER))
    missing = count - len(held[source])
    if missing > 0:  # the first run, or an earlier run stopped half-way: fill the pool up, not timed
        more = held[target][:missing]
        more += list(units.filter(location=warehouse).order_by("pk")[: missing - len(more)])
        transfer_stock(actor=keeper, hospital=hospital, to_location=areas[source], units=more,
                       idempotency_key=f"bench-receiving-pool-{context.run_id}-{time.monotonic_ns()}")
        held[source] += more
    if len(held[source]) < count:
        raise RuntimeError(f"only {len(held[source])} units for the receiving stations, {count} needed")
    return devices[target], [unit.udi_raw for unit in held[source][:count]]


def _random_codes(count: int) -> list[str]:
    from inventory.models import Unit

    bounds = Unit.objects.order_by("pk").values_list("pk", flat=True)
    first, last = bounds.first(), bounds.last()
    picks = random.sample(range(first, last + 1), min(count * 2, last - first + 1))
    codes = list(Unit.objects.filter(pk__in=picks).values_list("udi_raw", flat=True)[:count])
    return (codes * (count // max(1, len(codes)) + 1))[:count]


def _scan_events(codes: list[str], prefix: str) -> list[dict]:
    now = timezone.now().isoformat()
    return [{"event_id": f"{prefix}-{k}", "kind": "scan", "occurred_at": now, "payload": {"code": code}}
            for k, code in enumerate(codes)]


def _send(path: str, device, token: str, events: list[dict], batch: int, client) -> tuple[float, list[dict]]:
    from devices.services import authenticate_device, ingest_batch

    outcomes: list[dict] = []
    started = time.perf_counter()
    for start in range(0, len(events), batch):
        chunk = events[start:start + batch]
        if path == "service":
            # As the endpoint does: the device is read with its token on every request.
            outcomes += ingest_batch(device=authenticate_device(token), bodies=chunk)
        else:
            status, body = client.request("POST", "/api/v1/devices/events/", {"events": chunk},
                                          headers={"Authorization": f"Device {token}"})
            if status != 200:
                raise RuntimeError(f"device events endpoint answered {status}: {str(body)[:300]}")
            outcomes += body["events"]
    return time.perf_counter() - started, outcomes


def _check(outcomes: list[dict], what: str, *, expect_order: bool) -> None:
    failed = [o for o in outcomes if o.get("status") != "PROCESSED" or o.get("replayed")]
    if failed:
        raise RuntimeError(f"{len(failed)} {what} scans were not processed, e.g. {failed[0]}")
    if expect_order and not all(o["result"].get("stock_order") for o in outcomes):
        raise RuntimeError(f"a {what} scan moved nothing")
