"""`make bench` end to end on a tiny workload, so that CI proves the harness works.

The small dataset is generated (COPY, PostgreSQL only) into the test database, then every benchmark
runs once with a handful of operations — gunicorn included — and the report is written. No timing
is asserted: CI machines vary; bench/README.md holds the figures of a real run.
"""
import json

import pytest

from bench.harness import HOSPITAL_BENCHMARKS, WORKLOADS, Options, run_benchmarks

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_every_benchmark_runs_once_and_reports_its_figures(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    report = run_benchmarks(Options(size="small", workload="smoke", results_dir=tmp_path, raise_errors=True,
                                    progress=lambda line: None))
    report.write(tmp_path / "latest.json")

    written = json.loads((tmp_path / "latest.json").read_text())
    figures = written["figures"]
    assert {figure["benchmark"] for figure in figures} == set(HOSPITAL_BENCHMARKS)
    # Once each, except the monthly close: one sample per month of the dataset's history.
    once = [figure for figure in figures if "median of the months" not in figure["figure"]]
    missing = [(figure["benchmark"], figure["figure"], figure.get("note")) for figure in figures
               if not figure["available"] or (figure in once and len(figure["samples"]) != 1)]
    assert not missing
    assert all(figure["ratio"] is not None for figure in figures if figure["baseline"])
    assert written["dataset"]["counts"]["movements"] > 10_000
    table = report.table()
    assert "cabinet" in table and "median" in table
    cabinet_figures = {figure["figure"]: figure for figure in figures if figure["benchmark"] == "cabinet"}
    floor = next(figure for name, figure in cabinet_figures.items() if name.startswith("the SQL floor"))
    close = next(figure for name, figure in cabinet_figures.items() if name.startswith("door close"))
    assert close["baseline"].startswith("ms the same writes in hand-written SQL")
    assert close["baseline_samples"] == floor["samples"]
    _assert_the_cabinet_is_as_found_and_the_sql_floor_writes_what_the_service_writes()
    _assert_the_receipt_scans_sql_floor_writes_what_the_service_writes()


def _assert_the_cabinet_is_as_found_and_the_sql_floor_writes_what_the_service_writes():
    """The cabinet benchmark's SQL baseline writes the rows the service writes for the same read,
    and the put-back after each close leaves the cabinet as it was."""
    from bench.cabinet import CABINET_CODE, DEVICE_CODE, _moment, _put_back, sql_close
    from devices.models import Device
    from inventory.models import CabinetSession, Location, Movement, Unit, UnitStatus, User
    from inventory.services.cabinets import close_session, open_session
    from inventory.simulation.scale_data import NURSE_PREFIX

    cabinet = Location.objects.get(code=CABINET_CODE)
    device = Device.objects.select_related("hospital", "location").get(code=DEVICE_CODE)
    nurse = User.objects.filter(username__startswith=NURSE_PREFIX, departments=cabinet.department).first()
    tagged = Unit.objects.filter(location=cabinet, epc__isnull=False)

    def contents():
        return sorted(tagged.values_list("pk", "status", "location_id"))

    found = contents()
    assert len(found) == WORKLOADS["smoke"].cabinet_units
    assert {status for _, status, _ in found} == {UnitStatus.IN_CABINET}
    epcs = sorted(tagged.values_list("epc", flat=True))
    read = epcs[2:] + epcs[5:7] + ["E2FF00000000000000000001"]  # two taken, two read twice, one unknown

    def written(session_id: int) -> dict:
        session = CabinetSession.objects.get(pk=session_id)
        movements = Movement.objects.filter(document_type=Movement.DocumentType.CABINET_SESSION, document_id=session_id)
        return {
            "session": (session.cabinet_id, session.device_id, session.user_id, session.status, session.closed_at,
                        session.tags_seen, session.taken, session.returned, session.unknown_tags, session.misplaced,
                        session.read_check),
            "movements": sorted(
                (m.hospital_id, m.kind, m.product_id, m.unit_id, m.lot, m.quantity, m.from_location_id,
                 m.to_location_id, m.from_status, m.to_status, m.from_owner, m.to_owner, m.actor_user_id,
                 m.actor_device_id, m.occurred_at, m.reason_code, m.note,
                 m.idempotency_key.replace(f":{session_id}:", ":SESSION:"))
                for m in movements
            ),
            "units": sorted(tagged.filter(status=UnitStatus.TAKEN).values_list("pk", "status", "location_id",
                                                                               "status_since")),
        }

    moment = _moment()
    open_session(device=device, cabinet=cabinet, occurred_at=moment, user_ref=nurse.username)
    service = written(close_session(device=device, cabinet=cabinet, occurred_at=moment, epcs=read).pk)
    _put_back(device, cabinet, nurse.username, epcs)
    assert contents() == found
    session_id, taken, unknown = sql_close(cabinet=cabinet, device=device, user=nurse, occurred_at=moment, epcs=read)
    floor = written(session_id)
    assert sorted(item["epc"] for item in taken) == epcs[:2] and unknown == ["E2FF00000000000000000001"]
    assert len(floor["movements"]) == 2 and len(floor["units"]) == 2
    assert floor == service
    _put_back(device, cabinet, nurse.username, epcs)
    assert contents() == found


def _assert_the_receipt_scans_sql_floor_writes_what_the_service_writes():
    """The ingest benchmark's SQL floor (`sql_receive`) writes the rows the service writes for the
    same receiving batch: events with their outcome, the stock order and its idempotency record,
    the movements and the units moved (but for ids and times), each in a rolled-back transaction."""
    from django.db import transaction

    from bench.ingest import _scan_events, sql_receive
    from devices.models import Device, DeviceEvent
    from devices.services import ingest_batch
    from inventory.models import IdempotencyRecord, Movement, StockOrder, Unit

    stations = Device.objects.select_related("hospital", "location").filter(code__in=["BENCH-RCV-1", "BENCH-RCV-2"])
    # The pool sits at one station's receiving area: the other station scans three of its units.
    device, units = max(((station, list(Unit.objects.filter(location=other.location).order_by("pk")[:3]))
                        for station in stations for other in stations if other != station),
                       key=lambda pair: len(pair[1]))
    assert len(units) == 3
    events = _scan_events([unit.udi_raw for unit in units], "floor-check")

    def written(run) -> dict:
        with transaction.atomic():
            run()
            order = StockOrder.objects.order_by("-pk").first()
            record = IdempotencyRecord.objects.get(result_id=order.pk, result_model="inventory.StockOrder")
            found = {
                "events": sorted(
                    (e.device_id, e.event_id, e.kind, e.occurred_at, e.payload, e.body_sha256, e.status,
                     {**e.result, "stock_order": "ORDER"}, e.error_code, e.error_detail, e.processed_at is not None)
                    for e in DeviceEvent.objects.filter(device=device, event_id__startswith="floor-check")
                ),
                "order": (order.hospital_id, order.kind, order.to_location_id, order.supplier_id, order.reason_code,
                          order.note, order.created_by_id, order.created_by_device_id),
                "record": (record.hospital_id, record.key, record.operation, record.fingerprint),
                "movements": sorted(
                    (m.hospital_id, m.kind, m.product_id, m.unit_id, m.lot, m.quantity, m.from_location_id,
                     m.to_location_id, m.from_status, m.to_status, m.from_owner, m.to_owner, m.actor_user_id,
                     m.actor_device_id, m.reason_code, m.note, m.document_type, m.idempotency_key)
                    for m in Movement.objects.filter(document_type=Movement.DocumentType.STOCK_ORDER,
                                                     document_id=order.pk)
                ),
                "units": sorted(Unit.objects.filter(pk__in=[u.pk for u in units]).values_list("pk", "status",
                                                                                              "location_id")),
                "stock_order_in_results": {e.result["stock_order"] == order.pk for e in DeviceEvent.objects.filter(
                    device=device, event_id__startswith="floor-check")},
            }
            transaction.set_rollback(True)
        return found

    service = written(lambda: ingest_batch(device=device, bodies=events))
    floor = written(lambda: sql_receive(device=device, bodies=events))
    assert len(floor["movements"]) == 3 and floor["stock_order_in_results"] == {True}
    assert floor == service


def test_the_dataset_is_reused_when_it_is_there(settings):
    from inventory.simulation.scale_data import SIZES, ensure_dataset

    first = ensure_dataset(SIZES["small"], progress=lambda line: None)
    again = ensure_dataset(SIZES["small"], progress=lambda line: None)
    assert again["built_at"] == first["built_at"]


def test_the_datasets_issued_statements_have_their_issued_step(settings):
    from inventory.models import SupplierSettlement
    from inventory.simulation.scale_data import SIZES, ensure_dataset

    ensure_dataset(SIZES["small"], progress=lambda line: None)
    issued = SupplierSettlement.objects.exclude(stage="DRAFT")
    assert issued.exists()
    assert not issued.exclude(events__kind="ISSUED").exists()
