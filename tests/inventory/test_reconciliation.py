"""The 进销存 reconciliation: a planted-discrepancy scenario, runs, reports, API and command.

The scenario is three past days (D1–D3) of normal activity written with the real services —
receive and accept, put away, transfer to a department store and a cabinet, take, use on patients
(units, lots, consignment, a gift), a refund, a return, a scrap, a stocktake adjustment, HIS
settlement lines that match, a confirmed consignment statement — plus one planted case of every
finding type on D3. The reconciliation of D3 must find exactly the planted cases.

Services read `timezone.now()`; the `clock` fixture sets it so that each step happens when the
scenario says (Movement.recorded_at and other model defaults keep the real time: they do not
matter here).
"""
import csv
import datetime
import hashlib
import io
import threading
import time
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from openpyxl import load_workbook

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import Charge, Finding, LotBalance, Movement, ReconciliationRun, Unit
from inventory.selectors.flow_table import flow_table_rows
from inventory.selectors.reconciliation import (
    _period_billing_in_python,
    _unsettled_consignment_queryset,
    billed_lines,
    cents,
    period_billing,
    stock_flows,
    unsettled_consignment_uses,
)
from inventory.selectors.settlements import period_bounds
from inventory.services import reconciliation, reports
from inventory.services.cabinets import take_by_scan
from inventory.services.consumption import ClinicalContext, consume_lot, consume_unit, refund_consumption
from inventory.services.his import import_settlement_lines
from inventory.services.ledger import move_lot
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.reconciliation import nightly_day, run_nightly_reconciliation, run_reconciliation
from inventory.services.reports import render_reports, report_content
from inventory.services.settlements import confirm_settlement, draft_settlement
from inventory.services.stock import LotQuantity, return_to_supplier, scrap, transfer_stock
from spd.celery import app as celery_app
from tests import factories
from tests.conftest import api_client_for, scan_every_line
from tests.pdf_text import rows_through, shown_strings

K = Finding.Kind
REAL_NOW = timezone.now
NHSA_SELF_PAY_BILLED = "C0299000000000000001"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _eager_tasks(monkeypatch):
    # The nightly job queues one task per hospital: run them in-process here (a REDIS_URL in the
    # environment would otherwise send them to a broker). The worker test covers the real thing.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)


class Clock:
    """What `timezone.now()` answers: a set local time, or the real time."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.moment: datetime.datetime | None = None
        monkeypatch.setattr(timezone, "now", self.now)

    def now(self) -> datetime.datetime:
        return self.moment or REAL_NOW()

    def at(self, day: datetime.date, hour: int = 10, minute: int = 0) -> datetime.datetime:
        self.moment = local(day, hour, minute)
        return self.moment

    def release(self) -> None:
        self.moment = None


def local(day: datetime.date, hour: int = 10, minute: int = 0) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=timezone.get_default_timezone())


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


class Scenario:
    """A hospital's three days: stock, use, billing. Names say which unit is for what."""

    def __init__(self, hospital, warehouse, store, cabinet, operator, clock: Clock) -> None:
        self.hospital, self.warehouse, self.store, self.cabinet = hospital, warehouse, store, cabinet
        self.department = store.department
        self.actor, self.clock = Actor(user=operator), clock
        self.today = REAL_NOW().astimezone(timezone.get_default_timezone()).date()
        self.d1, self.d2, self.d3 = (self.today - datetime.timedelta(days=n) for n in (5, 4, 3))
        self.d4 = self.d3 + datetime.timedelta(days=1)
        self.keys = 0
        self.s1 = factories.SupplierFactory(name="华东医疗器械有限公司")
        self.s2 = factories.SupplierFactory(name="江南医疗供应链有限公司")
        self.stent = self.product("STENT", "药物洗脱冠脉支架", "1200.00")
        self.valve = self.product("VALVE", "介入人工心脏瓣膜", "5000.00")
        self.balloon = self.product("BALLOON", "球囊扩张导管", "1000.00")
        factories.SupplyAgreementFactory(product=self.balloon, supplier=self.s2, unit_price=Decimal("1100.00"))
        self.catheter = self.product("CATHETER", "中心静脉导管", "1200.00")
        factories.SupplyAgreementFactory(
            product=self.catheter, supplier=self.s1, unit_price=Decimal("1300.00"),
            valid_from=self.today - datetime.timedelta(days=400), valid_to=self.today - datetime.timedelta(days=31),
        )
        self.self_pay = self.product("SELFPAY", "自费止血夹", "300.00", nhsa_code="")
        self.consigned = self.product("CONSIGN", "寄售骨科植入物", "2000.00", supplier=self.s2, is_consignment=True)
        self.consigned_other = self.product("CONSIGN2", "寄售吻合器", "500.00", is_consignment=True)
        self.expiring = self.product("EXPIRING", "短效期导丝", "100.00", min_shelf_life_days=0)
        self.dressing = self.product("DRS", "一次性使用敷料", "3.50", tracking="LOT", is_high_value=False)

    def product(self, code, name, price, *, supplier=None, **fields):
        agreement = factories.SupplyAgreementFactory(
            product__hospital=self.hospital, product__internal_code=code, product__name=name,
            supplier=supplier or self.s1, unit_price=Decimal(price),
            **{f"product__{key}": value for key, value in fields.items()},
        )
        return agreement.product

    def key(self, prefix: str) -> str:
        self.keys += 1
        return f"{prefix}-{self.keys}"

    # --- stock -------------------------------------------------------------------------------------

    def receive(self, product, serials, *, supplier=None, price=None, gift=False, expiry=None) -> list[Unit]:
        supplier = supplier or self.s1
        price = Decimal(price or product.agreements.filter(supplier=supplier).latest("valid_from").unit_price)
        note = receive_delivery_note(
            actor=self.actor, hospital=self.hospital, supplier=supplier, number=self.key("DN"),
            receiving_location=self.warehouse, idempotency_key=self.key("rcv"),
            lines=[LineInput(price, udi=factories.gs1_udi(product.udi_di, serial=s, lot="L1", expiry=expiry))
                   for s in serials],
        )
        scan_every_line(self.actor, note)
        accept_delivery_note(actor=self.actor, note=note, idempotency_key=self.key("acc"),
                             gift_line_nos=frozenset(range(1, len(serials) + 1)) if gift else frozenset())
        return list(Unit.objects.filter(product=product, serial__in=serials).order_by("serial"))

    def receive_lot(self, product, lot: str, quantity: int) -> None:
        note = receive_delivery_note(
            actor=self.actor, hospital=self.hospital, supplier=self.s1, number=self.key("DN"),
            receiving_location=self.warehouse, idempotency_key=self.key("rcv"),
            lines=[LineInput(Decimal("3.50"), product=product, lot=lot, quantity=quantity,
                             expiry=self.today + datetime.timedelta(days=400))],
        )
        accept_delivery_note(actor=self.actor, note=note, idempotency_key=self.key("acc"))

    def transfer(self, to, units=(), lots=()) -> None:
        transfer_stock(actor=self.actor, hospital=self.hospital, to_location=to, units=list(units), lots=list(lots),
                       idempotency_key=self.key("trf"))

    # --- use and billing ---------------------------------------------------------------------------

    def use(self, unit: Unit, encounter: str, at: datetime.datetime):
        return consume_unit(
            actor=self.actor, hospital=self.hospital, unit=unit, idempotency_key=self.key("use"),
            context=ClinicalContext(encounter=encounter, department=self.department, occurred_at=at),
        )

    def use_lot(self, quantity: int, encounter: str, at: datetime.datetime):
        return consume_lot(
            actor=self.actor, hospital=self.hospital, product=self.dressing, lot="D2501", quantity=quantity,
            location=self.store, idempotency_key=self.key("use"),
            context=ClinicalContext(encounter=encounter, department=self.department, occurred_at=at),
        )

    def bill(self, *lines: dict) -> None:
        import_settlement_lines(hospital=self.hospital, rows=list(lines), batch=self.key("HIS"))

    def line(self, encounter, product, settled_at, *, quantity=1, price=None, code=None, nhsa=None, charge=None) -> dict:
        price = Decimal(price) if price is not None else None
        if price is None:
            price = product.agreements.order_by("unit_price").first().unit_price
        return {
            "his_line_id": self.key("L"), "encounter": encounter, "his_charge_code": code or product.his_charge_code,
            "nhsa_code": product.nhsa_code if nhsa is None else nhsa, "quantity": quantity, "unit_price": str(price),
            "amount": str(price * quantity), "settled_at": settled_at.isoformat(),
            "spd_charge_id": charge.pk if charge is not None else None,
        }

    @staticmethod
    def charge(consumption, kind=Charge.Kind.CHARGE) -> Charge:
        return consumption.charges.get(kind=kind)


