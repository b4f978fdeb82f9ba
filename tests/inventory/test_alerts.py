"""Alerts: every scan raises, de-duplicates and resolves; people acknowledge and resolve; the API;
the expired-unit lock through every path (issue, take, cabinet close, use); the named jobs."""
import datetime
import importlib
import io
import json
import threading
from decimal import Decimal

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from devices.models import Device
from inventory.errors import Refused
from inventory.jobs import JOBS
from inventory.models import (
    Alert,
    Certificate,
    ChargeDelivery,
    LotBalance,
    Movement,
    ParLevel,
    ReconciliationRun,
    Unit,
    UnitStatus,
)
from inventory.services import alerts
from inventory.services.cabinets import close_session, put_back_by_scan, take_by_scan
from inventory.services.consumption import ClinicalContext, consume_unit
from inventory.services.labelling import bind_tag
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.stock import LotQuantity, return_to_supplier, scrap, transfer_stock
from inventory.tasks import run_named_job
from tests import factories
from tests.conftest import api_client_for, stock_units

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
NOW = timezone.now()
Kind, Severity, Status = Alert.Kind, Alert.Severity, Alert.Status


def days(n: int) -> datetime.timedelta:
    return datetime.timedelta(days=n)


def epc(n: int) -> str:
    return f"3034257BF400B7800000{n:04X}"


def expire(unit: Unit, in_days: int) -> Unit:
    """Give the unit an expiry date `in_days` from today (negative: already expired)."""
    Unit.objects.filter(pk=unit.pk).update(expiry=TODAY + days(in_days))
    unit.refresh_from_db()
    return unit


def open_alerts(kind: str | None = None):
    alerts_ = Alert.objects.exclude(status=Status.RESOLVED)
    return alerts_.filter(kind=kind) if kind else alerts_


def refusal_codes(call) -> list[str]:
    with pytest.raises(Refused) as caught:
        call()
    return [problem.code for problem in caught.value.problems]


def status_of(unit: Unit) -> str:
    return Unit.objects.get(pk=unit.pk).status


@pytest.fixture
def units(keeper_actor, supplier, warehouse, product):
    """Three stents IN_STOCK in the central warehouse."""
    return stock_units(keeper_actor, supplier, warehouse, product, ["S1", "S2", "S3"])


@pytest.fixture
def lot_balance(keeper_actor, supplier, warehouse, lot_product):
    """Ten infusion sets of lot L1 in the central warehouse."""
    line = LineInput(Decimal("3.50"), product=lot_product, lot="L1", expiry=TODAY + days(700), quantity=10)
    note = receive_delivery_note(
        actor=keeper_actor, hospital=warehouse.hospital, supplier=supplier, number="DN-LOT",
        receiving_location=warehouse, lines=[line], idempotency_key="rcv-lot",
    )
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-lot")
    return LotBalance.objects.get(product=lot_product, lot="L1", location=warehouse)


@pytest.fixture
def cabinet_device(hospital, cabinet):
    return Device.objects.create(
        hospital=hospital, code="CAB-1", name="柜1", kind=Device.Kind.CABINET_HTTP, location=cabinet, last_seen=NOW
    )


@pytest.fixture
def cabinet_units(keeper_actor, units, cabinet):
    """The three stents tagged and IN_CABINET."""
    for n, unit in enumerate(units):
        bind_tag(unit=unit, epc=epc(n), actor=keeper_actor)
    transfer_stock(actor=keeper_actor, hospital=cabinet.hospital, to_location=cabinet, units=units,
                   idempotency_key="to-cabinet")
    return [Unit.objects.get(pk=unit.pk) for unit in units]


# --- raising, de-duplication, workflow ------------------------------------------------------------


def test_raising_again_bumps_the_open_alert_and_never_lowers_its_severity(hospital):
    first = alerts.raise_alert(hospital=hospital, kind=Kind.DEVICE_OFFLINE, subject_key="device:1",
                               severity=Severity.CRITICAL, message="silent")
    again = alerts.raise_alert(hospital=hospital, kind=Kind.DEVICE_OFFLINE, subject_key="device:1",
                               severity=Severity.WARNING, message="still silent", details={"n": 2})

    assert again.pk == first.pk
    assert (again.occurrences, again.severity, again.message, again.details) == (
        2, Severity.CRITICAL, "still silent", {"n": 2}
    )
    assert Alert.objects.count() == 1


