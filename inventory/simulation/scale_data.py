"""Benchmark data at hospital scale: one large tertiary hospital's year, consistent, loaded with COPY.

`manage.py seed_scale` and `bench/run.py` build it on PostgreSQL. The full size is the issue's
"large tertiary hospital": 20,000 products, 60 locations, about 2,000,000 movements, 300,000 uses
billed through about 300,000 HIS settlement lines, 200,000 units in stock. `small` is the same
hospital shrunk a hundredfold, for CI.

Why not the services: receiving 400,000 units one delivery line at a time would take hours. The
rows are generated in memory and written with PostgreSQL COPY straight into the tables, with the
foreign-key triggers off for the load (`session_replication_role = replica`; the ledger's
append-only trigger refuses only UPDATE and DELETE, so it is not bypassed in spirit). The
generator keeps everything the services would keep consistent, and `build` checks it afterwards:

- every unit's status, location, owner and status time are those of its last movement, and its
  movements follow the unit status machine in time order (RECEIPT → PUTAWAY → TRANSFER → cabinet
  TAKE/RETURN … → OWNER_CHANGE → CONSUME, or SCRAP / RETURN_TO_SUPPLIER);
- every lot balance is the net of its lot's movements at that location, and never went negative;
- every use has its movement(s), its charge and the charge's (delivered) outbox row; HIS settlement
  lines answer the charges, with a few deliberate discrepancies (漏收, 虚记, 多记, price above
  purchase, 串换, a billed gift) so that the reconciliation has something to find;
- consignment uses are on monthly confirmed supplier statements, except the last month and a few
  left off.

After the load, `ledger_against_stock` (the reconciliation's own ledger-vs-stock statement) must
find nothing, and no row may point at a missing one.

A dataset is built once and reused: a marker row in the table `bench_dataset` records its size,
period and counts. `ensure_dataset` returns it when it matches, and rebuilds (TRUNCATE of every
application table, RESTART IDENTITY) when asked or when the size differs.
"""
from __future__ import annotations

import datetime
import json
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal

from django.contrib.auth.models import Group
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models.fields import NOT_PROVIDED
from django.utils import timezone
from rest_framework.authtoken.models import Token

from devices.identification import GS, gtin_check_digit
from devices.models import Device
from inventory.models import (
    AcceptanceRecord,
    CabinetSession,
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
    Owner,
    Product,
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
    UnitStatus,
    User,
)
from inventory.validators import make_uscc

__all__ = ["SIZES", "Size", "build", "ensure_dataset", "existing_dataset", "wipe"]

MARKER_TABLE = "bench_dataset"
HOSPITAL_CODE = "BENCH"
KEEPER = "bench-keeper"
AUDITOR = "bench-auditor"
NURSE_PREFIX = "bench-nurse-"


@dataclass(frozen=True)
class Size:
    """How big the generated hospital is. Volumes other than `movements` are targets, met closely."""

    name: str
    products: int
    departments: int
    cabinets: int
    operating_rooms: int
    suppliers: int
    manufacturers: int
    movements: int
    consumptions: int
    held_units: int
    unit_product_share: float = 0.3
    seed: int = 20260101
    years: int = 1  # of history ending yesterday; `with_years` scales the ledger with it

    @property
    def locations(self) -> int:
        return 2 + self.departments + self.cabinets + self.operating_rooms  # + central warehouse, quarantine

    def with_movements(self, movements: int) -> Size:
        """The same hospital with another ledger volume; uses and stock scale with it."""
        ratio = movements / self.movements
        return replace(
            self, name=f"{self.name}-{movements}", movements=movements,
            consumptions=max(50, round(self.consumptions * ratio)), held_units=max(50, round(self.held_units * ratio)),
        )


    def with_years(self, years: int) -> Size:
        """The same hospital with `years` of history: as many movements and uses per day, and the
        stock a hospital holds at the end — the same as after one year: the units held were
        received within the last year (`HELD_WITHIN_DAYS`), and what a lot left unused a year after
        its receipt went back to its supplier or, expired, was written off (`LOT_LIFE_DAYS`)."""
        return replace(
            self, name=f"{self.name}-{years}y", years=years, movements=self.movements * years,
            consumptions=self.consumptions * years,
        )


SIZES = {
    "small": Size("small", products=300, departments=4, cabinets=4, operating_rooms=2, suppliers=12,
                  manufacturers=20, movements=20_000, consumptions=3_000, held_units=2_000),
    "full": Size("full", products=20_000, departments=24, cabinets=30, operating_rooms=4, suppliers=150,
                 manufacturers=300, movements=2_000_000, consumptions=300_000, held_units=200_000),
}

DEPARTMENTS = [
    ("CATH", "心内科导管室", Department.Kind.OPERATING_THEATRE), ("ORTH", "骨科", Department.Kind.CLINICAL),
    ("OT", "手术室", Department.Kind.OPERATING_THEATRE), ("NEUR", "神经外科", Department.Kind.CLINICAL),
    ("GSUR", "普外科", Department.Kind.CLINICAL), ("ICU", "重症医学科", Department.Kind.CLINICAL),
    ("INTV", "介入科", Department.Kind.OPERATING_THEATRE), ("OPHT", "眼科", Department.Kind.CLINICAL),
    ("UROL", "泌尿外科", Department.Kind.CLINICAL), ("CSUR", "心外科", Department.Kind.OPERATING_THEATRE),
    ("VASC", "血管外科", Department.Kind.CLINICAL), ("ENDO", "消化内镜中心", Department.Kind.OPERATING_THEATRE),
    ("DENT", "口腔科", Department.Kind.CLINICAL), ("EMER", "急诊科", Department.Kind.CLINICAL),
    ("OBGY", "妇产科", Department.Kind.CLINICAL), ("PEDI", "儿科", Department.Kind.CLINICAL),
    ("RESP", "呼吸与危重症医学科", Department.Kind.CLINICAL), ("NEPH", "肾内科血透室", Department.Kind.CLINICAL),
    ("ENT", "耳鼻咽喉科", Department.Kind.CLINICAL), ("TSUR", "胸外科", Department.Kind.CLINICAL),
    ("HBPS", "肝胆外科", Department.Kind.CLINICAL), ("ANES", "麻醉科", Department.Kind.CLINICAL),
    ("ONCO", "肿瘤科", Department.Kind.CLINICAL), ("RADI", "放射介入科", Department.Kind.OPERATING_THEATRE),
]
UNIT_NAMES = [
    "药物洗脱冠脉支架", "PTCA球囊扩张导管", "指引导管", "心脏起搏器", "人工髋关节", "人工膝关节", "椎弓根螺钉",
    "颅骨修补钛网", "吻合器", "人工晶体", "输尿管支架", "血管鞘", "腔静脉滤器", "人工心脏瓣膜", "弹簧圈",
]
LOT_NAMES = [
    "一次性使用输液器", "一次性注射器", "医用外科口罩", "导尿包", "留置针", "医用纱布", "缝合线", "引流袋",
    "采血针", "敷贴", "医用手套", "气管插管", "吸痰管", "电极片", "胃管",
]

# Shares of the generated population (the rest follows from Size).
HELD_AT = {"cw": 0.35, "store": 0.40, "cabinet": 0.25}
CONSUMED_FROM_CABINET = 0.5
EXIT_SHARE = 0.01  # units scrapped or returned to the supplier, on top of held and used
ENDS_TAKEN = 0.01  # of the units held in cabinets: taken in the last days, not back yet
EXPIRED_HELD = 0.002  # held units whose expiry has passed (locked, reported by the reconciliation)
YEAR_DAYS = 365
HELD_WITHIN_DAYS = 365  # units held at the end were received within this many days of it (stock turns over)
LOT_LIFE_DAYS = 365  # a lot is replenished and used within this many days of its receipt; the day after,
# what is left of it anywhere leaves: written off (SCRAP, reason EXPIRED) if expired, else returned to
# its supplier (RETURN_TO_SUPPLIER, reason OVERSTOCK). Only lots received over a year before the end
# get there: a one-year history has none.
EXPIRED_LOTS = 0.01  # of the lots: expired by the end (or, written off, by the end of their life)
CONSIGNMENT_PRODUCTS = 0.10
SECOND_SUPPLIER = 0.10
PRICE_CHANGE = 0.03
GIFT_UNITS = 0.001
LOTS_PER_USE = 0.3
TRANSFERS_PER_USE = 1.5
HIS_UNLINKED = 0.2  # settlement lines that do not echo our charge id (matched by encounter and code)
DISCREPANCY = 0.003  # each kind of billing discrepancy, as a share of the uses
UNSETTLED_CONSIGNMENT = 0.01