def build_scenario(hospital, warehouse, store, cabinet, operator, clock) -> Scenario:
    s = Scenario(hospital, warehouse, store, cabinet, operator, clock)
    d1, d2, d3, d4 = s.d1, s.d2, s.d3, s.d4

    # D1: deliveries, put away in the warehouse, transfers to the cath-lab store and its cabinet.
    clock.at(d1, 8)
    stents = {u.serial: u for u in s.receive(s.stent, [f"S{n:02d}" for n in range(1, 12)])}
    [gift] = s.receive(s.stent, ["G01"], gift=True)
    [balloon_cheap] = s.receive(s.balloon, ["B01"], supplier=s.s1)
    [balloon_dear] = s.receive(s.balloon, ["B02"], supplier=s.s2)
    catheters = s.receive(s.catheter, ["T01", "T02"])
    [valve] = s.receive(s.valve, ["V01"])
    [self_pay] = s.receive(s.self_pay, ["P01"])
    consigned = s.receive(s.consigned, ["C01", "C02", "C03"], supplier=s.s2)
    [consigned_other] = s.receive(s.consigned_other, ["K01"])
    s.receive(s.expiring, ["X01"], expiry=d2)  # planted EXPIRED_IN_STOCK: stays in the warehouse
    s.receive_lot(s.dressing, "D2501", 50)
    clock.at(d1, 9)
    for_store = [stents[f"S{n:02d}"] for n in (1, 2, 3, 4, 5, 7, 8, 9)]
    s.transfer(store, units=[*for_store, gift, balloon_cheap, balloon_dear, *catheters, valve, self_pay, *consigned,
                             consigned_other],
               lots=[LotQuantity(s.dressing, "D2501", 30, warehouse)])
    s.transfer(cabinet, units=[stents["S11"]])
    take_by_scan(actor=s.actor, hospital=hospital, units=[stents["S11"]], idempotency_key=s.key("take"))
    clock.at(d1, 14)
    use = s.use(consigned[0], "E00", local(d1, 14))
    s.bill(s.line("E00", s.consigned, local(d1, 16), charge=s.charge(use)))

    # D2: use billed the same day, the next morning, across midnight; a refund; a return, a scrap,
    # a stocktake adjustment (no stocktake service yet: written through the ledger as one would).
    clock.at(d2, 9)
    use = s.use(stents["S01"], "E01", local(d2, 9))
    s.bill(s.line("E01", s.stent, local(d2, 18), charge=s.charge(use)))
    clock.at(d2, 10)
    s.use_lot(5, "E02", local(d2, 10))
    s.bill(s.line("E02", s.dressing, local(d3, 8), quantity=5))
    clock.at(d2, 23, 30)
    s.use(stents["S02"], "E03", local(d2, 23, 30))
    s.bill(s.line("E03", s.stent, local(d3, 0, 30)))
    clock.at(d2, 11)
    use = s.use(consigned_other, "E04", local(d2, 11))
    s.bill(s.line("E04", s.consigned_other, local(d2, 12), charge=s.charge(use)))
    clock.at(d2, 10)
    use = s.use(stents["S03"], "E05", local(d2, 10))
    clock.at(d2, 11)
    refunded = refund_consumption(actor=s.actor, consumption=use, reason_code="WRONG_ENCOUNTER", to_quarantine=False,
                                  idempotency_key=s.key("refund"))
    s.bill(s.line("E05", s.stent, local(d2, 10, 30), charge=s.charge(use)),
           s.line("E05", s.stent, local(d2, 11, 30), quantity=-1, charge=s.charge(refunded, Charge.Kind.REFUND)))
    clock.at(d2, 15)
    scrap(actor=s.actor, hospital=hospital, reason_code="DAMAGED", idempotency_key=s.key("scrap"),
          lots=[LotQuantity(s.dressing, "D2501", 2, warehouse)])
    clock.at(d2, 16)
    return_to_supplier(actor=s.actor, hospital=hospital, supplier=s.s1, reason_code="RECALL",
                       idempotency_key=s.key("return"), units=[stents["S06"]])
    with transaction.atomic():
        move_lot(product=s.dressing, lot="D2501", quantity=1, source=None, to_location=store,
                 kind=Movement.Kind.ADJUSTMENT, actor=s.actor, idempotency_key=s.key("adjust"),
                 document=(Movement.DocumentType.STOCK_ORDER, 0), occurred_at=local(d2, 17), reason_code="SURPLUS")

    # D3: normal use, matched by lines naming our charge or by encounter and code.
    clock.at(d3, 12)  # uses entered by noon, each dated when it happened
    use = s.use(balloon_dear, "E06", local(d3, 9))
    s.bill(s.line("E06", s.balloon, local(d3, 12), price="1100.00", charge=s.charge(use)))
    use = s.use(catheters[0], "E07", local(d3, 9, 30))
    s.bill(s.line("E07", s.catheter, local(d3, 12), price="1200.00", charge=s.charge(use)))
    s.use(valve, "E08", local(d3, 10))
    s.bill(s.line("E08", s.valve, local(d3, 15)))
    use = s.use(consigned[1], "E10", local(d3, 11))
    s.bill(s.line("E10", s.consigned, local(d3, 13), charge=s.charge(use)))
    s.use(stents["S04"], "E12", local(d3, 12))
    s.bill(s.line("E12", s.stent, local(d3, 18)))
    clock.at(d3, 21)
    s.use_lot(3, "E11", local(d3, 21))
    s.bill(s.line("E11", s.dressing, local(d4, 8), quantity=3))
    clock.at(d3, 20)
    statement = draft_settlement(hospital=hospital, supplier=s.s2, period_start=d1, period_end=d3, actor=s.actor)
    confirm_settlement(settlement=statement, actor=s.actor)

    # D3, planted: one case of every finding type.
    clock.at(d3, 18)
    s.use(stents["S05"], "E20", local(d3, 13))  # USED_NOT_BILLED
    s.bill(s.line("E21", s.stent, local(d3, 14)))  # BILLED_NOT_USED
    s.use_lot(2, "E22", local(d3, 14))
    s.bill(s.line("E22", s.dressing, local(d3, 16), quantity=3))  # BILLED_QTY_EXCEEDS_USED
    use = s.use(stents["S07"], "E23", local(d3, 15))
    s.bill(s.line("E23", s.stent, local(d3, 17), price="1250.00", charge=s.charge(use)))  # PRICE_ABOVE_PURCHASE
    use = s.use(catheters[1], "E24", local(d3, 15, 30))
    s.bill(s.line("E24", s.catheter, local(d3, 17), price="1300.00", charge=s.charge(use)))  # PRICE_NOT_ADJUSTED
    use = s.use(balloon_cheap, "E25", local(d3, 16))
    s.bill(s.line("E25", s.balloon, local(d3, 17), price="1100.00", charge=s.charge(use)))  # MULTI_SUPPLIER…
    use = s.use(gift, "E26", local(d3, 16, 30))
    s.bill(s.line("E26", s.stent, local(d3, 17), price="1200.00", charge=s.charge(use)))  # ZERO_COST_BILLED
    use = s.use(stents["S08"], "E27", local(d3, 17))  # SUBSTITUTION: our charge billed as a valve
    s.bill(s.line("E27", s.valve, local(d3, 18), charge=s.charge(use)))
    s.use(self_pay, "E28", local(d3, 17, 30))  # SUBSTITUTION: a self-pay item billed under a 医保 code
    s.bill(s.line("E28", s.self_pay, local(d3, 18), nhsa=NHSA_SELF_PAY_BILLED))
    s.use(stents["S09"], "E29", local(d3, 18))  # SUBSTITUTION: a stent used, a valve billed
    s.bill(s.line("E29", s.valve, local(d3, 19)))
    clock.at(d3, 21)  # CONSIGNMENT_UNSETTLED: registered after the statement of its day was confirmed
    use = s.use(consigned[2], "E30", local(d3, 19))
    s.bill(s.line("E30", s.consigned, local(d3, 22), charge=s.charge(use)))
    # INVENTORY_MISMATCH: one dressing gone from the store's balance without a movement.
    LotBalance.objects.filter(product=s.dressing, location=store).update(quantity=20)
    clock.release()
    return s