def test_acknowledge_and_resolve_record_who_when_and_why(hospital, other_hospital, keeper, operator):
    alert = alerts.raise_alert(hospital=hospital, kind=Kind.BELOW_PAR, subject_key="par:1:2",
                               severity=Severity.WARNING, message="below par")
    acknowledged = alerts.acknowledge(alert=alert, user=keeper, note="在处理", now=NOW)
    assert (acknowledged.status, acknowledged.acknowledged_by, acknowledged.acknowledged_at,
            acknowledged.acknowledge_note) == (Status.ACKNOWLEDGED, keeper, NOW, "在处理")
    again = alerts.acknowledge(alert=alert, user=operator, note="我也看到了")
    assert (again.acknowledged_by, again.acknowledge_note) == (keeper, "在处理")

    assert refusal_codes(lambda: alerts.resolve(alert=alert, user=operator, note="  ")) == ["NOTE_REQUIRED"]
    stranger = factories.UserFactory(hospital=other_hospital)
    assert refusal_codes(lambda: alerts.resolve(alert=alert, user=stranger, note="x")) == ["NOT_FOUND"]

    later = NOW + datetime.timedelta(hours=1)
    resolved = alerts.resolve(alert=alert, user=operator, note="已补货", now=later)
    assert (resolved.status, resolved.resolved_by, resolved.resolved_at, resolved.resolve_note) == (
        Status.RESOLVED, operator, later, "已补货"
    )
    assert refusal_codes(lambda: alerts.acknowledge(alert=alert, user=keeper)) == ["ALERT_ALREADY_RESOLVED"]

    # Its condition still holds: raised again, it is a new alert.
    reraised = alerts.raise_alert(hospital=hospital, kind=Kind.BELOW_PAR, subject_key="par:1:2",
                                  severity=Severity.WARNING, message="below par")
    assert reraised.pk != alert.pk and reraised.occurrences == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_scans_raising_one_alert_at_once_leave_one_row_seen_twice(hospital, monkeypatch):
    """Both read "no open alert", both insert: the unique constraint stops one, which re-reads and bumps."""
    barrier = threading.Barrier(2, timeout=10)
    original = Alert.objects.bulk_create
    local = threading.local()

    def racing_bulk_create(objs, *args, **kwargs):
        if not getattr(local, "waited", False):
            local.waited = True
            barrier.wait()
        return original(objs, *args, **kwargs)

    monkeypatch.setattr(Alert.objects, "bulk_create", racing_bulk_create)
    attempts = []
    sync_once = alerts._sync_once
    monkeypatch.setattr(alerts, "_sync_once", lambda *args: attempts.append(1) or sync_once(*args))
    errors = []

    def scan() -> None:
        try:
            alerts.raise_alert(hospital=hospital, kind=Kind.DEVICE_OFFLINE, subject_key="device:9",
                               severity=Severity.WARNING, message="silent")
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert errors == []
    assert len(attempts) == 3  # the loser's insert failed on the constraint and was retried as a bump
    assert list(Alert.objects.values_list("subject_key", "occurrences")) == [("device:9", 2)]


# --- expiry ---------------------------------------------------------------------------------------


def test_near_expiry_is_one_alert_per_unit_escalating_through_the_tiers(hospital, units, warehouse, keeper):
    expire(units[0], 80)
    expire(units[1], 200)

    assert alerts.scan_expiry(hospital=hospital, today=TODAY).as_dict() == {"raised": 1, "updated": 0, "resolved": 0}
    alert = Alert.objects.get(kind=Kind.NEAR_EXPIRY)
    assert (alert.subject_key, alert.severity, alert.details["tier"], alert.unit, alert.location) == (
        f"unit:{units[0].pk}", Severity.INFO, 90, units[0], warehouse
    )
    assert alerts.scan_expiry(hospital=hospital, today=TODAY).as_dict() == {"raised": 0, "updated": 1, "resolved": 0}
    alert.refresh_from_db()
    assert alert.occurrences == 2

    alerts.acknowledge(alert=alert, user=keeper, note="优先使用")
    for day, severity, tier in ((TODAY + days(25), Severity.WARNING, 60), (TODAY + days(55), Severity.CRITICAL, 30)):
        alerts.scan_expiry(hospital=hospital, today=day)
        alert.refresh_from_db()
        # A higher tier re-opens what was acknowledged at a lower one.
        assert (alert.severity, alert.details["tier"], alert.status) == (severity, tier, Status.OPEN)
    assert Alert.objects.filter(kind=Kind.NEAR_EXPIRY).count() == 1


def test_near_expiry_is_resolved_automatically_when_the_unit_leaves(hospital, units, keeper_actor):
    expire(units[0], 20)
    alerts.scan_expiry(hospital=hospital, today=TODAY)
    scrap(actor=keeper_actor, hospital=hospital, reason_code="DAMAGED", units=[units[0]], idempotency_key="s")

    assert alerts.scan_expiry(hospital=hospital, today=TODAY).resolved == 1
    alert = Alert.objects.get()
    assert (alert.status, alert.resolved_by, alert.resolve_note) == (Status.RESOLVED, None, "condition cleared")


def test_expiry_tiers_come_from_the_settings(hospital, units, settings):
    settings.SPD_EXPIRY_TIERS = "120,14"
    expire(units[0], 100)
    expire(units[1], 10)
    alerts.scan_expiry(hospital=hospital, today=TODAY)

    assert sorted(open_alerts(Kind.NEAR_EXPIRY).values_list("details__tier", "severity")) == [
        (14, Severity.CRITICAL), (120, Severity.WARNING)
    ]


