"""Cabinet sessions with untrustworthy input: wrong device clocks, late closes, reader faults."""
import datetime

import pytest
from django.utils import timezone

from devices.models import Device
from inventory.models import Alert, CabinetSession, Movement, UnitStatus
from inventory.services import alerts
from inventory.services.cabinets import close_session
from tests.inventory import test_cabinets
from tests.inventory.test_cabinets import epc, send, statuses

pytestmark = pytest.mark.django_db
# The cabinet, its device, its five tagged units and the nurse of tests/inventory/test_cabinets.py.
cabinet_device, stocked_cabinet, nurse = test_cabinets.cabinet_device, test_cabinets.stocked_cabinet, test_cabinets.nurse
HOUR = datetime.timedelta(hours=1)


def open_alerts(kind):
    return Alert.objects.filter(kind=kind).exclude(status=Alert.Status.RESOLVED)


# --- device clocks and late closes -------------------------------------------------------------------


def test_a_close_stamped_in_the_future_is_clamped_flagged_alerted_and_blocks_nothing(
    cabinet_device, stocked_cabinet, nurse
):
    now = timezone.now()
    send(cabinet_device, "o1", "door_open", now - datetime.timedelta(minutes=1), badge="BADGE-7")
    future = send(cabinet_device, "c1", "door_close", now + 24 * HOUR, epcs=[epc(n) for n in range(4)])

    result = future["result"]
    assert result["session_status"] == "CLOSED"
    assert [w["code"] for w in result["warnings"]] == ["DEVICE_CLOCK_AHEAD"]
    session = CabinetSession.objects.get(pk=result["session"])
    assert session.closed_at < now + datetime.timedelta(minutes=1)  # the server's time, not the device's
    assert session.device_clock_ahead_seconds >= 24 * 3600 - 60
    take = Movement.objects.get(kind="CABINET_TAKE")
    assert take.occurred_at == session.closed_at
    skew = open_alerts(Alert.Kind.DEVICE_CLOCK_SKEW).get()
    assert (skew.device, skew.subject_key) == (cabinet_device, f"device:{cabinet_device.pk}")

    # The next session, stamped right, is applied: the future close did not make it STALE.
    send(cabinet_device, "o2", "door_open", timezone.now(), badge="BADGE-7")
    later = send(cabinet_device, "c2", "door_close", timezone.now(), epcs=[epc(n) for n in range(3)])
    assert later["result"]["session_status"] == "CLOSED"
    assert later["result"]["warnings"] == []
    assert statuses(stocked_cabinet) == [UnitStatus.IN_CABINET] * 3 + [UnitStatus.TAKEN] * 2
    assert open_alerts(Alert.Kind.DEVICE_CLOCK_SKEW).exists()  # resolved by the device scan, not by ingest
    assert alerts.scan_devices(hospital=cabinet_device.hospital).resolved == 1  # its clock is right again
    assert not open_alerts(Alert.Kind.DEVICE_CLOCK_SKEW).exists()


def test_a_clock_within_the_accepted_skew_is_believed(cabinet_device, stocked_cabinet, settings):
    settings.SPD_DEVICE_MAX_CLOCK_AHEAD_SECONDS = 300
    ahead = timezone.now() + datetime.timedelta(minutes=2)
    result = send(cabinet_device, "c1", "door_close", ahead, epcs=[epc(n) for n in range(5)])["result"]
    assert CabinetSession.objects.get(pk=result["session"]).closed_at == ahead
    assert result["warnings"] == []
    assert not open_alerts(Alert.Kind.DEVICE_CLOCK_SKEW).exists()


