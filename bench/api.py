"""Benchmark 4 — the API under load: 20 concurrent clients against gunicorn on PostgreSQL.

Each client is a thread with its own keep-alive `http.client` connection and a nurse's API token
(`Authorization: Token …`), sending its requests back to back (a closed loop: as soon as an answer
arrives, the next request goes). Per repetition and endpoint every client sends `api_requests`
requests; the repetition's p50/p95/p99 latency and requests/s come from all of them.

- consumption: `POST /api/v1/consumptions/` — each client uses units in stock at its department's
  store on encounters of its own, one unit per request (a new idempotency key each);
- unit list: `GET /api/v1/units/` — the first page (50) of the hospital's units, with the count;
- cursor list: `GET /api/v1/units/?cursor=` — the first page of the same list as an integrator
  syncing reads it (cursor pagination, no count; docs/api-sync.md);
- baseline: `GET /api/v1/hospitals/<id>/` — a trivial authenticated endpoint of the same app
  (token lookup, permission, one row, serializer), measured the same way in the same repetition.

Also measured: consumption with one client alone (no queueing), to tell service time from waiting:
the client sends a trivial GET and a use in turn, `SINGLE_CLIENT_FACTOR × api_requests` of each per
repetition, so that both p95 come from the same moments of the machine.
Afterwards every use made here is refunded through the service (not timed), so the units are back
in stock and the dataset stays the same from one run to the next.
"""
from __future__ import annotations

import datetime
import statistics
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

from django.utils import timezone

from bench.figures import Figure, Target
from bench.harness import Context
from bench.server import gunicorn


@dataclass
class _Client:
    token: str
    department: int
    units: list[int]
    used: list[int] = field(default_factory=list)


# The one-client p95 is read from this many times `api_requests` of each request, sent in turn: the
# p95 of 50 requests is their third slowest, which one hiccup of the machine moves.
SINGLE_CLIENT_FACTOR = 4


def run(context: Context) -> list[Figure]:
    workload = context.workload
    hospital = context.hospital
    clients = _clients(context)
    figures = {}
    endpoints = (("consumption", "consumption POST"), ("units", "unit list GET"),
                 ("cursor", "unit list GET ?cursor= (integrator sync, no count)"))
    for endpoint, label in endpoints:
        for percentile in ("p50", "p95", "p99"):
            target = None
            if endpoint == "consumption" and percentile == "p95":
                target = Target("< 50 ms", lambda f: f.median is not None and f.median < 50)
            if endpoint == "cursor" and percentile == "p95":
                target = Target("≤ 3× the trivial GET", lambda f: f.ratio is not None and f.ratio <= 3)
            figures[(endpoint, percentile)] = Figure(
                "api", f"{label} {percentile}, {workload.api_clients} clients", "ms",
                baseline_name=f"ms trivial GET {percentile}", target=target,
            )
        target = None
        if endpoint == "consumption":
            target = Target("≥ 0.35× the trivial GET", lambda f: f.ratio is not None and f.ratio >= 0.35)
        figures[(endpoint, "rps")] = Figure("api", f"{label} throughput, {workload.api_clients} clients", "req/s",
                                            baseline_name="req/s trivial GET", higher_is_better=True, target=target)
    alone = Figure("api", "consumption POST p95, 1 client (no queueing)", "ms", baseline_name="ms trivial GET p95, 1 client",
                   target=Target("≤ 2.5× the trivial GET", lambda f: f.ratio is not None and f.ratio <= 2.5))
    paths = {
        "trivial": lambda client, n: ("GET", f"/api/v1/hospitals/{hospital.pk}/", None, 200),
        "units": lambda client, n: ("GET", "/api/v1/units/", None, 200),
        "cursor": lambda client, n: ("GET", "/api/v1/units/?cursor=", None, 200),
        "consumption": lambda client, n: ("POST", "/api/v1/consumptions/", _use(context, client, n), 201),
    }
    try:
        with gunicorn(workers=workload.gunicorn_workers, log_path=context.options.results_dir / "gunicorn.log") as server:
            _load(server, clients, paths["trivial"], workload.api_warmup)
            _load(server, clients, paths["units"], workload.api_warmup)
            _load(server, clients, paths["cursor"], workload.api_warmup)
            _load(server, clients, paths["consumption"], workload.api_warmup)
            for repetition in range(workload.repeat):
                trivial = _load(server, clients, paths["trivial"], workload.api_requests)
                for endpoint in ("consumption", "units", "cursor"):
                    with context.profiled(f"api-{endpoint}") if repetition == 0 else nullcontext():
                        measured = _load(server, clients, paths[endpoint], workload.api_requests)
                    for key in ("p50", "p95", "p99", "rps"):
                        figures[(endpoint, key)].add(measured[key], trivial[key])
                single_trivial, single = _alternate(server, clients[0], paths["trivial"], paths["consumption"],
                                                    SINGLE_CLIENT_FACTOR * workload.api_requests)
                alone.add(single["p95"], single_trivial["p95"])
                context.log(
                    f"api repetition {repetition + 1}: trivial p95 {trivial['p95']:.1f} ms {trivial['rps']:.0f}/s; "
                    f"consumption p95 {figures[('consumption', 'p95')].samples[-1]:.1f} ms "
                    f"{figures[('consumption', 'rps')].samples[-1]:.0f}/s; units p95 "
                    f"{figures[('units', 'p95')].samples[-1]:.1f} ms; cursor p95 {figures[('cursor', 'p95')].samples[-1]:.1f} ms; consumption alone p95 {single['p95']:.1f} ms"
                )
    finally:
        _refund(context, clients)
    figures[("consumption", "p95")].note = (
        f"closed loop: {workload.api_clients} clients each send the next request as soon as the last is answered, "
        f"against {workload.gunicorn_workers} gthread gunicorn workers (spd/gunicorn_conf.py) on {_cpus()} CPUs shared "
        f"with PostgreSQL and the "
        f"clients: latency there is mostly waiting for a worker (Little's law); see the 1-client figure"
    )
    return [*figures.values(), alone]



