"""The HIS outbox relay against a real HTTP server (inventory.simulation.fake_his) on a free port.

Time is advanced by passing `now` to the relay instead of sleeping. The tests with threads, the
Celery worker and Redis run on the real PostgreSQL and Redis.
"""
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from inventory.models import Charge, ChargeDelivery, Consumption, Department, Location
from inventory.services.his import backoff_seconds, charge_message, deliver_due_charges, failing_deliveries
from inventory.simulation.fake_his import FakeHis
from inventory.tasks import deliver_his_charges
from spd.celery import app as celery_app
from tests import factories
from tests.concurrency import run_together
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

Status = ChargeDelivery.Status
HOURS = datetime.timedelta(hours=2)  # more than the longest back-off (1 h): every failed delivery is due again


@pytest.fixture
def fake_his():
    with FakeHis(token="his-secret", hang_seconds=5) as fake:
        yield fake


@pytest.fixture(autouse=True)
def his_settings(settings, fake_his):
    settings.SPD_HIS_CHARGE_URL = fake_his.url
    settings.SPD_HIS_TOKEN = "his-secret"
    settings.SPD_HIS_TIMEOUT_SECONDS = 0.5
    settings.SPD_HIS_MAX_ATTEMPTS = 12
    settings.SPD_HIS_BACKOFF_BASE_SECONDS = 5
    return settings


def queue_charge(hospital, *, encounter="ZY20240001", price="1200.00") -> Charge:
    """A consumption with its charge and outbox row, as the consumption service writes them."""
    department, _ = Department.objects.get_or_create(hospital=hospital, code="CATH", defaults={"name": "心内科导管室"})
    location, _ = Location.objects.get_or_create(
        hospital=hospital, code="CATH-STORE",
        defaults={"name": "导管室二级库", "kind": Location.Kind.DEPARTMENT_STORE, "department": department},
    )
    product = factories.ProductFactory(hospital=hospital)
    consumption = Consumption.objects.create(
        hospital=hospital, product=product, location=location, encounter=encounter, department=department,
        unit_price=Decimal(price), occurred_at=timezone.now(), surgery_id="SS-7", surgery_name="PCI",
        doctor="D0012",
    )
    charge = Charge.objects.create(
        hospital=hospital, consumption=consumption, kind=Charge.Kind.CHARGE, encounter=encounter,
        his_charge_code=product.his_charge_code, nhsa_code=product.nhsa_code, quantity=1,
        unit_price=Decimal(price), amount=Decimal(price),
    )
    ChargeDelivery.objects.create(charge=charge)
    return charge


def queue_refund(charge: Charge) -> Charge:
    refund = Charge.objects.create(
        hospital=charge.hospital, consumption=charge.consumption, kind=Charge.Kind.REFUND, refund_of=charge,
        encounter=charge.encounter, his_charge_code=charge.his_charge_code, quantity=-charge.quantity,
        unit_price=charge.unit_price, amount=-charge.amount,
    )
    ChargeDelivery.objects.create(charge=refund)
    return refund


def delivery_of(charge: Charge) -> ChargeDelivery:
    return ChargeDelivery.objects.get(charge=charge)


def test_a_charge_is_delivered_once_and_its_his_reference_recorded(hospital, fake_his):
    charge = queue_charge(hospital)

    report = deliver_due_charges()

    assert (report.claimed, report.delivered) == (1, 1)
    [held] = fake_his.received
    delivery = delivery_of(charge)
    assert delivery.status == Status.DELIVERED
    assert delivery.his_reference == held.his_reference
    assert (delivery.attempts, delivery.claimed_until) == (1, None)
    assert delivery.delivered_at is not None
    [request] = fake_his.requests
    assert request.key == f"charge-{charge.pk}"
    assert request.headers["Authorization"] == "Bearer his-secret"
    assert held.body == json.loads(json.dumps(charge_message(charge)))

    assert deliver_due_charges().claimed == 0
    assert len(fake_his.requests) == 1


def test_the_message_carries_money_as_strings_and_a_refund_names_its_charge(hospital):
    refund = queue_refund(charge := queue_charge(hospital, price="980.50"))

    message = charge_message(refund)

    assert message["kind"] == "REFUND"
    assert message["refund_of"] == charge.pk
    assert (message["quantity"], message["unit_price"], message["amount"]) == (-1, "980.50", "-980.50")
    assert message["idempotency_key"] == f"charge-{refund.pk}"
    assert message["department"] == "CATH"
    assert (message["doctor"], message["surgery_id"], message["surgery_name"]) == ("D0012", "SS-7", "PCI")
    assert message["occurred_at"] == charge.consumption.occurred_at.isoformat()