def test_sessions_stored_in_the_future_before_clocks_were_bounded_never_block_the_present(
    cabinet, cabinet_device, stocked_cabinet, nurse
):
    far = timezone.now() + 30 * 24 * HOUR
    CabinetSession.objects.create(cabinet=cabinet, device=cabinet_device, status="CLOSED", closed_at=far)
    ghost_open = CabinetSession.objects.create(cabinet=cabinet, device=cabinet_device, status="OPEN", opened_at=far)

    opened = send(cabinet_device, "o1", "door_open", timezone.now(), badge="BADGE-7")["result"]
    assert opened["session_status"] == "OPEN"
    ghost_open.refresh_from_db()
    assert ghost_open.status == CabinetSession.Status.ABANDONED
    closed = send(cabinet_device, "c1", "door_close", timezone.now(), epcs=[epc(n) for n in range(4)])["result"]
    assert (closed["session"], closed["session_status"]) == (opened["session"], "CLOSED")
    assert statuses(stocked_cabinet)[4] == UnitStatus.TAKEN


def test_a_stale_close_warns_the_device_and_raises_an_alert(cabinet, cabinet_device, stocked_cabinet):
    now = timezone.now()
    send(cabinet_device, "c2", "door_close", now - datetime.timedelta(minutes=1), epcs=[epc(n) for n in range(5)])
    late = send(cabinet_device, "c1", "door_close", now - datetime.timedelta(minutes=5), epcs=[epc(0)])

    assert late["status"] == "PROCESSED"
    result = late["result"]
    assert result["session_status"] == "STALE"
    assert [w["code"] for w in result["warnings"]] == ["STALE_CLOSE"]
    alert = open_alerts(Alert.Kind.CABINET_STALE_CLOSE).get()
    assert (alert.location, alert.device, alert.details["session"]) == (cabinet, cabinet_device, result["session"])
    assert statuses(stocked_cabinet) == [UnitStatus.IN_CABINET] * 5


# --- reader faults -----------------------------------------------------------------------------------


def test_a_close_that_misses_every_unit_is_held_as_suspect_not_taken(cabinet, cabinet_device, stocked_cabinet, nurse):
    now = timezone.now()
    send(cabinet_device, "o1", "door_open", now - datetime.timedelta(minutes=2), badge="BADGE-7")
    held = send(cabinet_device, "c1", "door_close", now - datetime.timedelta(minutes=1), epcs=["E280DEAD0001"])

    result = held["result"]
    assert (held["status"], result["session_status"], result["reread"]) == ("PROCESSED", "SUSPECT", True)
    assert [w["code"] for w in result["warnings"]] == ["READ_SUSPECT"]
    assert result["taken"] == []
    assert statuses(stocked_cabinet) == [UnitStatus.IN_CABINET] * 5
    assert not Movement.objects.filter(kind="CABINET_TAKE").exists()
    session = CabinetSession.objects.get(pk=result["session"])
    assert session.read_check["verdict"] == "SUSPECT"
    assert (session.read_check["expected"], session.read_check["missing"]) == (5, 5)
    assert session.suspect_reads[0]["epcs"] == ["E280DEAD0001"]  # the raw read, as sent
    alert = open_alerts(Alert.Kind.CABINET_READ_SUSPECT).get()
    assert (alert.location, alert.severity, alert.details["session"]) == (cabinet, "CRITICAL", session.pk)

    # The cabinet reads again: a believable read is applied to the held session, as its user's take.
    again = send(cabinet_device, "c1b", "door_close", now, epcs=[epc(n) for n in range(4)])["result"]
    assert (again["session"], again["session_status"], again["reread"]) == (session.pk, "CLOSED", False)
    assert statuses(stocked_cabinet) == [UnitStatus.IN_CABINET] * 4 + [UnitStatus.TAKEN]
    take = Movement.objects.get(kind="CABINET_TAKE")
    assert take.actor_user == nurse
    session.refresh_from_db()
    assert session.read_check["verdict"] == "OK"
    assert len(session.suspect_reads) == 1
    assert not open_alerts(Alert.Kind.CABINET_READ_SUSPECT).exists()