def test_a_lot_balance_on_hand_has_its_own_near_expiry_alert(hospital, lot_balance):
    LotBalance.objects.filter(pk=lot_balance.pk).update(expiry=TODAY + days(10))
    alerts.scan_expiry(hospital=hospital, today=TODAY)
    alert = open_alerts(Kind.NEAR_EXPIRY).get()
    assert (alert.subject_key, alert.severity, alert.details["quantity"], alert.product_id, alert.location_id) == (
        f"lot:{lot_balance.pk}", Severity.CRITICAL, 10, lot_balance.product_id, lot_balance.location_id
    )

    LotBalance.objects.filter(pk=lot_balance.pk).update(quantity=0)
    assert alerts.scan_expiry(hospital=hospital, today=TODAY).resolved == 1


def test_expired_units_are_locked_by_the_system_user_and_alerted_once(hospital, units, keeper_actor, warehouse):
    take_by_scan(actor=keeper_actor, hospital=hospital, units=[units[2]], idempotency_key="take")
    expire(units[0], -1)
    expire(units[2], -1)

    result = alerts.lock_expired_units(hospital=hospital, today=TODAY)
    assert result.as_dict() == {"locked": 2, "raised": 2, "updated": 0, "resolved": 0}
    locked = Unit.objects.get(pk=units[0].pk)
    assert (locked.status, locked.location) == (UnitStatus.EXPIRED, warehouse)
    alert = open_alerts(Kind.EXPIRED).get(unit=units[0])
    movement = Movement.objects.get(kind=Movement.Kind.EXPIRE, unit=units[0])
    assert (movement.unit_id, movement.from_status, movement.to_status, movement.document_type,
            movement.document_id) == (units[0].pk, "IN_STOCK", "EXPIRED", alerts.EXPIRY_LOCK_DOCUMENT, alert.pk)
    assert (movement.actor_user.username, movement.actor_user.is_active, movement.actor_user.hospital) == (
        "system", False, None
    )
    assert alert.severity == Severity.CRITICAL
    # A unit someone has taken is locked too: it can no longer be used, only returned or scrapped.
    assert status_of(units[2]) == UnitStatus.EXPIRED
    assert open_alerts(Kind.EXPIRED).filter(unit=units[2], severity=Severity.CRITICAL).exists()

    again = alerts.lock_expired_units(hospital=hospital, today=TODAY)
    assert again.as_dict() == {"locked": 0, "raised": 0, "updated": 2, "resolved": 0}
    assert Movement.objects.filter(kind=Movement.Kind.EXPIRE).count() == 2


def test_the_system_user_name_cannot_be_a_persons(hospital):
    factories.UserFactory(username="system", hospital=hospital)
    with pytest.raises(Exception, match="reserved"):
        alerts.system_actor()


# --- the expired-unit lock through every path -----------------------------------------------------


@pytest.mark.parametrize("locked_by", ["date", "status"])
def test_an_expired_unit_cannot_be_issued(hospital, units, keeper_actor, cath_lab_store, locked_by):
    expire(units[0], -3)
    if locked_by == "status":
        alerts.lock_expired_units(hospital=hospital, today=TODAY)
    movements = Movement.objects.count()

    codes = refusal_codes(lambda: transfer_stock(
        actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=[units[0], units[1]],
        idempotency_key="issue",
    ))
    assert codes == ["UNIT_EXPIRED_LOCKED"]
    assert Movement.objects.count() == movements
    assert status_of(units[1]) == UnitStatus.IN_STOCK


def test_an_expired_lot_cannot_be_issued_but_can_be_scrapped(hospital, lot_balance, keeper_actor, cath_lab_store):
    LotBalance.objects.filter(pk=lot_balance.pk).update(expiry=TODAY - days(2))
    lot = LotQuantity(lot_balance.product, "L1", 2, lot_balance.location)
    assert refusal_codes(lambda: transfer_stock(
        actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, lots=[lot], idempotency_key="issue-lot",
    )) == ["LOT_EXPIRED_LOCKED"]
    alerts.lock_expired_units(hospital=hospital, today=TODAY)
    assert open_alerts(Kind.EXPIRED).get().subject_key == f"lot:{lot_balance.pk}"

    everything = LotQuantity(lot_balance.product, "L1", 10, lot_balance.location)
    scrap(actor=keeper_actor, hospital=hospital, reason_code="EXPIRED", lots=[everything], idempotency_key="scrap-lot")
    assert LotBalance.objects.get(pk=lot_balance.pk).quantity == 0
    assert alerts.lock_expired_units(hospital=hospital, today=TODAY).alerts.resolved == 1


def test_an_expired_unit_cannot_be_taken_by_scan_but_a_taken_one_can_be_put_back(hospital, units, keeper_actor):
    take_by_scan(actor=keeper_actor, hospital=hospital, units=[units[1]], idempotency_key="take-1")
    expire(units[0], -3)
    expire(units[1], -3)

    assert refusal_codes(lambda: take_by_scan(
        actor=keeper_actor, hospital=hospital, units=[units[0]], idempotency_key="take-0"
    )) == ["UNIT_EXPIRED_LOCKED"]
    assert status_of(units[0]) == UnitStatus.IN_STOCK
    put_back_by_scan(actor=keeper_actor, hospital=hospital, units=[units[1]], idempotency_key="back-1")
    assert status_of(units[1]) == UnitStatus.IN_STOCK