def test_a_refund_is_sent_only_after_the_charge_it_reverses_was_delivered(hospital, fake_his):
    charge = queue_charge(hospital)
    refund = queue_refund(charge)
    fake_his.set_mode("fail", count=1)

    assert deliver_due_charges().claimed == 1
    assert (delivery_of(charge).status, delivery_of(refund).status) == (Status.FAILED, Status.PENDING)
    assert delivery_of(refund).attempts == 0

    later = timezone.now() + HOURS
    assert deliver_due_charges(now=later).delivered == 1
    assert deliver_due_charges(now=later).delivered == 1
    assert [(held.body["kind"], held.body["refund_of"]) for held in fake_his.received] == [
        ("CHARGE", None), ("REFUND", charge.pk)
    ]


def test_while_the_his_is_down_the_delivery_fails_with_back_off_then_is_delivered_once(hospital, fake_his):
    charge = queue_charge(hospital)
    fake_his.set_mode("fail", count=3)
    start = timezone.now()

    assert deliver_due_charges(now=start).failed == 1
    delivery = delivery_of(charge)
    assert (delivery.status, delivery.attempts) == (Status.FAILED, 1)
    assert "HTTP 500" in delivery.last_error
    assert start <= delivery.first_failed_at < start + datetime.timedelta(seconds=5)
    assert delivery.next_attempt_at >= start + datetime.timedelta(seconds=2.5)
    assert deliver_due_charges(now=start).claimed == 0, "not due again before its back-off"

    for attempt in (2, 3):
        assert deliver_due_charges(now=start + attempt * HOURS).failed == 1
        assert delivery_of(charge).attempts == attempt
    report = deliver_due_charges(now=start + 4 * HOURS)

    assert report.delivered == 1
    delivery = delivery_of(charge)
    assert (delivery.status, delivery.attempts) == (Status.DELIVERED, 4)
    assert start <= delivery.first_failed_at < start + datetime.timedelta(seconds=5)
    assert len(fake_his.received) == 1
    assert len(fake_his.requests) == 4


def test_back_off_doubles_with_jitter_and_is_capped_at_one_hour():
    for attempts, (low, high) in {1: (2.5, 5), 2: (5, 10), 4: (20, 40), 30: (1800, 3600)}.items():
        delays = {backoff_seconds(attempts) for _ in range(20)}
        assert all(low <= delay <= high for delay in delays), (attempts, delays)
        assert len(delays) > 1, "jittered"


def test_an_his_that_does_not_answer_in_time_makes_the_delivery_failed(hospital, fake_his):
    charge = queue_charge(hospital)
    fake_his.set_mode("timeout")

    started = time.monotonic()
    report = deliver_due_charges()

    assert time.monotonic() - started < 3
    assert report.failed == 1
    delivery = delivery_of(charge)
    assert delivery.status == Status.FAILED
    assert "no answer within 0.5 s" in delivery.last_error
    assert fake_his.received == []


