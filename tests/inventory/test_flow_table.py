"""A run's 进销存 table stored as rows of its own (StockFlowRow): the rows are the table the run
computed, in its order; its reports and their data hash are what they were when the table was in
the run's summary, which older runs still have and are still read from; the rows of a finished run
are final in the database."""
import datetime

import psycopg
import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from inventory.models import Finding, ReconciliationRun, StockFlowRow
from inventory.selectors.flow_table import flow_row_count, flow_table, flow_table_rows, search_flow_table
from inventory.selectors.reconciliation import FlowRow
from inventory.services import flow_table as storing
from inventory.services.reconciliation import reconcile
from inventory.services.reports import render_csv, report_content
from spd.celery import app as celery_app
from tests.conftest import api_client_for
from tests.inventory.test_reconciliation import Clock, build_scenario, reconcile_days

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario(hospital, warehouse, cath_lab_store, cabinet, operator, monkeypatch, settings, tmp_path):
    """The reconciliation tests' three days (tests/inventory/test_reconciliation.py), reports in process."""
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    return build_scenario(hospital, warehouse, cath_lab_store, cabinet, operator, Clock(monkeypatch))


def test_a_runs_rows_are_the_table_it_computed_in_the_tables_order(scenario):
    run = reconcile_days(scenario, scenario.d1, scenario.d3)

    computed = reconcile(scenario.hospital, scenario.d1, scenario.d3)
    rows = flow_table_rows(run)
    assert len(rows) >= 4 and rows == computed.table
    assert [(row["location_code"], row["product_code"]) for row in rows] == sorted(
        (row["location_code"], row["product_code"]) for row in rows)
    assert "inventory" not in run.summary, "the table is no longer stored in the summary"
    assert list(StockFlowRow.objects.filter(run=run).order_by("position").values_list("position", flat=True)) == list(
        range(len(rows)))
    assert flow_row_count(run) == len(rows)


def test_the_rows_written_from_the_ledger_are_in_code_point_order_as_python_sorts(scenario, warehouse, cabinet):
    """The run numbers its rows in SQL: by code point (C collation), as Python compares the codes —
    not by a locale's order (which would put "b中心库" before "CATH-STORE" and "Z-CAB")."""
    warehouse.code, cabinet.code = "b中心库", "Z-CAB"
    warehouse.save(update_fields=["code"])
    cabinet.save(update_fields=["code"])

    run = reconcile_days(scenario, scenario.d1, scenario.d3)

    rows = flow_table_rows(run)
    codes = [row["location_code"] for row in rows]
    assert {"b中心库", "Z-CAB", "CATH-STORE"} <= set(codes)
    assert codes.index("CATH-STORE") < codes.index("Z-CAB") < codes.index("b中心库")
    assert rows == reconcile(scenario.hospital, scenario.d1, scenario.d3).table


def test_written_by_bulk_create_off_postgresql_the_rows_are_the_same(scenario, monkeypatch):
    run = reconcile_days(scenario, scenario.d3)
    other = ReconciliationRun.objects.create(hospital=scenario.hospital, period_start=scenario.d3,
                                             period_end=scenario.d3, is_current=False)
    flows = reconcile(scenario.hospital, scenario.d3, scenario.d3).flows
    monkeypatch.setattr(connection, "vendor", "sqlite")  # the bulk_create branch, on this database

    storing.store_flow_rows(other, flows)
    monkeypatch.undo()

    assert flow_table_rows(other) == flow_table_rows(run)


def as_stored_before(run: ReconciliationRun) -> ReconciliationRun:
    """A copy of `run` as a run made before StockFlowRow existed stored it: its table in its summary."""
    table = flow_table_rows(run)
    old = ReconciliationRun.objects.create(
        hospital=run.hospital, period_start=run.period_start, period_end=run.period_end, is_current=False,
        status=ReconciliationRun.Status.DONE, finished_at=run.finished_at,
        summary={key: value for key, value in run.summary.items() if key != "data_sha256"} | {"inventory": table},
    )
    findings = list(run.findings.order_by("pk"))
    for finding in findings:
        finding.pk, finding.run = None, old
    Finding.objects.bulk_create(findings)
    return old