PLANTED_ON_D3 = sorted([
    (K.INVENTORY_MISMATCH, "DRS@CATH-STORE"),
    (K.USED_NOT_BILLED, "E20"),
    (K.BILLED_NOT_USED, "E21"),
    (K.BILLED_QTY_EXCEEDS_USED, "E22"),
    (K.PRICE_ABOVE_PURCHASE, "E23"),
    (K.PRICE_NOT_ADJUSTED, "E24"),
    (K.MULTI_SUPPLIER_HIGHEST_PRICE, "E25"),
    (K.ZERO_COST_BILLED, "E26"),
    (K.SUBSTITUTION, "E27"),
    (K.SUBSTITUTION, "E28"),
    (K.SUBSTITUTION, "E29"),
    (K.CONSIGNMENT_UNSETTLED, "E30"),
    (K.EXPIRED_IN_STOCK, "X01"),
])


def subject(finding: Finding) -> str:
    if finding.encounter:
        return finding.encounter
    if finding.unit_id:
        return finding.unit.serial
    return f"{finding.product.internal_code}@{finding.location.code}"


def found(run: ReconciliationRun) -> list[tuple[str, str]]:
    return sorted((finding.kind, subject(finding)) for finding in run.findings.select_related("unit", "product",
                                                                                             "location"))


@pytest.fixture
def scenario(hospital, warehouse, cath_lab_store, cabinet, operator, clock):
    return build_scenario(hospital, warehouse, cath_lab_store, cabinet, operator, clock)


def reconcile_days(scenario: Scenario, first: datetime.date, last: datetime.date | None = None, **kwargs):
    return run_reconciliation(hospital=scenario.hospital, period_start=first, period_end=last or first, **kwargs)


# --- findings --------------------------------------------------------------------------------------


def test_the_run_of_the_planted_day_finds_exactly_the_planted_cases(scenario):
    run = reconcile_days(scenario, scenario.d3)

    assert run.status == ReconciliationRun.Status.DONE
    assert found(run) == PLANTED_ON_D3
    # Every finding type is planted here but the set check's, whose scenario (a set assembled at a
    # processing station, used in part) is in tests/inventory/test_processing.py.
    assert set(Finding.Kind.values) - {K.SET_PARTNER_MISSING} == {kind for kind, _ in PLANTED_ON_D3}