def test_an_unreachable_his_fails_one_delivery_and_leaves_the_rest_for_the_next_run(hospital, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.SPD_HIS_CHARGE_URL = f"http://127.0.0.1:{closed_port}/charges"
    charges = [queue_charge(hospital, encounter=f"ZY{n}") for n in range(3)]

    report = deliver_due_charges()

    assert (report.claimed, report.failed, report.released) == (3, 1, 2)
    first, *rest = (delivery_of(charge) for charge in charges)
    assert (first.status, first.attempts) == (Status.FAILED, 1)
    assert "cannot reach the HIS" in first.last_error
    assert [(d.status, d.attempts, d.claimed_until) for d in rest] == [(Status.PENDING, 0, None)] * 2


@pytest.mark.parametrize("repeat_status", [200, 409])
def test_accepted_but_unanswered_charge_is_resent_and_gets_the_first_reference(hospital, fake_his, repeat_status):
    """The relay never heard the HIS's answer: the resend, same key, must not become a second charge."""
    fake_his.duplicate_status = repeat_status
    charge = queue_charge(hospital)
    fake_his.set_mode("drop", count=1)

    assert deliver_due_charges().failed == 1
    assert delivery_of(charge).status == Status.FAILED
    [held] = fake_his.received
    assert held.key == f"charge-{charge.pk}"

    assert deliver_due_charges(now=timezone.now() + HOURS).delivered == 1

    delivery = delivery_of(charge)
    assert (delivery.status, delivery.his_reference) == (Status.DELIVERED, held.his_reference)
    assert len(fake_his.received) == 1, "exactly one charge at the HIS"
    assert fake_his.charge(f"charge-{charge.pk}").times_sent == 2


def test_a_4xx_is_failed_with_the_his_answer_and_still_retried(hospital, fake_his):
    charge = queue_charge(hospital)
    fake_his.set_mode("reject", count=1)

    deliver_due_charges()
    delivery = delivery_of(charge)
    assert delivery.status == Status.FAILED
    assert "HTTP 422" in delivery.last_error and charge.his_charge_code in delivery.last_error

    assert deliver_due_charges(now=timezone.now() + HOURS).delivered == 1


def test_a_delivery_gives_up_after_the_maximum_attempts_and_is_resent_by_hand(
    hospital, other_hospital, fake_his, settings, operator, auditor
):
    settings.SPD_HIS_MAX_ATTEMPTS = 3
    charge = queue_charge(hospital)
    fake_his.set_mode("fail")
    start = timezone.now()
    reports = [deliver_due_charges(now=start + n * HOURS) for n in range(4)]

    assert [(r.failed, r.gave_up) for r in reports] == [(1, 0), (1, 0), (0, 1), (0, 0)]
    delivery = delivery_of(charge)
    assert (delivery.status, delivery.attempts) == (Status.GAVE_UP, 3)
    assert list(failing_deliveries(hospital, datetime.timedelta(hours=1), now=start + 3 * HOURS)) == [delivery]
    assert not failing_deliveries(hospital, datetime.timedelta(hours=1), now=start)
    assert not failing_deliveries(other_hospital, datetime.timedelta(0), now=start + 3 * HOURS)

    listed = api_client_for(auditor).get("/api/v1/his/deliveries/", {"status": "GAVE_UP"})
    assert listed.status_code == 200
    [row] = listed.data["results"]
    assert (row["charge"], row["attempts"], row["his_reference"]) == (charge.pk, 3, "")
    assert "HTTP 500" in row["last_error"]
    url = f"/api/v1/his/deliveries/{delivery.pk}/resend/"
    assert api_client_for(auditor).post(url).status_code == 403
    stranger = factories.UserFactory(hospital=other_hospital, roles=["spd_operator"])
    assert api_client_for(stranger).post(url).status_code == 404
    assert api_client_for(stranger).get("/api/v1/his/deliveries/").data["results"] == []

    resent = api_client_for(operator).post(url)

    assert resent.status_code == 200, resent.data
    assert (resent.data["status"], resent.data["attempts"]) == ("PENDING", 3)
    fake_his.set_mode("ok")
    assert deliver_due_charges().delivered == 1
    assert delivery_of(charge).status == Status.DELIVERED
    again = api_client_for(operator).post(url)
    assert again.status_code == 409
    assert again.data["code"] == "ALREADY_DELIVERED_TO_HIS"


@pytest.mark.django_db(transaction=True)  # the loop closes stale connections between rounds
def test_relay_command_runs_once_or_in_a_loop_until_sigterm(hospital, fake_his):
    queue_charge(hospital)
    out = StringIO()
    call_command("relay_his", stdout=out)
    assert "delivered 1" in out.getvalue()

    queue_charge(hospital, encounter="ZY2")
    stop = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    out = StringIO()
    stop.start()
    try:
        call_command("relay_his", "--loop", "--interval", "0.1", stdout=out)
    finally:
        stop.cancel()
    assert "delivered 1" in out.getvalue()
    assert out.getvalue().rstrip().endswith("Stopped.")
    assert len(fake_his.received) == 2


def test_run_fake_his_serves_charges_until_sigterm():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    running, answers = threading.Event(), []

    def client():
        post = urllib.request.Request(
            f"http://127.0.0.1:{port}/charges", method="POST", data=b'{"kind": "CHARGE"}',
            headers={"Idempotency-Key": "charge-9"},
        )
        deadline = time.monotonic() + 5
        while running.is_set() and time.monotonic() < deadline and not answers:
            try:
                with urllib.request.urlopen(post, timeout=1) as response:
                    answers.append(json.loads(response.read()))
            except OSError:
                time.sleep(0.05)
        if running.is_set():
            os.kill(os.getpid(), signal.SIGTERM)

    out = StringIO()
    running.set()
    threading.Thread(target=client).start()
    try:
        call_command("run_fake_his", "--port", str(port), stdout=out)
    finally:
        running.clear()

    assert answers == [{"his_reference": "HIS-000001"}]
    assert "HIS-000001 ← charge-9: CHARGE" in out.getvalue()
    assert "Stopped: 1 charges held, 1 requests." in out.getvalue()


def test_the_fake_his_is_steered_and_read_over_http(fake_his):
    def call(method, path, body=None):
        request = urllib.request.Request(
            fake_his.base_url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=2) as response:
            return json.loads(response.read())

    assert call("POST", "/_control", {"mode": "fail", "count": 2}) == {"mode": "fail", "count": 2}
    assert fake_his.mode == "fail"
    call("POST", "/_control", {"mode": "ok"})
    post = urllib.request.Request(
        fake_his.url, method="POST", data=b'{"charge_id": 1}',
        headers={"Idempotency-Key": "charge-1", "Authorization": "Bearer his-secret"},
    )
    for _ in range(2):
        with urllib.request.urlopen(post, timeout=2) as response:
            assert json.loads(response.read())["his_reference"] == "HIS-000001"
    received = call("GET", "/_received")
    assert [(c["key"], c["his_reference"], c["times_sent"]) for c in received] == [("charge-1", "HIS-000001", 2)]


# --- real concurrency, a real worker ----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_relays_racing_deliver_each_charge_exactly_once(hospital, fake_his):
    charges = [queue_charge(hospital, encounter=f"ZY{n}") for n in range(24)]
    fake_his.set_mode("slow", delay=0.01)

    def relay(index):
        reports = []
        while (report := deliver_due_charges(limit=4)).claimed:
            reports.append(report)
        return reports

    outcomes = run_together(2, relay)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert all(outcomes), "both relays delivered some of the charges"
    reports = [report for reports in outcomes for report in reports]
    assert sum(r.delivered for r in reports) == 24
    assert sum(r.lost for r in reports) == 0
    assert set(ChargeDelivery.objects.values_list("status", flat=True)) == {Status.DELIVERED}
    keys = [request.key for request in fake_his.requests]
    assert sorted(keys) == sorted(f"charge-{charge.pk}" for charge in charges), "one request per charge"
    assert len(fake_his.received) == 24


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_relay_whose_claim_was_taken_over_discards_its_outcome(hospital, fake_his, settings):
    """Relay A hangs on a slow HIS past its lease; B takes the row over and delivers it; A's answer is dropped."""
    settings.SPD_HIS_TIMEOUT_SECONDS = 2  # A's lease: 4 s
    charge = queue_charge(hospital)
    fake_his.set_mode("slow", count=1, delay=1.0)
    outcome = {}
    relay_a = threading.Thread(target=lambda: (outcome.update(a=deliver_due_charges()), connection.close()))
    relay_a.start()
    deadline = time.monotonic() + 5
    while not fake_his.requests and time.monotonic() < deadline:
        time.sleep(0.01)

    report_b = deliver_due_charges(now=timezone.now() + datetime.timedelta(seconds=10))
    relay_a.join(timeout=10)

    assert report_b.delivered == 1
    assert (outcome["a"].claimed, outcome["a"].lost, outcome["a"].delivered) == (1, 1, 0)
    delivery = delivery_of(charge)
    [held] = fake_his.received
    assert (delivery.status, delivery.his_reference, delivery.attempts) == (Status.DELIVERED, held.his_reference, 1)
    assert held.times_sent == 2, "A's request reached the HIS too, and was de-duplicated"


# The worker is Celery's own CLI (`celery -A spd worker`), started after pointing its HIS settings at
# this test's fake HIS, so that the test does not depend on how settings.py reads the environment.
WORKER_BOOT = """
import os, sys
from django.conf import settings
settings.SPD_HIS_CHARGE_URL = os.environ["TEST_HIS_URL"]
settings.SPD_HIS_TOKEN = os.environ["TEST_HIS_TOKEN"]
from celery.bin.celery import main
sys.exit(main())
"""


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_delivers_the_charges_sent_through_redis(
    hospital, fake_his, monkeypatch, tmp_path, redis_left_as_found
):
    charge = queue_charge(hospital)
    database = connection.settings_dict
    queue = f"his-test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "spd.settings",
        "DATABASE_URL": (
            f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "CELERY_BROKER_URL": os.environ["REDIS_URL"],
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "TEST_HIS_URL": fake_his.url,
        "TEST_HIS_TOKEN": "his-secret",
    }
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER_BOOT, "-A", "spd", "worker", "-P", "solo", "-c", "1", "-Q", queue,
             "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
            cwd=Path(__file__).resolve().parents[2], env=env, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
        with celery_app.connection_for_write(os.environ["REDIS_URL"]) as broker:
            deliver_his_charges.apply_async(queue=queue, connection=broker)
        deadline = time.monotonic() + 20
        while delivery_of(charge).status != Status.DELIVERED and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    delivery = delivery_of(charge)
    assert delivery.status == Status.DELIVERED, log.read_text()
    assert delivery.his_reference == fake_his.received[0].his_reference
    assert worker.returncode == 0, log.read_text()
    assert "deliver_his_charges" in log.read_text()
