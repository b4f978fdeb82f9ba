"""Dates from devices and HIS imports: checked before anything is stored, bad rows already stored
never fail a list, and `manage.py repair_dates` repairs or quarantines them."""
import datetime
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from devices.models import DeviceEvent
from inventory.models import Alert, CabinetSession, HisSettlementLine
from inventory.services.date_repair import repair_dates
from tests.conftest import api_client_for
from tests.devices.test_ingest import device_client, event, make_device, post
from tests.inventory.test_his_settlements import URL as SETTLEMENTS
from tests.inventory.test_his_settlements import line

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/devices/events/"
# Shown in local time (+08:00) this is in year 10000: it used to make a whole list fail.
EDGE_OF_TIME = datetime.datetime(9999, 12, 31, 20, tzinfo=datetime.UTC)


@pytest.fixture
def device(hospital):
    return make_device(hospital)


def at(when):
    return {**event(), "occurred_at": when}


# --- refused before anything is stored -----------------------------------------------------------------


@pytest.mark.parametrize("when", [
    "0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00", "1970-01-01T00:00:00+00:00",
    "2999-01-01T00:00:00+00:00",
])
def test_a_device_event_outside_the_accepted_dates_is_refused_and_nothing_is_stored(device, when):
    response = post(device_client(device[1]), at(when))
    assert response.status_code == 400
    assert response.data["code"] == "DATE_OUT_OF_RANGE"
    assert "超出本系统可处理的日期范围" in response.data["detail"]  # the refusal's message, in the caller's language
    assert "check the device's clock" in response.data["problems"][0]["detail"]
    assert not DeviceEvent.objects.exists()
    alert = Alert.objects.get(kind=Alert.Kind.DEVICE_CLOCK_SKEW)
    assert alert.device == device[0]


def test_an_impossible_date_is_refused_not_a_server_error(device):
    response = post(device_client(device[1]), at("2026-02-30T10:00:00+08:00"))
    assert (response.status_code, response.data["code"]) == (400, "INVALID_EVENT")
    assert not DeviceEvent.objects.exists()


def test_one_bad_date_refuses_the_whole_batch(device):
    good = event("a")
    response = post(device_client(device[1]), [good, {**event("b"), "occurred_at": "0001-01-01T00:00:00+08:00"}])
    assert (response.status_code, response.data["code"]) == (400, "DATE_OUT_OF_RANGE")
    assert response.data["problems"][0]["detail"].startswith("event 1:")
    assert not DeviceEvent.objects.exists()


def test_the_accepted_window_is_a_setting(device, settings):
    three_years_ago = (timezone.now() - datetime.timedelta(days=3 * 365)).isoformat()
    settings.SPD_ACCEPTED_DATE_YEARS = 2
    assert post(device_client(device[1]), at(three_years_ago)).status_code == 400
    settings.SPD_ACCEPTED_DATE_YEARS = 5
    assert post(device_client(device[1]), at(three_years_ago)).status_code == 201


@pytest.mark.parametrize("settled_at", ["0001-01-01", "9999-12-31T23:59:59-08:00", "1970-01-01T08:00:00+08:00",
                                        "2999-05-01"])
def test_a_settlement_line_outside_the_accepted_dates_refuses_the_import(hospital, operator, settled_at):
    lines = [line("L1"), line("L2", settled_at=settled_at)]
    response = api_client_for(operator).post(SETTLEMENTS, {"batch": "b", "lines": lines}, format="json")
    assert response.status_code == 400
    problem = response.data["problems"][0]
    assert problem["item"] == {"row": 2, "field": "settled_at"}
    assert "超出可接受的日期范围" in problem["detail"]  # translated: the caller's language is Chinese
    assert not HisSettlementLine.objects.exists()


# --- bad rows already stored never fail a list ----------------------------------------------------------


def stored_event(device, event_id, moment):
    body = event(event_id)
    stored = DeviceEvent.objects.create(device=device, event_id=event_id, kind="heartbeat", occurred_at=timezone.now(),
                                        payload={}, body_sha256="x" * 64)
    DeviceEvent.objects.filter(pk=stored.pk).update(occurred_at=moment)
    return stored, body


def stored_line(hospital, his_line_id, moment):
    stored = HisSettlementLine.objects.create(
        hospital=hospital, his_line_id=his_line_id, encounter="ZY1", his_charge_code="HIS1", quantity=1,
        unit_price=1, amount=1, settled_at=timezone.now(),
    )
    HisSettlementLine.objects.filter(pk=stored.pk).update(settled_at=moment)
    return stored


def test_lists_show_a_stored_date_that_cannot_be_shown_as_null(hospital, device, keeper):
    stored_event(device[0], "bad", EDGE_OF_TIME)
    stored_event(device[0], "good", timezone.now())
    stored_line(hospital, "BAD", EDGE_OF_TIME)
    stored_line(hospital, "GOOD", timezone.now())
    client = api_client_for(keeper)

    events = client.get(EVENTS)
    assert events.status_code == 200
    shown = {row["event_id"]: row["occurred_at"] for row in events.data["results"]}
    assert shown["bad"] is None and shown["good"] is not None
    lines = client.get(SETTLEMENTS)
    assert lines.status_code == 200
    shown = {row["his_line_id"]: row["settled_at"] for row in lines.data["results"]}
    assert shown["BAD"] is None and shown["GOOD"] is not None


def put_raw(table, column, pk, text):
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s::timestamptz WHERE id = %s", [text, pk])


