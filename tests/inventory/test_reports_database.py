"""Reports off the primary (inventory.reports_database): inside `reports_reads()` reads go to the
`reports` alias in one REPEATABLE READ READ ONLY transaction, writes to the primary; analytics and
reconciliation reports read there. The alias is REPORTS_DATABASE_URL's when set (CI may set it);
otherwise the test opens it itself, a second connection to the same test database — so it never
skips. Committed data (transaction=True): the second connection must see it."""
import datetime

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory.models import Department, ReconciliationRun
from inventory.reports_database import PRIMARY, REPORTS, ReportsRouter, reports_reads
from inventory.selectors import review as review_selectors
from inventory.services.reconciliation import run_reconciliation
from tests.conftest import api_client_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases=[PRIMARY, REPORTS])]


@pytest.fixture(scope="module", autouse=True)
def _reports_alias_configured(django_db_setup, django_db_blocker):
    """The `reports` alias in the settings before each test's database set-up sees them: the
    configured replica (a mirror of the test database), or a second connection to the test database."""
    added = REPORTS not in connections.settings
    if added:
        connections.settings[REPORTS] = {**connections.settings[PRIMARY]}
    yield
    if added:
        connections[REPORTS].close()
        del connections[REPORTS]
        del connections.settings[REPORTS]


@pytest.fixture
def reports_alias():
    yield connections[REPORTS]
    connections[REPORTS].close()


def _period() -> review_selectors.Period:
    today = timezone.localdate()
    return review_selectors.Period(today - datetime.timedelta(days=30), today)


def test_reads_in_the_block_go_to_the_replica_in_one_read_only_snapshot(reports_alias, hospital):
    with (CaptureQueriesContext(connections[PRIMARY]) as primary, CaptureQueriesContext(reports_alias) as replica,
          reports_reads() as alias):
        review_selectors.review(hospital=hospital, dimension="department", period=_period())
        with reports_alias.cursor() as cursor:
            cursor.execute("SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')")
            settings_seen = cursor.fetchone()
        hospital_again = type(hospital).objects.get(pk=hospital.pk)

    assert alias == REPORTS
    assert settings_seen == ("repeatable read", "on")
    assert hospital_again._state.db == REPORTS
    assert replica.captured_queries and not primary.captured_queries


def test_writes_in_the_block_go_to_the_primary_and_reads_outside_stay_there(reports_alias, hospital):
    with reports_reads():
        Department.objects.create(hospital=hospital, code="D-W", name="写入")  # the replica would refuse it
    with CaptureQueriesContext(reports_alias) as replica:
        assert Department.objects.get(code="D-W").name == "写入"

    assert not replica.captured_queries
    assert ReportsRouter().db_for_write(Department) == PRIMARY


def test_inside_a_transaction_on_the_primary_reads_stay_there_to_see_its_writes(reports_alias, hospital):
    with transaction.atomic(), reports_reads() as alias:
        Department.objects.create(hospital=hospital, code="D-T", name="未提交")
        assert Department.objects.filter(code="D-T").exists()

    assert alias == PRIMARY


def test_the_review_api_reads_on_the_replica(reports_alias, hospital, auditor):
    period = _period()
    client = api_client_for(auditor)
    with CaptureQueriesContext(reports_alias) as replica:
        response = client.get("/api/v1/review/", {"start": period.start, "end": period.end})

    assert response.status_code == 200, response.content
    assert any("inventory_consumption" in query["sql"] for query in replica.captured_queries)


def test_a_runs_reports_are_read_on_the_replica_once_it_shows_the_run_done(reports_alias, hospital):
    day = datetime.date(2025, 3, 1)
    with CaptureQueriesContext(reports_alias) as replica:
        run = run_reconciliation(hospital=hospital, period_start=day, period_end=day)

    assert run.status == ReconciliationRun.Status.DONE and run.has_reports
    read_there = [query["sql"] for query in replica.captured_queries]
    assert any("inventory_finding" in sql for sql in read_there)
    assert not any(sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) for sql in read_there)