def test_take_by_scan_api_refuses_an_expired_unit_with_409(api, units):
    expire(units[0], -3)
    response = api.post("/api/v1/takes/", {"units": [units[0].pk], "idempotency_key": "t"}, format="json")
    assert (response.status_code, response.data["code"]) == (409, "UNIT_EXPIRED_LOCKED")


def test_a_cabinet_close_never_takes_an_expired_unit(hospital, cabinet, cabinet_device, cabinet_units):
    fresh, by_date, locked = cabinet_units
    expire(locked, -2)
    alerts.lock_expired_units(hospital=hospital, today=TODAY)
    expire(by_date, -2)  # past its date, not locked yet

    # Only the locked unit is still seen: the other two are gone.
    session = close_session(device=cabinet_device, cabinet=cabinet, occurred_at=NOW, epcs=[epc(2)])

    assert [status_of(unit) for unit in cabinet_units] == [UnitStatus.TAKEN, UnitStatus.EXPIRED, UnitStatus.EXPIRED]
    assert [item["unit"] for item in session.taken] == [fresh.pk]
    assert session.misplaced == []  # a locked unit seen in its own cabinet is not misplaced
    lock = Movement.objects.get(kind=Movement.Kind.EXPIRE, unit=by_date)
    assert (lock.actor_device, lock.document_type, lock.document_id) == (
        cabinet_device, Movement.DocumentType.CABINET_SESSION, session.pk
    )
    assert not Movement.objects.filter(kind=Movement.Kind.CABINET_TAKE, unit__in=[by_date, locked]).exists()


def test_an_expired_unit_cannot_be_used_on_a_patient(hospital, units, keeper_actor, cath_lab_store):
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=[units[0]],
                   idempotency_key="to-store")
    expire(units[0], -1)
    alerts.lock_expired_units(hospital=hospital, today=TODAY)
    context = ClinicalContext(encounter="ZY20261123001", department=cath_lab_store.department)

    assert refusal_codes(lambda: consume_unit(
        actor=keeper_actor, hospital=hospital, unit=units[0], context=context, idempotency_key="use"
    )) == ["UNIT_EXPIRED_LOCKED"]
    assert status_of(units[0]) == UnitStatus.EXPIRED


def test_expired_units_can_still_be_scrapped_or_returned_and_their_alerts_resolve(
    hospital, units, keeper_actor, supplier
):
    expire(units[0], -1)
    expire(units[1], -1)
    alerts.lock_expired_units(hospital=hospital, today=TODAY)

    scrap(actor=keeper_actor, hospital=hospital, reason_code="EXPIRED", units=[units[0]], idempotency_key="scrap")
    return_to_supplier(actor=keeper_actor, hospital=hospital, supplier=supplier, reason_code="EXPIRED",
                       units=[units[1]], idempotency_key="return")

    assert [status_of(units[0]), status_of(units[1])] == [UnitStatus.SCRAPPED, UnitStatus.RETURNED_TO_SUPPLIER]
    assert alerts.lock_expired_units(hospital=hospital, today=TODAY).alerts.resolved == 2


# --- certificates ---------------------------------------------------------------------------------


def test_a_supplier_licence_alerts_every_hospital_buying_from_it_until_renewed(
    hospital, other_hospital, supplier, agreement
):
    factories.SupplyAgreementFactory(product__hospital=other_hospital, supplier=supplier)
    factories.HospitalFactory(code="H003")  # buys nothing from this supplier
    licence = supplier.certificates.get(kind=Certificate.Kind.DISTRIBUTION_LICENCE)
    Certificate.objects.filter(pk=licence.pk).update(valid_to=TODAY + days(20))

    assert alerts.scan_certificates(today=TODAY).raised == 2
    expiring = open_alerts(Kind.CERTIFICATE_EXPIRING)
    assert sorted(expiring.values_list("hospital__code", flat=True)) == ["H001", "H002"]
    alert = expiring.get(hospital=hospital)
    assert (alert.certificate, alert.severity, alert.details["days_left"]) == (licence, Severity.WARNING, 20)
    assert alerts.scan_certificates(today=TODAY).as_dict() == {"raised": 0, "updated": 2, "resolved": 0}

    lapsed = alerts.scan_certificates(today=TODAY + days(21))
    assert (lapsed.raised, lapsed.resolved) == (2, 2)
    assert set(open_alerts().values_list("kind", "severity")) == {(Kind.CERTIFICATE_EXPIRED, Severity.CRITICAL)}

    factories.CertificateFactory(supplier=supplier, kind=Certificate.Kind.DISTRIBUTION_LICENCE,
                                 valid_from=TODAY + days(15), valid_to=TODAY + days(3 * 365))
    assert alerts.scan_certificates(today=TODAY + days(21)).resolved == 2
    assert not open_alerts().exists()


def test_an_expired_registration_certificate_alerts_the_hospitals_of_its_products(hospital, product):
    Certificate.objects.filter(pk=product.registration_certificate_id).update(
        valid_from=TODAY - days(400), valid_to=TODAY - days(1)
    )
    alerts.scan_certificates(today=TODAY, warn_days=30)

    alert = open_alerts(Kind.CERTIFICATE_EXPIRED).get()
    assert (alert.hospital, alert.product, alert.certificate_id, alert.severity, alert.details["products"]) == (
        hospital, product, product.registration_certificate_id, Severity.CRITICAL, [product.pk]
    )


