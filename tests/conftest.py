"""Shared fixtures, and the rule for real services.

Tests marked `postgres`, `redis` or `mqtt` need that real service. They are skipped when it is not
configured — unless SPD_REQUIRE_SERVICES=1 (CI), where a missing service is a failure.
"""
import os
import socket
from urllib.parse import urlparse

import pytest
from rest_framework.test import APIClient

from inventory.actors import Actor
from tests import factories

REQUIRE_SERVICES = os.environ.get("SPD_REQUIRE_SERVICES") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _service_missing(marker: str) -> str | None:
    from django.db import connection

    if marker == "postgres" and connection.vendor != "postgresql":
        return "PostgreSQL is not configured (set DATABASE_URL=postgres://…)"
    if marker == "redis":
        url = os.environ.get("REDIS_URL", "")
        if not url or not _reachable(url, 6379):
            return f"Redis is not reachable (REDIS_URL={url!r})"
    if marker == "mqtt":
        url = os.environ.get("MQTT_URL", "")
        if not url or not _reachable(url, 1883):
            return f"Mosquitto is not reachable (MQTT_URL={url!r})"
    return None


@pytest.fixture(autouse=True)
def _require_marked_services(request: pytest.FixtureRequest) -> None:
    for marker in ("postgres", "redis", "mqtt"):
        if request.node.get_closest_marker(marker) is None:
            continue
        missing = _service_missing(marker)
        if missing and REQUIRE_SERVICES:
            pytest.fail(f"SPD_REQUIRE_SERVICES=1 but {missing}")
        if missing:
            pytest.skip(missing)


@pytest.fixture(autouse=True)
def _tasks_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks run in-process whatever the environment sets (a broker URL turns eager mode off in the
    settings): a test that starts a real worker turns this off itself."""
    from spd.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)


@pytest.fixture
def redis_left_as_found():
    """For a test that runs a real worker on Redis: afterwards the queues, bindings and control keys
    the test and its worker made are removed, so that runs leave no trace in the broker's database."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    before = set(client.keys("*"))
    yield client
    made = set(client.keys("*")) - before
    if made:
        client.delete(*made)


@pytest.fixture(autouse=True)
def _site_language():
    """Each test starts in the site's language, whatever an earlier test's request left active."""
    from django.conf import settings
    from django.utils import translation

    with translation.override(settings.LANGUAGE_CODE):
        yield


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def hospital(db):
    return factories.HospitalFactory(code="H001", name="县人民医院", is_lead=True)


@pytest.fixture
def other_hospital(db):
    return factories.HospitalFactory(code="H002", name="县中医院")


@pytest.fixture
def warehouse(hospital):
    return factories.LocationFactory(hospital=hospital, code="CW", name="中心库")


@pytest.fixture
def cath_lab_store(hospital):
    department = factories.DepartmentFactory(hospital=hospital, code="CATH", name="心内科导管室")
    return factories.LocationFactory(
        hospital=hospital, department=department, code="CATH-STORE", name="导管室二级库",
        kind="DEPARTMENT_STORE",
    )


@pytest.fixture
def department(cath_lab_store):
    """The cath lab (心内科导管室), the department of the cath-lab store."""
    return cath_lab_store.department


@pytest.fixture
def nurse(hospital, department):
    """A nurse of the cath lab."""
    user = factories.UserFactory(username="nurse1", hospital=hospital, roles=["nurse"])
    user.departments.add(department)
    return user


@pytest.fixture
def cabinet(cath_lab_store):
    return factories.LocationFactory(
        hospital=cath_lab_store.hospital, department=cath_lab_store.department, code="CATH-CAB1",
        name="导管室智能柜1", kind="SMART_CABINET",
    )


@pytest.fixture
def supplier(db):
    return factories.SupplierFactory()


@pytest.fixture
def agreement(hospital, supplier):
    return factories.SupplyAgreementFactory(product__hospital=hospital, supplier=supplier)


@pytest.fixture
def product(agreement):
    return agreement.product


@pytest.fixture
def lot_agreement(hospital, supplier):
    return factories.SupplyAgreementFactory(
        product__hospital=hospital, product__tracking="LOT", product__is_high_value=False,
        product__name="一次性使用输液器", unit_price="3.50", supplier=supplier,
    )


@pytest.fixture
def lot_product(lot_agreement):
    return lot_agreement.product


@pytest.fixture
def keeper(hospital):
    return factories.UserFactory(username="keeper", hospital=hospital, roles=["warehouse"])


@pytest.fixture
def operator(hospital):
    return factories.UserFactory(username="operator", hospital=hospital, roles=["spd_operator"])


@pytest.fixture
def auditor(hospital):
    return factories.UserFactory(username="auditor", hospital=hospital, roles=["auditor"])


@pytest.fixture
def keeper_actor(keeper):
    return Actor(user=keeper)


@pytest.fixture
def api(keeper):
    client = APIClient()
    client.force_authenticate(keeper)
    return client


def api_client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def stock_units(actor, supplier, warehouse, product, serials, *, lot=""):
    """Receive and accept one delivery of `serials` of `product` into `warehouse`; return the units."""
    from inventory.models import Unit
    from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
    from tests.factories import gs1_udi

    price = product.agreements.get().unit_price
    number = f"DN-{serials[0]}"
    note = receive_delivery_note(
        actor=actor, hospital=warehouse.hospital, supplier=supplier, number=number, receiving_location=warehouse,
        lines=[LineInput(price, udi=gs1_udi(product.udi_di, serial=s, lot=lot)) for s in serials],
        idempotency_key=f"rcv-{number}",
    )
    scan_every_line(actor, note)
    accept_delivery_note(actor=actor, note=note, idempotency_key=f"acc-{number}")
    return list(Unit.objects.filter(serial__in=serials).order_by("serial"))


def scan_every_line(actor, note):
    """Scan each delivered unit against its line, as the keeper holding the delivery does before
    acceptance (an unscanned unit line is not accepted); unreadable codes are skipped."""
    from inventory.errors import Refused
    from inventory.services.receiving import record_scan

    for raw_udi in note.lines.exclude(raw_udi="").values_list("raw_udi", flat=True):
        try:
            record_scan(actor=actor, note=note, code=raw_udi)
        except Refused:
            continue