def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def _clients(context: Context) -> list[_Client]:
    """One client per nurse (cycling through the departments), each with the units it will use."""
    from rest_framework.authtoken.models import Token

    from inventory.models import Location, Unit, UnitStatus
    from inventory.simulation.scale_data import NURSE_PREFIX

    workload = context.workload
    needed = workload.api_warmup + workload.repeat * workload.api_requests
    fresh = timezone.localdate() + datetime.timedelta(days=30)
    usable = Unit.objects.filter(status=UnitStatus.IN_STOCK, expiry__gt=fresh, product__his_charge_code__gt="")
    nurses = []  # (units left in the store, token, department, store), most stocked first
    for token in Token.objects.filter(user__username__startswith=NURSE_PREFIX).select_related("user"):
        department = token.user.departments.get()
        store = Location.objects.get(department=department, kind=Location.Kind.DEPARTMENT_STORE)
        nurses.append([usable.filter(location=store).count(), token, department, store])
    clients, taken = [], set()
    for index in range(workload.api_clients):
        # The first client also sends the one-client measurement.
        wanted = needed + (SINGLE_CLIENT_FACTOR * workload.repeat * workload.api_requests if index == 0 else 0)
        # A nurse of each department in turn while there are more clients than departments, the best
        # stocked stores first: clients never run out of units to use.
        nurses.sort(key=lambda nurse: (-sum(1 for c in clients if c.department == nurse[2].pk), nurse[0]), reverse=True)
        left, token, department, store = nurses[0]
        units = list(usable.filter(location=store).exclude(pk__in=taken).order_by("?").values_list("pk", flat=True)[:wanted])
        if len(units) < wanted:
            raise RuntimeError(f"only {len(units)} units in stock at {store} for the consumption benchmark, {wanted} needed")
        nurses[0][0] = left - len(units)
        taken.update(units)
        clients.append(_Client(token.key, department.pk, units))
    return clients


def _use(context: Context, client: _Client, n: int) -> dict:
    unit = client.units.pop()
    client.used.append(unit)
    return {"unit": unit, "department": client.department, "encounter": f"ZYB{context.run_id}-{unit}",
            "idempotency_key": f"bench-{context.run_id}-{unit}"}


def _load(server, clients: list[_Client], request, count: int) -> dict:
    """Every client sends `count` requests back to back, all clients at once; latency percentiles and rate."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(clients) + 1)

    def work(client: _Client) -> None:
        http = server.connection()
        headers = {"Authorization": f"Token {client.token}"}
        mine = []
        barrier.wait()
        try:
            for n in range(count):
                method, path, body, expected = request(client, n)
                started = time.perf_counter()
                status, answer = http.request(method, path, body, headers)
                mine.append((time.perf_counter() - started) * 1000)
                if status != expected:
                    errors.append(f"{method} {path} → {status}: {str(answer)[:300]}")
        finally:
            http.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return {**_percentiles(latencies), "rps": len(latencies) / elapsed}


def _alternate(server, client: _Client, first, second, count: int) -> tuple[dict, dict]:
    """One client alone sends `first` and `second` requests in turn, `count` of each: both sets of
    latencies come from the same minutes of the machine, whatever else it is doing."""
    http = server.connection()
    headers = {"Authorization": f"Token {client.token}"}
    latencies: tuple[list[float], list[float]] = ([], [])
    try:
        for n in range(count):
            for request, mine in ((first, latencies[0]), (second, latencies[1])):
                method, path, body, expected = request(client, n)
                started = time.perf_counter()
                status, answer = http.request(method, path, body, headers)
                mine.append((time.perf_counter() - started) * 1000)
                if status != expected:
                    raise RuntimeError(f"{method} {path} → {status}: {str(answer)[:300]}")
    finally:
        http.close()
    return _percentiles(latencies[0]), _percentiles(latencies[1])


def _percentiles(latencies: list[float]) -> dict:
    if len(latencies) < 2:
        value = latencies[0] if latencies else 0.0
        return {"p50": value, "p95": value, "p99": value}
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}


def _refund(context: Context, clients: list[_Client]) -> None:
    """Refund every use the benchmark made, so that its units are in stock again (not timed)."""
    from inventory.actors import Actor
    from inventory.models import Consumption, User
    from inventory.services.consumption import refund_consumption
    from inventory.simulation.scale_data import KEEPER

    keeper = Actor(user=User.objects.get(username=KEEPER))
    used = [unit for client in clients for unit in client.used]
    started = time.monotonic()
    count = 0
    for consumption in Consumption.objects.filter(unit__in=used, refunded_at__isnull=True).select_related("hospital",
                                                                                                          "location"):
        refund_consumption(actor=keeper, consumption=consumption, reason_code="BENCH", to_quarantine=False,
                           idempotency_key=f"bench-refund-{context.run_id}-{consumption.pk}")
        count += 1
    context.log(f"api: {count} benchmark uses refunded in {time.monotonic() - started:.1f} s (units back in stock)")