def test_an_older_run_with_its_table_in_its_summary_reads_and_reports_the_same(scenario, auditor):
    run = reconcile_days(scenario, scenario.d1, scenario.d3)
    old = as_stored_before(run)

    assert not StockFlowRow.objects.filter(run=old).exists()
    assert flow_table_rows(old) == flow_table_rows(run) and flow_row_count(old) == flow_row_count(run)
    new_content, old_content = report_content(run), report_content(old)
    assert old_content.data_sha256 == new_content.data_sha256 == run.summary["data_sha256"]
    assert old_content.inventory == new_content.inventory
    # The files differ only by the run's number in their header.
    assert render_csv(old_content).replace(f"运行编号,{old.pk}".encode(), b"") == render_csv(new_content).replace(
        f"运行编号,{run.pk}".encode(), b"")

    served = api_client_for(auditor).get(f"/api/v1/reconciliation/runs/{old.pk}/inventory/", {"limit": 500}).json()
    assert served["count"] == len(flow_table_rows(run)) and served["results"][0] == flow_table_rows(run)[0]
    summary = api_client_for(auditor).get(f"/api/v1/reconciliation/runs/{old.pk}/").json()["summary"]
    assert "inventory" not in summary


def test_the_table_is_searched_alike_in_rows_and_in_an_older_runs_summary(scenario):
    run = reconcile_days(scenario, scenario.d1, scenario.d3)
    old = as_stored_before(run)
    first = flow_table_rows(run)[0]

    for search in ({"location": first["location_code"].lower()}, {"product": first["product_name"][:3]},
                   {"product": first["product_code"], "location": first["location_name"]}, {"product": "no-such"}):
        assert list(search_flow_table(flow_table(run), **search)) == search_flow_table(flow_table(old), **search)


@pytest.mark.postgres
def test_the_rows_of_a_finished_run_cannot_be_changed_or_deleted(scenario):
    run = reconcile_days(scenario, scenario.d3)
    current = reconcile_days(scenario, scenario.d3, rerun=True)
    assert current.supersedes == run and flow_row_count(run) > 0  # superseded, and signed perhaps

    for statement in ("UPDATE inventory_stockflowrow SET opening = opening + 1, closing = closing + 1 WHERE run_id = %s",
                      "DELETE FROM inventory_stockflowrow WHERE run_id = %s"):
        with pytest.raises(DatabaseError, match="final"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [run.pk])
    with pytest.raises(DatabaseError, match="final"), transaction.atomic():
        current.delete()  # nor through the run: its rows would go with it
    assert flow_table_rows(run) == flow_table_rows(current) and flow_row_count(current) > 0