@pytest.mark.postgres
def test_lists_survive_dates_python_cannot_load(hospital, device, keeper):
    for event_id, text in (("year-10000", "10000-01-01 07:59:59+00"), ("bc", "0001-12-31 16:00:00+00 BC")):
        stored, _ = stored_event(device[0], event_id, timezone.now())
        put_raw(DeviceEvent._meta.db_table, "occurred_at", stored.pk, text)
        put_raw(HisSettlementLine._meta.db_table, "settled_at", stored_line(hospital, event_id, timezone.now()).pk, text)
    client = api_client_for(keeper)
    events = client.get(EVENTS)
    assert events.status_code == 200
    assert [row["occurred_at"] for row in events.data["results"]] == [None, None]
    lines = client.get(SETTLEMENTS)
    assert lines.status_code == 200
    assert [row["settled_at"] for row in lines.data["results"]] == [None, None]
    # A device sending one of those ids again gets an answer, not a server error.
    again = post(device_client(device[1]), [event("year-10000"), event("new")])
    assert again.status_code == 200
    assert [row["status"] for row in again.data["events"]] == ["REJECTED", "PROCESSED"]  # other body: conflict

    report = repair_dates(apply=True)
    assert [found.count for found in report.found[:2]] == [2, 2]
    assert {row["value"][:5] for row in report.found[0].rows} == {"10000", "0001-"}
    assert client.get(EVENTS).data["results"][0]["occurred_at"] is not None
    assert repair_dates().total == 0


# --- repair_dates -----------------------------------------------------------------------------------------


def test_repair_dates_is_a_dry_run_unless_applied_then_finds_nothing_more(hospital, device, cabinet):
    bad_event, _ = stored_event(device[0], "bad", EDGE_OF_TIME)
    stored_event(device[0], "old", timezone.now() - datetime.timedelta(days=8 * 365))
    good_event, _ = stored_event(device[0], "good", timezone.now() - datetime.timedelta(days=1))
    bad_line = stored_line(hospital, "BAD", datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC))
    good_line = stored_line(hospital, "GOOD", timezone.now())
    future = CabinetSession.objects.create(cabinet=cabinet, device=device[0], status="CLOSED",
                                           closed_at=timezone.now() + datetime.timedelta(days=30), close_event=good_event)

    out = io.StringIO()
    call_command("repair_dates", stdout=out)
    text = out.getvalue()
    assert "device events: 2" in text and "HIS settlement lines: 1" in text and "cabinet sessions: 1" in text
    assert "Dry run" in text
    bad_event.refresh_from_db()
    assert bad_event.date_repaired_at is None

    out = io.StringIO()
    call_command("repair_dates", "--apply", stdout=out)
    assert "Repaired 4 rows" in out.getvalue()
    bad_event.refresh_from_db()
    assert bad_event.occurred_at == bad_event.received_at
    assert bad_event.occurred_at_as_sent.startswith("9999-12-31")
    assert bad_event.date_repaired_at is not None
    bad_line.refresh_from_db()
    assert (bad_line.settled_at, bad_line.quarantined_at is not None) == (None, True)
    assert bad_line.settled_at_as_sent.startswith("1900-01-01")
    good_line.refresh_from_db()
    assert good_line.quarantined_at is None
    future.refresh_from_db()
    assert future.closed_at == good_event.received_at
    assert future.device_clock_ahead_seconds >= 30 * 24 * 3600 - 60

    out = io.StringIO()
    call_command("repair_dates", "--apply", stdout=out)
    assert "Nothing to repair." in out.getvalue()


def test_a_quarantined_line_is_listed_with_its_value_as_sent(hospital, keeper):
    stored_line(hospital, "BAD", datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC))
    repair_dates(apply=True)
    row = api_client_for(keeper).get(SETTLEMENTS).data["results"][0]
    assert row["settled_at"] is None and row["quarantined_at"] is not None
    assert row["settled_at_as_sent"].startswith("1900-01-01")


def test_a_quarantined_line_sent_again_with_a_good_date_leaves_quarantine(hospital, operator):
    client = api_client_for(operator)
    assert client.post(SETTLEMENTS, {"batch": "b1", "lines": [line("L1")]}, format="json").status_code == 201
    HisSettlementLine.objects.update(settled_at=datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC))
    repair_dates(apply=True)

    changed = client.post(SETTLEMENTS, {"batch": "b2", "lines": [line("L1", amount="99.00")]}, format="json")
    assert (changed.status_code, changed.data["code"]) == (409, "HIS_LINE_CONFLICT")  # other content: still refused
    again = client.post(SETTLEMENTS, {"batch": "b2", "lines": [line("L1")]}, format="json")
    assert again.status_code == 201, again.data
    assert (again.data["created"], again.data["released"]) == (0, 1)
    released = HisSettlementLine.objects.get()
    assert released.quarantined_at is None
    assert released.settled_at == datetime.datetime(2024, 5, 1, 2, 30, tzinfo=datetime.UTC)
    assert released.settled_at_as_sent.startswith("1900-01-01")


def test_the_clock_alert_stays_until_the_device_sends_a_believable_time(hospital, device):
    from inventory.services import alerts

    client = device_client(device[1])
    assert post(client, {**event("e1"), "occurred_at": "1970-01-01T00:00:00+00:00"}).status_code == 400
    alerts.scan_devices(hospital=hospital)
    assert Alert.objects.get(kind=Alert.Kind.DEVICE_CLOCK_SKEW).status == Alert.Status.OPEN
    assert post(client, {**event("e2"), "occurred_at": timezone.now().isoformat()}).status_code == 201
    alerts.scan_devices(hospital=hospital)
    assert Alert.objects.get(kind=Alert.Kind.DEVICE_CLOCK_SKEW).status == Alert.Status.RESOLVED