# --- marker ------------------------------------------------------------------------------------------


def _ensure_marker_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (id integer PRIMARY KEY, info jsonb NOT NULL, "
            "created_at timestamptz NOT NULL DEFAULT now())"
        )


def existing_dataset() -> dict | None:
    """The marker of the dataset in this database, if one is there and its hospital still exists."""
    if MARKER_TABLE not in connection.introspection.table_names():
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT info FROM {MARKER_TABLE} WHERE id = 1")
        row = cursor.fetchone()
    if row is None:
        return None
    info = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    if not Hospital.objects.filter(pk=info.get("hospital_id"), code=HOSPITAL_CODE).exists():
        return None
    return info


def ensure_dataset(size: Size, *, rebuild: bool = False, progress: Callable[[str], None] = print) -> dict:
    """The dataset of `size` in this database: the existing one when it matches, else built now."""
    if connection.vendor != "postgresql":
        raise RuntimeError("the scale dataset is loaded with PostgreSQL COPY: set DATABASE_URL=postgres://…")
    found = existing_dataset()
    if found is not None and not rebuild and found.get("size") == asdict(size):
        progress(f"dataset {size.name!r} found (built {found['built_at']}), reused")
        return found
    if found is None and Hospital.objects.exists() and not rebuild:
        raise RuntimeError("this database holds other data: use an empty database, or rebuild (it empties it)")
    return build(size, progress=progress)


