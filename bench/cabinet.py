"""Benchmark 2 — smart-cabinet door close: the tag-set comparison and its takes, against one query.

A cabinet of its own (CABBENCH) holds `cabinet_units` tagged units (500). Each cycle: a nurse opens
the door (not timed); the close reports the tags of all units but `cabinet_missing` (20), with
`cabinet_duplicates` (40) tags read twice and `cabinet_unknown` (3) tags bound to no unit, in random
order; `inventory.services.cabinets.close_session` is timed (the 20 units become TAKEN, each with a
movement). Then a second, untimed session puts them back (the close sees all 500), so every cycle
starts from the same cabinet. The same close is also timed through the device ingest path
(`ingest_event` with a door_close event: the raw event stored, then processed).

The baseline is the floor of the same work: the close's writes in hand-written SQL, in one
transaction on the same connection (`_sql_close`): lock the cabinet row, read its tagged units
(locked), insert the session (closed, with the units taken, the unknown tags and the reader check),
insert the 20 CABINET_TAKE movements in one statement and update the 20 units in another, commit.
Its rows are the service's rows (the ledger's triggers apply to them alike: the closed-period check
on every movement inserted), and the same untimed put-back session follows it, so the cabinet
starts every close the same way. In each cycle the three closes take turns: SQL, service, ingest.

The service is judged against that floor (target ≤ 2×). The old baseline — one query reading the
cabinet's 500 EPCs, fetched, median of 20 — is kept as its own line ("old ratio"): it compared a
whole close with one read, so its ≤ 5× could not be met by any close that writes.
"""
from __future__ import annotations

import datetime
import json
import random
import statistics
import time
from contextlib import nullcontext

from django.db import connection, transaction
from django.utils import timezone

from bench.figures import Figure, Target
from bench.harness import Context

CABINET_CODE = "CABBENCH"
DEVICE_CODE = "BENCH-CABBENCH"
EXPECTED_EPCS_SQL = (
    "SELECT epc FROM inventory_unit WHERE location_id = %s AND status IN ('IN_CABINET', 'TAKEN', 'EXPIRED') "
    "AND epc IS NOT NULL"
)


def _target(figure: Figure) -> bool:
    return figure.ratio is not None and figure.ratio <= 2 and figure.median is not None and figure.median < 50


TARGET = Target("≤ 2× the SQL floor and < 50 ms", _target)


def run(context: Context) -> list[Figure]:
    workload = context.workload
    cabinet, device, nurse = _bench_cabinet(context)
    epcs = _stocked(cabinet, workload.cabinet_units, context)
    taken = workload.cabinet_missing
    floor = f"ms the same writes in hand-written SQL ({taken} movements, {taken} units, 1 session)"
    query = f"ms query of {len(epcs)} EPCs"
    direct = Figure("cabinet", f"door close ({len(epcs)} units, {taken} taken), close_session", "ms",
                    baseline_name=floor, target=TARGET)
    old = Figure("cabinet", "same close_session against the old baseline (old ratio, one read vs a whole close)", "ms",
                 baseline_name=query)
    ingested = Figure("cabinet", "same door close through ingest_event (door_close event)", "ms", baseline_name=floor)
    sql = Figure("cabinet", "the SQL floor itself (lock, read tags, session, movements, units, commit)", "ms",
                 baseline_name=query)
    for repetition in range(workload.repeat):
        direct_times, ingest_times, sql_times, query_times = [], [], [], []
        for cycle in range(workload.cabinet_cycles):
            query_times.append(_query_ms(cabinet))
            sql_times.append(_sql_cycle(context, cabinet, device, nurse, epcs))
            with context.profiled("cabinet") if repetition == cycle == 0 else nullcontext():
                direct_times.append(_cycle(context, cabinet, device, nurse, epcs, via_ingest=False))
            query_times.append(_query_ms(cabinet))
            ingest_times.append(_cycle(context, cabinet, device, nurse, epcs, via_ingest=True))
        floor_ms, query_ms = statistics.median(sql_times), statistics.median(query_times)
        direct.add(statistics.median(direct_times), floor_ms)
        old.add(statistics.median(direct_times), query_ms)
        ingested.add(statistics.median(ingest_times), floor_ms)
        sql.add(floor_ms, query_ms)
        context.log(f"cabinet repetition {repetition + 1}: close {direct.samples[-1]:.1f} ms, via ingest "
                    f"{ingested.samples[-1]:.1f} ms, SQL floor {floor_ms:.2f} ms, query {query_ms:.2f} ms")
    direct.note = (f"close reads {len(epcs) - taken} tags + {workload.cabinet_duplicates} duplicate "
                   f"reads + {workload.cabinet_unknown} unknown tags; median of {workload.cabinet_cycles} closes per "
                   "repetition, each beside an SQL close of the same read")
    return [direct, old, ingested, sql]


