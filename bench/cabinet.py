"""Benchmark 2 — smart-cabinet door close: the tag-set comparison and its takes, against one query.

A cabinet of its own (CABBENCH) holds `cabinet_units` tagged units (500). Each cycle: a nurse opens
the door (not timed); the close reports the tags of all units but `cabinet_missing` (20), with
`cabinet_duplicates` (40) tags read twice and `cabinet_unknown` (3) tags bound to no unit, in random
order; `inventory.services.cabinets.close_session` is timed (the 20 units become TAKEN, each with a
movement). Then a second, untimed session puts them back (the close sees all 500), so every cycle
starts from the same cabinet. The same close is also timed through the device ingest path
(`ingest_event` with a door_close event: the raw event stored, then processed).

The baseline is one SQL query reading the cabinet's 500 EPCs (the expected set the close compares
with), run through Django's connection and fetched: its median over 20 runs, in the same cycle.
"""
from __future__ import annotations

import datetime
import random
import statistics
import time
from contextlib import nullcontext

from django.db import connection
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
    return figure.ratio is not None and figure.ratio <= 5 and figure.median is not None and figure.median < 50


TARGET = Target("≤ 5× the query and < 50 ms", _target)


def run(context: Context) -> list[Figure]:
    workload = context.workload
    cabinet, device, nurse = _bench_cabinet(context)
    epcs = _stocked(cabinet, workload.cabinet_units, context)
    baseline = f"ms query of {len(epcs)} EPCs"
    direct = Figure("cabinet", f"door close ({len(epcs)} units, {workload.cabinet_missing} taken), close_session",
                    "ms", baseline_name=baseline, target=TARGET)
    ingested = Figure("cabinet", "same door close through ingest_event (door_close event)", "ms",
                      baseline_name=baseline)
    for repetition in range(workload.repeat):
        direct_times, ingest_times, query_times = [], [], []
        for cycle in range(workload.cabinet_cycles):
            query_times.append(_query_ms(cabinet))
            with context.profiled("cabinet") if repetition == cycle == 0 else nullcontext():
                direct_times.append(_cycle(context, cabinet, device, nurse, epcs, via_ingest=False))
            query_times.append(_query_ms(cabinet))
            ingest_times.append(_cycle(context, cabinet, device, nurse, epcs, via_ingest=True))
        query = statistics.median(query_times)
        direct.add(statistics.median(direct_times), query)
        ingested.add(statistics.median(ingest_times), query)
        context.log(f"cabinet repetition {repetition + 1}: close {direct.samples[-1]:.1f} ms, via ingest "
                    f"{ingested.samples[-1]:.1f} ms, query {query:.2f} ms")
    direct.note = (f"close reads {len(epcs) - workload.cabinet_missing} tags + {workload.cabinet_duplicates} duplicate "
                   f"reads + {workload.cabinet_unknown} unknown tags; median of {workload.cabinet_cycles} closes per "
                   "repetition")
    return [direct, ingested]



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
    missing = set(random.sample(epcs, workload.cabinet_missing))
    present = [epc for epc in epcs if epc not in missing]
    read = present + random.sample(present, workload.cabinet_duplicates)
    read += [f"E2FF{random.getrandbits(80):020X}" for _ in range(workload.cabinet_unknown)]
    random.shuffle(read)
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
