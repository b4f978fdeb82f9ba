"""Fixtures of the web page tests: one small hospital with stock, a used unit, alerts and devices
(`world`), and the Playwright browser driving Debian's chromium against Django's live server.

Browser tests are marked `postgres` and `django_db(transaction=True)`: the live server runs in
another thread and must see committed data, on the real PostgreSQL. On SQLite they are skipped
(and fail with SPD_REQUIRE_SERVICES=1). Screenshots go to test-artifacts/ (ignored by git).
"""
import datetime
import importlib.util
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from devices.models import Device
from inventory.actors import Actor
from inventory.models import Alert, ChargeDelivery, Consumption, Location, LotBalance, Unit
from inventory.services import alerts
from inventory.services.cabinets import close_session, open_session
from inventory.services.consumption import ClinicalContext, consume_unit
from inventory.services.labelling import bind_tag
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.stock import transfer_stock
from tests import factories
from tests.conftest import REQUIRE_SERVICES, stock_units

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "pw-Secret-123"  # tests.factories.UserFactory's
ENCOUNTER = "ZY20261123001"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass
class World:
    """What the page tests look at. Units SN-A1/SN-A2 are in the central warehouse, SN-A3 was taken
    from the cath-lab cabinet at a door session and used on ENCOUNTER; SN-C1 is a consignment unit of
    another supplier; a lot of infusion sets is in the warehouse; the other hospital has SN-X1."""

    keeper: object
    operator: object
    auditor: object
    nurse: object
    warehouse: Location
    cabinet: Location
    supplier: object
    other_supplier: object
    product: object
    consigned_product: object
    lot_product: object
    units: dict
    used: Unit
    consumption: Consumption
    foreign_unit: Unit
    alert: Alert
    cabinet_device: Device


@pytest.fixture
def world(hospital, other_hospital, warehouse, cabinet, supplier, product, lot_product, keeper, operator, auditor):
    return build_world(hospital=hospital, other_hospital=other_hospital, warehouse=warehouse, cabinet=cabinet,
                       supplier=supplier, product=product, lot_product=lot_product, keeper=keeper, operator=operator,
                       auditor=auditor)