# --- cabinets, devices ----------------------------------------------------------------------------


def test_a_unit_taken_and_not_returned_in_time_is_overdue_until_put_back(hospital, units, keeper_actor):
    take_by_scan(actor=keeper_actor, hospital=hospital, units=[units[0]], idempotency_key="take")
    Unit.objects.filter(pk=units[0].pk).update(status_since=NOW - datetime.timedelta(hours=30))

    assert alerts.scan_overdue_takes(hospital=hospital, now=NOW).raised == 1
    alert = open_alerts(Kind.RETURN_OVERDUE).get()
    assert (alert.subject_key, alert.severity, alert.details["taken_by"], alert.details["deadline_hours"]) == (
        f"unit:{units[0].pk}", Severity.WARNING, "keeper", 24
    )
    assert alerts.scan_overdue_takes(hospital=hospital, now=NOW).updated == 1

    Unit.objects.filter(pk=units[0].pk).update(status_since=NOW - datetime.timedelta(hours=50))
    alerts.scan_overdue_takes(hospital=hospital, now=NOW)
    alert.refresh_from_db()
    assert (alert.severity, alert.occurrences) == (Severity.CRITICAL, 3)

    put_back_by_scan(actor=keeper_actor, hospital=hospital, units=[units[0]], idempotency_key="back")
    assert alerts.scan_overdue_takes(hospital=hospital, now=NOW).resolved == 1


def test_a_silent_device_is_offline_until_heard_from_again(hospital):
    def device(code: str, **fields) -> Device:
        return Device.objects.create(hospital=hospital, code=code, name=code, kind=Device.Kind.SERIAL_SCANNER, **fields)

    quiet = device("SC-1", last_seen=NOW - datetime.timedelta(minutes=10), offline_after_seconds=300)
    never = device("SC-2")
    device("SC-3", last_seen=NOW - days(1), is_active=False)
    device("SC-4", last_seen=NOW - datetime.timedelta(seconds=60))

    assert alerts.scan_devices(hospital=hospital, now=NOW).raised == 2
    assert set(open_alerts(Kind.DEVICE_OFFLINE).values_list("device", flat=True)) == {quiet.pk, never.pk}
    assert alerts.scan_devices(hospital=hospital, now=NOW).updated == 2

    Device.objects.filter(pk=quiet.pk).update(last_seen=NOW)
    assert alerts.scan_devices(hospital=hospital, now=NOW).as_dict() == {"raised": 0, "updated": 1, "resolved": 1}


def test_unknown_and_misplaced_tags_alert_until_the_cabinet_no_longer_sees_them(
    hospital, cabinet, cabinet_device, cabinet_units, keeper_actor, supplier, warehouse, product
):
    stranger = stock_units(keeper_actor, supplier, warehouse, product, ["W1"])[0]
    bind_tag(unit=stranger, epc=epc(99), actor=keeper_actor)
    in_cabinet = [epc(n) for n in range(3)]
    close_session(device=cabinet_device, cabinet=cabinet, occurred_at=NOW - datetime.timedelta(minutes=5),
                  epcs=[*in_cabinet, epc(99), "E280DEADBEEF0001"])

    assert alerts.scan_cabinet_tags(hospital=hospital, now=NOW).raised == 2
    unknown = open_alerts(Kind.UNKNOWN_TAG).get()
    misplaced = open_alerts(Kind.MISPLACED_TAG).get()
    assert (unknown.subject_key, unknown.location) == ("tag:E280DEADBEEF0001", cabinet)
    assert (misplaced.subject_key, misplaced.unit, misplaced.location) == (f"tag:{epc(99)}", stranger, cabinet)
    assert alerts.scan_cabinet_tags(hospital=hospital, now=NOW).updated == 2

    close_session(device=cabinet_device, cabinet=cabinet, occurred_at=NOW - datetime.timedelta(minutes=1),
                  epcs=in_cabinet)
    assert alerts.scan_cabinet_tags(hospital=hospital, now=NOW).resolved == 2


def test_a_tag_moving_to_another_cabinet_keeps_its_one_alert(hospital, cabinet, cabinet_device, cath_lab_store):
    other = factories.LocationFactory(hospital=hospital, department=cath_lab_store.department, code="CATH-CAB2",
                                      kind="SMART_CABINET")
    other_device = Device.objects.create(hospital=hospital, code="CAB-2", name="柜2", kind=Device.Kind.CABINET_HTTP,
                                         location=other)
    close_session(device=cabinet_device, cabinet=cabinet, occurred_at=NOW - days(1), epcs=["E280DEADBEEF0001"])
    alerts.scan_cabinet_tags(hospital=hospital, now=NOW - days(1))
    close_session(device=other_device, cabinet=other, occurred_at=NOW, epcs=["E280DEADBEEF0001"])

    # Only the second cabinet has closed since: its report moves the open alert there.
    result = alerts.scan_cabinet_tags(hospital=hospital, since=NOW - datetime.timedelta(hours=1), now=NOW)
    assert result.as_dict() == {"raised": 0, "updated": 1, "resolved": 0}
    assert list(open_alerts(Kind.UNKNOWN_TAG).values_list("location", "occurrences")) == [(other.pk, 2)]