def test_a_suspect_session_is_resolved_by_the_next_inventory_read(cabinet_device, stocked_cabinet, nurse):
    now = timezone.now()
    send(cabinet_device, "o1", "door_open", now - datetime.timedelta(minutes=3), badge="BADGE-7")
    held = send(cabinet_device, "c1", "door_close", now - datetime.timedelta(minutes=2), epcs=[epc(0)])["result"]
    assert held["session_status"] == "SUSPECT"

    interim = send(cabinet_device, "i1", "inventory", now - datetime.timedelta(minutes=1),
                   epcs=[epc(n) for n in range(3)])["result"]
    assert interim["suspect_session"]["session"] == held["session"]
    assert interim["suspect_session"]["session_status"] == "CLOSED"
    assert statuses(stocked_cabinet) == [UnitStatus.IN_CABINET] * 3 + [UnitStatus.TAKEN] * 2
    assert {m.actor_user for m in Movement.objects.filter(kind="CABINET_TAKE")} == {nurse}


def test_a_re_read_that_confirms_the_suspect_read_tag_for_tag_is_believed(
    cabinet_device, stocked_cabinet, nurse
):
    now = timezone.now()
    send(cabinet_device, "o1", "door_open", now - datetime.timedelta(minutes=3), badge="BADGE-7")
    assert send(cabinet_device, "c1", "door_close", now - datetime.timedelta(minutes=2),
                epcs=[epc(0)])["result"]["session_status"] == "SUSPECT"
    confirmed = send(cabinet_device, "c1b", "door_close", now - datetime.timedelta(minutes=1), epcs=[epc(0)])["result"]
    assert confirmed["session_status"] == "CLOSED"
    session = CabinetSession.objects.get(pk=confirmed["session"])
    assert session.read_check["verdict"] == "CONFIRMED"
    assert statuses(stocked_cabinet) == [UnitStatus.IN_CABINET] + [UnitStatus.TAKEN] * 4


def test_an_empty_read_repeated_keeps_the_session_suspect(cabinet_device, stocked_cabinet, nurse):
    now = timezone.now()
    send(cabinet_device, "o1", "door_open", now - datetime.timedelta(minutes=3), badge="BADGE-7")
    for n, event_id in enumerate(("c1", "c1b", "c1c")):  # a dead reader reads nothing, again and again
        result = send(cabinet_device, event_id, "door_close", now - datetime.timedelta(minutes=2 - n), epcs=[])["result"]
        assert result["session_status"] == "SUSPECT"
    session = CabinetSession.objects.get()
    assert len(session.suspect_reads) == 3
    assert statuses(stocked_cabinet) == [UnitStatus.IN_CABINET] * 5
    assert open_alerts(Alert.Kind.CABINET_READ_SUSPECT).get().occurrences == 3


def test_thresholds_are_per_cabinet_with_a_default(cabinet_device, stocked_cabinet, nurse, settings):
    settings.SPD_CABINET_SUSPECT_SHARE = 0.5
    Device.objects.filter(pk=cabinet_device.pk).update(config={"suspect_missing_share": 0.9})
    now = timezone.now()
    send(cabinet_device, "o1", "door_open", now - datetime.timedelta(minutes=2), badge="BADGE-7")
    result = send(cabinet_device, "c1", "door_close", now, epcs=[epc(0)])["result"]  # 4 of 5 missing: 80 %
    assert result["session_status"] == "CLOSED"
    assert len(result["taken"]) == 4


def test_a_small_cabinet_emptied_is_not_suspect(cabinet, cabinet_device, stocked_cabinet, settings):
    settings.SPD_CABINET_SUSPECT_MIN_UNITS = 6
    session = close_session(device=cabinet_device, cabinet=cabinet, occurred_at=timezone.now(), epcs=[])
    assert session.status == CabinetSession.Status.CLOSED_WITHOUT_OPEN
    assert len(session.taken) == 5


def test_another_session_closing_supersedes_a_pending_suspect_one(cabinet_device, stocked_cabinet, nurse):
    now = timezone.now()
    send(cabinet_device, "o1", "door_open", now - datetime.timedelta(minutes=4), badge="BADGE-7")
    held = send(cabinet_device, "c1", "door_close", now - datetime.timedelta(minutes=3), epcs=[])["result"]
    send(cabinet_device, "o2", "door_open", now - datetime.timedelta(minutes=2), user="nurse1")
    closed = send(cabinet_device, "c2", "door_close", now - datetime.timedelta(minutes=1),
                  epcs=[epc(n) for n in range(4)])["result"]
    assert closed["session"] != held["session"] and closed["session_status"] == "CLOSED"
    superseded = CabinetSession.objects.get(pk=held["session"])
    assert superseded.status == CabinetSession.Status.ABANDONED
    assert superseded.read_check["superseded_by"] == closed["session"]
    assert not open_alerts(Alert.Kind.CABINET_READ_SUSPECT).exists()