def wipe() -> None:
    """Empty every application table (TRUNCATE … RESTART IDENTITY); roles and schedules stay."""
    keep_prefixes = ("django_migrations", "django_content_type", "auth_permission", "auth_group", "django_celery_beat")
    tables = [
        name for name in connection.introspection.django_table_names(only_existing=True, include_views=False)
        if not name.startswith(keep_prefixes)
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        if MARKER_TABLE in connection.introspection.table_names():
            cursor.execute(f"DELETE FROM {MARKER_TABLE}")


# --- the build --------------------------------------------------------------------------------------


def build(size: Size, *, today: datetime.date | None = None, progress: Callable[[str], None] = print) -> dict:
    """Empty the database's application tables and generate the dataset; return its marker."""
    started = time.monotonic()
    _ensure_marker_table()
    wipe()
    progress(f"building dataset {size.name!r}: {size.products} products, {size.locations} locations, "
             f"~{size.movements:,} movements, ~{size.consumptions:,} uses, ~{size.held_units:,} units in stock")
    generator = _Generator(size, today or timezone.localdate(), progress)
    generator.master_data()
    generator.plan()
    generator.load()
    problems = check_consistency(generator.hospital)
    if problems:
        raise RuntimeError("generated data is inconsistent: " + "; ".join(problems))
    generator.analyse()
    info = {
        "size": asdict(size), "hospital_id": generator.hospital.pk, "period_start": generator.start_day.isoformat(),
        "period_end": generator.end_day.isoformat(), "built_at": timezone.now().isoformat(timespec="seconds"),
        "build_seconds": round(time.monotonic() - started, 1), "counts": generator.counts(),
    }
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {MARKER_TABLE} (id, info) VALUES (1, %s)", [json.dumps(info)])
    progress(f"dataset built in {info['build_seconds']} s: " + ", ".join(f"{k} {v:,}" for k, v in info["counts"].items()))
    return info


def check_consistency(hospital: Hospital) -> list[str]:
    """What is wrong with the loaded data (empty: nothing): ledger against stock, dangling references."""
    from inventory.selectors.reconciliation import ledger_against_stock

    problems = []
    differences = ledger_against_stock(hospital)
    if differences:
        problems.append(f"{len(differences)} product × location where ledger and stock differ, e.g. {differences[:3]}")
    references = [
        ("inventory_movement", "unit_id", "inventory_unit"), ("inventory_movement", "product_id", "inventory_product"),
        ("inventory_movement", "from_location_id", "inventory_location"),
        ("inventory_movement", "to_location_id", "inventory_location"),
        ("inventory_movement", "actor_user_id", "inventory_user"), ("inventory_unit", "delivery_line_id", "inventory_deliveryline"),
        ("inventory_unit", "product_id", "inventory_product"), ("inventory_consumption", "unit_id", "inventory_unit"),
        ("inventory_charge", "consumption_id", "inventory_consumption"), ("inventory_hissettlementline", "charge_id", "inventory_charge"),
        ("inventory_chargedelivery", "charge_id", "inventory_charge"), ("inventory_deliveryline", "note_id", "inventory_deliverynote"),
        ("inventory_lotbalance", "product_id", "inventory_product"), ("inventory_tagbinding", "unit_id", "inventory_unit"),
        ("inventory_suppliersettlementline", "consumption_id", "inventory_consumption"),
    ]
    with connection.cursor() as cursor:
        for table, column, target in references:
            cursor.execute(
                f"SELECT count(*) FROM {table} t WHERE t.{column} IS NOT NULL "
                f"AND NOT EXISTS (SELECT 1 FROM {target} x WHERE x.id = t.{column})"
            )
            if dangling := cursor.fetchone()[0]:
                problems.append(f"{dangling} rows of {table}.{column} point at no {target}")
        cursor.execute("SELECT count(*) FROM inventory_lotbalance WHERE quantity < 0")
        if negative := cursor.fetchone()[0]:
            problems.append(f"{negative} negative lot balances")
    return problems


# --- generation -------------------------------------------------------------------------------------

DAY = 86_400
HOUR = 3_600
MINUTE = 60


@dataclass
class _ProductInfo:
    pk: int
    di: str
    supplier_ids: list[int]
    prices: list[tuple[int, Decimal, Decimal]]  # (from day, price of supplier 0, price of supplier 1)
    his_code: str
    nhsa_code: str
    consignment: bool
    departments: list[int]  # the departments whose stores and cabinets stock it (indices)

    def price(self, day: int, supplier_index: int) -> Decimal:
        current = self.prices[0]
        for entry in self.prices:
            if entry[0] <= day:
                current = entry
        return current[1 + supplier_index]


@dataclass
class _Session:
    pk: int
    cabinet: int
    device: int
    user: int
    closed: int
    taken: list = field(default_factory=list)
    returned: list = field(default_factory=list)


@dataclass
class _Use:
    """One use on a patient, before it is written: a unit's or a lot quantity's."""

    t: int
    product: _ProductInfo
    location: int
    department: int
    user: int
    quantity: int
    unit_price: Decimal
    unit: int | None = None
    lot: str = ""
    consignment: bool = False
    supplier: int | None = None
    gift: bool = False
    pk: int = 0
    encounter: str = ""


class _Generator:
    def __init__(self, size: Size, today: datetime.date, progress: Callable[[str], None]) -> None:
        self.size, self.progress, self.rng = size, progress, random.Random(size.seed)
        self.end_day = today - datetime.timedelta(days=1)
        self.start_day = today - datetime.timedelta(days=365 * size.years)
        self.days = (self.end_day - self.start_day).days + 1
        self.base = timezone.make_aware(datetime.datetime.combine(self.start_day, datetime.time())).astimezone(datetime.UTC)
        self.today = today
        self.movements: list[tuple] = []
        self.sessions: dict[tuple[int, int], _Session] = {}
        self.uses: list[_Use] = []
        self.units: list[tuple] = []
        self.delivery_lines: list[tuple] = []
        self.notes: dict[tuple[int, int], tuple[int, int]] = {}  # (supplier, day) → (pk, time)
        self.note_lines: dict[int, int] = defaultdict(int)
        self.orders: dict[tuple, tuple] = {}  # (kind, location, day) → (pk, time, kind, to, supplier, reason)
        self.tag_bindings: list[tuple] = []
        self.lot_balances: dict[tuple[int, str, int], list] = {}
        self.residencies: list[tuple[int, int, int, int, dict]] = []  # cabinet stays eligible for take/return pairs
        self._counts: dict[str, int] = {}
        self._clock = time.monotonic()

    # --- helpers

    def _step(self, what: str) -> None:
        now = time.monotonic()
        self.progress(f"  {what} ({now - self._clock:.1f} s)")
        self._clock = now

    def at(self, t: int) -> datetime.datetime:
        return self.base + datetime.timedelta(seconds=t)

    def day_of(self, t: int) -> int:
        return t // DAY

    def pick(self, items: list, skew: float = 2.0):
        """Popular items first: index drawn with a power law, as usage in a hospital is."""
        return items[int(len(items) * self.rng.random() ** skew)]

    def poisson(self, mean: float) -> int:
        if mean <= 0:
            return 0
        limit, k, product = math.exp(-mean), 0, self.rng.random()
        while product > limit:
            k += 1
            product *= self.rng.random()
        return k

    # --- master data (ORM: small)

    @transaction.atomic
    def locations(self, *, central_warehouse_name: str) -> None:
        """The hospital's places: central warehouse, quarantine, `extra_locations`, a store per
        department, the smart cabinets and the operating rooms (created in this order)."""
        hospital, size = self.hospital, self.size
        self.cw = Location.objects.create(
            hospital=hospital, department=self.warehouse_department, code="CW", name=central_warehouse_name,
            kind=Location.Kind.CENTRAL_WAREHOUSE,
        )
        Location.objects.create(
            hospital=hospital, department=self.warehouse_department, code="QUAR", name="待处理区",
            kind=Location.Kind.QUARANTINE,
        )
        self.extra_locations()
        self.stores = Location.objects.bulk_create(
            Location(hospital=hospital, department=d, parent=self.cw, code=f"{d.code}-S", name=f"{d.name}二级库",
                     kind=Location.Kind.DEPARTMENT_STORE)
            for d in self.departments
        )
        self.cabinets = Location.objects.bulk_create(
            Location(hospital=hospital, department=self.departments[j % size.departments], code=f"CAB{j + 1:02d}",
                     name=f"{self.departments[j % size.departments].name}智能柜{j // size.departments + 1}",
                     kind=Location.Kind.SMART_CABINET)
            for j in range(size.cabinets)
        )
        Location.objects.bulk_create(
            Location(hospital=hospital, department=self.departments[min(2, size.departments - 1)], code=f"OR{k + 1:02d}",
                     name=f"手术间{k + 1}", kind=Location.Kind.OPERATING_ROOM)
            for k in range(size.operating_rooms)
        )
        self.store_department = {store.pk: store.department_id for store in self.stores}
        self.cabinet_department = {cabinet.pk: cabinet.department_id for cabinet in self.cabinets}

    def extra_locations(self) -> None:
        """Places a kind of dataset adds after the quarantine (none for one hospital)."""

    def staff(self, groups: dict, *, keeper: str, auditor: str, nurse_prefix: str) -> None:
        """The warehouse keeper, an auditor and a nurse per department (with an API token)."""
        hospital = self.hospital
        self.keeper = User.objects.create(username=keeper, hospital=hospital, password="!", first_name="库管")
        self.keeper.groups.add(groups[Role.WAREHOUSE])
        reader = User.objects.create(username=auditor, hospital=hospital, password="!", first_name="审计")
        reader.groups.add(groups[Role.AUDITOR])
        self.nurses = User.objects.bulk_create(
            User(username=f"{nurse_prefix}{d.code.lower()}", hospital=hospital, password="!", first_name=f"{d.name}护士")
            for d in self.departments
        )
        for nurse, department in zip(self.nurses, self.departments, strict=True):
            nurse.groups.add(groups[Role.NURSE])
            nurse.departments.add(department)
            Token.objects.create(user=nurse)
        self.nurse_of = {d.pk: n.pk for d, n in zip(self.departments, self.nurses, strict=True)}

    def cabinet_controllers(self, *, code_prefix: str) -> None:
        self.cabinet_devices = {
            device.location_id: device.pk
            for device in Device.objects.bulk_create(
                Device(hospital=self.hospital, location=cabinet, code=f"{code_prefix}-{cabinet.code}",
                       name=f"{cabinet.name}控制器", kind=Device.Kind.CABINET_HTTP)
                for cabinet in self.cabinets
            )
        }

    def master_data(self) -> None:
        size, rng = self.size, self.rng
        today = self.today
        self.hospital = Hospital.objects.create(
            code=HOSPITAL_CODE, name="省人民医院（基准测试）", alliance="基准测试医联体", is_lead=True
        )
        hospital = self.hospital
        self.warehouse_department = Department.objects.create(
            hospital=hospital, code="WH", name="物资供应科", kind=Department.Kind.WAREHOUSE
        )
        self.departments = Department.objects.bulk_create(
            Department(hospital=hospital, code=code, name=name, kind=kind)
            for code, name, kind in DEPARTMENTS[: size.departments]
        )
        self.locations(central_warehouse_name="中心库")
        groups = {role.value: Group.objects.get_or_create(name=role.value)[0] for role in Role}
        self.staff(groups, keeper=KEEPER, auditor=AUDITOR, nurse_prefix=NURSE_PREFIX)
        self.cabinet_controllers(code_prefix="BENCH")
        Device.objects.bulk_create([
            Device(hospital=hospital, location=self.stores[0], code="BENCH-RCV-1", name="收货扫码站1",
                   kind=Device.Kind.WEDGE_SCANNER, scan_mode=Device.ScanMode.RECEIVE_INTO_LOCATION),
            Device(hospital=hospital, location=self.stores[1 % len(self.stores)], code="BENCH-RCV-2", name="收货扫码站2",
                   kind=Device.Kind.WEDGE_SCANNER, scan_mode=Device.ScanMode.RECEIVE_INTO_LOCATION),
            Device(hospital=hospital, location=self.stores[0], code="BENCH-BEDSIDE", name="床旁扫码枪",
                   kind=Device.Kind.WEDGE_SCANNER, scan_mode=Device.ScanMode.LOOKUP),
        ])

        manufacturers = Manufacturer.objects.bulk_create(
            Manufacturer(name=f"基准医疗器械制造商{i:04d}", uscc=make_uscc(f"91320500MB{i:07d}"), country="CN")
            for i in range(size.manufacturers)
        )
        suppliers = Supplier.objects.bulk_create(
            Supplier(name=f"基准配送商{i:04d}", uscc=make_uscc(f"91330100MC{i:07d}"), contact=f"0571-8800{i:04d}")
            for i in range(size.suppliers)
        )
        valid_from, valid_to = self.start_day - datetime.timedelta(days=400), today + datetime.timedelta(days=3 * 365)
        Certificate.objects.bulk_create(
            Certificate(kind=kind, number=f"{prefix}{supplier.pk:06d}", supplier=supplier, valid_from=valid_from,
                        valid_to=valid_to)
            for supplier in suppliers
            for kind, prefix in ((Certificate.Kind.BUSINESS_LICENCE, "BL"), (Certificate.Kind.DISTRIBUTION_LICENCE, "DL"))
        )
        registrations = Certificate.objects.bulk_create(
            Certificate(kind=Certificate.Kind.REGISTRATION, number=f"国械注准{2020 + i % 6}3{i:06d}",
                        manufacturer=manufacturers[i % len(manufacturers)], valid_from=valid_from, valid_to=valid_to)
            for i in range(size.products)
        )
        unit_products = round(size.products * size.unit_product_share)
        products = []
        for i in range(size.products):
            is_unit = i < unit_products
            body = f"0697{i:09d}"
            names = UNIT_NAMES if is_unit else LOT_NAMES
            products.append(Product(
                hospital=hospital, internal_code=f"{'HV' if is_unit else 'LV'}{i:06d}",
                name=f"{names[i % len(names)]} {i:05d}", specification=f"型号 {rng.choice('ABCDEFG')}-{rng.randint(1, 99)}",
                category="高值耗材" if is_unit else "低值耗材", manufacturer_id=registrations[i].manufacturer_id,
                registration_certificate=registrations[i], udi_di=body + gtin_check_digit(body),
                nhsa_code=f"C{rng.randint(1, 14):02d}{i:08d}{rng.randint(0, 9999999999):010d}"[:20],
                his_charge_code=f"HIS{i:07d}", is_high_value=is_unit,
                tracking=TrackingMode.UNIT if is_unit else TrackingMode.LOT,
                unit_of_measure="个" if is_unit else rng.choice(["个", "支", "包", "套"]),
                is_consignment=is_unit and rng.random() < CONSIGNMENT_PRODUCTS,
            ))
        products = Product.objects.bulk_create(products, batch_size=2000)
        agreements, self.unit_products, self.lot_products = [], [], []
        agreement_end = today + datetime.timedelta(days=730)
        for i, product in enumerate(products):
            is_unit = product.tracking == TrackingMode.UNIT
            base = Decimal(rng.randint(800, 30000) if is_unit else rng.randint(100, 20000)) / (1 if is_unit else 100)
            base = base.quantize(Decimal("0.01"))
            supplier_ids = [suppliers[i % len(suppliers)].pk]
            if is_unit and rng.random() < SECOND_SUPPLIER:
                supplier_ids.append(suppliers[(i * 7 + 3) % len(suppliers)].pk)
            second = (base * Decimal("1.08")).quantize(Decimal("0.01"))
            prices = [(-400, base, second)]
            if rng.random() < PRICE_CHANGE:
                change = rng.randint(60, self.days - 60)
                new = (base * Decimal("0.9")).quantize(Decimal("0.01"))
                prices.append((change, new, (new * Decimal("1.08")).quantize(Decimal("0.01"))))
            for index, supplier_id in enumerate(supplier_ids):
                for number, (from_day, *by_supplier) in enumerate(prices):
                    until = prices[number + 1][0] - 1 if number + 1 < len(prices) else None
                    agreements.append(SupplyAgreement(
                        hospital=hospital, supplier_id=supplier_id, product=product, unit_price=by_supplier[index],
                        valid_from=self.start_day + datetime.timedelta(days=from_day),
                        valid_to=self.start_day + datetime.timedelta(days=until) if until is not None else agreement_end,
                        platform_reference=f"GPO-{product.pk:06d}-{index}", vbp_contract="VBP-2025" if i % 5 == 0 else "",
                    ))
            info = _ProductInfo(product.pk, product.udi_di, supplier_ids, prices, product.his_charge_code,
                                product.nhsa_code, product.is_consignment, self._users_of(i, is_unit))
            (self.unit_products if is_unit else self.lot_products).append(info)
        SupplyAgreement.objects.bulk_create(agreements, batch_size=5000)
        self.products_by_pk = {p.pk: p for p in self.unit_products + self.lot_products}
        index_of = {department.pk: index for index, department in enumerate(self.departments)}
        self.cabinets_of = defaultdict(list)
        for cabinet in self.cabinets:
            self.cabinets_of[index_of[cabinet.department_id]].append(cabinet)
        self._step(f"master data: {len(products):,} products, {len(agreements):,} agreements, {size.locations} locations")

    def _users_of(self, index: int, is_unit: bool) -> list[int]:
        """The departments that use a product: implants and devices belong to one to three specialties;
        the most used low-value items (syringes, gloves…) to every department, others to a few."""
        departments = self.size.departments
        if not is_unit and index < round(self.size.products * self.size.unit_product_share) + self.size.products // 20:
            return list(range(departments))
        count = 1 + (self.rng.random() < 0.5) + (self.rng.random() < 0.2) + (0 if is_unit else self.rng.randint(0, 2))
        return self.rng.sample(range(departments), min(count, departments))

    # --- documents

    def note(self, supplier: int, day: int) -> tuple[int, int, int]:
        """The delivery note of a supplier's delivery on a day: (pk, time, next line number)."""
        key = (supplier, day)
        if key not in self.notes:
            self.notes[key] = (len(self.notes) + 1, day * DAY + self.rng.randint(8 * HOUR, 11 * HOUR))
        pk, t = self.notes[key]
        self.note_lines[pk] += 1
        return pk, t, self.note_lines[pk]

    def order(self, location: int, day: int) -> tuple[int, int]:
        """The transfer order of a day's replenishment of a location: (pk, time)."""
        key = (StockOrder.Kind.TRANSFER, location, day)
        if key not in self.orders:
            t = day * DAY + self.rng.randint(13 * HOUR, 17 * HOUR)
            self.orders[key] = (len(self.orders) + 1, t, StockOrder.Kind.TRANSFER, location, None, "")
        return self.orders[key][:2]

    def exit_order(self, kind: str, unit: int, day: int, supplier: int | None, reason: str) -> tuple[int, int]:
        """The return or scrap order of one unit."""
        t = day * DAY + self.rng.randint(9 * HOUR, 12 * HOUR)
        self.orders[(kind, unit)] = (len(self.orders) + 1, t, kind, None, supplier, reason)
        return self.orders[(kind, unit)][:2]

    def lots_order(self, kind: str, key: int, day: int, supplier: int | None, reason: str) -> tuple[int, int]:
        """The day's return (per supplier) or scrap (per place) order of lot quantities: (pk, time)."""
        full_key = (kind, "lots", key, day)
        if full_key not in self.orders:
            t = day * DAY + self.rng.randint(9 * HOUR, 12 * HOUR)
            self.orders[full_key] = (len(self.orders) + 1, t, kind, None, supplier, reason)
        return self.orders[full_key][:2]

    def session(self, cabinet: int, slot: int) -> _Session:
        """The door session of a cabinet in one hour slot (every take and put-back in that hour)."""
        key = (cabinet, slot)
        if key not in self.sessions:
            department = self.cabinet_department[cabinet]
            closed = slot * HOUR + 10 * MINUTE + (cabinet * 7) % 40 * MINUTE
            self.sessions[key] = _Session(len(self.sessions) + 1, cabinet, self.cabinet_devices[cabinet],
                                          self.nurse_of[department], closed)
        return self.sessions[key]

    def day_slot(self, day: int) -> int:
        return day * 24 + self.rng.randint(8, 19)

    # --- movements

    def move(self, t: int, kind: str, product: int, *, unit: int | None = None, lot: str = "", quantity: int = 1,
             source: int | None = None, target: int | None = None, from_status: str = "", to_status: str = "",
             from_owner: str = "", to_owner: str = "", user: int, document: tuple[str, int], reason: str = "",
             note: str = "") -> None:
        self.movements.append((t, kind, product, unit, lot, quantity, source, target, from_status, to_status,
                               from_owner, to_owner, user, reason, note, document[0], document[1]))

    # --- the plan

    def plan(self) -> None:
        size, rng = self.size, self.rng
        used_units = size.consumptions // 2
        used_lots = size.consumptions - used_units
        self.plan_units(size.held_units, used_units, round((size.held_units + used_units) * EXIT_SHARE))
        self._step(f"units planned: {len(self.units):,} units, {len(self.movements):,} movements")
        self.plan_lots(used_lots)
        self._step(f"lots planned: {len(self.lot_balances):,} lot balances, {len(self.movements):,} movements")
        # Written after the traffic: the uses' movements, and the takes that precede the uses from cabinets.
        later = len(self.uses) + sum(1 for use in self.uses if use.consignment)
        later += sum(1 for stay in self.residencies if "take" in stay[4])
        pairs = max(0, (size.movements - len(self.movements) - later) // 2)
        self.plan_cabinet_traffic(pairs, self.last_year_pairs(later) if size.years > 1 else None)
        self._step(f"cabinet take/return traffic: {len(self.movements):,} movements, {len(self.sessions):,} sessions")
        self.uses.sort(key=lambda use: use.t)
        for pk, use in enumerate(self.uses, start=1):
            use.pk = pk
        self.write_use_movements()
        rng.shuffle(self.residencies)
        self._step(f"uses: {len(self.uses):,}; movements total {len(self.movements):,}")

    def plan_units(self, held: int, used: int, exits: int) -> None:
        rng, last = self.rng, self.days - 1
        fates = ["used"] * used + ["exit"] * exits
        for place, share in HELD_AT.items():
            fates += [f"held-{place}"] * round(held * share)
        rng.shuffle(fates)
        lots: dict[int, tuple[str, int]] = {}
        for pk, fate in enumerate(fates, start=1):
            product = self.pick(self.unit_products)
            supplier_index = 1 if len(product.supplier_ids) > 1 and rng.random() < 0.3 else 0
            supplier = product.supplier_ids[supplier_index]
            is_held = fate.startswith("held")
            day0 = rng.randint(max(0, last + 1 - HELD_WITHIN_DAYS) if is_held else 0, last if is_held else last - 5)
            note, t0, line_no = self.note(supplier, day0)
            lot, lot_day = lots.get(product.pk, ("", -99))
            if day0 - lot_day > 30:
                lot, lot_day = f"{(self.start_day + datetime.timedelta(days=day0)):%y%m}{rng.randint(100, 999)}", day0
                lots[product.pk] = (lot, lot_day)
            expired = fate.startswith("held") and rng.random() < EXPIRED_HELD
            expiry = (self.end_day - datetime.timedelta(days=rng.randint(1, 20)) if expired
                      else self.today + datetime.timedelta(days=rng.randint(150, 1000)))
            serial = f"SN{pk:09d}"
            raw = f"]d201{product.di}17{expiry:%y%m%d}10{lot}{GS}21{serial}"
            normal = f"(01){product.di}(17){expiry:%y%m%d}(10){lot}(21){serial}"
            gift = rng.random() < GIFT_UNITS
            price = product.price(day0, supplier_index)
            cost = Decimal("0.00") if gift else price
            owner = Owner.SUPPLIER if product.consignment else Owner.HOSPITAL
            line = len(self.delivery_lines) + 1
            self.delivery_lines.append((line, note, line_no, raw, product.pk, lot, serial, expiry, None, 1, price, gift))
            document = (Movement.DocumentType.DELIVERY_NOTE, note)
            self.move(t0, Movement.Kind.RECEIPT, product.pk, unit=pk, lot=lot, target=self.cw.pk,
                      from_status=UnitStatus.RECEIVED, to_status=UnitStatus.ACCEPTED, user=self.keeper.pk, document=document)
            t = t0 + 30 * MINUTE
            self.move(t, Movement.Kind.PUTAWAY, product.pk, unit=pk, lot=lot, source=self.cw.pk, target=self.cw.pk,
                      from_status=UnitStatus.ACCEPTED, to_status=UnitStatus.IN_STOCK, user=self.keeper.pk, document=document)
            state = {"status": UnitStatus.IN_STOCK, "location": self.cw.pk, "since": t, "owner": owner, "epc": None}
            if fate != "held-cw":
                department = rng.choice(product.departments)
                cabinets = self.cabinets_of[department]
                to_cabinet = bool(cabinets) and (
                    fate == "held-cabinet" or (fate == "used" and rng.random() < CONSUMED_FROM_CABINET))
                destination = rng.choice(cabinets).pk if to_cabinet else self.stores[department].pk
                day1 = min(last if fate.startswith("held") else last - 3, day0 + rng.randint(0, 20))
                order, t1 = self.order(destination, day1)
                if t1 <= t:
                    t1 = t + 20 * MINUTE
                status = UnitStatus.IN_CABINET if to_cabinet else UnitStatus.IN_STOCK
                if to_cabinet:
                    state["epc"] = f"E280{pk:020X}"
                    self.tag_bindings.append((len(self.tag_bindings) + 1, pk, state["epc"], self.at(t1 - 10 * MINUTE)))
                self.move(t1, Movement.Kind.TRANSFER, product.pk, unit=pk, lot=lot, source=self.cw.pk,
                          target=destination, from_status=UnitStatus.IN_STOCK, to_status=status, user=self.keeper.pk,
                          document=(Movement.DocumentType.STOCK_ORDER, order))
                state.update(status=status, location=destination, since=t1)
            t = state["since"]
            end_slot = self.days * 24 - 1
            if fate == "used":
                day3 = min(last, self.day_of(t) + rng.randint(1, 60))
                location = state["location"]
                department = self.cabinet_department.get(location) or self.store_department[location]
                if state["status"] == UnitStatus.IN_CABINET:
                    slot = max(self.day_slot(day3), t // HOUR + 1)
                    self.residencies.append((pk, location, t // HOUR + 1, slot, state))
                    session = self.session(location, slot)
                    use_at = session.closed + rng.randint(10 * MINUTE, 180 * MINUTE)
                    state["take"] = session
                else:
                    use_at = max(day3 * DAY + rng.randint(8 * HOUR, 20 * HOUR), t + HOUR)
                self.uses.append(_Use(use_at, product, location, department, self.nurse_of[department], 1, cost, unit=pk,
                                      lot=lot, consignment=owner == Owner.SUPPLIER, supplier=supplier, gift=gift))
                state["use"] = self.uses[-1]
            elif fate == "exit":
                day3 = min(last, self.day_of(t) + rng.randint(1, 60))
                returned = rng.random() < 0.5
                kind = StockOrder.Kind.RETURN_TO_SUPPLIER if returned else StockOrder.Kind.SCRAP
                reason = "RECALL" if returned else "DAMAGED"
                order, t3 = self.exit_order(kind, pk, day3, supplier if returned else None, reason)
                t3 = max(t3, t + HOUR)
                to_status = UnitStatus.RETURNED_TO_SUPPLIER if returned else UnitStatus.SCRAPPED
                self.move(t3, kind, product.pk, unit=pk, lot=lot, source=state["location"], from_status=state["status"],
                          to_status=to_status, user=self.keeper.pk, document=(Movement.DocumentType.STOCK_ORDER, order),
                          reason=reason)
                if state["status"] == UnitStatus.IN_CABINET:
                    self.residencies.append((pk, state["location"], t // HOUR + 1, t3 // HOUR - 1, state))
                state.update(status=to_status, location=None, since=t3)
            elif fate == "held-cabinet" and state["status"] == UnitStatus.IN_CABINET:
                if rng.random() < ENDS_TAKEN and t // HOUR + 1 < end_slot - 40:
                    slot = end_slot - rng.randint(2, 40)
                    self.residencies.append((pk, state["location"], t // HOUR + 1, slot, state))
                    state["take"] = self.session(state["location"], slot)
                else:
                    self.residencies.append((pk, state["location"], t // HOUR + 1, end_slot, state))
            state.update(product=product, lot=lot, serial=serial)
            self.units.append((pk, product, supplier, line, raw, normal, lot, serial, expiry, gift, cost, t0, state))

    def plan_lots(self, uses: int) -> None:
        rng, last = self.rng, self.days - 1
        lots = max(1, round(uses * LOTS_PER_USE))
        transfers_per_lot = TRANSFERS_PER_USE / LOTS_PER_USE
        uses_per_transfer = 1 / TRANSFERS_PER_USE
        for number in range(1, lots + 1):
            product = self.pick(self.lot_products, skew=1.6)
            supplier = product.supplier_ids[0]
            day0 = rng.randint(0, last - 2)
            note, t0, line_no = self.note(supplier, day0)
            lot = f"LT{number:07d}"
            # Replenished and used until `until`; a lot whose life ends before the last day leaves the day
            # after, its expiry drawn as a lot received a year before the end (expired at the end: at its exit).
            until = min(last, day0 + LOT_LIFE_DAYS)
            gone = day0 + LOT_LIFE_DAYS < last
            end = self.start_day + datetime.timedelta(days=until + 1 if gone else last)
            expired = rng.random() < EXPIRED_LOTS
            expiry = (end - datetime.timedelta(days=rng.randint(1, 60)) if expired
                      else end + datetime.timedelta(days=1 + rng.randint(150, 900)))
            quantity = rng.randint(100, 1000)
            price = product.price(day0, 0)
            line = len(self.delivery_lines) + 1
            self.delivery_lines.append((line, note, line_no, "", product.pk, lot, "", expiry, None, quantity, price, False))
            self.move(t0, Movement.Kind.RECEIPT, product.pk, lot=lot, quantity=quantity, target=self.cw.pk,
                      user=self.keeper.pk, document=(Movement.DocumentType.DELIVERY_NOTE, note))
            balance = self.balance(product.pk, lot, self.cw.pk, expiry, price)
            balance[0] += quantity
            held = {self.cw.pk: balance}
            for _ in range(self.poisson(transfers_per_lot)):
                if balance[0] < 10:
                    break
                store = self.stores[rng.choice(product.departments)]
                day1 = rng.randint(day0 + 1, until)
                order, t1 = self.order(store.pk, day1)
                moved = min(balance[0], rng.randint(10, 60))
                balance[0] -= moved
                self.move(t1, Movement.Kind.TRANSFER, product.pk, lot=lot, quantity=moved, source=self.cw.pk,
                          target=store.pk, user=self.keeper.pk, document=(Movement.DocumentType.STOCK_ORDER, order))
                at_store = held[store.pk] = self.balance(product.pk, lot, store.pk, expiry, price)
                at_store[0] += moved
                left = moved
                department = store.department_id
                for _ in range(self.poisson(uses_per_transfer)):
                    quantity_used = min(left, rng.randint(1, 3))
                    if quantity_used <= 0 or day1 >= until:
                        break
                    left -= quantity_used
                    at_store[0] -= quantity_used
                    use_at = rng.randint(day1 + 1, until) * DAY + rng.randint(8 * HOUR, 20 * HOUR)
                    self.uses.append(_Use(use_at, product, store.pk, department, self.nurse_of[department],
                                          quantity_used, price, lot=lot, supplier=supplier))
            if gone:
                self.lot_exit(product, lot, supplier, until + 1, expired, held)

    def lot_exit(self, product: _ProductInfo, lot: str, supplier: int, day: int, expired: bool,
                 held: dict[int, list]) -> None:
        """What is left of a lot at the end of its life leaves every place that holds it, as
        `services.stock` posts it: an expired lot written off (报损单: SCRAP, reason EXPIRED, one order a
        place and day), any other returned to its supplier (退货单: RETURN_TO_SUPPLIER, reason
        OVERSTOCK, one order a supplier and day, its lines from wherever the lot lies)."""
        for location, balance in held.items():
            if balance[0] <= 0:
                continue
            if expired:
                kind, reason, key, order_supplier = StockOrder.Kind.SCRAP, "EXPIRED", location, None
            else:
                kind, reason, key, order_supplier = StockOrder.Kind.RETURN_TO_SUPPLIER, "OVERSTOCK", supplier, supplier
            order, t = self.lots_order(kind, key, day, order_supplier, reason)
            self.move(t, kind, product.pk, lot=lot, quantity=balance[0], source=location, user=self.keeper.pk,
                      document=(Movement.DocumentType.STOCK_ORDER, order), reason=reason)
            balance[0] = 0

    def balance(self, product: int, lot: str, location: int, expiry: datetime.date, cost: Decimal) -> list:
        key = (product, lot, location)
        if key not in self.lot_balances:
            self.lot_balances[key] = [0, expiry, cost]
        return self.lot_balances[key]

    def last_year_pairs(self, later: int) -> int:
        """The take/return pairs of a one-year history, for the last year of a longer one: the
        movement target of a year less a year's share of the flow (the movements of the units used
        or sent back and of the lots, and the `later` ones of the uses) and the held units' own
        movements (received, put away and sent out once, in the last year). The rest of the traffic
        goes to the years before."""
        held = {unit[0] for unit in self.units if "use" not in unit[12]
                and unit[12]["status"] in (UnitStatus.IN_STOCK, UnitStatus.IN_CABINET)}
        own = sum(1 for row in self.movements if row[3] in held)
        exits = sum(1 for row in self.movements if row[3] is None and row[1] in (Movement.Kind.RETURN_TO_SUPPLIER,
                                                                                  Movement.Kind.SCRAP))
        flow = (len(self.movements) - own - exits + later) / self.size.years
        return max(0, round((self.size.movements / self.size.years - flow - own) / 2))

    def plan_cabinet_traffic(self, pairs: int, last_year: int | None = None) -> None:
        """Takes put back later (a nurse takes an item, then does not use it): the cabinets' daily
        traffic, spread over the units' stays in the cabinets until the movement target is met.

        With `last_year`, that many of the pairs go to the stays begun in the last year and the
        rest to the older ones: the units held at the end stay only in the last year, so pairs
        spread evenly over all stays would crowd the last year of a long history (and its last day)."""
        rng = self.rng
        stays = [stay for stay in self.residencies if stay[3] - stay[2] > 4]
        mean = pairs / len(stays) if stays else 0
        cut, mean_before = -1, mean
        if last_year is not None:
            cut = (self.days - YEAR_DAYS) * 24
            recent = sum(1 for stay in stays if stay[2] >= cut)
            last_year = min(last_year, pairs)
            mean = last_year / recent if recent else 0
            mean_before = (pairs - last_year) / (len(stays) - recent) if len(stays) > recent else 0
        for pk, cabinet, first, last, state in stays:
            count = min(self.poisson(mean if first >= cut else mean_before), (last - first - 1) // 2)
            if count <= 0:
                continue
            slots = sorted(rng.sample(range(first, last), 2 * count))
            product, lot = state["product"], state["lot"]
            for take_slot, return_slot in zip(slots[::2], slots[1::2], strict=True):
                taken, returned = self.session(cabinet, take_slot), self.session(cabinet, return_slot)
                summary = {"unit": pk, "epc": state["epc"], "serial": state["serial"], "product": product.pk}
                taken.taken.append(summary)
                returned.returned.append(summary)
                state["since"] = max(state["since"], returned.closed)
                self.move(taken.closed, Movement.Kind.CABINET_TAKE, product.pk, unit=pk, lot=lot, source=cabinet,
                          target=cabinet, from_status=UnitStatus.IN_CABINET, to_status=UnitStatus.TAKEN,
                          user=taken.user, document=(Movement.DocumentType.CABINET_SESSION, taken.pk))
                self.move(returned.closed, Movement.Kind.CABINET_RETURN, product.pk, unit=pk, lot=lot, source=cabinet,
                          target=cabinet, from_status=UnitStatus.TAKEN, to_status=UnitStatus.IN_CABINET,
                          user=returned.user, document=(Movement.DocumentType.CABINET_SESSION, returned.pk))
        for pk, cabinet, _first, _last, state in self.residencies:
            if (session := state.get("take")) is None:
                continue
            product = state["product"]
            session.taken.append({"unit": pk, "epc": state["epc"], "serial": state["serial"], "product": product.pk})
            self.move(session.closed, Movement.Kind.CABINET_TAKE, product.pk, unit=pk, lot=state["lot"], source=cabinet,
                      target=cabinet, from_status=UnitStatus.IN_CABINET, to_status=UnitStatus.TAKEN, user=session.user,
                      document=(Movement.DocumentType.CABINET_SESSION, session.pk))
            state.update(status=UnitStatus.TAKEN, since=session.closed)

    def write_use_movements(self) -> None:
        for use in self.uses:
            document = (Movement.DocumentType.CONSUMPTION, use.pk)
            if use.unit is None:
                self.move(use.t, Movement.Kind.CONSUME, use.product.pk, lot=use.lot, quantity=use.quantity,
                          source=use.location, user=use.user, document=document)
                continue
            unit = self.units[use.unit - 1]
            state = unit[12]
            if use.consignment:
                self.move(use.t, Movement.Kind.OWNER_CHANGE, use.product.pk, unit=use.unit, lot=use.lot,
                          source=use.location, target=use.location, from_status=state["status"],
                          to_status=state["status"], from_owner=Owner.SUPPLIER, to_owner=Owner.HOSPITAL, user=use.user,
                          document=document, note="consignment unit used: bought now")
                state["owner"] = Owner.HOSPITAL
            self.move(use.t, Movement.Kind.CONSUME, use.product.pk, unit=use.unit, lot=use.lot, source=use.location,
                      from_status=state["status"], to_status=UnitStatus.CONSUMED, user=use.user, document=document)
            state.update(status=UnitStatus.CONSUMED, location=None, since=use.t)

    # --- writing

    def load(self) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("SET LOCAL synchronous_commit = off")
            self.copy(cursor, DeliveryNote, ["id", "hospital_id", "supplier_id", "number", "receiving_location_id",
                                             "delivered_at", "temperature_c", "status", "received_by_id", "accepted_by_id",
                                             "accepted_at"], self.note_rows())
            self.copy(cursor, DeliveryLine, ["id", "note_id", "line_no", "raw_udi", "product_id", "lot", "serial", "expiry",
                                             "production_date", "quantity", "unit_price"],
                      (row[:11] for row in self.delivery_lines))
            self.copy(cursor, AcceptanceRecord, ["id", "line_id", "decision", "reason_code", "reasons", "is_gift",
                                                 "decided_by_id", "decided_at"], self.acceptance_rows())
            self.copy(cursor, Unit, ["id", "hospital_id", "product_id", "supplier_id", "delivery_line_id", "udi_raw", "udi",
                                     "di", "lot", "serial", "expiry", "production_date", "epc", "owner", "unit_cost",
                                     "is_gift", "status", "status_since", "location_id", "created_at"], self.unit_rows())
            self.copy(cursor, TagBinding, ["id", "unit_id", "epc", "bound_at", "bound_by_id", "unbind_reason"],
                      ((pk, unit, epc, at, self.keeper.pk, "") for pk, unit, epc, at in self.tag_bindings))
            self.copy(cursor, LotBalance, ["id", "hospital_id", "product_id", "lot", "expiry", "location_id", "owner",
                                           "unit_cost", "quantity"], self.lot_balance_rows())
            self.copy(cursor, LotCostLayer, ["id", "balance_id", "receipt_id", "unit_cost", "is_gift", "quantity"],
                      self.cost_layer_rows())
            self.copy(cursor, StockOrder, ["id", "hospital_id", "kind", "to_location_id", "supplier_id", "reason_code",
                                           "note", "created_by_id", "occurred_at"], self.stock_order_rows())
            self.copy(cursor, CabinetSession, ["id", "cabinet_id", "device_id", "user_id", "badge", "status", "opened_at",
                                               "closed_at", "tags_seen", "taken", "returned", "unknown_tags", "misplaced"],
                      self.session_rows())
            self.copy(cursor, Consumption, ["id", "hospital_id", "product_id", "unit_id", "lot", "quantity", "location_id",
                                            "encounter", "surgery_id", "surgery_name", "doctor", "department_id",
                                            "unit_price", "was_consignment", "occurred_at", "recorded_at",
                                            "recorded_by_id", "refund_reason"], self.consumption_rows())
            self.copy(cursor, Charge, ["id", "hospital_id", "consumption_id", "kind", "encounter", "his_charge_code",
                                       "nhsa_code", "quantity", "unit_price", "amount", "is_zero_cost", "created_at"],
                      self.charge_rows())
            self.copy(cursor, ChargeDelivery, ["id", "charge_id", "status", "attempts", "next_attempt_at", "last_error",
                                               "his_reference", "delivered_at"], self.delivery_rows())
            self.copy(cursor, HisSettlementLine, ["id", "hospital_id", "his_line_id", "encounter", "his_charge_code",
                                                  "nhsa_code", "quantity", "unit_price", "amount", "settled_at", "charge_id",
                                                  "use_id", "imported_at", "import_batch"], self.settlement_rows())
            self.write_supplier_settlements(cursor)
            self.copy(cursor, Movement, ["id", "hospital_id", "kind", "product_id", "unit_id", "lot", "quantity",
                                         "from_location_id", "to_location_id", "from_status", "to_status", "from_owner",
                                         "to_owner", "actor_user_id", "occurred_at", "recorded_at", "reason_code", "note",
                                         "document_type", "document_id", "idempotency_key"], self.movement_rows())
            self.copy(cursor, LotMovementLayer, ["id", "movement_id", "receipt_id", "quantity", "unit_cost", "is_gift"],
                      self.movement_layer_rows())
            models = [DeliveryNote, DeliveryLine, AcceptanceRecord, Unit, TagBinding, LotBalance, StockOrder,
                      CabinetSession, Consumption, Charge, ChargeDelivery, HisSettlementLine, SupplierSettlement,
                      SupplierSettlementLine, SupplierSettlementEvent, Movement, LotCostLayer, LotMovementLayer]
            for statement in connection.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(statement)

    def copy(self, cursor, model, columns: list[str], rows: Iterable[tuple]) -> None:
        """COPY `rows` into `model`'s table; a required column not named gets its field's default
        (columns added to the models after this generator was written)."""
        table = model._meta.db_table
        count = 0
        # A NOT NULL column the generator does not name (added to the model later) gets the model's
        # default: COPY would write NULL, the default being Django's, not the database's.
        defaults = [(field.column, field.get_default()) for field in model._meta.concrete_fields
                    if field.column not in columns and not field.null and field.has_default()
                    and field.db_default is NOT_PROVIDED]
        defaults = [(name, json.dumps(value) if isinstance(value, dict | list) else value) for name, value in defaults]
        names, extra = [*columns, *(name for name, _ in defaults)], tuple(value for _, value in defaults)
        with cursor.cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*row, *extra) if extra else row)
                count += 1
        self._counts[table] = count
        self._step(f"COPY {table}: {count:,} rows")

    def counts(self) -> dict[str, int]:
        names = {
            "inventory_product": "products", "inventory_location": "locations", "inventory_movement": "movements",
            "inventory_unit": "units", "inventory_consumption": "uses", "inventory_hissettlementline": "his_lines",
            "inventory_lotbalance": "lot_balances", "inventory_cabinetsession": "cabinet_sessions",
        }
        result = {label: self._counts.get(table, 0) for table, label in names.items()}
        result["products"] = Product.objects.filter(hospital=self.hospital).count()
        result["locations"] = Location.objects.filter(hospital=self.hospital).count()
        result["units_in_stock"] = sum(
            1 for unit in self.units if unit[12]["status"] in (UnitStatus.IN_STOCK, UnitStatus.IN_CABINET, UnitStatus.TAKEN)
        )
        return result

    def note_rows(self) -> Iterable[tuple]:
        for (supplier, day), (pk, t) in self.notes.items():
            number = f"DN{self.start_day + datetime.timedelta(days=day):%Y%m%d}-{supplier:04d}"
            yield (pk, self.hospital.pk, supplier, number, self.cw.pk, self.at(t), None, DeliveryNote.Status.ACCEPTED,
                   self.keeper.pk, self.keeper.pk, self.at(t + 20 * MINUTE))

    def acceptance_rows(self) -> Iterable[tuple]:
        note_time = dict(self.notes.values())
        for line in self.delivery_lines:
            yield (line[0], line[0], AcceptanceRecord.Decision.ACCEPTED, "", "[]", line[11], self.keeper.pk,
                   self.at(note_time[line[1]] + 20 * MINUTE))

    def unit_rows(self) -> Iterable[tuple]:
        for pk, product, supplier, line, raw, normal, lot, serial, expiry, gift, cost, t0, state in self.units:
            yield (pk, self.hospital.pk, product.pk, supplier, line, raw, normal, product.di, lot, serial, expiry, None,
                   state["epc"], state["owner"], cost, gift, state["status"], self.at(state["since"]), state["location"],
                   self.at(t0))

    def lot_balance_rows(self) -> Iterable[tuple]:
        for pk, ((product, lot, location), (quantity, expiry, cost)) in enumerate(self.lot_balances.items(), start=1):
            yield pk, self.hospital.pk, product, lot, expiry, location, Owner.HOSPITAL, cost, quantity

    def cost_layer_rows(self) -> Iterable[tuple]:
        """Each lot of the simulation has one price: a balance is one opening layer at it (the
        ledger's own receipts open a layer each; the simulator writes its lots as on hand)."""
        for pk, (quantity, _expiry, cost) in enumerate(self.lot_balances.values(), start=1):
            yield pk, pk, None, cost, False, quantity

    def movement_layer_rows(self) -> Iterable[tuple]:
        """The opening layer every lot movement of `movement_rows` moved, at its lot's price."""
        for pk, (movement, product, lot, quantity) in enumerate(self.lot_movements, start=1):
            yield pk, movement, None, quantity, self.lot_costs[(product, lot)], False
        self.lot_movements = []

    def stock_order_rows(self) -> Iterable[tuple]:
        for pk, t, kind, to_location, supplier, reason in self.orders.values():
            yield pk, self.hospital.pk, kind, to_location, supplier, reason, "", self.keeper.pk, self.at(t)

    def session_rows(self) -> Iterable[tuple]:
        for session in self.sessions.values():
            yield (session.pk, session.cabinet, session.device, session.user, "", CabinetSession.Status.CLOSED,
                   self.at(session.closed - 2 * MINUTE), self.at(session.closed), 0, json.dumps(session.taken),
                   json.dumps(session.returned), "[]", "[]")

    def encounter(self, use: _Use) -> str:
        day = self.day_of(use.t)
        return f"ZY{day:03d}{use.department % 100:02d}{self.rng.randint(0, 39):02d}"

    def consumption_rows(self) -> Iterable[tuple]:
        theatres = {d.pk for d in self.departments if d.kind == Department.Kind.OPERATING_THEATRE}
        for use in self.uses:
            use.encounter = self.encounter(use)
            surgery = use.department in theatres and use.unit is not None
            yield (use.pk, self.hospital.pk, use.product.pk, use.unit, use.lot, use.quantity, use.location, use.encounter,
                   f"SS{use.pk:08d}" if surgery else "", "经皮冠状动脉介入治疗" if surgery else "",
                   f"DR{use.department % 100:02d}{use.pk % 17:02d}", use.department, use.unit_price, use.consignment,
                   self.at(use.t), self.at(use.t + 30), use.user, "")

    def charge_rows(self) -> Iterable[tuple]:
        for use in self.uses:
            amount = use.unit_price * use.quantity
            yield (use.pk, self.hospital.pk, use.pk, Charge.Kind.CHARGE, use.encounter, use.product.his_code,
                   use.product.nhsa_code, use.quantity, use.unit_price, amount, use.gift or use.unit_price == 0,
                   self.at(use.t + 30))

    def delivery_rows(self) -> Iterable[tuple]:
        for use in self.uses:
            yield (use.pk, use.pk, ChargeDelivery.Status.DELIVERED, 1, self.at(use.t + 30), "", f"HISREF{use.pk:09d}",
                   self.at(use.t + 90))

    def settlement_rows(self) -> Iterable[tuple]:
        rng, lines = self.rng, []
        horizon = (self.days + 1) * DAY
        codes = [p.his_code for p in self.unit_products[:200]]
        for use in self.uses:
            draw = rng.random()
            if draw < DISCREPANCY:  # 漏收: used, never billed
                continue
            settled = min(use.t + rng.randint(HOUR, 30 * HOUR), horizon)
            code, nhsa, quantity, price = use.product.his_code, use.product.nhsa_code, use.quantity, use.unit_price
            if draw < 2 * DISCREPANCY:  # 多记
                quantity += 1
            elif draw < 3 * DISCREPANCY:  # billed above the purchase price
                price = (price * Decimal("1.15")).quantize(Decimal("0.01"))
            elif draw < 4 * DISCREPANCY:  # 串换: billed under another product's code
                code = rng.choice(codes)
            elif use.gift:
                price = use.product.price(self.day_of(use.t), 0)
            linked = rng.random() >= HIS_UNLINKED  # naming the use's charge (same id as the use) and its use
            lines.append((settled, use.encounter, code, nhsa, quantity, price, use.pk if linked else None))
            if rng.random() < DISCREPANCY:  # 虚记: a line for something nobody used
                lines.append((settled + 60, use.encounter, rng.choice(codes), "", 1, Decimal("980.00"), None))
        lines.sort(key=lambda line: line[0])
        for pk, (settled, encounter, code, nhsa, quantity, price, charge) in enumerate(lines, start=1):
            imported = settled + 6 * HOUR
            yield (pk, self.hospital.pk, f"HL{pk:010d}", encounter, code, nhsa, quantity, price, price * quantity,
                   self.at(settled), charge, charge, self.at(imported), f"B{self.at(imported):%Y%m%d}")

    def write_supplier_settlements(self, cursor) -> None:
        """Monthly consignment statements, confirmed for every month but the last; a few uses left off."""
        by_month: dict[tuple[int, datetime.date], list[_Use]] = defaultdict(list)
        for use in self.uses:
            if use.consignment:
                day = (self.base + datetime.timedelta(seconds=use.t)).astimezone(timezone.get_current_timezone()).date()
                by_month[(use.supplier, day.replace(day=1))].append(use)
        last_month = self.end_day.replace(day=1)
        statements, steps, lines = [], [], []
        for (supplier, month), uses in sorted(by_month.items(), key=lambda item: (item[0][1], item[0][0])):
            if month >= last_month:
                continue
            end = min((month + datetime.timedelta(days=32)).replace(day=1) - datetime.timedelta(days=1), self.end_day)
            pk = len(statements) + 1
            confirmed = self.base + datetime.timedelta(days=(end - self.start_day).days + 5)
            statements.append((pk, self.hospital.pk, supplier, max(month, self.start_day), end,
                               SupplierSettlement.Status.CONFIRMED, SupplierSettlement.Stage.ISSUED, confirmed,
                               self.keeper.pk, confirmed, self.keeper.pk))
            steps.append((pk, pk, SupplierSettlementEvent.Kind.ISSUED, confirmed, self.keeper.pk, ""))
            for use in uses:
                if self.rng.random() >= UNSETTLED_CONSIGNMENT:
                    lines.append((len(lines) + 1, pk, use.pk, use.product.pk, use.unit, use.lot, use.quantity,
                                  use.unit_price, use.unit_price * use.quantity))
        self.copy(cursor, SupplierSettlement, ["id", "hospital_id", "supplier_id", "period_start", "period_end", "status",
                                               "stage", "created_at", "created_by_id", "confirmed_at", "confirmed_by_id"], statements)
        self.copy(cursor, SupplierSettlementLine, ["id", "settlement_id", "consumption_id", "product_id", "unit_id", "lot",
                                                   "quantity", "unit_price", "amount"], lines)
        # An issued statement has its ISSUED step, as `SupplierSettlement.save` writes it.
        self.copy(cursor, SupplierSettlementEvent, ["id", "settlement_id", "kind", "at", "by_id", "reason"], steps)

    def movement_rows(self) -> Iterable[tuple]:
        """The ledger in the order it was written: by time (a unit's events in their order at equal times)."""
        self.movements.sort(key=lambda row: row[0])
        hospital = self.hospital.pk
        self.lot_costs = {(product, lot): cost for (product, lot, _), (_, _, cost) in self.lot_balances.items()}
        self.lot_movements = []
        for pk, row in enumerate(self.movements, start=1):
            (t, kind, product, unit, lot, quantity, source, target, from_status, to_status, from_owner, to_owner,
             user, reason, note, document_type, document_id) = row
            at = self.at(t)
            if unit is None:
                self.lot_movements.append((pk, product, lot, quantity))
            yield (pk, hospital, kind, product, unit, lot, quantity, source, target, from_status, to_status, from_owner,
                   to_owner, user, at, at + datetime.timedelta(seconds=2), reason, note, document_type, document_id,
                   f"bench:{pk}")
        self.movements = []

    def analyse(self) -> None:
        """VACUUM ANALYZE the loaded tables, then ANALYZE every other table, as autovacuum would have done
        in a year of use (without statistics the planner guesses: a nested loop over settlements took
        17 s where a hash join takes 0.1)."""
        tables = ["inventory_movement", "inventory_unit", "inventory_lotbalance", "inventory_consumption",
                  "inventory_charge", "inventory_chargedelivery", "inventory_hissettlementline",
                  "inventory_deliveryline", "inventory_deliverynote", "inventory_acceptancerecord",
                  "inventory_cabinetsession", "inventory_stockorder", "inventory_tagbinding", "inventory_product",
                  "inventory_supplyagreement", "inventory_suppliersettlementline"]
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"VACUUM ANALYZE {table}")
            cursor.execute("ANALYZE")
        self._step("VACUUM ANALYZE")