def test_an_alert_is_resolved_automatically_by_subject(hospital):
    alerts.raise_alert(hospital=hospital, kind=Kind.DEVICE_OFFLINE, subject_key="device:3",
                       severity=Severity.WARNING, message="silent")
    assert alerts.auto_resolve(hospital=hospital, kind=Kind.DEVICE_OFFLINE, subject_keys=["device:3", "device:4"]) == 1
    assert not open_alerts().exists()


# --- stock levels, the HIS ------------------------------------------------------------------------


def test_stock_below_par_is_alerted_in_one_aggregate_query(
    hospital, units, warehouse, cath_lab_store, product, lot_balance, keeper_actor, django_assert_max_num_queries
):
    ParLevel.objects.create(location=warehouse, product=product, minimum=4, target=6)
    ParLevel.objects.create(location=warehouse, product=lot_balance.product, minimum=5)  # 10 on hand
    ParLevel.objects.create(location=cath_lab_store, product=product, minimum=1)  # nothing there
    expire(units[2], -1)  # expired stock does not count

    with django_assert_max_num_queries(7):  # 6, and the notification rules of the new alerts
        assert alerts.scan_par_levels(hospital=hospital, today=TODAY).raised == 2
    found = {a.subject_key: (a.severity, a.details["on_hand"], a.details["replenish"]) for a in open_alerts()}
    assert found == {
        f"par:{warehouse.pk}:{product.pk}": (Severity.WARNING, 2, 4),
        f"par:{cath_lab_store.pk}:{product.pk}": (Severity.CRITICAL, 0, 1),
    }

    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=[units[0]],
                   idempotency_key="replenish")
    assert alerts.scan_par_levels(hospital=hospital, today=TODAY).as_dict() == {
        "raised": 0, "updated": 1, "resolved": 1
    }


def test_charges_failing_to_reach_the_his_too_long_raise_one_alert(hospital, units, keeper_actor, cath_lab_store):
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=units[:2],
                   idempotency_key="to-store")
    context = ClinicalContext(encounter="ZY20261123001", department=cath_lab_store.department)
    for unit in units[:2]:
        consume_unit(actor=keeper_actor, hospital=hospital, unit=unit, context=context, idempotency_key=f"u{unit.pk}")
    ChargeDelivery.objects.update(status=ChargeDelivery.Status.FAILED, first_failed_at=NOW - datetime.timedelta(minutes=45),
                                  last_error="HTTP 503")

    assert alerts.scan_his_deliveries(hospital=hospital, now=NOW).raised == 1  # failing 45 min > 30 min
    alert = open_alerts(Kind.HIS_DELIVERY_FAILING).get()
    assert (alert.subject_key, alert.severity, alert.details["count"], alert.details["last_error"]) == (
        "his-outbox", Severity.WARNING, 2, "HTTP 503"
    )
    assert alerts.scan_his_deliveries(hospital=hospital, now=NOW, threshold_minutes=60).resolved == 1

    ChargeDelivery.objects.filter(pk=ChargeDelivery.objects.first().pk).update(status=ChargeDelivery.Status.GAVE_UP)
    alerts.scan_his_deliveries(hospital=hospital, now=NOW)
    assert open_alerts(Kind.HIS_DELIVERY_FAILING).get().severity == Severity.CRITICAL

    ChargeDelivery.objects.update(status=ChargeDelivery.Status.DELIVERED)
    assert alerts.scan_his_deliveries(hospital=hospital, now=NOW).resolved == 1


# --- API ------------------------------------------------------------------------------------------


@pytest.fixture
def some_alerts(hospital, other_hospital, units, warehouse, product):
    """Two near-expiry alerts (90 and 30 days) and a device alert here, one device alert elsewhere."""
    device = Device.objects.create(hospital=hospital, code="SC-1", name="扫码枪", kind=Device.Kind.SERIAL_SCANNER)
    old = alerts.raise_alert(
        hospital=hospital, kind=Kind.NEAR_EXPIRY, subject_key=f"unit:{units[0].pk}", severity=Severity.INFO,
        message="90", details={"tier": 90}, unit=units[0], product=product, location=warehouse,
        now=NOW - datetime.timedelta(hours=2),
    )
    soon = alerts.raise_alert(
        hospital=hospital, kind=Kind.NEAR_EXPIRY, subject_key=f"unit:{units[1].pk}", severity=Severity.CRITICAL,
        message="30", details={"tier": 30}, unit=units[1], product=product, location=warehouse,
        now=NOW - datetime.timedelta(hours=1),
    )
    offline = alerts.raise_alert(hospital=hospital, kind=Kind.DEVICE_OFFLINE, subject_key=f"device:{device.pk}",
                                 severity=Severity.WARNING, message="offline", device=device, now=NOW)
    theirs = alerts.raise_alert(hospital=other_hospital, kind=Kind.DEVICE_OFFLINE, subject_key="device:999",
                                severity=Severity.WARNING, message="elsewhere")
    return old, soon, offline, theirs