def test_each_finding_names_its_subject_amounts_and_evidence(scenario):
    run = reconcile_days(scenario, scenario.d3)
    by_subject = {(f.kind, subject(f)): f for f in run.findings.select_related("product", "unit", "location")}

    mismatch = by_subject[(K.INVENTORY_MISMATCH, "DRS@CATH-STORE")]
    assert (mismatch.expected, mismatch.actual, mismatch.amount) == (21, 20, Decimal("3.50"))
    assert mismatch.evidence["lot_balances"] == [{"lot": "D2501", "quantity": 20, "unit_cost": "3.50"}]
    unbilled = by_subject[(K.USED_NOT_BILLED, "E20")]
    assert (unbilled.product, unbilled.his_charge_code) == (scenario.stent, scenario.stent.his_charge_code)
    assert (unbilled.expected, unbilled.actual, unbilled.amount) == (1, 0, Decimal("1200.00"))
    assert [row["serial"] for row in unbilled.evidence["consumptions"]["rows"]] == ["S05"]
    unused = by_subject[(K.BILLED_NOT_USED, "E21")]
    assert (unused.expected, unused.actual, unused.amount) == (0, 1, Decimal("1200.00"))
    assert unused.evidence["his_lines"]["count"] == 1 and unused.evidence["consumptions"]["count"] == 0
    exceeding = by_subject[(K.BILLED_QTY_EXCEEDS_USED, "E22")]
    assert (exceeding.expected, exceeding.actual, exceeding.amount) == (2, 3, Decimal("3.50"))
    above = by_subject[(K.PRICE_ABOVE_PURCHASE, "E23")]
    assert (above.unit.serial, above.expected, above.actual, above.amount) == ("S07", 1200, 1250, Decimal("50.00"))
    old_price = by_subject[(K.PRICE_NOT_ADJUSTED, "E24")]
    assert (old_price.unit.serial, old_price.actual, old_price.amount) == ("T02", 1300, Decimal("100.00"))
    highest = by_subject[(K.MULTI_SUPPLIER_HIGHEST_PRICE, "E25")]
    assert (highest.unit.serial, highest.expected, highest.actual) == ("B01", 1000, 1100)
    gift = by_subject[(K.ZERO_COST_BILLED, "E26")]
    assert (gift.unit.serial, gift.amount) == ("G01", Decimal("1200.00"))
    substitutions = {f.encounter: f for f in run.findings.filter(kind=K.SUBSTITUTION)}
    assert substitutions["E27"].product == scenario.stent
    assert substitutions["E27"].his_charge_code == scenario.valve.his_charge_code
    assert substitutions["E28"].product == scenario.self_pay
    assert substitutions["E28"].evidence["his_line"]["nhsa_code"] == NHSA_SELF_PAY_BILLED
    assert (substitutions["E29"].product, substitutions["E29"].his_charge_code) == (
        scenario.stent, scenario.valve.his_charge_code)
    unsettled = by_subject[(K.CONSIGNMENT_UNSETTLED, "E30")]
    assert (unsettled.unit.serial, unsettled.amount) == ("C03", Decimal("2000.00"))
    assert unsettled.evidence["covered_by_confirmed_statement"] is True
    expired = by_subject[(K.EXPIRED_IN_STOCK, "X01")]
    assert (expired.location, expired.amount) == (scenario.warehouse, Decimal("100.00"))
    assert all(finding.message for finding in by_subject.values())


def test_the_days_before_have_no_billing_finding_across_midnight_or_the_settlement_lag(scenario):
    """D2's use billed on D3 belongs to D2, where it matches; the unit expiring on D2 was still usable."""
    run = reconcile_days(scenario, scenario.d1, scenario.d2)

    assert found(run) == [(K.INVENTORY_MISMATCH, "DRS@CATH-STORE")]


def test_the_stock_table_adds_up_per_product_and_location(scenario):
    run = reconcile_days(scenario, scenario.d1, scenario.d3)
    table = {(row["product_code"], row["location_code"]): row for row in flow_table_rows(run)}

    for row in table.values():
        assert row["closing"] == (
            row["opening"] + row["received"] + row["transferred_in"] - row["transferred_out"] - row["consumed"]
            + row["refunded"] - row["returned"] - row["scrapped"] + row["adjusted"] + row["other"]
        )
        assert row["other"] == 0
    store = table[("DRS", "CATH-STORE")]
    assert (store["opening"], store["transferred_in"], store["consumed"], store["adjusted"], store["closing"]) == (
        0, 30, 10, 1, 21)
    assert {k: table[("DRS", "CW")][k] for k in ("received", "transferred_out", "scrapped", "closing")} == {
        "received": 50, "transferred_out": 30, "scrapped": 2, "closing": 18}
    stents = table[("STENT", "CATH-STORE")]
    assert (stents["transferred_in"], stents["consumed"], stents["refunded"], stents["closing"]) == (9, 9, 1, 1)
    assert table[("STENT", "CW")]["returned"] == 1
    assert table[("STENT", "CATH-CAB1")]["closing"] == 1, "a taken unit still counts at its cabinet"
    totals = run.summary["totals"]
    assert totals["received"] == {"quantity": 23 + 50, "amount": "29775.00"}  # 23 units, a lot of 50 dressings
    assert totals["consumed"]["quantity"] == 18 + 10  # units (the refunded one excluded), dressings


def test_a_later_day_opens_with_the_closing_of_the_days_before(scenario):
    before = {(r["product_code"], r["location_code"]): r["closing"]
              for r in flow_table_rows(reconcile_days(scenario, scenario.d1, scenario.d2))}
    d3 = {(r["product_code"], r["location_code"]): r["opening"]
          for r in flow_table_rows(reconcile_days(scenario, scenario.d3))}

    assert {key: value for key, value in before.items() if value} == {key: value for key, value in d3.items() if value}


def test_the_lines_are_matched_in_sql_to_the_uses_billed_lines_names(scenario, clock):
    """period_billing matches the lines naming no charge in one SQL pass: the same use as the
    reference rule (`billed_lines`' correlated subqueries) for every line it returns, the same totals."""
    s, d4 = scenario, scenario.d4
    clock.at(d4, 8)
    units = s.receive(s.stent, ["T90", "T91", "T92", "T93"])
    s.transfer(s.store, units=units)
    clock.at(d4, 12)
    tied = [s.use(units[0], "E90", local(d4, 10)), s.use(units[1], "E90", local(d4, 10))]
    s.bill(s.line("E90", s.stent, local(d4, 10)))  # at the uses' instant: the later of the two by pk
    later = s.use(units[2], "E91", local(d4, 11))
    s.bill(s.line("E91", s.stent, local(d4, 0), quantity=2))  # a date only: the first use after it that day
    s.use(units[3], "E92", local(d4, 9))
    s.bill(s.line("E92", s.valve, local(d4, 12)))  # no use of its code: placed by the encounter's use
    clock.release()
    grace = datetime.timedelta(days=reconciliation.billing_grace_days())
    for first, last in [(s.d1, s.d1), (s.d2, s.d2), (s.d3, s.d3), (d4, d4), (s.d1, d4)]:
        start, end = period_bounds(first, last)
        billing = period_billing(s.hospital, start, end, grace)
        reference = {line["his_line_id"]: line for line in billed_lines(s.hospital, start, end, grace).values(
            "his_line_id", "use_pk", "billed_for", "quantity", "amount")}
        returned = [*billing.suspect_lines, *(line for lines in billing.lines_of.values() for line in lines)]
        for line in returned:
            assert (line["use_pk"], line["billed_for"]) == (
                reference[line["his_line_id"]]["use_pk"], reference[line["his_line_id"]]["billed_for"])
        assert billing.quantity == sum(line["quantity"] for line in reference.values())
        assert cents(billing.amount) == cents(sum(line["amount"] for line in reference.values()))
    start, end = period_bounds(d4, d4)
    billing = period_billing(s.hospital, start, end, grace)
    [e90] = billing.lines_of[("E90", s.stent.his_charge_code)]
    [e91] = billing.lines_of[("E91", s.stent.his_charge_code)]
    [e92] = billing.lines_of[("E92", s.valve.his_charge_code)]
    assert (e90["use_pk"], e91["use_pk"], e92["use_pk"]) == (max(use.pk for use in tied), later.pk, None)


