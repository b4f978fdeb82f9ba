"""A month of history for the demo's lead hospital, so that the first visit has something to show.

Four weeks of work at the lead hospital, all through the services: stock issued to the cath lab,
orthopaedic and ophthalmology stores; nurses opening the cath-lab smart cabinet and using what
they took; uses from the stores (units and lots, consignment among them) with their charges
queued for the HIS; two refunds; the HIS's settlement lines for those uses, imported; a confirmed
consignment statement; and the 进销存 reconciliation of the month, whose findings, 进销存 table and
chart of use against billing are there at once.

The HIS lines plant a few discrepancies of each kind the reconciliation finds in billing — so an
auditor sees each finding with its evidence: 漏收 (USED_NOT_BILLED), 虚记 (BILLED_NOT_USED), 多记
(BILLED_QTY_EXCEEDS_USED), 串换 (SUBSTITUTION), PRICE_ABOVE_PURCHASE, PRICE_NOT_ADJUSTED (an
agreement of another supplier that ended before the use, at the old price), MULTI_SUPPLIER_HIGHEST_PRICE
(a second supplier's dearer agreement), ZERO_COST_BILLED (the gifted cannulas), and one
CONSIGNMENT_UNSETTLED (a use registered after its supplier's statement was confirmed).
INVENTORY_MISMATCH and EXPIRED_IN_STOCK are not planted: the services keep the ledger and the stock
in step and lock expired stock, which is what those two checks watch over.

Backdated where the services take a time — uses (`ClinicalContext.occurred_at`), cabinet door
events, HIS settlement times, delivery notes; issues to the stores and refunds are recorded at
the time of seeding, because their services record them when they happen.

Seeded once: a later `seed_demo` finds the history's first use and leaves everything as it is.
"""
from __future__ import annotations

import datetime
import random
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from devices.models import Device
from inventory.actors import Actor
from inventory.models import (
    CabinetSession,
    Charge,
    Consumption,
    Finding,
    HisSettlementLine,
    Hospital,
    Location,
    LotBalance,
    Owner,
    Product,
    ReconciliationRun,
    SupplierSettlement,
    SupplyAgreement,
    Unit,
    UnitStatus,
    User,
)
from inventory.services.cabinets import close_session, open_session
from inventory.services.consumption import ClinicalContext, consume_lot, consume_unit, refund_consumption
from inventory.services.dated_entry import history_checks_suspended
from inventory.services.his import import_settlement_lines
from inventory.services.reconciliation import run_reconciliation
from inventory.services.settlements import confirm_settlement, draft_settlement
from inventory.services.stock import LotQuantity, transfer_stock

HISTORY_DAYS = 28
ENCOUNTER_PREFIX = "ZY"
BATCH = "demo-history"


@dataclass
class Use:
    """One use of the history and how the HIS bills it (`bill` names a planted discrepancy)."""

    consumption: Consumption
    bill: str = "ok"


def seed_history(*, hospital: Hospital, users: dict[str, User], suppliers: dict, today: datetime.date) -> None:
    """Four weeks of use, billing and reconciliation at `hospital` (see the module docstring); once."""
    if HisSettlementLine.objects.filter(hospital=hospital, import_batch=BATCH).exists():
        return
    history = _History(hospital, users, suppliers, today)
    # Its uses are dated in the past, its stock received now: not a history the ledger checks would
    # accept from a person entering paper records (inventory.services.dated_entry).
    with history_checks_suspended():
        history.issue_to_stores()
        history.cabinet_sessions()
        history.store_uses()
        history.consignment_statement()
        history.late_consignment_use()
        history.refunds()
        history.price_history()
        history.settle()
    run_reconciliation(hospital=hospital, period_start=today - datetime.timedelta(days=HISTORY_DAYS),
                       period_end=today, requested_by=users["auditor"])


def history_counts(hospital: Hospital) -> dict[str, int]:
    runs = ReconciliationRun.objects.filter(hospital=hospital)
    return {
        "history_consumptions": Consumption.objects.filter(hospital=hospital).count(),
        "history_refunds": Consumption.objects.filter(hospital=hospital, refunded_at__isnull=False).count(),
        "history_his_settlement_lines": HisSettlementLine.objects.filter(hospital=hospital).count(),
        "history_consignment_statements": SupplierSettlement.objects.filter(hospital=hospital).count(),
        "history_reconciliation_runs": runs.count(),
        "history_findings": Finding.objects.filter(run__in=runs).count(),
    }