def ids(response) -> list[int]:
    assert response.status_code == 200, response.data
    return [row["id"] for row in response.data["results"]]


def test_alert_list_is_newest_first_with_filters(api, some_alerts, keeper, warehouse, units, product):
    old, soon, offline, _theirs = some_alerts
    assert ids(api.get("/api/v1/alerts/")) == [offline.pk, soon.pk, old.pk]
    assert ids(api.get("/api/v1/alerts/", {"kind": "NEAR_EXPIRY"})) == [soon.pk, old.pk]
    assert ids(api.get("/api/v1/alerts/?severity=CRITICAL&severity=INFO")) == [soon.pk, old.pk]
    assert ids(api.get("/api/v1/alerts/", {"unit": units[0].pk})) == [old.pk]
    assert ids(api.get("/api/v1/alerts/", {"device": offline.device_id})) == [offline.pk]
    assert ids(api.get("/api/v1/alerts/", {"location": warehouse.pk, "product": product.pk})) == [soon.pk, old.pk]
    assert ids(api.get("/api/v1/alerts/", {"ordering": "first_raised_at"})) == [old.pk, soon.pk, offline.pk]

    alerts.acknowledge(alert=old, user=keeper)
    alerts.resolve(alert=soon, user=keeper, note="已使用")
    assert ids(api.get("/api/v1/alerts/", {"status": "ACKNOWLEDGED"})) == [old.pk]
    assert ids(api.get("/api/v1/alerts/", {"unresolved": "true"})) == [offline.pk, old.pk]

    detail = api.get(f"/api/v1/alerts/{old.pk}/")
    assert (detail.data["kind"], detail.data["status"], detail.data["acknowledged_by_username"]) == (
        "NEAR_EXPIRY", "ACKNOWLEDGED", "keeper"
    )


@pytest.mark.parametrize(
    ("role", "status"),
    [("nurse", 404), ("warehouse", 200), ("spd_operator", 200), ("admin", 200), ("auditor", 403)],
)
def test_every_hospital_user_reads_alerts_and_all_but_auditors_act_on_them(hospital, some_alerts, role, status):
    """A nurse reads and acts on her departments' alerts only: these are the central warehouse's."""
    client = api_client_for(factories.UserFactory(hospital=hospital, roles=[role]))
    old = some_alerts[0]
    assert len(ids(client.get("/api/v1/alerts/"))) == (0 if role == "nurse" else 3)
    response = client.post(f"/api/v1/alerts/{old.pk}/acknowledge/", {"note": "收到"}, format="json")
    assert response.status_code == status, response.data
    if status == 200:
        assert (response.data["status"], response.data["acknowledge_note"]) == ("ACKNOWLEDGED", "收到")


def test_resolving_over_the_api_needs_a_note(api, some_alerts):
    old = some_alerts[0]
    missing = api.post(f"/api/v1/alerts/{old.pk}/resolve/", {}, format="json")
    assert (missing.status_code, missing.data["code"]) == (400, "INVALID_REQUEST")

    done = api.post(f"/api/v1/alerts/{old.pk}/resolve/", {"note": "已退货"}, format="json")
    assert done.status_code == 200, done.data
    assert (done.data["status"], done.data["resolved_by_username"], done.data["resolve_note"]) == (
        "RESOLVED", "keeper", "已退货"
    )
    again = api.post(f"/api/v1/alerts/{old.pk}/resolve/", {"note": "again"}, format="json")
    assert (again.status_code, again.data["code"]) == (409, "ALERT_ALREADY_RESOLVED")


def test_another_hospitals_alert_does_not_exist_for_the_caller(api, some_alerts):
    theirs = some_alerts[3]
    assert theirs.pk not in ids(api.get("/api/v1/alerts/"))
    assert api.get(f"/api/v1/alerts/{theirs.pk}/").status_code == 404
    assert api.post(f"/api/v1/alerts/{theirs.pk}/acknowledge/", {}, format="json").status_code == 404


def test_summary_counts_the_open_alerts_for_the_dashboard(api, some_alerts, keeper):
    alerts.acknowledge(alert=some_alerts[2], user=keeper)
    data = api.get("/api/v1/alerts/summary/").data

    assert (data["open"], data["by_status"]) == (3, {"OPEN": 2, "ACKNOWLEDGED": 1})
    assert (data["by_kind"]["NEAR_EXPIRY"], data["by_kind"]["DEVICE_OFFLINE"], data["by_kind"]["BELOW_PAR"]) == (2, 1, 0)
    assert data["by_severity"] == {"INFO": 1, "WARNING": 1, "CRITICAL": 1}
    assert data["near_expiry_by_tier"] == [{"days": 90, "count": 1}, {"days": 60, "count": 0}, {"days": 30, "count": 1}]
    assert {"kind": "DEVICE_OFFLINE", "severity": "WARNING", "count": 1} in data["by_kind_and_severity"]


# --- jobs, tasks, schedule ------------------------------------------------------------------------


def run_job(*args: str) -> str:
    out = io.StringIO()
    call_command("run_job", *args, stdout=out)
    return out.getvalue()