@pytest.mark.postgres
def test_the_billing_sums_in_sql_and_in_python_give_the_same_findings(scenario, clock, monkeypatch):
    """`period_billing` has two forms: SQL on PostgreSQL, `billed_lines` summed in Python elsewhere
    (the embedded SQLite). On the same data they differ only in how many lines they hand to the code
    and price rules (the SQL spares those that break none): same differences, evidence and totals
    (billed and used), and the same findings."""
    s, d4 = scenario, scenario.d4
    clock.at(d4, 8)
    units = s.receive(s.stent, ["T80", "T81", "T82"])
    s.transfer(s.store, units=units)
    clock.at(d4, 12)
    s.use(units[0], "E80", local(d4, 10))
    s.use(units[1], "E80", local(d4, 10))
    s.bill(s.line("E80", s.stent, local(d4, 10)))  # one of two tied uses billed
    s.use(units[2], "E81", local(d4, 11))
    s.bill(s.line("E81", s.stent, local(d4, 0), quantity=2))  # a date only, billed twice
    s.bill(s.line("E82", s.valve, local(d4, 12)))  # billed, never used
    clock.release()
    grace = datetime.timedelta(days=reconciliation.billing_grace_days())

    def difference_key(difference: tuple) -> tuple[str, str]:
        used, billed = difference
        return (used or billed)[:2]

    def key_of(line: dict) -> tuple:
        return line["his_line_id"], line["use_pk"], line["billed_for"], line["quantity"], cents(line["amount"])

    for first, last in [(s.d3, s.d3), (d4, d4), (s.d1, d4)]:
        start, end = period_bounds(first, last)
        in_sql = period_billing(s.hospital, start, end, grace)
        in_python = _period_billing_in_python(s.hospital, start, end, grace)
        assert sorted(in_sql.differences, key=difference_key) == sorted(in_python.differences, key=difference_key)
        assert in_sql.differences, "the scenario plants differing keys in every period compared"
        assert ({key: sorted(map(key_of, lines)) for key, lines in in_sql.lines_of.items()}
                == {key: sorted(map(key_of, lines)) for key, lines in in_python.lines_of.items()})
        assert {key_of(line) for line in in_sql.suspect_lines} <= {key_of(line) for line in in_python.suspect_lines}
        assert (in_sql.quantity, cents(in_sql.amount)) == (in_python.quantity, cents(in_python.amount))
        assert (in_sql.used_quantity, cents(in_sql.used_amount)) == (
            in_python.used_quantity, cents(in_python.used_amount))
        assert in_sql.used_quantity > 0

    def findings_of(outcome) -> list[tuple]:
        return [(f.kind, f.encounter, f.product_id, f.unit_id, f.expected, f.actual, f.amount, f.message, f.evidence)
                for f in outcome.findings]

    with_sql = [findings_of(reconciliation.reconcile(s.hospital, first, d4)) for first in (s.d3, d4)]
    monkeypatch.setattr(reconciliation, "period_billing", _period_billing_in_python)
    with_python = [findings_of(reconciliation.reconcile(s.hospital, first, d4)) for first in (s.d3, d4)]
    assert with_sql == with_python
    assert all(with_sql)


def test_the_unsettled_consignment_uses_in_sql_are_the_orms(scenario):
    """unsettled_consignment_uses' statement (PostgreSQL) finds the uses of its ORM form, with the
    same day of use, coverage, product, location and unit supplier: covered by a confirmed statement
    (E30), and every consignment use not on one once the overdue bound is now."""
    s = scenario
    later = timezone.now() + datetime.timedelta(days=1)
    for first, last, due_before in [(s.d1, s.d4, s.d1), (s.d1, s.d4, later), (s.d3, s.d3, later), (s.d2, s.d2, later)]:
        start, end = period_bounds(first, last)
        due = local(due_before, 0) if isinstance(due_before, datetime.date) and not isinstance(
            due_before, datetime.datetime) else due_before
        described = [(use.pk, use.used_on, use.covered, use.product.internal_code, use.location.code,
                      use.unit.supplier.name if use.unit else "")
                     for use in unsettled_consignment_uses(s.hospital, start, end, due)]
        reference = [(use.pk, use.used_on, use.covered, use.product.internal_code, use.location.code,
                      use.unit.supplier.name if use.unit else "")
                     for use in _unsettled_consignment_queryset(s.hospital, start, end, due)]
        assert described == reference, (first, last, due_before)
    start, end = period_bounds(s.d1, s.d4)
    assert {covered for _, _, covered, *_ in described} == {False}  # the last period: d2, none covered
    everything = unsettled_consignment_uses(s.hospital, start, end, later)
    assert any(use.covered for use in everything) and any(not use.covered for use in everything)


def test_the_reads_are_set_based_whatever_the_amount_of_activity(scenario, django_assert_max_num_queries):
    # 60 on 2026-12-07 (h14year), savepoints included: a query per finding (13 planted on d3 alone), use or
    # line would add more than the margin.
    with django_assert_max_num_queries(64):
        reconcile_days(scenario, scenario.d1, scenario.d3)


# --- runs ------------------------------------------------------------------------------------------


def test_asking_again_for_a_period_returns_its_run_unchanged(scenario):
    first = reconcile_days(scenario, scenario.d3)
    again = reconcile_days(scenario, scenario.d3)

    assert again.pk == first.pk
    assert ReconciliationRun.objects.filter(hospital=scenario.hospital).count() == 1
    assert again.csv_sha256 == first.csv_sha256