def test_registry_validates_the_reader_thresholds(operator):
    from tests.conftest import api_client_for

    client = api_client_for(operator)
    for config in ({"suspect_missing_share": 1.5}, {"suspect_missing_share": "half"}, {"suspect_min_units": 0}):
        response = client.post("/api/v1/devices/", {"code": "CAB-X", "name": "x", "kind": "CABINET_HTTP",
                                                     "config": config}, format="json")
        assert response.status_code == 400, config


def test_a_person_may_accept_a_suspect_read_after_looking_into_the_cabinet(cabinet_device, stocked_cabinet, nurse,
                                                                           keeper):
    from tests.conftest import api_client_for

    now = timezone.now()
    send(cabinet_device, "o1", "door_open", now - datetime.timedelta(minutes=2), badge="BADGE-7")
    held = send(cabinet_device, "c1", "door_close", now - datetime.timedelta(minutes=1), epcs=[])["result"]
    url = f"/api/v1/cabinet-sessions/{held['session']}/accept-read/"

    assert api_client_for(nurse).post(url, {"note": "emptied"}, format="json").status_code == 403
    assert api_client_for(keeper).post(url, {"note": ""}, format="json").status_code == 400
    named = api_client_for(keeper).post(url, {"note": "emptied for 11010519491231002X"}, format="json")
    assert (named.status_code, named.data["code"]) == (400, "LOOKS_LIKE_PERSONAL_ID")
    accepted = api_client_for(keeper).post(url, {"note": "cabinet emptied for two PCIs"}, format="json")
    assert accepted.status_code == 200, accepted.data
    assert accepted.data["status"] == "CLOSED"
    assert accepted.data["read_check"]["verdict"] == "ACCEPTED"
    assert accepted.data["read_check"]["accepted_by"] == keeper.pk
    assert statuses(stocked_cabinet) == [UnitStatus.TAKEN] * 5
    assert {m.actor_user for m in Movement.objects.filter(kind="CABINET_TAKE")} == {nurse}
    assert not open_alerts(Alert.Kind.CABINET_READ_SUSPECT).exists()

    again = api_client_for(keeper).post(url, {"note": "again"}, format="json")
    assert (again.status_code, again.data["code"]) == (409, "SESSION_NOT_SUSPECT")
    listed = api_client_for(keeper).get("/api/v1/cabinet-sessions/").data["results"][0]
    assert listed["closed_at"] is not None and listed["suspect_reads"][0]["epcs"] == []


def test_the_new_alerts_are_worded_in_the_readers_language(cabinet_device, stocked_cabinet):
    from django.utils import translation

    from inventory.web.describe import describe_alert

    now = timezone.now()
    everything = [epc(n) for n in range(5)]
    send(cabinet_device, "c1", "door_close", now - datetime.timedelta(minutes=5), epcs=everything)
    send(cabinet_device, "c0", "door_close", now - datetime.timedelta(minutes=9), epcs=everything)  # stale
    send(cabinet_device, "c2", "door_close", now - datetime.timedelta(minutes=1), epcs=[])  # suspect
    send(cabinet_device, "c3", "door_close", now + 24 * HOUR, epcs=[])  # clock ahead
    with translation.override("zh-hans"):
        words = {alert.kind: describe_alert(alert) for alert in Alert.objects.all()}
    assert "疑似读写器故障" in words[Alert.Kind.CABINET_READ_SUSPECT]
    assert "未应用" in words[Alert.Kind.CABINET_STALE_CLOSE]
    assert "时钟比服务器快" in words[Alert.Kind.DEVICE_CLOCK_SKEW]