def _query_ms(cabinet) -> float:
    times = []
    with connection.cursor() as cursor:
        for _ in range(20):
            started = time.perf_counter()
            cursor.execute(EXPECTED_EPCS_SQL, [cabinet.pk])
            cursor.fetchall()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


_last = [timezone.now()]


def _moment() -> datetime.datetime:
    """A device time later than any used before (closes are ordered by the device's clock)."""
    _last[0] = max(timezone.now(), _last[0] + datetime.timedelta(milliseconds=10))
    return _last[0]


def _cycle(context: Context, cabinet, device, nurse, epcs: list[str], *, via_ingest: bool) -> float:
    """One timed close taking `cabinet_missing` units, then an untimed session putting them back."""
    from devices.services import ingest_event
    from inventory.services.cabinets import close_session, open_session

    workload = context.workload
    read = _read(workload, epcs)
    if via_ingest:
        stamp = f"{context.run_id}-{time.monotonic_ns()}"
        ingest_event(device=device, body={"event_id": f"open-{stamp}", "kind": "door_open",
                                          "occurred_at": _moment().isoformat(), "payload": {"user": nurse.username}})
        body = {"event_id": f"close-{stamp}", "kind": "door_close", "occurred_at": _moment().isoformat(),
                "payload": {"epcs": read}}
        started = time.perf_counter()
        outcome = ingest_event(device=device, body=body)
        elapsed = time.perf_counter() - started
        result = outcome.event.result
        taken, unknown = len(result.get("taken", [])), len(result.get("unknown_tags", []))
    else:
        open_session(device=device, cabinet=cabinet, occurred_at=_moment(), user_ref=nurse.username)
        moment = _moment()
        started = time.perf_counter()
        session = close_session(device=device, cabinet=cabinet, occurred_at=moment, epcs=read)
        elapsed = time.perf_counter() - started
        taken, unknown = len(session.taken), len(session.unknown_tags)
    if taken != workload.cabinet_missing or unknown != workload.cabinet_unknown:
        raise RuntimeError(f"door close took {taken} units and saw {unknown} unknown tags, expected "
                           f"{workload.cabinet_missing} and {workload.cabinet_unknown}")
    _put_back(device, cabinet, nurse.username, epcs)
    return elapsed * 1000


def _read(workload, epcs: list[str]) -> list[str]:
    """What the cabinet reports at close: all tags but `cabinet_missing`, some twice, a few unknown."""
    missing = set(random.sample(epcs, workload.cabinet_missing))
    present = [epc for epc in epcs if epc not in missing]
    read = present + random.sample(present, workload.cabinet_duplicates)
    read += [f"E2FF{random.getrandbits(80):020X}" for _ in range(workload.cabinet_unknown)]
    random.shuffle(read)
    return read


def _sql_cycle(context: Context, cabinet, device, nurse, epcs: list[str]) -> float:
    """One timed SQL close taking `cabinet_missing` units, then the untimed put-back session."""
    workload = context.workload
    read = _read(workload, epcs)
    started = time.perf_counter()
    _, taken, unknown = sql_close(cabinet=cabinet, device=device, user=nurse, occurred_at=_moment(), epcs=read)
    elapsed = time.perf_counter() - started
    if len(taken) != workload.cabinet_missing or len(unknown) != workload.cabinet_unknown:
        raise RuntimeError(f"the SQL close took {len(taken)} units and saw {len(unknown)} unknown tags, expected "
                           f"{workload.cabinet_missing} and {workload.cabinet_unknown}")
    _put_back(device, cabinet, nurse.username, epcs)
    return elapsed * 1000