def test_a_rerun_replaces_the_current_run_keeps_the_earlier_and_finds_the_same(scenario, operator):
    first = reconcile_days(scenario, scenario.d3)
    second = reconcile_days(scenario, scenario.d3, rerun=True, requested_by=operator)

    first.refresh_from_db()
    assert (first.is_current, second.is_current, second.supersedes) == (False, True, first)
    assert second.requested_by == operator
    assert first.findings.count() == second.findings.count() == len(PLANTED_ON_D3)
    assert [(f.kind, f.message, f.amount, f.evidence) for f in first.findings.order_by("pk")] == [
        (f.kind, f.message, f.amount, f.evidence) for f in second.findings.order_by("pk")]
    assert second.summary["data_sha256"] == first.summary["data_sha256"]
    assert second.pdf_sha256 != first.pdf_sha256, "the run's id is printed in its report"
    assert reconcile_days(scenario, scenario.d3).pk == second.pk


def test_a_run_left_running_by_a_dead_worker_is_computed_in_place(hospital):
    day = datetime.date(2025, 3, 1)
    orphan = ReconciliationRun.objects.create(hospital=hospital, period_start=day, period_end=day)

    run = run_reconciliation(hospital=hospital, period_start=day, period_end=day)

    assert run.pk == orphan.pk
    assert run.status == ReconciliationRun.Status.DONE and run.report_pdf
    assert ReconciliationRun.objects.filter(hospital=hospital).count() == 1


def test_a_failed_run_is_marked_failed_and_computed_again_when_asked(hospital, monkeypatch):
    day = datetime.date(2025, 3, 1)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    working = reconciliation.reconcile
    monkeypatch.setattr(reconciliation, "reconcile", broken)
    with pytest.raises(RuntimeError):
        run_reconciliation(hospital=hospital, period_start=day, period_end=day)
    failed = ReconciliationRun.objects.get(hospital=hospital)
    assert (failed.status, failed.error, failed.findings.count()) == ("FAILED", "RuntimeError: disk full", 0)
    assert not failed.has_reports

    monkeypatch.setattr(reconciliation, "reconcile", working)
    run = run_reconciliation(hospital=hospital, period_start=day, period_end=day)
    assert (run.pk, run.status, run.has_reports) == (failed.pk, ReconciliationRun.Status.DONE, True)


def test_reports_that_fail_to_render_leave_the_run_done_and_are_rendered_when_asked_again(
    hospital, monkeypatch, caplog
):
    day = datetime.date(2025, 3, 1)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    working = reports.render_reports
    monkeypatch.setattr(reports, "render_reports", broken)
    run = run_reconciliation(hospital=hospital, period_start=day, period_end=day)
    assert (run.status, run.has_reports, run.report_csv.name) == (ReconciliationRun.Status.DONE, False, "")
    assert "could not render or queue the reports" in caplog.text

    monkeypatch.setattr(reports, "render_reports", working)
    again = run_reconciliation(hospital=hospital, period_start=day, period_end=day)
    assert (again.pk, again.has_reports) == (run.pk, True)
    with again.report_csv.open("rb") as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == again.csv_sha256


