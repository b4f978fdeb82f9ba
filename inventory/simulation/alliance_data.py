"""Benchmark data at alliance scale: a county alliance (医共体) of 18 hospitals, one shared catalog.

`manage.py seed_scale --alliance` and `bench/run.py --alliance` build it on PostgreSQL, with the
same generator as the one-hospital dataset (inventory/simulation/scale_data.py: COPY, foreign-key
triggers off for the load, consistency checked afterwards), run once per member:

- the alliance catalog: 12,000 entries (UDI-DI, 医保 code, class, manufacturer, registration
  certificate) kept by the lead hospital, with the alliance's supply agreements (a fifth of them
  under a VBP contract number) and three VBP contracts with an allocation for every member;
- 18 members of three sizes (`MEMBER_KINDS`): the lead county hospital, two county hospitals and
  fifteen township health centres, each adopting a realistic subset of the catalog — the most
  used entries of each class first, then a random share of the rest — as its own products linked
  to the entries (its own internal and HIS codes, agreements made from the alliance's);
- each member's year of movements in proportion to its size, as the one-hospital dataset's:
  receipts, putaway, replenishment of stores and cabinets, cabinet traffic, uses with charges and
  HIS lines (with their deliberate discrepancies), returns and scraps;
- the alliance's own flows: central orders (集中采购) received at the regional warehouse (the lead
  hospital's central warehouse) and distributed to every member as alliance transfers of kind
  DISTRIBUTION — in the lead's books a RECEIPT, a TRANSFER to its in-transit location and an
  ALLIANCE_OUT; in the member's an ALLIANCE_IN into its central warehouse, then replenishment of
  its stores and uses — a share of every member's low-value consumption (`CENTRAL_SHARE`); and a
  few transfers between members (ordinary and emergency), the last ones still in transit.

IDs: each member's generator numbers its rows from 1, as the one-hospital generator does; they are
shifted at COPY time past the rows already loaded (`_MemberGenerator.copy`), references included.

After the load every member's `ledger_against_stock` must find nothing (as for one hospital).
"""
from __future__ import annotations

import datetime
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from devices.identification import gtin_check_digit
from inventory.models import (
    AcceptanceRecord,
    AllianceAgreement,
    AllianceEntry,
    AllianceTransfer,
    AllianceTransferLine,
    CabinetSession,
    CentralOrder,
    CentralOrderAllocation,
    Certificate,
    Charge,
    ChargeDelivery,
    Consumption,
    DeliveryLine,
    DeliveryNote,
    Department,
    HisSettlementLine,
    Hospital,
    Location,
    LotBalance,
    LotCostLayer,
    LotMovementLayer,
    Manufacturer,
    Movement,
    Product,
    PurchaseOrder,
    PurchaseOrderLine,
    Role,
    StockOrder,
    Supplier,
    SupplierSettlement,
    SupplierSettlementEvent,
    SupplierSettlementLine,
    SupplyAgreement,
    TagBinding,
    TrackingMode,
    Unit,
    User,
    VbpAllocation,
    VbpContract,
)
from inventory.simulation.scale_data import (
    DAY,
    DEPARTMENTS,
    EXIT_SHARE,
    HOUR,
    LOT_NAMES,
    LOTS_PER_USE,
    MARKER_TABLE,
    PRICE_CHANGE,
    SECOND_SUPPLIER,
    UNIT_NAMES,
    Size,
    _ensure_marker_table,
    _Generator,
    _ProductInfo,
    check_consistency,
    wipe,
)
from inventory.validators import make_uscc

__all__ = ["ALLIANCE_SIZES", "AllianceSize", "build_alliance", "ensure_alliance", "existing_alliance"]

ALLIANCE_NAME = "建德医共体（基准测试）"
ALLIANCE_AUDITOR = "alliance-auditor"
TRANSIT_CODE = "ALLIANCE-TRANSIT"  # as services.transfers names it
CENTRAL_SHARE = 0.4  # of a member's low-value consumption, supplied through the centre's distributions
VBP_CONTRACTS = 3
NEAR_EXPIRY = 0.1  # of the flows' lots: expiring within 15–85 days of the dataset's end
VBP_ENTRIES = 20  # per contract, among the most used low-value entries every member adopts
TOWNSHIP_DEPARTMENTS = [
    ("GP", "全科", Department.Kind.CLINICAL), ("EMER", "急诊科", Department.Kind.CLINICAL),
    ("WARD", "住院部", Department.Kind.CLINICAL), ("PHC", "公共卫生科", Department.Kind.CLINICAL),
    ("DENT", "口腔科", Department.Kind.CLINICAL), ("TCM", "中医科", Department.Kind.CLINICAL),
]
COUNTY_HOSPITALS = ["建德市中医院", "建德市妇幼保健院"]
TOWNSHIPS = ["大同", "乾潭", "梅城", "寿昌", "杨村桥", "下涯", "大洋", "三都", "更楼", "莲花", "航头", "大慈岩",
             "李家", "钦堂", "新安江", "洋溪", "洋尾", "安仁"]


@dataclass(frozen=True)
class MemberKind:
    """One size of member hospital: its share of the catalog and its year's volumes."""

    label: str
    count: int
    unit_entries: int  # high-value (unit-tracked) entries adopted
    lot_entries: int  # low-value (lot-tracked) entries adopted
    departments: int
    cabinets: int
    operating_rooms: int
    movements: int  # target of the member's own ledger: cabinet take/return traffic fills up to it (a
    # member without cabinets has what its units and lots make: ~36,000 for a township centre)
    consumptions: int
    held_units: int