def build_world(*, hospital, other_hospital, warehouse, cabinet, supplier, product, lot_product, keeper, operator,
                auditor) -> World:
    actor = Actor(user=keeper)
    nurse = factories.UserFactory(username="nurse", hospital=hospital, roles=["nurse"], badge="BADGE-NURSE",
                                  first_name="护士", last_name="王")
    nurse.departments.add(cabinet.department)
    units = {unit.serial: unit for unit in stock_units(actor, supplier, warehouse, product, ["SN-A1", "SN-A2", "SN-A3"],
                                                        lot="LOT-A")}

    other_supplier = factories.SupplierFactory(name="杭州寄售医疗器械有限公司")
    consigned = factories.SupplyAgreementFactory(
        product__hospital=hospital, product__name="可降解冠脉支架", product__is_consignment=True,
        supplier=other_supplier, unit_price=Decimal("8800.00"),
    ).product
    units.update({unit.serial: unit for unit in stock_units(actor, other_supplier, warehouse, consigned, ["SN-C1"])})

    expiry = timezone.localdate() + datetime.timedelta(days=500)
    note = receive_delivery_note(
        actor=actor, hospital=hospital, supplier=supplier, number="DN-LOT-1", receiving_location=warehouse,
        lines=[LineInput(Decimal("3.50"), product=lot_product, lot="L-2026", expiry=expiry, quantity=20)],
        idempotency_key="rcv-lot-1",
    )
    accept_delivery_note(actor=actor, note=note, idempotency_key="acc-lot-1")
    assert LotBalance.objects.get(product=lot_product, lot="L-2026").quantity == 20

    used = units["SN-A3"]
    bind_tag(unit=used, epc="E2801160600002084A5B3C01", actor=actor)
    transfer_stock(actor=actor, hospital=hospital, to_location=cabinet, units=[used], idempotency_key="to-cabinet")
    cabinet_device = Device.objects.create(
        hospital=hospital, location=cabinet, code="CAB-CATH-1", name="导管室智能柜1号（RFID）",
        kind=Device.Kind.CABINET_HTTP, last_seen=timezone.now() - datetime.timedelta(hours=3),
    )
    opened = timezone.now()
    open_session(device=cabinet_device, cabinet=cabinet, occurred_at=opened, badge="BADGE-NURSE")
    closed = opened + datetime.timedelta(seconds=1)
    close_session(device=cabinet_device, cabinet=cabinet, occurred_at=closed, epcs=[])
    consumption = consume_unit(
        actor=Actor(user=nurse), hospital=hospital, unit=Unit.objects.get(pk=used.pk),
        context=ClinicalContext(encounter=ENCOUNTER, department=cabinet.department, surgery_name="PCI",
                                doctor="D0042", occurred_at=closed + datetime.timedelta(seconds=1)),
        idempotency_key="use-1",
    )
    ChargeDelivery.objects.filter(charge__consumption=consumption).update(
        status=ChargeDelivery.Status.FAILED, attempts=3, last_error="HIS answered 503",
        first_failed_at=timezone.now() - datetime.timedelta(hours=1),
    )

    foreign_product = factories.SupplyAgreementFactory(product__hospital=other_hospital, supplier=supplier).product
    foreign_warehouse = factories.LocationFactory(hospital=other_hospital, code="CW", name="中医院中心库")
    foreign_keeper = factories.UserFactory(username="keeper-other", hospital=other_hospital, roles=["warehouse"])
    foreign_unit = stock_units(Actor(user=foreign_keeper), supplier, foreign_warehouse, foreign_product, ["SN-X1"])[0]
    alerts.raise_alert(hospital=other_hospital, kind=Alert.Kind.NEAR_EXPIRY, subject_key=f"unit:{foreign_unit.pk}",
                       severity=Alert.Severity.WARNING, message="foreign", unit=foreign_unit,
                       details={"serial": "SN-X1", "expiry": "2027-01-01", "days_left": 30, "tier": 30, "lot": ""})

    alert = alerts.raise_alert(
        hospital=hospital, kind=Alert.Kind.NEAR_EXPIRY, subject_key=f"unit:{units['SN-A1'].pk}",
        severity=Alert.Severity.CRITICAL, message="near expiry", unit=units["SN-A1"], product=product,
        location=warehouse,
        details={"serial": "SN-A1", "lot": "LOT-A", "expiry": "2026-12-20", "days_left": 27, "tier": 30,
                 "status": "IN_STOCK"},
    )
    alerts.scan_devices(hospital=hospital)
    return World(
        keeper=keeper, operator=operator, auditor=auditor, nurse=nurse, warehouse=warehouse, cabinet=cabinet,
        supplier=supplier, other_supplier=other_supplier, product=product, consigned_product=consigned,
        lot_product=lot_product, units={serial: Unit.objects.get(pk=unit.pk) for serial, unit in units.items()},
        used=Unit.objects.get(pk=used.pk), consumption=consumption, foreign_unit=foreign_unit, alert=alert,
        cabinet_device=cabinet_device,
    )


# --- the browser ----------------------------------------------------------------------------------


class _Chromium:
    """Playwright and one headless chromium for the session, started on first use only (so that
    skipped browser tests start nothing)."""

    def __init__(self) -> None:
        self.playwright = None
        self.browser = None

    def get(self):
        if self.browser is None:
            self._require_chromium()
            from playwright.sync_api import sync_playwright

            # Playwright's sync API keeps an event loop running in this thread; Django would take the
            # test's own ORM calls for async code and refuse them.
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
            self.playwright = sync_playwright().start()
            self.browser = self.playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
        return self.browser

    @staticmethod
    def _require_chromium() -> None:
        """Skip for the right reason — or fail, with SPD_REQUIRE_SERVICES=1 (CI) — when the browser is missing."""
        missing = None
        if not Path(CHROMIUM).exists():
            missing = f"Chromium is not installed at {CHROMIUM} (Debian package chromium)"
        elif importlib.util.find_spec("playwright") is None:
            missing = "Playwright is not installed (pip install -r requirements.txt)"
        if missing and REQUIRE_SERVICES:
            pytest.fail(f"SPD_REQUIRE_SERVICES=1 but {missing}")
        if missing:
            pytest.skip(missing)

    def close(self) -> None:
        if self.browser is not None:
            self.browser.close()
            self.playwright.stop()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="session")
def chromium():
    holder = _Chromium()
    yield holder
    holder.close()


@pytest.fixture
def page(chromium, live_server):
    """A fresh browser page (own cookies) on a desktop screen, in Chinese, bound to the live server:
    `page.goto("/stock/")` opens the server's page."""
    context = chromium.get().new_context(
        base_url=live_server.url, locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def login(page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form and wait for the dashboard."""
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.locator("form.stacked button[type=submit]").click()
    page.wait_for_url(lambda url: "/login/" not in url)


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """Save test-artifacts/<name>.png (the folder is ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