def test_without_in_process_tasks_a_run_is_done_at_once_and_its_reports_follow_from_their_task(
    hospital, monkeypatch, django_capture_on_commit_callbacks
):
    from inventory import tasks
    from spd.celery import app

    day = datetime.date(2025, 3, 1)
    queued = []
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setattr(tasks.render_reconciliation_reports, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        run = run_reconciliation(hospital=hospital, period_start=day, period_end=day)
    assert (run.status, run.has_reports, queued) == (ReconciliationRun.Status.DONE, False, [run.pk])

    assert tasks.render_reconciliation_reports.apply(args=[run.pk]).get() == run.pk  # what the worker runs
    run.refresh_from_db()
    assert run.has_reports and run.summary["data_sha256"]
    hashes = (run.csv_sha256, run.xlsx_sha256, run.pdf_sha256)
    tasks.render_reconciliation_reports.apply(args=[run.pk]).get()  # delivered twice: nothing changes
    run.refresh_from_db()
    assert (run.csv_sha256, run.xlsx_sha256, run.pdf_sha256) == hashes


def test_the_nightly_job_queues_again_the_reports_a_lost_task_never_rendered(hospital, monkeypatch):
    from inventory import tasks
    from spd.celery import app

    day = datetime.date(2025, 3, 1)
    render = tasks.render_reconciliation_reports.delay
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setattr(tasks.render_reconciliation_reports, "delay", lambda pk: None)  # the message is lost
    run = run_reconciliation(hospital=hospital, period_start=day, period_end=day)
    assert not run.has_reports

    monkeypatch.setitem(app.conf, "task_always_eager", True)  # tasks in process again
    monkeypatch.setattr(tasks.render_reconciliation_reports, "delay", render)
    monkeypatch.setattr(tasks.reconcile_hospital_period, "delay", lambda *args: None)
    result = run_nightly_reconciliation(today=datetime.date(2025, 3, 10))
    assert result["reports_requeued"] == [run.pk]
    run.refresh_from_db()
    assert run.has_reports


def test_a_refund_line_of_an_earlier_charge_alone_is_no_finding(hospital):
    day = datetime.date(2025, 3, 1)
    import_settlement_lines(hospital=hospital, batch="HIS-REFUND", rows=[{
        "his_line_id": "R1", "encounter": "ZY9", "his_charge_code": "HIS000001", "quantity": -1, "unit_price": "1200.00",
        "amount": "-1200.00", "settled_at": local(day, 9).isoformat(),
    }])

    run = run_reconciliation(hospital=hospital, period_start=day, period_end=day)

    assert run.findings.count() == 0
    assert run.summary["totals"]["billed"] == {"quantity": -1, "amount": "-1200.00"}


def test_a_period_ending_before_it_starts_or_too_long_is_refused(hospital):
    with pytest.raises(Refused):
        run_reconciliation(hospital=hospital, period_start=datetime.date(2025, 3, 2), period_end=datetime.date(2025, 3, 1))
    with pytest.raises(Refused):
        run_reconciliation(hospital=hospital, period_start=datetime.date(2024, 1, 1), period_end=datetime.date(2025, 3, 1))
    assert not ReconciliationRun.objects.exists()


def test_the_nightly_job_runs_each_hospital_for_the_day_whose_billing_window_closed(hospital, other_hospital):
    today = datetime.date(2025, 3, 10)

    result = run_nightly_reconciliation(today=today)

    assert nightly_day(today) == datetime.date(2025, 3, 7)
    assert result["period_start"] == result["period_end"] == "2025-03-07"
    runs = ReconciliationRun.objects.order_by("hospital__code")
    assert [(r.hospital.code, r.period_start, r.status, r.requested_by) for r in runs] == [
        ("H001", datetime.date(2025, 3, 7), "DONE", None), ("H002", datetime.date(2025, 3, 7), "DONE", None)]
    run_nightly_reconciliation(today=today)
    assert ReconciliationRun.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_requests_for_one_period_at_once_make_one_run(hospital, settings):
    """The second waits on the first's row lock and then answers the finished run."""
    day = datetime.date(2025, 3, 1)
    settings.SPD_RECON_TEST_PAUSE_SECONDS = 1
    results, errors = [], []

    def request() -> None:
        try:
            results.append(run_reconciliation(hospital=hospital, period_start=day, period_end=day).pk)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors
    assert len(results) == 2 and len(set(results)) == 1
    run = ReconciliationRun.objects.get(hospital=hospital)
    assert run.status == ReconciliationRun.Status.DONE


def backends() -> int:
    """The connections open to this database (the test's own included)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_outside_a_transaction_reads_on_a_connection_of_its_own_beside_its_table(scenario, monkeypatch):
    """A task's run (no transaction around it): the reads go on a second connection while the first
    writes the table; the same findings and table as one connection computes, and the second
    connection closed after."""
    reads_on = []
    reading = reconciliation._reconcile_apart

    def spied(*args):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            reads_on.append((threading.current_thread(), cursor.fetchone()[0]))
        return reading(*args)

    monkeypatch.setattr(reconciliation, "_reconcile_apart", spied)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own = cursor.fetchone()[0]
    before = backends()

    run = reconcile_days(scenario, scenario.d3)

    assert run.status == ReconciliationRun.Status.DONE
    [(thread, backend)] = reads_on
    assert thread is not threading.current_thread() and backend != own
    assert backends() == before
    assert found(run) == PLANTED_ON_D3
    start, end = period_bounds(scenario.d3, scenario.d3)
    assert flow_table_rows(run) == [row.as_dict() for row in stock_flows(scenario.hospital, start, end)]
    with transaction.atomic():  # in a transaction: one connection, as tests and requests run it
        again = reconcile_days(scenario, scenario.d3, rerun=True)
        assert reads_on == [(thread, backend)]
    assert [(f.kind, f.message, f.amount) for f in again.findings.order_by("pk")] == [
        (f.kind, f.message, f.amount) for f in run.findings.order_by("pk")]
    assert flow_table_rows(again) == flow_table_rows(run)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_reads_fail_on_their_connection_is_failed_with_nothing_written(scenario, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("statement timeout")

    monkeypatch.setattr(reconciliation, "reconcile", broken)
    before = backends()
    with pytest.raises(RuntimeError):
        reconcile_days(scenario, scenario.d3)

    failed = ReconciliationRun.objects.get(hospital=scenario.hospital)
    assert (failed.status, failed.error) == ("FAILED", "RuntimeError: statement timeout")
    assert (failed.findings.count(), failed.flow_rows.count()) == (0, 0)
    assert backends() == before


# --- reports ---------------------------------------------------------------------------------------


def read_stored(field_file) -> bytes:
    with field_file.open("rb") as stored:
        return stored.read()


def test_the_reports_are_stored_with_the_hash_of_their_bytes_and_parse_back(scenario):
    run = reconcile_days(scenario, scenario.d3)

    stored = {fmt: read_stored(getattr(run, f"report_{fmt}")) for fmt in ("csv", "xlsx", "pdf")}
    for fmt, data in stored.items():
        assert hashlib.sha256(data).hexdigest() == getattr(run, f"{fmt}_sha256")
    assert stored["pdf"].startswith(b"%PDF")
    assert stored["csv"].startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(stored["csv"].decode("utf-8-sig"))))
    assert ["数据 SHA-256", run.summary["data_sha256"]] in rows
    findings_at = rows.index(["发现"])
    assert rows[findings_at + 1][:3] == ["序号", "类型", "院内码"]
    assert len([r for r in rows[findings_at + 2:] if r and r[0].isdigit()]) == len(PLANTED_ON_D3)
    workbook = load_workbook(io.BytesIO(stored["xlsx"]))
    assert workbook.sheetnames == ["汇总", "发现", "进销存"]
    assert workbook["发现"].max_row == 1 + len(PLANTED_ON_D3)
    assert workbook["进销存"].max_row == 1 + len(flow_table_rows(run))
    assert workbook.properties.created == run.finished_at.astimezone(datetime.UTC).replace(tzinfo=None, microsecond=0)


def test_the_reports_of_a_run_are_the_same_bytes_when_made_again(scenario, clock):
    run = reconcile_days(scenario, scenario.d3)

    time.sleep(2.1)  # past the 2-second resolution of zip dates: nothing in a file may follow the clock
    clock.at(scenario.today + datetime.timedelta(days=1), 3)
    again = render_reports(report_content(ReconciliationRun.objects.get(pk=run.pk)))

    assert {fmt: hashlib.sha256(data).hexdigest() for fmt, data in again.items()} == {
        "csv": run.csv_sha256, "xlsx": run.xlsx_sha256, "pdf": run.pdf_sha256}


def sheet_values(sheet) -> list[list]:
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


def as_read_back(rows: list[list]) -> list[list]:
    """Rows as openpyxl reads them back: empty text is an empty cell, an amount a float."""
    return [[None if value == "" else float(value) if isinstance(value, Decimal) else value for value in row]
            for row in rows]


def test_the_xlsx_report_reads_back_as_the_reports_rows_with_text_as_text(scenario):
    run = reconcile_days(scenario, scenario.d3)
    content = report_content(run)

    workbook = load_workbook(io.BytesIO(read_stored(run.report_xlsx)))

    summary = [[reports.TITLE], *content.header, [], reports.SUMMARY_HEADER, *content.summary, [],
               reports.KINDS_HEADER, *content.kinds]
    assert sheet_values(workbook["汇总"]) == [row + [None] * (4 - len(row)) for row in as_read_back(summary)]
    assert sheet_values(workbook["发现"]) == as_read_back([reports.FINDINGS_HEADER, *content.findings])
    assert sheet_values(workbook["进销存"]) == as_read_back([reports.INVENTORY_HEADER, *content.inventory])
    findings = workbook["发现"]
    assert findings.freeze_panes == "A2" and findings["A1"].font.b and not findings["A2"].font.b
    assert findings["D2"].data_type == "s" and findings["L2"].number_format == "#,##0.00"


def test_the_pdf_sums_the_csvs_stock_table_per_location_and_names_the_csv_by_its_hash(scenario):
    run = reconcile_days(scenario, scenario.d3)
    rows = list(csv.reader(io.StringIO(read_stored(run.report_csv).decode("utf-8-sig"))))
    detail = rows[rows.index(["进销存"]) + 2:]
    expected: dict[tuple, list[int]] = {}
    for row in detail:
        totals = expected.setdefault((row[0], row[1]), [0] * (len(row) - 3))  # the row count, the quantities
        for index, value in enumerate([1, *map(int, row[4:])]):
            totals[index] += value
    grand = [sum(column) for column in zip(*expected.values(), strict=True)]

    strings = shown_strings(read_stored(run.report_pdf))

    assert len(expected) > 1 and grand[0] == len(detail) == len(flow_table_rows(run))
    assert rows_through(strings, reports.LOCATION_TOTALS_HEADER, "合计") == [
        [code, name, *map(str, totals)] for (code, name), totals in [*expected.items(), (("合计", ""), grand)]]
    text = "".join(strings)
    assert f"进销存明细共 {len(detail)} 行，见本次对账的 CSV / XLSX 报告，CSV 文件 SHA-256：{run.csv_sha256}" in text
    assert run.summary["data_sha256"] in text
    assert all(strings[i:i + 4] != reports.INVENTORY_HEADER[:4] for i in range(len(strings)))  # no detail


# --- API -------------------------------------------------------------------------------------------

api_urls = pytest.mark.django_db  # served by the real URLconf
RUNS = "/api/v1/reconciliation/runs/"


@api_urls
def test_auditors_list_and_read_runs_with_findings_hashes_and_report_links(scenario, auditor):
    run = reconcile_days(scenario, scenario.d3)
    client = api_client_for(auditor)

    listed = client.get(RUNS, {"is_current": "true", "period_start": scenario.d3.isoformat()})
    assert listed.status_code == 200
    [row] = listed.json()["results"]
    assert (row["id"], row["status"], row["summary"]["data_sha256"]) == (run.pk, "DONE", run.summary["data_sha256"])
    assert "inventory" not in row["summary"]
    detail = client.get(f"{RUNS}{run.pk}/").json()
    assert sorted((f["kind"], f["encounter"] or f["serial"] or f"{f['product_code']}@CATH-STORE")
                  for f in detail["findings"]) == PLANTED_ON_D3
    assert detail["reports"]["pdf"]["sha256"] == run.pdf_sha256
    download = client.get(detail["reports"]["xlsx"]["url"])
    assert download.status_code == 200
    assert download["X-Content-SHA256"] == run.xlsx_sha256
    assert hashlib.sha256(b"".join(download.streaming_content)).hexdigest() == run.xlsx_sha256
    assert client.get(f"{RUNS}{run.pk}/report.pdf", HTTP_ACCEPT="application/pdf").status_code == 200


@api_urls
def test_a_run_whose_reports_are_being_rendered_says_so_over_the_api(hospital, auditor):
    rendering = ReconciliationRun.objects.create(hospital=hospital, period_start=datetime.date(2025, 3, 1),
                                                 period_end=datetime.date(2025, 3, 1), status="DONE")
    client = api_client_for(auditor)

    detail = client.get(f"{RUNS}{rendering.pk}/").json()
    assert (detail["reports_ready"], detail["reports"]) == (False, {"csv": None, "xlsx": None, "pdf": None})
    pending = client.get(f"{RUNS}{rendering.pk}/report.csv", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert pending.status_code == 409
    assert pending.json()["code"] == "REPORTS_PENDING" and "正在生成" in pending.json()["detail"]
    rendering.status = ReconciliationRun.Status.FAILED
    rendering.save()
    assert client.get(f"{RUNS}{rendering.pk}/report.csv").status_code == 404


@api_urls
def test_findings_filter_by_kind_and_the_table_is_served_per_row(scenario, auditor):
    run = reconcile_days(scenario, scenario.d3)
    client = api_client_for(auditor)

    substitutions = client.get(f"{RUNS}{run.pk}/findings/", {"kind": "SUBSTITUTION"}).json()
    assert sorted(f["encounter"] for f in substitutions["results"]) == ["E27", "E28", "E29"]
    both = client.get(f"{RUNS}{run.pk}/findings/?kind=USED_NOT_BILLED&kind=BILLED_NOT_USED").json()
    assert both["count"] == 2
    assert client.get(f"{RUNS}{run.pk}/findings/", {"kind": "NONSENSE"}).status_code == 400
    table = client.get(f"{RUNS}{run.pk}/inventory/", {"limit": 500}).json()
    assert table["count"] == len(flow_table_rows(run))
    assert {"product_code", "location_code", "opening", "closing"} <= set(table["results"][0])


@api_urls
def test_auditors_change_nothing(hospital, auditor):
    response = api_client_for(auditor).post(RUNS, {"period_start": "2025-03-01"}, format="json")

    assert response.status_code == 403
    assert not ReconciliationRun.objects.exists()


@api_urls
def test_an_operator_runs_a_period_once_and_again_only_when_asked(hospital, operator):
    client = api_client_for(operator)

    made = client.post(RUNS, {"period_start": "2025-03-01", "period_end": "2025-03-02"}, format="json")
    again = client.post(RUNS, {"period_start": "2025-03-01", "period_end": "2025-03-02"}, format="json")
    rerun = client.post(RUNS, {"period_start": "2025-03-01", "period_end": "2025-03-02", "rerun": True}, format="json")

    assert (made.status_code, again.status_code, rerun.status_code) == (201, 200, 201)
    assert made.json()["id"] == again.json()["id"] != rerun.json()["id"]
    assert rerun.json()["supersedes"] == made.json()["id"]
    assert made.json()["requested_by"] == operator.pk
    bad = client.post(RUNS, {"period_start": "2025-03-02", "period_end": "2025-03-01"}, format="json")
    assert bad.status_code == 400


@api_urls
def test_another_hospitals_run_does_not_exist_for_the_caller(hospital, other_hospital):
    day = datetime.date(2025, 3, 1)
    theirs = run_reconciliation(hospital=other_hospital, period_start=day, period_end=day)
    client = api_client_for(factories.UserFactory(hospital=hospital, roles=["auditor"]))

    assert client.get(f"{RUNS}{theirs.pk}/").status_code == 404
    assert client.get(f"{RUNS}{theirs.pk}/report.csv").status_code == 404
    assert client.get(f"{RUNS}{theirs.pk}/findings/").status_code == 404
    assert client.get(RUNS).json()["count"] == 0


# --- command ---------------------------------------------------------------------------------------


def test_the_command_reconciles_a_day_and_prints_the_run(hospital):
    out = io.StringIO()

    call_command("reconcile", "--hospital", "H001", "--date", "2025-03-01", stdout=out)

    run = ReconciliationRun.objects.get(hospital=hospital)
    assert f"run {run.pk} H001 2025-03-01–2025-03-01 DONE" in out.getvalue()
    assert run.pdf_sha256 in out.getvalue()