@dataclass(frozen=True)
class AllianceSize:
    name: str
    entries: int
    unit_share: float  # of the entries, high-value unit-tracked
    kinds: tuple[MemberKind, ...]
    suppliers: int
    manufacturers: int
    transfers: int  # ordinary transfers between members over the year (a tenth of them emergency)
    in_transit: int  # of them, dispatched in the last days and not yet received
    seed: int = 20260118

    @property
    def members(self) -> int:
        return sum(kind.count for kind in self.kinds)


ALLIANCE_SIZES = {
    "alliance": AllianceSize(
        "alliance", entries=12_000, unit_share=0.25, suppliers=150, manufacturers=300, transfers=120, in_transit=6,
        kinds=(
            MemberKind("县人民医院（牵头医院）", 1, unit_entries=2_400, lot_entries=5_600, departments=20, cabinets=12,
                       operating_rooms=4, movements=850_000, consumptions=120_000, held_units=80_000),
            MemberKind("县级医院", 2, unit_entries=800, lot_entries=3_200, departments=12, cabinets=4,
                       operating_rooms=2, movements=230_000, consumptions=30_000, held_units=18_000),
            MemberKind("乡镇卫生院", 15, unit_entries=120, lot_entries=1_080, departments=4, cabinets=0,
                       operating_rooms=0, movements=36_000, consumptions=8_000, held_units=3_000),
        ),
    ),
    # CI: the same shape, tiny (six members, hundreds of movements each): tests/test_bench_smoke.py.
    "alliance-small": AllianceSize(
        "alliance-small", entries=240, unit_share=0.25, suppliers=8, manufacturers=10, transfers=6, in_transit=1,
        kinds=(
            MemberKind("县人民医院（牵头医院）", 1, unit_entries=40, lot_entries=100, departments=3, cabinets=2,
                       operating_rooms=1, movements=3_000, consumptions=400, held_units=250),
            MemberKind("县级医院", 1, unit_entries=20, lot_entries=60, departments=2, cabinets=1,
                       operating_rooms=0, movements=1_000, consumptions=150, held_units=80),
            MemberKind("乡镇卫生院", 4, unit_entries=4, lot_entries=36, departments=2, cabinets=0,
                       operating_rooms=0, movements=300, consumptions=60, held_units=30),
        ),
    ),
}


@dataclass
class _Entry:
    index: int
    pk: int
    code: str
    name: str
    specification: str
    category: str
    udi_di: str
    nhsa_code: str
    manufacturer_id: int
    certificate_id: int
    unit_of_measure: str
    is_unit: bool
    supplier_ids: list[int]
    prices: list[tuple[int, Decimal, Decimal]]
    agreement_ids: list[int] = field(default_factory=list)  # per supplier, the current alliance agreement


@dataclass
class _Member:
    index: int
    code: str
    name: str
    kind: MemberKind
    size: Size
    entries: list[int]  # adopted entry indices, most used first within each class (units first)
    hospital: Hospital | None = None
    generator: _MemberGenerator | None = None


@dataclass
class _Flow:
    """Stock sent from one member to another: a distribution of the centre or a transfer."""

    pk: int
    kind: str
    sender: int  # member index
    receiver: int
    entry: int  # entry index
    lot: str
    quantity: int  # sent
    kept: int  # received at the sender with it and kept there (ordinary transfers)
    price: Decimal
    expiry: datetime.date
    receipt_day: int
    dispatched: int  # seconds since the period's start
    received: int | None  # None: still in transit
    supplier: int = 0
    reason: str = ""