class _History:
    def __init__(self, hospital: Hospital, users: dict[str, User], suppliers: dict, today: datetime.date) -> None:
        self.hospital, self.users, self.suppliers, self.today = hospital, users, suppliers, today
        self.rng = random.Random(20261101)
        self.keeper = Actor(user=users["keeper"])
        self.nurse = Actor(user=users["nurse"])
        self.operator = Actor(user=users["operator"])
        self.places = {location.code: location for location in Location.objects.filter(hospital=hospital)}
        self.uses: list[Use] = []
        self.encounters = 0

    # --- time and people --------------------------------------------------------------------------

    def at(self, days_ago: int, hour: int, minute: int = 0) -> datetime.datetime:
        day = self.today - datetime.timedelta(days=days_ago)
        return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=timezone.get_current_timezone())

    def encounter(self, when: datetime.datetime) -> str:
        self.encounters += 1
        return f"{ENCOUNTER_PREFIX}{timezone.localtime(when):%Y%m%d}{self.encounters:04d}"

    def context(self, department_code: str, when: datetime.datetime, surgery: str = "") -> ClinicalContext:
        department = self.places[f"{department_code}-STORE"].department
        return ClinicalContext(
            encounter=self.encounter(when), department=department, occurred_at=when,
            surgery_id=f"SS{timezone.localtime(when):%Y%m%d}{self.encounters:03d}" if surgery else "",
            surgery_name=surgery, doctor=self.rng.choice(("D1021", "D1034", "D2007", "D2015")),
        )

    # --- stock -------------------------------------------------------------------------------------

    def _units(self, categories: tuple[str, ...], count: int, owner: str = Owner.HOSPITAL) -> list[Unit]:
        return list(
            Unit.objects.filter(
                hospital=self.hospital, status=UnitStatus.IN_STOCK, owner=owner,
                location__kind=Location.Kind.CENTRAL_WAREHOUSE, product__category__in=categories,
            ).select_related("product").order_by("pk")[:count]
        )

    def _lot(self, internal_code: str, quantity: int) -> LotQuantity:
        balance = (
            LotBalance.objects.filter(
                hospital=self.hospital, product__internal_code=internal_code, quantity__gte=quantity,
                location__kind=Location.Kind.CENTRAL_WAREHOUSE,
            ).select_related("product", "location").order_by("unit_cost", "pk").first()
        )
        return LotQuantity(product=balance.product, lot=balance.lot, quantity=quantity, from_location=balance.location)

    def issue_to_stores(self) -> None:
        """What the stores hold for the month: coronary units and syringes for the cath lab, gifted
        cannulas too, screws and plates (some on consignment) and gauze for orthopaedics, lenses for
        ophthalmology."""
        self.cath_units = self._units(("冠脉药物洗脱支架", "PTCA球囊扩张导管", "PTCA导引导丝"), 12)
        self.ortho_units = self._units(("骨科螺钉", "骨科接骨板"), 7)
        self.ortho_consignment = self._units(("骨科螺钉",), 4, owner=Owner.SUPPLIER)
        self.oph_units = self._units(("人工晶体",), 3)
        self.syringes = self._lot("DZ25003", 300)  # 5 ml
        self.gauze = self._lot("DZ28003", 500)  # 10 × 10 cm, 8 layers
        gifted = LotBalance.objects.filter(hospital=self.hospital, unit_cost=0, quantity__gte=20).select_related(
            "product", "location").order_by("pk").first()
        self.gift = LotQuantity(product=gifted.product, lot=gifted.lot, quantity=20, from_location=gifted.location)
        for store, units, lots in (
            ("CATH-STORE", self.cath_units, [self.syringes, self.gift]),
            ("ORTHO-STORE", self.ortho_units + self.ortho_consignment, [self.gauze]),
            ("OPH-STORE", self.oph_units, []),
        ):
            transfer_stock(actor=self.keeper, hospital=self.hospital, to_location=self.places[store], units=units,
                           lots=lots, idempotency_key=f"demo-history-issue-{store}", note="月初备货")

    def _use_unit(self, unit: Unit, department_code: str, when: datetime.datetime, actor: Actor, bill: str = "ok",
                  surgery: str = "") -> Consumption:
        consumption = consume_unit(
            actor=actor, hospital=self.hospital, unit=unit, context=self.context(department_code, when, surgery),
            idempotency_key=f"demo-history-use-unit-{unit.pk}",
        )
        self.uses.append(Use(consumption, bill))
        return consumption

    def _use_lot(self, lot: LotQuantity, quantity: int, department_code: str, when: datetime.datetime,
                 bill: str = "ok") -> Consumption:
        key = f"demo-history-use-lot-{lot.product.pk}-{len(self.uses)}"
        consumption = consume_lot(
            actor=self.operator, hospital=self.hospital, product=lot.product, lot=lot.lot, quantity=quantity,
            context=self.context(department_code, when), idempotency_key=key,
            location=self.places[f"{department_code}-STORE"],
        )
        self.uses.append(Use(consumption, bill))
        return consumption

    def cabinet_sessions(self) -> None:
        """Three evenings a nurse badges in at the cath-lab cabinet, takes one unit and uses it."""
        cabinet = self.places["CATH-CAB1"]
        device = Device.objects.get(code=f"{self.hospital.code}-CATH-CAB1")
        badge = User.objects.get(pk=self.users["nurse"].pk).badge or ""
        for days_ago in (25, 18, 11):
            opened = self.at(days_ago, 19, 40)
            open_session(device=device, cabinet=cabinet, occurred_at=opened, badge=badge)
            inside = list(Unit.objects.filter(location=cabinet, status=UnitStatus.IN_CABINET).order_by("pk"))
            if len(inside) < 2:
                return
            session = close_session(device=device, cabinet=cabinet, occurred_at=opened + datetime.timedelta(minutes=2),
                                    epcs=[unit.epc for unit in inside[1:]])
            if session.status != CabinetSession.Status.CLOSED:
                return  # the cabinet has been used since (a demo database seeded before history existed)
            taken = Unit.objects.get(pk=inside[0].pk)
            self._use_unit(taken, "CATH", opened + datetime.timedelta(minutes=35), self.nurse, surgery="PCI")

    def store_uses(self) -> None:
        """The month's uses from the stores, a few a day, with the planted billing discrepancies."""
        cath_bills = ["ok", "above_purchase", "ok", "not_billed", "substituted", "ok", "old_price", "ok",
                      "highest_price", "ok", "above_purchase", "ok"]
        for index, unit in enumerate(self.cath_units):
            days_ago = HISTORY_DAYS - 1 - index * 2
            self._use_unit(unit, "CATH", self.at(days_ago, 10 + index % 6, 15), self.nurse, cath_bills[index],
                           surgery="PCI")
        ortho_bills = ["ok", "ok", "substituted", "ok", "not_billed", "ok", "ok"]
        for index, unit in enumerate(self.ortho_units):
            self._use_unit(unit, "ORTHO", self.at(HISTORY_DAYS - 2 - index * 3, 14, 30), self.operator,
                           ortho_bills[index], surgery="骨折切开复位内固定术")
        for index, unit in enumerate(self.ortho_consignment[:3]):
            self._use_unit(unit, "ORTHO", self.at(24 - index * 6, 15, 10), self.operator,
                           surgery="腰椎后路融合术")
        for index, unit in enumerate(self.oph_units):
            self._use_unit(unit, "OPH", self.at(22 - index * 7, 9, 45), self.operator, surgery="白内障超声乳化术")
        lot_bills = {5: "billed_more", 13: "billed_more"}
        for days_ago in range(HISTORY_DAYS - 1, 0, -2):
            self._use_lot(self.syringes, self.rng.randrange(2, 6), "CATH", self.at(days_ago, 11, 5),
                          lot_bills.get(days_ago, "ok"))
        for days_ago in range(HISTORY_DAYS - 2, 0, -4):
            self._use_lot(self.gauze, self.rng.randrange(5, 21), "ORTHO", self.at(days_ago, 16, 20))
        for days_ago in (20, 9):
            self._use_lot(self.gift, 2, "CATH", self.at(days_ago, 13, 0), "zero_cost")

    def consignment_statement(self) -> None:
        """The orthopaedic supplier's consignment statement for the first three weeks, confirmed."""
        supplier = self.ortho_consignment[0].supplier if self.ortho_consignment else None
        if supplier is None:
            return
        start, end = self.today - datetime.timedelta(days=HISTORY_DAYS), self.today - datetime.timedelta(days=8)
        statement = draft_settlement(hospital=self.hospital, supplier=supplier, period_start=start, period_end=end,
                                     actor=self.operator)
        confirm_settlement(settlement=statement, actor=self.operator)

    def late_consignment_use(self) -> None:
        """A screw used ten days ago, registered after the statement was confirmed: CONSIGNMENT_UNSETTLED."""
        if len(self.ortho_consignment) > 3:
            self._use_unit(self.ortho_consignment[3], "ORTHO", self.at(10, 16, 40), self.operator,
                           surgery="腰椎后路融合术")

    def refunds(self) -> None:
        """Two uses reversed (退费): a balloon opened by mistake, and a box of syringes recorded twice."""
        unit_use = next(use for use in self.uses if use.consumption.unit_id and use.bill == "ok"
                        and use.consumption.location.code == "CATH-STORE")
        lot_use = next(use for use in self.uses if use.consumption.product_id == self.syringes.product.pk
                       and use.bill == "ok")
        for use, reason in ((unit_use, "WRONG_PATIENT"), (lot_use, "DUPLICATE_ENTRY")):
            refund_consumption(actor=self.operator, consumption=use.consumption, reason_code=reason,
                               to_quarantine=False, idempotency_key=f"demo-history-refund-{use.consumption.pk}")
            use.bill = "refunded"

    def price_history(self) -> None:
        """Agreements behind two price findings: another supplier's older, dearer price of a product
        (ended before the month), and a second supplier's dearer price in force now."""
        for use in self.uses:
            product = use.consumption.product
            if use.bill == "old_price":
                SupplyAgreement.objects.get_or_create(
                    hospital=self.hospital, product=product, supplier=self.suppliers["XD"],
                    defaults={"unit_price": Decimal("1280.00"), "is_active": False,
                              "valid_from": self.today - datetime.timedelta(days=500),
                              "valid_to": self.today - datetime.timedelta(days=151),
                              "platform_reference": f"ZJYC-OLD-{product.internal_code}"},
                )
            elif use.bill == "highest_price":
                current = SupplyAgreement.objects.filter(hospital=self.hospital, product=product).first()
                SupplyAgreement.objects.get_or_create(
                    hospital=self.hospital, product=product, supplier=self.suppliers["XD"],
                    defaults={"unit_price": use.consumption.unit_price + Decimal("40.00"), "is_active": True,
                              "valid_from": current.valid_from, "valid_to": current.valid_to,
                              "platform_reference": f"ZJYC-XD-{product.internal_code}"},
                )

    # --- the HIS's settlement ----------------------------------------------------------------------

    def settle(self) -> None:
        """Import the HIS settlement lines of the month: each use billed the next morning, except
        where a discrepancy is planted, and two lines for uses that never happened."""
        now = timezone.now()
        rows: list[dict] = []
        other_codes = dict(
            Product.objects.filter(hospital=self.hospital, category="PTCA球囊扩张导管").values_list(
                "internal_code", "his_charge_code").order_by("internal_code")[:1]
        )
        for use in self.uses:
            consumption = use.consumption
            charge = Charge.objects.get(consumption=consumption, kind=Charge.Kind.CHARGE)
            settled = min(consumption.occurred_at + datetime.timedelta(hours=20), now - datetime.timedelta(minutes=5))
            price, quantity, code = consumption.unit_price, consumption.quantity, charge.his_charge_code
            nhsa = charge.nhsa_code
            if use.bill == "not_billed":
                continue
            if use.bill == "above_purchase":
                price = price + Decimal("55.00")
            elif use.bill == "old_price":
                price = Decimal("1280.00")
            elif use.bill == "highest_price":
                price = price + Decimal("40.00")
            elif use.bill == "zero_cost":
                price = Decimal("6.50")
            elif use.bill == "billed_more":
                quantity += 2
            elif use.bill == "substituted":
                code = next(iter(other_codes.values())) if consumption.product.category != "PTCA球囊扩张导管" else (
                    f"{code[:-1]}9")
            rows.append(self._line(f"H{charge.pk:07d}", charge, code, nhsa, quantity, price, settled))
            if use.bill == "refunded":
                refund = Charge.objects.get(consumption=consumption, kind=Charge.Kind.REFUND)
                rows.append(self._line(f"H{refund.pk:07d}R", refund, code, nhsa, -quantity, price,
                                       now - datetime.timedelta(minutes=4)))
        for number, days_ago in enumerate((17, 6), start=1):  # billed, never used (虚记)
            product = self.cath_units[number].product
            when = self.at(days_ago, 17, 30)
            rows.append({
                "his_line_id": f"HX{number:06d}", "encounter": self.encounter(when),
                "his_charge_code": product.his_charge_code, "nhsa_code": product.nhsa_code, "quantity": 1,
                "unit_price": str(self.cath_units[number].unit_cost), "amount": str(self.cath_units[number].unit_cost),
                "settled_at": when.isoformat(),
            })
        import_settlement_lines(hospital=self.hospital, rows=rows, batch=BATCH)

    @staticmethod
    def _line(line_id: str, charge: Charge, code: str, nhsa: str, quantity: int, price: Decimal,
              settled: datetime.datetime) -> dict:
        return {
            "his_line_id": line_id, "encounter": charge.encounter, "his_charge_code": code, "nhsa_code": nhsa,
            "quantity": quantity, "unit_price": str(price), "amount": str(price * quantity),
            "settled_at": settled.isoformat(), "spd_charge_id": charge.pk,
        }