@pytest.mark.postgres
def test_rows_that_do_not_add_up_or_of_an_unfinished_run_are_no_table(scenario):
    running = ReconciliationRun.objects.create(hospital=scenario.hospital, period_start=scenario.d3,
                                               period_end=scenario.d3, is_current=False)
    flows = reconcile(scenario.hospital, scenario.d3, scenario.d3).flows
    storing.store_flow_rows(running, flows)

    with pytest.raises(DatabaseError, match="final"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE inventory_stockflowrow SET other = 0 WHERE run_id = %s", [running.pk])
    assert StockFlowRow.objects.filter(run=running).delete()[0] == len(flows), "not final before the run is DONE"
    with pytest.raises(DatabaseError, match="stock_flow_row_adds_up"), transaction.atomic():
        StockFlowRow.objects.create(run=running, position=0, product_id=flows[0].product_id,
                                    location_id=flows[0].location_id, opening=1, received=0, transferred_in=0,
                                    transferred_out=0, consumed=0, refunded=0, returned=0, scrapped=0, adjusted=0,
                                    other=0, expensed=0, processed=0, closing=2)


# --- the run the rows name: checked once per statement (migration 0046), not once per row ----------


def _unfinished_run(hospital, day) -> ReconciliationRun:
    return ReconciliationRun.objects.create(hospital=hospital, period_start=day, period_end=day, is_current=False)


@pytest.mark.postgres
def test_rows_naming_a_run_that_does_not_exist_are_refused_by_copy_and_by_insert(hospital, warehouse, product):
    run = _unfinished_run(hospital, datetime.date(2026, 3, 1))
    ghost = ReconciliationRun(pk=run.pk + 1000)
    rows = [FlowRow(product.pk, warehouse.pk, opening=2, consumed=1)]

    with pytest.raises(IntegrityError, match=f"run {ghost.pk} does not exist"), transaction.atomic():
        storing.store_flow_rows(ghost, rows)  # one binary COPY
    with (pytest.raises(IntegrityError, match=f"run {ghost.pk} does not exist"), transaction.atomic(),
          connection.cursor() as cursor):  # one statement naming a real run and a missing one
        cursor.execute(
            "INSERT INTO inventory_stockflowrow (run_id, position, product_id, location_id, opening, received, "
            "transferred_in, transferred_out, consumed, refunded, returned, scrapped, adjusted, other, expensed, "
            "processed, closing) SELECT r, 0, %s, %s, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 "
            "FROM unnest(ARRAY[%s, %s]::bigint[]) r", [product.pk, warehouse.pk, run.pk, ghost.pk])
    assert not StockFlowRow.objects.exists()
    assert storing.store_flow_rows(run, rows) == 1 and flow_row_count(run) == 1


@pytest.mark.postgres
def test_a_run_cannot_be_deleted_or_renumbered_under_its_rows_but_the_orm_deletes_an_unfinished_one(
    hospital, warehouse, product,
):
    run = _unfinished_run(hospital, datetime.date(2026, 3, 1))
    storing.store_flow_rows(run, [FlowRow(product.pk, warehouse.pk, opening=2)])

    for statement in ("DELETE FROM inventory_reconciliationrun WHERE id = %s",
                      "UPDATE inventory_reconciliationrun SET id = id + 1000 WHERE id = %s"):
        with (pytest.raises(IntegrityError, match=f"run {run.pk} has 进销存 rows"), transaction.atomic(),
              connection.cursor() as cursor):
            cursor.execute(statement, [run.pk])
    assert flow_row_count(run) == 1
    run.delete()  # Django's cascade: the rows of an unfinished run first, then the run
    assert not StockFlowRow.objects.exists() and not ReconciliationRun.objects.filter(pk=run.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_run_is_held_against_a_delete_until_its_rows_commit(hospital, warehouse, product):
    run = _unfinished_run(hospital, datetime.date(2026, 3, 1))
    params = connection.get_connection_params()
    with transaction.atomic():
        storing.store_flow_rows(run, [FlowRow(product.pk, warehouse.pk, opening=2)])
        with psycopg.connect(**params, autocommit=True) as other:
            other.execute("SET lock_timeout = '300ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("DELETE FROM inventory_reconciliationrun WHERE id = %s", [run.pk])
    assert flow_row_count(run) == 1 and ReconciliationRun.objects.filter(pk=run.pk).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the table is written from the ledger on PostgreSQL")
def test_after_a_recent_snapshot_the_table_is_written_by_one_statement_with_the_same_rows(scenario, monkeypatch):
    """A period read from a snapshot a few days back goes into StockFlowRow in one INSERT … SELECT; a
    longer stretch through the temporary table: the same rows, in the same order, as computed."""
    from inventory.selectors.reconciliation import ledger_read_for_flows, stock_flows
    from inventory.selectors.settlements import period_bounds
    from tests.inventory.test_period_snapshot_reconciliation import snapshot_at

    hospital = scenario.hospital
    start, end = period_bounds(scenario.d2, scenario.d3)
    assert ledger_read_for_flows(hospital, start, end) is None  # no snapshot: the whole ledger
    snapshot_at(hospital, start, scenario.actor.user)
    assert ledger_read_for_flows(hospital, start, end) == end - start
    statements = []
    written = {}
    for name, limit in (("temporary table", datetime.timedelta(0)), ("one statement", storing.SHORT_LEDGER_READ)):
        monkeypatch.setattr(storing, "SHORT_LEDGER_READ", limit)
        run = ReconciliationRun.objects.create(hospital=hospital, period_start=scenario.d2, period_end=scenario.d3,
                                               is_current=False)
        with connection.execute_wrapper(lambda execute, sql, *args: statements.append(sql) or execute(sql, *args)):
            count = storing.insert_flow_rows(run, hospital, start, end)
        written[name] = list(StockFlowRow.objects.filter(run=run).order_by("position").values_list(
            "position", "product_id", "location_id", *storing.QUANTITY_COLUMNS, "closing"))
        assert count == len(written[name])
        temporary = [sql for sql in statements if storing._SUMS_TABLE in sql]
        assert bool(temporary) == (name == "temporary table"), name
        statements.clear()
    computed = [(position, row.product_id, row.location_id, *(getattr(row, column) for column in storing.QUANTITY_COLUMNS),
                 row.closing) for position, row in enumerate(stock_flows(hospital, start, end))]
    assert len(computed) >= 4
    assert written["temporary table"] == written["one statement"] == computed