class _MemberGenerator(_Generator):
    """The one-hospital generator for one member: the alliance's catalog and parties, the member's
    own hospital, staff and locations; the alliance's flows added to its ledger; ids shifted."""

    def __init__(self, builder: _AllianceBuilder, member: _Member, today: datetime.date,
                 progress: Callable[[str], None]) -> None:
        super().__init__(member.size, today, progress)
        self.builder, self.member = builder, member
        self.offsets: dict[type, int] = {}

    # --- master data

    @transaction.atomic
    def extra_locations(self) -> None:
        self.transit = Location.objects.create(hospital=self.hospital, code=TRANSIT_CODE, name="医共体调拨在途",
                                               kind=Location.Kind.IN_TRANSIT)

    def master_data(self) -> None:
        size, member, builder = self.size, self.member, self.builder
        code, prefix = member.code, member.code.lower()
        if member.index == 0:  # the lead exists already: it keeps the catalog
            self.hospital = member.hospital = builder.lead
        else:
            self.hospital = member.hospital = Hospital.objects.create(code=code, name=member.name,
                                                                      alliance=ALLIANCE_NAME)
        hospital = self.hospital
        self.warehouse_department = Department.objects.create(
            hospital=hospital, code="WH", name="物资供应科" if member.index else "医共体SPD中心（区域仓）",
            kind=Department.Kind.WAREHOUSE,
        )
        catalog = DEPARTMENTS if member.kind.cabinets or member.kind.operating_rooms else TOWNSHIP_DEPARTMENTS
        self.departments = Department.objects.bulk_create(
            Department(hospital=hospital, code=dcode, name=name, kind=kind) for dcode, name, kind in catalog[: size.departments]
        )
        self.locations(central_warehouse_name="区域仓（中心库）" if member.index == 0 else "中心库")
        self.staff(builder.groups, keeper=f"{prefix}-keeper", auditor=f"{prefix}-auditor", nurse_prefix=f"{prefix}-nurse-")
        self.cabinet_controllers(code_prefix=code)

        # Products: the adopted entries, linked, under the member's own codes, at the alliance's prices.
        entries = [builder.entries[index] for index in member.entries]
        products = Product.objects.bulk_create([
            Product(
                hospital=hospital, alliance_entry_id=entry.pk, internal_code=f"{code}-{entry.code}", name=entry.name,
                specification=entry.specification, category=entry.category, manufacturer_id=entry.manufacturer_id,
                registration_certificate_id=entry.certificate_id, udi_di=entry.udi_di, nhsa_code=entry.nhsa_code,
                his_charge_code=f"{code}{entry.index:06d}", is_high_value=entry.is_unit,
                tracking=TrackingMode.UNIT if entry.is_unit else TrackingMode.LOT, unit_of_measure=entry.unit_of_measure,
                is_consignment=entry.is_unit and entry.index % 10 == 3,
            )
            for entry in entries
        ], batch_size=2000)
        agreements, self.unit_products, self.lot_products = [], [], []
        agreement_end = self.today + datetime.timedelta(days=730)
        self.product_of_entry: dict[int, _ProductInfo] = {}
        self.agreement_of_entry: dict[int, SupplyAgreement] = {}
        for i, (entry, product) in enumerate(zip(entries, products, strict=True)):
            for supplier_index, supplier_id in enumerate(entry.supplier_ids):
                for number, (from_day, *by_supplier) in enumerate(entry.prices):
                    until = entry.prices[number + 1][0] - 1 if number + 1 < len(entry.prices) else None
                    agreement = SupplyAgreement(
                        hospital=hospital, supplier_id=supplier_id, product=product, unit_price=by_supplier[supplier_index],
                        valid_from=self.start_day + datetime.timedelta(days=from_day),
                        valid_to=self.start_day + datetime.timedelta(days=until) if until is not None else agreement_end,
                        platform_reference=f"GPO-{entry.code}-{supplier_index}",
                        vbp_contract="VBP-JD-2026" if entry.index % 5 == 0 else "",
                        alliance_agreement_id=entry.agreement_ids[supplier_index] if until is None else None,
                    )
                    agreements.append(agreement)
                    if supplier_index == 0 and until is None:
                        self.agreement_of_entry[entry.index] = agreement
            info = _ProductInfo(product.pk, product.udi_di, entry.supplier_ids, entry.prices, product.his_charge_code,
                                product.nhsa_code, product.is_consignment, self._users_of(i, entry.is_unit))
            (self.unit_products if entry.is_unit else self.lot_products).append(info)
            self.product_of_entry[entry.index] = info
        SupplyAgreement.objects.bulk_create(agreements, batch_size=5000)
        self.products_by_pk = {p.pk: p for p in self.unit_products + self.lot_products}
        index_of = {department.pk: index for index, department in enumerate(self.departments)}
        self.cabinets_of = defaultdict(list)
        for cabinet in self.cabinets:
            self.cabinets_of[index_of[cabinet.department_id]].append(cabinet)
        self._step(f"{code} master data: {len(products):,} products adopted, {len(agreements):,} agreements, "
                   f"{size.locations + 1} locations")

    # --- the plan: the one-hospital plan, with the alliance's flows

    def plan(self) -> None:
        size = self.size
        used_units = size.consumptions // 2
        used_lots = size.consumptions - used_units
        self.plan_units(size.held_units, used_units, round((size.held_units + used_units) * EXIT_SHARE))
        central = 0 if self.member.index == 0 else round(used_lots * CENTRAL_SHARE)
        self.plan_lots(used_lots - central)
        self.plan_flows()
        later = len(self.uses) + sum(1 for use in self.uses if use.consignment)
        later += sum(1 for stay in self.residencies if "take" in stay[4])
        self.plan_cabinet_traffic(max(0, (size.movements - len(self.movements) - later) // 2))
        self.uses.sort(key=lambda use: use.t)
        for pk, use in enumerate(self.uses, start=1):
            use.pk = pk
        self.write_use_movements()
        self.rng.shuffle(self.residencies)
        self._step(f"{self.member.code} planned: {len(self.uses):,} uses, {len(self.movements):,} movements")

    def plan_flows(self) -> None:
        """This member's side of the alliance's flows: what it sends (a receipt from the supplier at
        its central warehouse, the dispatch to its in-transit location, the ALLIANCE_OUT when the other
        member receives it) and what it receives (the ALLIANCE_IN; a distribution then replenishes
        the member's stores and is used as any lot)."""
        me = self.member.index
        for flow in self.builder.flows:
            if flow.sender == me:
                self._send(flow)
            elif flow.receiver == me and flow.received is not None:
                self._receive(flow)

    def _send(self, flow: _Flow) -> None:
        product = self.product_of_entry[flow.entry]
        supplier = flow.supplier
        note, t0, line_no = self.note(supplier, flow.receipt_day)
        received = flow.quantity + flow.kept
        line = len(self.delivery_lines) + 1
        self.delivery_lines.append((line, note, line_no, "", product.pk, flow.lot, "", flow.expiry, None, received,
                                    flow.price, False))
        self.move(t0, Movement.Kind.RECEIPT, product.pk, lot=flow.lot, quantity=received, target=self.cw.pk,
                  user=self.keeper.pk, document=(Movement.DocumentType.DELIVERY_NOTE, note))
        self.balance(product.pk, flow.lot, self.cw.pk, flow.expiry, flow.price)[0] += flow.kept
        order, _t = self.order(self.transit.pk, self.day_of(flow.dispatched))
        self.move(flow.dispatched, Movement.Kind.TRANSFER, product.pk, lot=flow.lot, quantity=flow.quantity,
                  source=self.cw.pk, target=self.transit.pk, user=self.keeper.pk,
                  document=(Movement.DocumentType.STOCK_ORDER, order), note=_issue_number(flow))
        in_transit = self.balance(product.pk, flow.lot, self.transit.pk, flow.expiry, flow.price)
        if flow.received is None:
            in_transit[0] += flow.quantity
            return
        self.move(flow.received, Movement.Kind.ALLIANCE_OUT, product.pk, lot=flow.lot, quantity=flow.quantity,
                  source=self.transit.pk, user=self.keeper.pk, document=(Movement.DocumentType.ALLIANCE_TRANSFER, flow.pk))

    def _receive(self, flow: _Flow) -> None:
        product = self.product_of_entry[flow.entry]
        self.move(flow.received, Movement.Kind.ALLIANCE_IN, product.pk, lot=flow.lot, quantity=flow.quantity,
                  target=self.cw.pk, user=self.keeper.pk, document=(Movement.DocumentType.ALLIANCE_TRANSFER, flow.pk))
        balance = self.balance(product.pk, flow.lot, self.cw.pk, flow.expiry, flow.price)
        balance[0] += flow.quantity
        if flow.kind != AllianceTransfer.Kind.DISTRIBUTION:
            return
        rng, last = self.rng, self.days - 1
        arrival = self.day_of(flow.received)
        for _ in range(self.poisson(1.5 / LOTS_PER_USE)):
            if balance[0] < 10 or arrival + 1 > last:
                break
            store = self.stores[rng.choice(product.departments)]
            day1 = rng.randint(arrival + 1, last)
            order, t1 = self.order(store.pk, day1)
            moved = min(balance[0], rng.randint(10, 60))
            balance[0] -= moved
            self.move(t1, Movement.Kind.TRANSFER, product.pk, lot=flow.lot, quantity=moved, source=self.cw.pk,
                      target=store.pk, user=self.keeper.pk, document=(Movement.DocumentType.STOCK_ORDER, order))
            at_store = self.balance(product.pk, flow.lot, store.pk, flow.expiry, flow.price)
            at_store[0] += moved
            left = moved
            for _ in range(self.poisson(1 / 1.5)):
                quantity = min(left, rng.randint(1, 3))
                if quantity <= 0 or day1 >= last:
                    break
                left -= quantity
                at_store[0] -= quantity
                use_at = rng.randint(day1 + 1, last) * DAY + rng.randint(8 * HOUR, 20 * HOUR)
                self.uses.append(_use(use_at, product, store.pk, store.department_id,
                                      self.nurse_of[store.department_id], quantity, flow.price, flow.lot,
                                      product.supplier_ids[0]))

    # --- writing: the one-hospital load, its ids shifted past the rows already there

    def load(self) -> None:
        with connection.cursor() as cursor:
            for model in _SHIFTED:
                cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {model._meta.db_table}")
                self.offsets[model] = cursor.fetchone()[0]
        super().load()

    def copy(self, cursor, model, columns: list[str], rows: Iterable[tuple]) -> None:
        super().copy(cursor, model, columns, self._shifted(model, columns, rows))

    def _shifted(self, model, columns: list[str], rows: Iterable[tuple]) -> Iterable[tuple]:
        offsets = self.offsets
        shifts = [(columns.index(column), offsets[target]) for column, target in _SHIFTED.get(model, {}).items()
                  if column in columns and offsets[target]]
        if model is Unit:
            serial_columns = [columns.index(name) for name in ("udi_raw", "udi", "serial")]
            epc = columns.index("epc")
        if model is Movement:
            by_document = {Movement.DocumentType.DELIVERY_NOTE: offsets[DeliveryNote],
                           Movement.DocumentType.STOCK_ORDER: offsets[StockOrder],
                           Movement.DocumentType.CABINET_SESSION: offsets[CabinetSession],
                           Movement.DocumentType.CONSUMPTION: offsets[Consumption]}
            document_type, document_id = columns.index("document_type"), columns.index("document_id")
            key = columns.index("idempotency_key")
        for row in rows:
            row = list(row)
            if model is Unit and offsets[Unit]:
                old = f"SN{row[0]:09d}"
                new = f"SN{row[0] + offsets[Unit]:09d}"
                for index in serial_columns:
                    row[index] = row[index].replace(old, new)
                if row[epc]:
                    row[epc] = f"E280{row[0] + offsets[Unit]:020X}"
            elif model is TagBinding and offsets[Unit]:
                row[2] = f"E280{row[1] + offsets[Unit]:020X}"
            elif model is CabinetSession and offsets[Unit]:
                for index in (columns.index("taken"), columns.index("returned")):
                    items = json.loads(row[index])
                    for item in items:
                        item["unit"] += offsets[Unit]
                        item["epc"] = f"E280{item['unit']:020X}"
                    row[index] = json.dumps(items)
            elif model is Movement:
                row[document_id] += by_document.get(row[document_type], 0)
            for index, offset in shifts:
                if row[index] is not None:
                    row[index] += offset
            if model is Movement:
                row[key] = f"bench:{row[0]}"
            yield tuple(row)


_SHIFTED: dict[type, dict[str, type]] = {  # per table: column → the generated table its value is an id of
    DeliveryNote: {"id": DeliveryNote},
    DeliveryLine: {"id": DeliveryLine, "note_id": DeliveryNote},
    AcceptanceRecord: {"id": AcceptanceRecord, "line_id": DeliveryLine},
    Unit: {"id": Unit, "delivery_line_id": DeliveryLine},
    TagBinding: {"id": TagBinding, "unit_id": Unit},
    LotBalance: {"id": LotBalance},
    LotCostLayer: {"id": LotCostLayer, "balance_id": LotBalance},
    StockOrder: {"id": StockOrder},
    CabinetSession: {"id": CabinetSession},
    Consumption: {"id": Consumption, "unit_id": Unit},
    Charge: {"id": Charge, "consumption_id": Consumption},
    ChargeDelivery: {"id": ChargeDelivery, "charge_id": Charge},
    HisSettlementLine: {"id": HisSettlementLine, "charge_id": Charge, "use_id": Consumption},
    SupplierSettlement: {"id": SupplierSettlement},
    SupplierSettlementLine: {"id": SupplierSettlementLine, "settlement_id": SupplierSettlement,
                             "consumption_id": Consumption, "unit_id": Unit},
    SupplierSettlementEvent: {"id": SupplierSettlementEvent, "settlement_id": SupplierSettlement},
    Movement: {"id": Movement, "unit_id": Unit},
    LotMovementLayer: {"id": LotMovementLayer, "movement_id": Movement},
}


def _use(t, product, location, department, user, quantity, price, lot, supplier):
    from inventory.simulation.scale_data import _Use

    return _Use(t, product, location, department, user, quantity, price, lot=lot, supplier=supplier)


def _issue_number(flow: _Flow) -> str:
    return f"DB{flow.pk:07d}"


# --- the alliance ---------------------------------------------------------------------------------


class _AllianceBuilder:
    def __init__(self, size: AllianceSize, today: datetime.date, progress: Callable[[str], None]) -> None:
        self.size, self.today, self.progress = size, today, progress
        self.rng = random.Random(size.seed)
        self.end_day = today - datetime.timedelta(days=1)
        self.start_day = today - datetime.timedelta(days=365)
        self.days = (self.end_day - self.start_day).days + 1
        self.base = timezone.make_aware(datetime.datetime.combine(self.start_day, datetime.time())).astimezone(datetime.UTC)
        self.entries: list[_Entry] = []
        self.members: list[_Member] = []
        self.flows: list[_Flow] = []

    def catalog(self) -> None:
        """Parties, the 12,000 entries with their certificates and alliance agreements (ORM, bulk)."""
        size, rng = self.size, self.rng
        self.groups = {role.value: Group.objects.get_or_create(name=role.value)[0] for role in Role}
        self.lead = Hospital.objects.create(code="JD01", name="建德市第一人民医院（牵头医院）", alliance=ALLIANCE_NAME,
                                            is_lead=True)
        manufacturers = Manufacturer.objects.bulk_create(
            Manufacturer(name=f"联盟基准制造商{i:04d}", uscc=make_uscc(f"91330182MD{i:07d}"), country="CN")
            for i in range(size.manufacturers)
        )
        suppliers = Supplier.objects.bulk_create(
            Supplier(name=f"联盟基准配送商{i:04d}", uscc=make_uscc(f"91330182ME{i:07d}"), contact=f"0571-6400{i:04d}")
            for i in range(size.suppliers)
        )
        valid_from, valid_to = self.start_day - datetime.timedelta(days=400), self.today + datetime.timedelta(days=3 * 365)
        Certificate.objects.bulk_create(
            Certificate(kind=kind, number=f"{prefix}JD{supplier.pk:06d}", supplier=supplier, valid_from=valid_from,
                        valid_to=valid_to)
            for supplier in suppliers
            for kind, prefix in ((Certificate.Kind.BUSINESS_LICENCE, "BL"), (Certificate.Kind.DISTRIBUTION_LICENCE, "DL"))
        )
        registrations = Certificate.objects.bulk_create(
            Certificate(kind=Certificate.Kind.REGISTRATION, number=f"浙械注准{2020 + i % 6}2{i:06d}",
                        manufacturer=manufacturers[i % len(manufacturers)], valid_from=valid_from, valid_to=valid_to)
            for i in range(size.entries)
        )
        units = round(size.entries * size.unit_share)
        rows = []
        for i in range(size.entries):
            is_unit = i < units
            body = f"0698{i:09d}"
            names = UNIT_NAMES if is_unit else LOT_NAMES
            rows.append(AllianceEntry(
                alliance=ALLIANCE_NAME, keeper=self.lead, code=f"JD{i:06d}", name=f"{names[i % len(names)]} {i:05d}",
                specification=f"型号 {rng.choice('ABCDEFG')}-{rng.randint(1, 99)}",
                category="高值耗材" if is_unit else "低值耗材", udi_di=body + gtin_check_digit(body),
                nhsa_code=f"C{rng.randint(1, 14):02d}{i:08d}{rng.randint(0, 9999999999):010d}"[:20],
                manufacturer_id=registrations[i].manufacturer_id, registration_certificate=registrations[i],
                unit_of_measure="个" if is_unit else rng.choice(["个", "支", "包", "套"]), is_high_value=is_unit,
                tracking=TrackingMode.UNIT if is_unit else TrackingMode.LOT,
            ))
        created = AllianceEntry.objects.bulk_create(rows, batch_size=2000)
        agreements = []
        agreement_end = self.today + datetime.timedelta(days=730)
        for i, entry in enumerate(created):
            is_unit = i < units
            base = Decimal(rng.randint(800, 30000) if is_unit else rng.randint(100, 20000)) / (1 if is_unit else 100)
            base = base.quantize(Decimal("0.01"))
            supplier_ids = [suppliers[i % len(suppliers)].pk]
            if is_unit and rng.random() < SECOND_SUPPLIER:
                supplier_ids.append(suppliers[(i * 7 + 3) % len(suppliers)].pk)
            prices = [(-400, base, (base * Decimal("1.08")).quantize(Decimal("0.01")))]
            if rng.random() < PRICE_CHANGE:
                new = (base * Decimal("0.9")).quantize(Decimal("0.01"))
                prices.append((rng.randint(60, self.days - 60), new, (new * Decimal("1.08")).quantize(Decimal("0.01"))))
            record = _Entry(i, entry.pk, entry.code, entry.name, entry.specification, entry.category, entry.udi_di,
                            entry.nhsa_code, entry.manufacturer_id, entry.registration_certificate_id,
                            entry.unit_of_measure, is_unit, supplier_ids, prices)
            self.entries.append(record)
            from_day, *current = prices[-1]
            for supplier_index, supplier_id in enumerate(supplier_ids):
                agreements.append((record, AllianceAgreement(
                    entry_id=entry.pk, supplier_id=supplier_id, unit_price=current[supplier_index],
                    valid_from=self.start_day + datetime.timedelta(days=max(from_day, -400)), valid_to=agreement_end,
                    platform_reference=f"GPO-{entry.code}-{supplier_index}",
                    vbp_contract="VBP-JD-2026" if i % 5 == 0 else "",
                )))
        for record, agreement in zip(
            (record for record, _ in agreements),
            AllianceAgreement.objects.bulk_create([agreement for _, agreement in agreements], batch_size=5000),
            strict=True,
        ):
            record.agreement_ids.append(agreement.pk)
        auditor = User.objects.create(username=ALLIANCE_AUDITOR, hospital=self.lead, password="!", first_name="医共体审计")
        auditor.groups.add(self.groups[Role.ALLIANCE_AUDITOR])
        self.progress(f"  alliance catalog: {len(created):,} entries, {len(agreements):,} alliance agreements, "
                      f"{len(suppliers)} suppliers, {len(manufacturers)} manufacturers")

    def plan_members(self) -> None:
        size, rng = self.size, self.rng
        units = [e.index for e in self.entries if e.is_unit]
        lots = [e.index for e in self.entries if not e.is_unit]
        number = 0
        for level, kind in enumerate(size.kinds):
            for of_kind in range(kind.count):
                code = f"JD{number + 1:02d}"
                if number == 0:
                    name = self.lead.name
                elif level == 1:
                    name = COUNTY_HOSPITALS[of_kind % len(COUNTY_HOSPITALS)]
                else:
                    name = f"建德市{TOWNSHIPS[of_kind % len(TOWNSHIPS)]}镇卫生院"
                adopted = _adopt(rng, units, kind.unit_entries) + _adopt(rng, lots, kind.lot_entries)
                member_size = Size(
                    f"{size.name}-{code}", products=len(adopted), departments=kind.departments, cabinets=kind.cabinets,
                    operating_rooms=kind.operating_rooms, suppliers=size.suppliers, manufacturers=size.manufacturers,
                    movements=kind.movements, consumptions=kind.consumptions, held_units=kind.held_units,
                    unit_product_share=kind.unit_entries / len(adopted), seed=size.seed + number,
                )
                self.members.append(_Member(number, code, name, kind, member_size, adopted))
                number += 1

    def plan_flows(self) -> None:
        """The distributions of the centre (a share of each member's low-value use) and the
        transfers between members, decided before any member is generated (both sides need them)."""
        rng, last = self.rng, self.days - 1
        lead = set(self.members[0].entries)
        for member in self.members[1:]:
            shared = [index for index in member.entries if index in lead and not self.entries[index].is_unit]
            used_lots = member.size.consumptions - member.size.consumptions // 2
            for _ in range(max(1, round(used_lots * CENTRAL_SHARE * LOTS_PER_USE))):
                entry = self.entries[shared[int(len(shared) * rng.random() ** 1.6)]]
                day0 = rng.randint(0, last - 10)
                dispatched = (day0 + rng.randint(1, 3)) * DAY + rng.randint(8 * HOUR, 10 * HOUR)
                self._flow(AllianceTransfer.Kind.DISTRIBUTION, 0, member.index, entry, day0, rng.randint(100, 600), 0,
                           dispatched, dispatched + rng.randint(2 * HOUR, 5 * HOUR))
        pairs = [(a, b) for a in self.members for b in self.members if a is not b]
        for number in range(self.size.transfers):
            in_transit = number >= self.size.transfers - self.size.in_transit
            for _attempt in range(50):
                sender, receiver = rng.choice(pairs)
                shared = sorted((set(sender.entries) & set(receiver.entries)) - {e.index for e in self.entries if e.is_unit})
                if shared:
                    break
            entry = self.entries[rng.choice(shared[:200])]
            day0 = rng.randint(last - 3, last - 1) if in_transit else rng.randint(0, last - 5)
            dispatched = (day0 + 1) * DAY + rng.randint(9 * HOUR, 16 * HOUR)
            if in_transit:
                dispatched = min(dispatched, last * DAY + 12 * HOUR)
            kind = AllianceTransfer.Kind.EMERGENCY if number % 10 == 9 else AllianceTransfer.Kind.ORDINARY
            self._flow(kind, sender.index, receiver.index, entry, day0, rng.randint(10, 80), rng.randint(50, 300),
                       dispatched, None if in_transit else dispatched + rng.randint(3 * HOUR, 20 * HOUR),
                       reason="急救用耗材短缺，应急调拨" if kind == AllianceTransfer.Kind.EMERGENCY else "近效期调剂")
        self.flows.sort(key=lambda flow: flow.dispatched)
        for pk, flow in enumerate(self.flows, start=1):
            flow.pk = pk
            flow.lot = f"AL{pk:07d}"

    def _flow(self, kind, sender, receiver, entry: _Entry, day0, quantity, kept, dispatched, received, reason=""):
        price = _price(entry, day0)
        # A tenth expire within the dashboard's 90-day window: the near-expiry stock it suggests moving.
        soon = self.rng.random() < NEAR_EXPIRY
        expiry = self.today + datetime.timedelta(days=self.rng.randint(15, 85) if soon else self.rng.randint(120, 900))
        self.flows.append(_Flow(0, kind, sender, receiver, entry.index, "", quantity, kept, price, expiry, day0,
                                dispatched, received, supplier=entry.supplier_ids[0], reason=reason))

    def at(self, t: int) -> datetime.datetime:
        return self.base + datetime.timedelta(seconds=t)

    def documents(self) -> dict[str, int]:
        """The flows' documents: the central orders (lead's purchase orders, lines, allocations per
        member) and the transfers with their lines, DISTRIBUTION ones linked to the allocations."""
        lead = self.members[0]
        keeper = {member.index: member.generator.keeper for member in self.members}
        cw = {member.index: member.generator.cw for member in self.members}
        transit = {member.index: member.generator.transit for member in self.members}
        product = {member.index: member.generator.product_of_entry for member in self.members}
        orders: dict[tuple[datetime.date, int], list[_Flow]] = defaultdict(list)
        for flow in self.flows:
            if flow.kind == AllianceTransfer.Kind.DISTRIBUTION:
                day = self.start_day + datetime.timedelta(days=flow.receipt_day)
                orders[(day.replace(day=1), flow.supplier)].append(flow)
        allocation_of: dict[int, CentralOrderAllocation] = {}
        with transaction.atomic():
            for (month, supplier), flows in sorted(orders.items()):
                ordered = timezone.make_aware(datetime.datetime.combine(month, datetime.time(9)))
                order = PurchaseOrder.objects.create(
                    hospital=lead.hospital, supplier_id=supplier, number=f"JC{month:%Y%m}-{supplier:04d}",
                    status=PurchaseOrder.Status.DELIVERED, ordered_at=ordered, promised_date=month,
                    created_by=keeper[0],
                )
                central = CentralOrder.objects.create(alliance=ALLIANCE_NAME, purchase_order=order,
                                                      regional_warehouse=cw[0], created_by=keeper[0],
                                                      created_at=ordered)
                by_entry: dict[int, list[_Flow]] = defaultdict(list)
                for flow in flows:
                    by_entry[flow.entry].append(flow)
                for line_no, (entry, entry_flows) in enumerate(sorted(by_entry.items()), start=1):
                    quantity = sum(flow.quantity for flow in entry_flows)
                    agreement = lead.generator.agreement_of_entry[entry]
                    line = PurchaseOrderLine.objects.create(
                        order=order, line_no=line_no, product_id=product[0][entry].pk, agreement=agreement,
                        quantity=quantity, unit_price=entry_flows[0].price, platform_reference=agreement.platform_reference,
                        delivered_quantity=quantity,
                    )
                    per_member: dict[int, list[_Flow]] = defaultdict(list)
                    for flow in entry_flows:
                        per_member[flow.receiver].append(flow)
                    for member, member_flows in per_member.items():
                        allocated = sum(flow.quantity for flow in member_flows)
                        allocation = CentralOrderAllocation.objects.create(
                            central_order=central, order_line=line, member=self.members[member].hospital,
                            member_product_id=product[member][entry].pk, quantity=allocated,
                            distributed_quantity=allocated,
                        )
                        for flow in member_flows:
                            allocation_of[flow.pk] = allocation
            transfers, lines = [], []
            for flow in self.flows:
                received = flow.received is not None
                sender, receiver = self.members[flow.sender], self.members[flow.receiver]
                dispatched = self.at(flow.dispatched)
                created = dispatched - datetime.timedelta(hours=2)
                allocation = allocation_of.get(flow.pk)
                transfers.append(AllianceTransfer(
                    pk=flow.pk, alliance=ALLIANCE_NAME, kind=flow.kind,
                    status=AllianceTransfer.Status.RECEIVED if received else AllianceTransfer.Status.IN_TRANSIT,
                    from_hospital=sender.hospital, to_hospital=receiver.hospital, issue_number=_issue_number(flow),
                    receipt_number=f"DR{flow.pk:07d}", source_location=cw[flow.sender],
                    in_transit_location=transit[flow.sender], destination=cw[flow.receiver],
                    central_order_id=allocation.central_order_id if allocation else None, reason=flow.reason,
                    created_by=keeper[flow.sender], created_at=created,
                    decided_by=None if flow.kind != AllianceTransfer.Kind.ORDINARY else keeper[flow.receiver],
                    decided_at=None if flow.kind != AllianceTransfer.Kind.ORDINARY else created + datetime.timedelta(hours=1),
                    dispatched_by=keeper[flow.sender], dispatched_at=dispatched,
                    received_by=keeper[flow.receiver] if received else None,
                    received_at=self.at(flow.received) if received else None,
                ))
                lines.append(AllianceTransferLine(
                    transfer_id=flow.pk, product_id=product[flow.sender][flow.entry].pk,
                    receiving_product_id=product[flow.receiver][flow.entry].pk, lot=flow.lot, expiry=flow.expiry,
                    quantity=flow.quantity, value=flow.price * flow.quantity,
                    scanned_quantity=flow.quantity if received else 0,
                    received_quantity=flow.quantity if received else 0, allocation=allocation,
                ))
            AllianceTransfer.objects.bulk_create(transfers, batch_size=2000)
            AllianceTransferLine.objects.bulk_create(lines, batch_size=2000)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence('inventory_alliancetransfer', 'id'), "
                    "(SELECT COALESCE(MAX(id), 1) FROM inventory_alliancetransfer))"
                )
            self._vbp()
        return {"central_orders": len(orders), "transfers": len(transfers)}

    def _vbp(self) -> None:
        """Three VBP contracts of the alliance over the period, each on common low-value entries
        every member adopted, with an allocation per member (its reported demand)."""
        common = set.intersection(*(set(member.entries) for member in self.members))
        common_lots = sorted(index for index in common if not self.entries[index].is_unit)
        for number in range(VBP_CONTRACTS):
            chosen = common_lots[number::VBP_CONTRACTS][:VBP_ENTRIES]
            contract = VbpContract.objects.create(
                number=f"VBP-JD-2026-{number + 1:02d}", name=f"浙江省医用耗材带量采购（第{number + 1}批）",
                owner_hospital=self.lead, ratio=Decimal("0.800"), start_date=self.start_day,
                period=VbpContract.Period.ONE_YEAR,
            )
            contract.products.set([member.generator.product_of_entry[index].pk for member in self.members
                                   for index in chosen])
            VbpAllocation.objects.bulk_create(
                VbpAllocation(contract=contract, hospital=member.hospital,
                              reported_demand=max(10, member.size.consumptions // 20))
                for member in self.members
            )


def _adopt(rng: random.Random, entries: list[int], count: int) -> list[int]:
    """What a member adopts of one class: the most used first (70 %), then a random share of the rest."""
    count = min(count, len(entries))
    popular = round(count * 0.7)
    rest = rng.sample(entries[popular:], count - popular)
    return entries[:popular] + sorted(rest)


def _price(entry: _Entry, day: int) -> Decimal:
    current = entry.prices[0]
    for price in entry.prices:
        if price[0] <= day:
            current = price
    return current[1]


# --- build and reuse ------------------------------------------------------------------------------


def existing_alliance() -> dict | None:
    """The marker of the alliance dataset in this database, if one is there and its lead still is."""
    if MARKER_TABLE not in connection.introspection.table_names():
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT info FROM {MARKER_TABLE} WHERE id = 1")
        row = cursor.fetchone()
    if row is None:
        return None
    info = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    if "alliance" not in info or not Hospital.objects.filter(pk=info.get("hospital_id"), is_lead=True).exists():
        return None
    return info


def ensure_alliance(size: AllianceSize, *, rebuild: bool = False, progress: Callable[[str], None] = print) -> dict:
    """The alliance dataset of `size` in this database: the existing one when it matches, else built."""
    if connection.vendor != "postgresql":
        raise RuntimeError("the alliance dataset is loaded with PostgreSQL COPY: set DATABASE_URL=postgres://…")
    found = existing_alliance()
    if found is not None and not rebuild and found.get("alliance_size") == _size_dict(size):
        progress(f"alliance dataset {size.name!r} found (built {found['built_at']}), reused")
        return found
    if found is None and Hospital.objects.exists() and not rebuild:
        from inventory.simulation.scale_data import existing_dataset

        if existing_dataset() is None:
            raise RuntimeError("this database holds other data: use an empty database, or rebuild (it empties it)")
    return build_alliance(size, progress=progress)


def _size_dict(size: AllianceSize) -> dict:
    return json.loads(json.dumps(asdict(size)))


def build_alliance(size: AllianceSize, *, today: datetime.date | None = None,
                   progress: Callable[[str], None] = print) -> dict:
    """Empty the database's application tables and generate the alliance; return its marker."""
    started = time.monotonic()
    today = today or timezone.localdate()
    _ensure_marker_table()
    wipe()
    progress(f"building alliance dataset {size.name!r}: {size.members} members, {size.entries:,} catalog entries")
    builder = _AllianceBuilder(size, today, progress)
    builder.catalog()
    builder.plan_members()
    builder.plan_flows()
    members = []
    for member in builder.members:
        generator = _MemberGenerator(builder, member, today, progress)
        member.generator = generator
        generator.master_data()
        generator.plan()
        generator.load()
        problems = check_consistency(generator.hospital)
        if problems:
            raise RuntimeError(f"member {member.code}: generated data is inconsistent: " + "; ".join(problems))
        counts = generator.counts()
        members.append({"code": member.code, "name": member.name, "kind": member.kind.label,
                        "hospital_id": generator.hospital.pk, "products": counts["products"],
                        "movements": counts["movements"], "uses": counts["uses"], "units_in_stock": counts["units_in_stock"],
                        "lot_balances": counts["lot_balances"]})
        # What the generator keeps in memory is written: let it go before the next member.
        generator.units, generator.uses, generator.lot_balances, generator.sessions = [], [], {}, {}
        generator.delivery_lines, generator.tag_bindings, generator.residencies = [], [], []
    documents = builder.documents()
    builder.members[0].generator.analyse()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE inventory_product")
        cursor.execute("VACUUM ANALYZE inventory_alliancetransfer")
        cursor.execute("VACUUM ANALYZE inventory_alliancetransferline")
    totals = {name: sum(member[name] for member in members) for name in ("products", "movements", "uses",
                                                                          "units_in_stock", "lot_balances")}
    info = {
        "alliance": ALLIANCE_NAME, "alliance_size": _size_dict(size), "size": {"name": size.name},
        "hospital_id": builder.lead.pk, "period_start": builder.start_day.isoformat(),
        "period_end": builder.end_day.isoformat(), "built_at": timezone.now().isoformat(timespec="seconds"),
        "build_seconds": round(time.monotonic() - started, 1),
        "counts": {"entries": len(builder.entries), "members": len(members), **totals, **documents,
                   "distributions": sum(1 for f in builder.flows if f.kind == AllianceTransfer.Kind.DISTRIBUTION)},
        "members": members,
    }
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {MARKER_TABLE} (id, info) VALUES (1, %s)", [json.dumps(info)])
    progress(f"alliance dataset built in {info['build_seconds']} s: "
             + ", ".join(f"{k} {v:,}" for k, v in info["counts"].items()))
    return info