_LOCK_CABINET = "SELECT id FROM inventory_location WHERE id = %s FOR UPDATE"
_LOCK_TAGGED = (
    "SELECT id, epc, status, product_id, lot, serial, hospital_id FROM inventory_unit "
    "WHERE location_id = %s AND status IN ('IN_CABINET', 'TAKEN', 'EXPIRED') AND epc IS NOT NULL ORDER BY id FOR UPDATE"
)
_INSERT_SESSION = (
    "INSERT INTO inventory_cabinetsession (cabinet_id, device_id, user_id, badge, status, opened_at, closed_at, "
    "tags_seen, taken, returned, unknown_tags, misplaced, read_check, suspect_reads) "
    "VALUES (%s, %s, %s, '', 'CLOSED', %s, %s, %s, %s, '[]', %s, '[]', %s, '[]') RETURNING id"
)
_INSERT_TAKES = (
    "INSERT INTO inventory_movement (hospital_id, kind, product_id, unit_id, lot, quantity, from_location_id, "
    "to_location_id, from_status, to_status, from_owner, to_owner, actor_user_id, actor_device_id, occurred_at, "
    "recorded_at, reason_code, note, document_type, document_id, idempotency_key) "
    "SELECT %s, 'CABINET_TAKE', taken.product_id, taken.unit_id, taken.lot, 1, %s, %s, 'IN_CABINET', 'TAKEN', '', '', "
    "%s, NULL, %s, %s, '', '', 'CABINET_SESSION', %s, taken.idempotency_key "
    "FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[]) AS taken(unit_id, product_id, lot, idempotency_key)"
)
_TAKE_UNITS = "UPDATE inventory_unit SET status = 'TAKEN', status_since = %s WHERE id = ANY(%s::bigint[])"


def sql_close(
    *, cabinet, device, user, occurred_at: datetime.datetime, epcs: list[str]
) -> tuple[int, list[dict], list[str]]:
    """The floor of a door close that takes units: its writes in hand-written SQL, one transaction.

    Lock the cabinet row, read (and lock) its tagged units, insert the session — closed, with the
    units taken, the unknown tags and the reader check, as the service stores them —, insert one
    CABINET_TAKE movement per unit no longer seen (one statement; the ledger's triggers run) and
    mark those units TAKEN (one statement), commit. Returns the session's id, `taken` and `unknown_tags`.
    No other check than the tag comparison: no STALE or SUSPECT decision, no expiry lock, no
    misplaced-tag lookup — what the service adds on top of this floor.
    """
    from inventory.services.cabinets import reader_thresholds

    seen = {epc.strip().upper() for epc in epcs}
    share, minimum = reader_thresholds(device)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_LOCK_CABINET, [cabinet.pk])
        cursor.execute(_LOCK_TAGGED, [cabinet.pk])
        expected = cursor.fetchall()
        taken = [row for row in expected if row[2] == "IN_CABINET" and row[1] not in seen]
        unknown = sorted(seen - {row[1] for row in expected})
        summaries = [{"unit": pk, "epc": epc, "serial": serial, "product": product_id}
                     for pk, epc, _, product_id, _, serial, _ in taken]
        in_cabinet = sum(1 for row in expected if row[2] == "IN_CABINET")
        check = {"verdict": "OK", "expected": in_cabinet, "missing": len(taken), "seen_expected": in_cabinet - len(taken),
                 "tags_seen": len(seen), "max_share": share, "min_units": minimum}
        cursor.execute(_INSERT_SESSION, [cabinet.pk, device.pk, user.pk, occurred_at, occurred_at, len(seen),
                                         json.dumps(summaries), json.dumps(unknown), json.dumps(check)])
        session = cursor.fetchone()[0]
        cursor.execute(_INSERT_TAKES, [
            cabinet.hospital_id, cabinet.pk, cabinet.pk, user.pk, occurred_at, timezone.now(), session,
            [row[0] for row in taken], [row[3] for row in taken], [row[4] for row in taken],
            [f"cabinet-session:{session}:take:{row[0]}" for row in taken],
        ])
        cursor.execute(_TAKE_UNITS, [occurred_at, [row[0] for row in taken]])
    return session, summaries, unknown