def test_run_job_runs_a_named_job_and_prints_what_it_did(hospital, units):
    expire(units[0], -1)
    expire(units[1], 20)
    result = json.loads(run_job("expiry_scan"))

    assert (result["locked"], result["expired"]["raised"], result["near_expiry"]["raised"]) == (1, 1, 1)
    assert status_of(units[0]) == UnitStatus.EXPIRED
    assert json.loads(run_job("expiry_scan"))["expired"] == {"raised": 0, "updated": 1, "resolved": 0}


def test_run_job_lists_the_jobs_and_refuses_an_unknown_name():
    listing = run_job("--list")
    assert all(name in listing for name in JOBS)
    with pytest.raises(CommandError, match="valid jobs: expiry_scan, certificate_scan"):
        run_job("expiry-scan")


@pytest.mark.django_db(transaction=True)
def test_the_nightly_reconciliation_job_runs_once_per_hospital(hospital, other_hospital, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    queued = json.loads(run_job("nightly_reconciliation"))
    json.loads(run_job("nightly_reconciliation"))

    assert queued["hospitals"] == [hospital.pk, other_hospital.pk]
    runs = ReconciliationRun.objects.filter(is_current=True, status=ReconciliationRun.Status.DONE)
    assert sorted(runs.values_list("hospital_id", flat=True)) == [hospital.pk, other_hospital.pk]
    assert ReconciliationRun.objects.count() == 2


def test_every_job_runs_through_one_idempotent_task(hospital):
    assert (run_named_job.acks_late, run_named_job.reject_on_worker_lost) == (True, True)
    for name in ("certificate_scan", "return_overdue_scan", "device_offline_scan", "cabinet_tag_scan",
                 "par_level_scan", "his_failing_scan", "his_relay", "mqtt_bridge_scan", "device_event_retention",
                 "notification_relay", "alert_digest", "set_partner_scan"):
        assert isinstance(run_named_job.apply(args=[name]).get(), dict)


def test_the_default_schedule_runs_every_job_and_can_be_applied_twice():
    migration = importlib.import_module("inventory.migrations.0006_default_schedule")
    later = importlib.import_module("inventory.migrations.0008_mqtt_bridge_alert_and_jobs")
    notify = importlib.import_module("inventory.migrations.0016_alert_notifications")
    replenish = importlib.import_module("inventory.migrations.0020_requisitions_and_replenishment")
    processing = importlib.import_module("inventory.migrations.0023_processing")
    stocktakes = importlib.import_module("inventory.migrations.0024_stocktakes")
    review = importlib.import_module("inventory.migrations.0028_review")
    vbp = importlib.import_module("inventory.migrations.0030_complaints_suspensions_and_vbp_scan")
    PeriodicTask.objects.all().delete()
    for _ in range(2):
        migration.create_schedule(apps, None)
        later.create_schedule(apps, None)
        notify.create_schedule(apps, None)
        replenish.create_schedule(apps, None)
        processing.create_schedule(apps, None)
        stocktakes.create_schedule(apps, None)
        review.create_schedule(apps, None)
        vbp.create_schedule(apps, None)

    tasks = {json.loads(task.args)[0]: task for task in PeriodicTask.objects.filter(task=migration.TASK)}
    assert set(tasks) == set(JOBS) and len(tasks) == PeriodicTask.objects.count()
    daily = {name: (tasks[name].crontab.hour, tasks[name].crontab.minute, str(tasks[name].crontab.timezone))
             for name in ("expiry_scan", "certificate_scan", "nightly_reconciliation")}
    zone = settings.TIME_ZONE
    assert daily == {"expiry_scan": ("1", "0", zone), "certificate_scan": ("1", "10", zone),
                     "nightly_reconciliation": ("2", "0", zone)}
    every = {name: (task.interval.every, task.interval.period, task.expire_seconds)
             for name, task in tasks.items() if task.interval}
    assert every["his_relay"] == (30, "seconds", 30)
    assert every["device_offline_scan"] == (2, "minutes", 120)
    assert every["return_overdue_scan"] == (5, "minutes", 300)
    assert every["mqtt_bridge_scan"] == (1, "minutes", 60)
    assert tasks["device_event_retention"].crontab.hour == "3"
    assert every["notification_relay"] == (1, "minutes", 60)
    assert (tasks["alert_digest"].crontab.hour, tasks["alert_digest"].crontab.minute) == ("8", "0")
    assert (tasks["replenishment_suggestions"].crontab.hour, tasks["replenishment_suggestions"].crontab.minute) == (
        "5", "30")
    assert (tasks["review_scan"].crontab.hour, tasks["review_scan"].crontab.minute) == ("6", "30")

    migration.delete_schedule(apps, None)
    later.delete_schedule(apps, None)
    notify.delete_schedule(apps, None)
    replenish.delete_schedule(apps, None)
    assert (tasks["vbp_scan"].crontab.hour, tasks["vbp_scan"].crontab.minute) == ("6", "15")
    processing.delete_schedule(apps, None)
    stocktakes.delete_schedule(apps, None)
    review.delete_schedule(apps, None)
    vbp.delete_schedule(apps, None)
    assert not PeriodicTask.objects.exists()