def _put_back(device, cabinet, username: str, epcs: list[str]) -> None:
    from inventory.services.cabinets import close_session, open_session

    open_session(device=device, cabinet=cabinet, occurred_at=_moment(), user_ref=username)
    session = close_session(device=device, cabinet=cabinet, occurred_at=_moment(), epcs=epcs)
    if session.taken:
        raise RuntimeError(f"the put-back session took {len(session.taken)} units")


def _bench_cabinet(context: Context):
    """The benchmark's own cabinet (created once), its controller and the nurse who opens it."""
    from devices.models import Device
    from inventory.models import Location, User
    from inventory.simulation.scale_data import NURSE_PREFIX

    hospital = context.hospital
    store = Location.objects.filter(hospital=hospital, kind=Location.Kind.DEPARTMENT_STORE).order_by("pk").first()
    cabinet, _ = Location.objects.get_or_create(
        hospital=hospital, code=CABINET_CODE,
        defaults={"name": "基准测试智能柜", "kind": Location.Kind.SMART_CABINET, "department": store.department},
    )
    device, _ = Device.objects.get_or_create(
        code=DEVICE_CODE,
        defaults={"hospital": hospital, "location": cabinet, "name": "基准测试智能柜控制器", "kind": Device.Kind.CABINET_HTTP},
    )
    device = Device.objects.select_related("hospital", "location").get(pk=device.pk)
    nurse = User.objects.filter(username__startswith=NURSE_PREFIX, departments=cabinet.department).first()
    return cabinet, device, nurse


def _stocked(cabinet, count: int, context: Context) -> list[str]:
    """Make the cabinet hold exactly `count` tagged units, all in it (IN_CABINET); return their EPCs."""
    from inventory.actors import Actor
    from inventory.models import Location, Unit, UnitStatus, User
    from inventory.services.labelling import bind_tag
    from inventory.services.stock import transfer_stock
    from inventory.simulation.scale_data import KEEPER

    keeper = Actor(user=User.objects.get(username=KEEPER))
    hospital = context.hospital
    here = Unit.objects.filter(location=cabinet, status__in=[UnitStatus.IN_CABINET, UnitStatus.TAKEN])
    if here.filter(status=UnitStatus.TAKEN).exists():  # an earlier run stopped mid-cycle
        from devices.models import Device

        device = Device.objects.select_related("hospital", "location").get(code=DEVICE_CODE)
        _put_back(device, cabinet, "", list(here.values_list("epc", flat=True)))
    held = list(here.order_by("pk"))
    warehouse = Location.objects.get(hospital=hospital, code="CW")
    if len(held) > count:
        transfer_stock(actor=keeper, hospital=hospital, to_location=warehouse, units=held[count:],
                       idempotency_key=f"bench-cabinet-out-{context.run_id}")
    elif len(held) < count:
        fresh = timezone.localdate() + datetime.timedelta(days=30)
        more = list(Unit.objects.filter(hospital=hospital, location=warehouse, status=UnitStatus.IN_STOCK, epc__isnull=True,
                                        expiry__gt=fresh).order_by("pk")[: count - len(held)])
        if len(more) < count - len(held):
            raise RuntimeError("not enough units in the central warehouse to stock the benchmark cabinet")
        for unit in more:
            bind_tag(unit=unit, epc=f"E2BE{unit.pk:020X}", actor=keeper)
        transfer_stock(actor=keeper, hospital=hospital, to_location=cabinet, units=more,
                       idempotency_key=f"bench-cabinet-in-{context.run_id}")
        context.log(f"benchmark cabinet stocked with {len(more)} tagged units")
    epcs = list(Unit.objects.filter(location=cabinet, status=UnitStatus.IN_CABINET).values_list("epc", flat=True))
    if len(epcs) != count:
        raise RuntimeError(f"the benchmark cabinet holds {len(epcs)} units in it, expected {count}")
    return epcs
