"""Demo data: a county alliance (医共体) of two hospitals with a realistic catalog and a few deliveries.

`seed_demo()` is idempotent: master data is written with get_or_create / update_or_create on natural
keys (hospital code, department and location code per hospital, supplier USCC, manufacturer name,
certificate kind + number, product hospital + internal code, agreement hospital + supplier + product,
username — an existing user is left untouched), and deliveries go through the real receiving
services with fixed idempotency keys ("demo-dn-001", "demo-acc-001"…), so a second run replays them
instead of duplicating anything. All generated values come from fixed `random.Random` seeds; dates
are relative to `today`. On a later day the labels' dates differ, the receiving service refuses the
reused key, and the delivery note already recorded is kept as it is.

Acceptance itself (expiry, shelf life, certificate validity) is judged by the receiving service
against the real current date, so leave `today` at its default unless the clock is frozen too.
"""
from __future__ import annotations

import datetime
import random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import Group
from django.db import models, transaction
from django.utils import timezone

from devices.identification import GS, gtin_check_digit
from devices.models import Device
from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.models import (
    AcceptanceRecord,
    Certificate,
    DeliveryLine,
    DeliveryNote,
    Department,
    Hospital,
    Location,
    LotBalance,
    Manufacturer,
    Owner,
    PackagingUnit,
    ParLevel,
    Product,
    Requisition,
    Role,
    Supplier,
    SupplyAgreement,
    TrackingMode,
    Unit,
    UnitStatus,
    User,
)
from inventory.services import alerts
from inventory.services.labelling import bind_tag
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note, record_scan
from inventory.services.stock import LotQuantity, transfer_stock
from inventory.simulation.demo_history import history_counts, seed_history
from inventory.validators import make_uscc

__all__ = [
    "ALLIANCE", "EXPIRED_CERTIFICATE", "EXPIRING_CERTIFICATE", "HOSPITALS", "DemoLogin", "demo_counts", "demo_logins",
    "gs1_label", "seed_demo",
]

ALLIANCE = "青山县医共体"
LEAD, MEMBER = "QS01", "QS02"

UNIT, LOT = TrackingMode.UNIT, TrackingMode.LOT
CW, QUARANTINE = Location.Kind.CENTRAL_WAREHOUSE, Location.Kind.QUARANTINE


# --- Organisation ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _HospitalSpec:
    code: str
    name: str
    is_lead: bool
    user_suffix: str
    his_prefix: str


HOSPITALS = (
    _HospitalSpec(LEAD, "青山县人民医院", True, "", "27"),
    _HospitalSpec(MEMBER, "青山县中医院", False, "2", "28"),
)

# (code, name, kind, short name used for its locations); the warehouse department holds the
# central warehouse and the quarantine area, every other one a store (二级库) and a smart cabinet.
DEPARTMENTS = (
    ("CW", "中心库", Department.Kind.WAREHOUSE, "中心库"),
    ("CATH", "心内科导管室", Department.Kind.OPERATING_THEATRE, "导管室"),
    ("ORTHO", "骨科手术室", Department.Kind.OPERATING_THEATRE, "骨科手术室"),
    ("OPH", "眼科", Department.Kind.CLINICAL, "眼科"),
)


# --- Parties -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _SupplierSpec:
    name: str
    uscc_first17: str
    contact: str
    distribution_licence: str
    licence_issued_days_ago: int
    licence_valid_days: int  # after `today`


SUPPLIERS = {
    "HX": _SupplierSpec(
        "浙江华心医疗器械有限公司", "91330100MA27XK3L5", "王建国 0571-8702 1135", "浙杭药监械经营许20220101号", 700, 1126,
    ),
    "KJ": _SupplierSpec(
        "杭州康健骨科医疗器械有限公司", "91330102MA2GH8QW1", "李敏 0571-8816 2290", "浙杭药监械经营许20200233号", 1200, 626,
    ),
    # Its distribution licence runs out in three weeks: the certificate-expiry alert has something
    # to say, while every delivery of today is still acceptable.
    "RK": _SupplierSpec(
        "浙江瑞康医药物流有限公司", "91330106MA2CJ4RT6", "陈晓燕 0571-8653 0418", "浙杭药监械经营许20180517号", 1805, 21,
    ),
    "XD": _SupplierSpec(
        "杭州心动电生理医疗科技有限公司", "91330108MA2B7NP9E", "赵磊 0571-8923 7761", "浙杭药监械经营许20210688号", 900, 926,
    ),
}
EXPIRING_CERTIFICATE = (Certificate.Kind.DISTRIBUTION_LICENCE, SUPPLIERS["RK"].distribution_licence)


@dataclass(frozen=True)
class _ManufacturerSpec:
    name: str
    country: str
    uscc_first17: str  # empty for foreign manufacturers
    gs1_prefix: str  # 8 digits: the GTIN-14 is "0" + prefix + 4-digit item reference + check digit


MANUFACTURERS = {
    "MDT": _ManufacturerSpec("美敦力 Medtronic", "US", "", "08841230"),
    "ABT": _ManufacturerSpec("雅培 Abbott", "US", "", "08742150"),
    "BSC": _ManufacturerSpec("波士顿科学 Boston Scientific", "US", "", "08861470"),
    "ALC": _ManufacturerSpec("爱尔康 Alcon", "CH", "", "76123450"),
    "MP": _ManufacturerSpec("上海微创医疗器械（集团）有限公司 MicroPort", "CN", "91310115607215108", "69350120"),
    "LP": _ManufacturerSpec("乐普（北京）医疗器械股份有限公司", "CN", "91110114633021654", "69378450"),
    "WG": _ManufacturerSpec("山东威高集团医用高分子制品股份有限公司", "CN", "91371000726235681", "69210340"),
    "WGO": _ManufacturerSpec("山东威高骨科材料股份有限公司", "CN", "91371000MA3C4H2K7", "69210350"),
    "EB": _ManufacturerSpec("爱博诺德（北京）医疗科技股份有限公司", "CN", "91110114MA01A2B3C", "69701230"),
    "MR": _ManufacturerSpec("深圳迈瑞生物医疗电子股份有限公司", "CN", "91440300738825823", "69258060"),
    "WN": _ManufacturerSpec("稳健医疗用品股份有限公司", "CN", "91440300MA5D6F7G8", "69222010"),
}


# --- Catalog -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Family:
    """A product line: one registration certificate, one supplier, one product per specification."""

    key: str
    name: str
    category: str
    manufacturer: str
    registration: str
    nhsa_class: str  # 6 digits of the 医保 classification (一级/二级/三级)
    supplier: str
    specs: tuple[str, ...]
    price: str | tuple[str, ...]  # one price for all specs, or one per spec
    uom: str
    tracking: str = UNIT
    vbp: str = ""
    consignment: bool = False
    cold: tuple[str, str] | None = None
    in_member_catalog: bool = False
    shelf_days: int = 3 * 365
    min_shelf_life_days: int | None = None
    names: tuple[str, ...] = ()  # one name per spec when the specs are different products

    def price_of(self, index: int) -> Decimal:
        return Decimal(self.price[index] if isinstance(self.price, tuple) else self.price)

    def name_of(self, index: int) -> str:
        return self.names[index] if self.names else self.name


def _sizes(diameters: tuple[float, ...], lengths: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(f"Φ{d:.2f}mm×{length}mm" for d in diameters for length in lengths)


def _diopters(low: int, high: int) -> tuple[str, ...]:
    return tuple(f"+{power:.1f}D" for power in range(low, high + 1))


_STENT_VBP = "国采冠脉支架2023续约-浙-{}"
_BALLOON_VBP = "冠脉球囊集采2022-京津冀3+N-{}"
_EP_VBP = "电生理集采2022-闽牵头27省联盟-{}"
_IOL_VBP = "人工晶体省际联盟集采2022-{}"
_TRAUMA_VBP = "骨科创伤类集采2022-国采-{}"
_SPINE_VBP = "骨科脊柱类集采2022-国采-{}"

# Append only: a family's position gives its products' internal codes and GTIN item references.
FAMILIES = (
    # Coronary drug-eluting stents (药物洗脱支架), after the national VBP.
    _Family(
        "MP_FIREHAWK", "雷帕霉素靶向洗脱冠脉支架系统 Firehawk", "冠脉药物洗脱支架", "MP", "国械注准20143130431",
        "020101", "HX", _sizes((2.25, 2.5, 2.75, 3.0, 3.5, 4.0), (13, 18, 23, 29)), "745.00", "套",
        vbp=_STENT_VBP.format("0101"), in_member_catalog=True,
    ),
    _Family(
        "MP_FIREBIRD2", "西罗莫司靶向洗脱冠脉支架系统 Firebird2", "冠脉药物洗脱支架", "MP", "国械注准20153130512",
        "020101", "HX", _sizes((2.5, 2.75, 3.0, 3.5), (13, 18, 23, 29, 33)), "650.00", "套",
        vbp=_STENT_VBP.format("0102"),
    ),
    _Family(
        "LP_GUREATER", "药物洗脱冠脉支架系统 GuReater", "冠脉药物洗脱支架", "LP", "国械注准20193130259",
        "020101", "HX", _sizes((2.5, 2.75, 3.0, 3.5, 4.0), (15, 18, 24, 29)), "628.00", "套",
        vbp=_STENT_VBP.format("0103"), in_member_catalog=True,
    ),
    _Family(
        "MDT_ONYX", "佐他莫司洗脱冠脉支架系统 Resolute Onyx", "冠脉药物洗脱支架", "MDT", "国械注进20173131068",
        "020101", "HX", _sizes((2.25, 2.5, 2.75, 3.0, 3.5, 4.0), (15, 22, 30)), "798.00", "套",
        vbp=_STENT_VBP.format("0104"),
    ),
    _Family(
        "ABT_XIENCE", "依维莫司洗脱冠脉支架系统 XIENCE Xpedition", "冠脉药物洗脱支架", "ABT", "国械注进20163130987",
        "020101", "HX", _sizes((2.5, 2.75, 3.0, 3.5), (15, 18, 23, 28)), "776.00", "套",
        vbp=_STENT_VBP.format("0105"),
    ),
    _Family(
        "BSC_SYNERGY", "依维莫司洗脱铂铬合金冠脉支架系统 SYNERGY", "冠脉药物洗脱支架", "BSC", "国械注进20183131442",
        "020101", "HX", _sizes((2.5, 3.0, 3.5), (16, 20, 24, 28)), "760.00", "套",
        vbp=_STENT_VBP.format("0106"),
    ),
    # PTCA balloon catheters and guide wires.
    _Family(
        "MDT_EUPHORA", "PTCA球囊扩张导管 Euphora（半顺应性）", "PTCA球囊扩张导管", "MDT", "国械注进20183030774",
        "020201", "HX", _sizes((1.5, 2.0, 2.5, 3.0, 3.5), (12, 15, 20)), "286.00", "根",
        vbp=_BALLOON_VBP.format("0207"),
    ),
    _Family(
        "BSC_NCEMERGE", "PTCA球囊扩张导管 NC Emerge（非顺应性）", "PTCA球囊扩张导管", "BSC", "国械注进20173031105",
        "020201", "HX", _sizes((2.5, 3.0, 3.5, 4.0), (12, 15)), "395.00", "根",
        vbp=_BALLOON_VBP.format("0208"),
    ),
    _Family(
        "MP_FIREFIGHTER", "PTCA球囊扩张导管 Firefighter NC", "PTCA球囊扩张导管", "MP", "国械注准20163030388",
        "020201", "HX", _sizes((2.0, 2.5, 3.0, 3.5), (10, 15)), "258.00", "根",
        vbp=_BALLOON_VBP.format("0209"), in_member_catalog=True,
    ),
    _Family(
        "ABT_BMW", "PTCA导引导丝 Hi-Torque Balance Middleweight", "PTCA导引导丝", "ABT", "国械注进20163030621",
        "020301", "HX", ("0.014英寸×190cm", "0.014英寸×300cm"), "550.00", "根", in_member_catalog=True,
    ),
    _Family(
        "ABT_PILOT", "PTCA导引导丝 Hi-Torque Pilot", "PTCA导引导丝", "ABT", "国械注进20163030622",
        "020301", "HX", ("Pilot 50 0.014英寸×190cm", "Pilot 150 0.014英寸×190cm", "Pilot 200 0.014英寸×190cm"),
        "720.00", "根",
    ),
    _Family(
        "BSC_SAMURAI", "PTCA导引导丝 Samurai RC", "PTCA导引导丝", "BSC", "国械注进20193030245",
        "020301", "HX", ("0.014英寸×190cm", "0.014英寸×300cm"), "480.00", "根",
    ),
    # Electrophysiology catheters (电生理导管). ABT_GRID's registration certificate has expired.
    _Family(
        "ABT_GRID", "心脏电生理标测导管 Advisor HD Grid", "电生理导管", "ABT", "国械注进20193010455",
        "060101", "XD", ("D弯", "F弯", "J弯"), "7800.00", "根",
    ),
    _Family(
        "ABT_TACTICATH", "压力感应射频消融导管 TactiCath SE", "电生理导管", "ABT", "国械注进20203010312",
        "060101", "XD", ("D弯", "F弯", "J弯"), "9800.00", "根", vbp=_EP_VBP.format("0311"),
    ),
    _Family(
        "BSC_INTELLANAV", "磁电定位冷盐水灌注消融导管 IntellaNav MiFi OI", "电生理导管", "BSC", "国械注进20203010878",
        "060101", "XD", ("标准弯", "大弯"), "12800.00", "根", vbp=_EP_VBP.format("0312"),
    ),
    _Family(
        "MP_FIREMAGIC", "冷盐水灌注射频消融导管 FireMagic", "电生理导管", "MP", "国械注准20173010562",
        "060101", "XD", ("B弯", "C弯", "D弯"), "5980.00", "根", vbp=_EP_VBP.format("0313"),
    ),
    _Family(
        "MDT_ARCTIC", "心脏冷冻消融导管 Arctic Front Advance", "电生理导管", "MDT", "国械注进20173011123",
        "060101", "XD", ("球囊直径23mm", "球囊直径28mm"), "19800.00", "根",
    ),
    # Intraocular lenses (人工晶体).
    _Family(
        "ALC_SN60WF", "非球面人工晶状体 AcrySof IQ SN60WF", "人工晶体", "ALC", "国械注进20153160821",
        "090101", "KJ", _diopters(15, 26), "2680.00", "片", vbp=_IOL_VBP.format("0415"),
    ),
    _Family(
        "EB_A1UV", "非球面人工晶状体 普诺明 A1-UV", "人工晶体", "EB", "国械注准20143160214",
        "090101", "KJ", _diopters(15, 26), "980.00", "片", vbp=_IOL_VBP.format("0416"), in_member_catalog=True,
    ),
    _Family(
        "ALC_TORIC", "散光矫正型人工晶状体 AcrySof IQ Toric SN6AT3", "人工晶体", "ALC", "国械注进20163160655",
        "090101", "KJ", _diopters(18, 24), "2980.00", "片", consignment=True,
    ),
    # Orthopaedic plates and screws (骨科接骨板/螺钉).
    _Family(
        "WGO_DTP", "胫骨远端锁定接骨板", "骨科接骨板", "WGO", "国械注准20173130845",
        "040102", "KJ", tuple(f"{holes}孔 {side}侧" for holes in (6, 8, 10, 12) for side in ("左", "右")),
        "1450.00", "块", vbp=_TRAUMA_VBP.format("1203"), in_member_catalog=True,
    ),
    _Family(
        "WGO_LS35", "锁定螺钉", "骨科螺钉", "WGO", "国械注准20173130846",
        "040101", "KJ", tuple(f"Φ3.5mm×{length}mm" for length in range(14, 52, 2)), "320.00", "枚",
        vbp=_TRAUMA_VBP.format("1204"), in_member_catalog=True,
    ),
    _Family(
        "WGO_CS45", "皮质骨螺钉", "骨科螺钉", "WGO", "国械注准20173130847",
        "040101", "KJ", tuple(f"Φ4.5mm×{length}mm" for length in range(24, 64, 4)), "310.00", "枚",
        vbp=_TRAUMA_VBP.format("1205"), in_member_catalog=True,
    ),
    _Family(
        "MDT_SOLERA", "椎弓根螺钉 CD HORIZON SOLERA", "骨科螺钉", "MDT", "国械注进20163130234",
        "040201", "KJ", tuple(f"Φ{d}mm×{length}mm" for d in ("5.5", "6.5") for length in (40, 45, 50)),
        "880.00", "枚", vbp=_SPINE_VBP.format("0610"), consignment=True,
    ),
    # Low-value consumables, tracked by lot.
    _Family(
        "WG_SYRINGE", "一次性使用无菌注射器 带针", "注射器", "WG", "国械注准20153140123",
        "010101", "RK", ("1ml", "2ml", "5ml", "10ml", "20ml", "50ml"),
        ("0.32", "0.38", "0.45", "0.58", "0.95", "2.10"), "支", tracking=LOT, in_member_catalog=True,
    ),
    _Family(
        "WG_INFUSION", "一次性使用输液器 带针", "输液器", "WG", "国械注准20153140124",
        "010102", "RK", ("重力式 0.7mm", "精密过滤 0.7mm", "避光精密过滤 0.7mm"), ("1.60", "3.50", "6.80"), "套",
        tracking=LOT, in_member_catalog=True,
    ),
    _Family(
        "WG_CANNULA", "一次性使用静脉留置针", "留置针", "WG", "国械注准20163140311",
        "010103", "RK", ("18G", "20G", "22G", "24G"), "6.50", "支", tracking=LOT, in_member_catalog=True,
    ),
    _Family(
        "WN_GAUZE", "医用脱脂纱布块", "医用纱布", "WN", "粤械注准20172640188",
        "010201", "RK", ("5cm×7cm-8层", "7.5cm×7.5cm-8层", "10cm×10cm-8层", "10cm×10cm-12层"),
        ("0.18", "0.22", "0.32", "0.45"), "块", tracking=LOT, in_member_catalog=True, shelf_days=5 * 365,
    ),
    # IVD reagents: cold chain 2–8 °C, one registration certificate each.
    *(
        _Family(
            key, name, "体外诊断试剂", "MR", registration, "140101", "RK", (spec,), price, "盒", tracking=LOT,
            cold=("2.0", "8.0"), in_member_catalog=member, shelf_days=365, min_shelf_life_days=60,
        )
        for key, name, registration, spec, price, member in (
            ("MR_CTNI", "心肌肌钙蛋白I测定试剂盒（化学发光法）", "粤械注准20172400512", "2×50人份", "1680.00", True),
            ("MR_BNP", "B型钠尿肽测定试剂盒（化学发光法）", "粤械注准20172400513", "2×50人份", "2150.00", False),
            ("MR_DDIMER", "D-二聚体测定试剂盒（免疫比浊法）", "粤械注准20182400126", "2×100测试", "980.00", False),
            ("MR_CRP", "C反应蛋白测定试剂盒（免疫比浊法）", "粤械注准20162400341", "2×100测试", "620.00", True),
            ("MR_PCT", "降钙素原测定试剂盒（化学发光法）", "粤械注准20182400127", "2×50人份", "1890.00", False),
        )
    ),
)
FAMILY_BY_KEY = {family.key: family for family in FAMILIES}
# Expired twelve days ago and not yet renewed: Advisor HD Grid catheters (3 of the catalog's
# products) are rejected at acceptance, everything else stays acceptable.
EXPIRED_CERTIFICATE = (Certificate.Kind.REGISTRATION, FAMILY_BY_KEY["ABT_GRID"].registration)
_EXPIRED_DAYS_AGO = 12


@dataclass(frozen=True)
class _ProductRow:
    family: _Family
    index: int
    internal_code: str
    gtin: str
    nhsa_code: str

    @property
    def price(self) -> Decimal:
        return self.family.price_of(self.index)


def _catalog() -> list[_ProductRow]:
    """Every product of the alliance catalog, in a fixed order (the member hospital takes a subset)."""
    next_item: Counter[str] = Counter()
    manufacturer_no = {key: number for number, key in enumerate(MANUFACTURERS, start=1)}
    rows = []
    for family_no, family in enumerate(FAMILIES, start=1):
        if family.cold:
            prefix = "SJ"  # 试剂
        elif family.tracking == UNIT:
            prefix = "GZ"  # 高值
        else:
            prefix = "DZ"  # 低值
        for index in range(len(family.specs)):
            item = 1000 + next_item[family.manufacturer]
            next_item[family.manufacturer] += 1
            body = f"0{MANUFACTURERS[family.manufacturer].gs1_prefix}{item:04d}"
            nhsa = f"C{family.nhsa_class}{family_no:03d}{manufacturer_no[family.manufacturer]:04d}{index + 1:06d}"
            rows.append(
                _ProductRow(family, index, f"{prefix}{family_no:02d}{index + 1:03d}", body + gtin_check_digit(body), nhsa)
            )
    return rows


# --- Users -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    hospital_code: str
    hospital_name: str
    department: str = ""


_ROLE_USERS = (
    ("admin", Role.ADMIN, "管理员", "系统"),
    ("keeper", Role.WAREHOUSE, "库管员", "中心库"),
    ("operator", Role.SPD_OPERATOR, "运营专员", "SPD"),
    ("nurse", Role.NURSE, "护士", "导管室"),
    ("auditor", Role.AUDITOR, "审计员", "审计科"),
    ("reviewer", Role.REVIEWER, "审核员", "医保办"),
)


def demo_logins() -> list[DemoLogin]:
    """The demo users, one per role per hospital; member-hospital usernames carry a suffix (keeper2)."""
    logins = []
    for hospital in HOSPITALS:
        for base, role, _, _ in _ROLE_USERS:
            username = f"{base}{hospital.user_suffix}"
            logins.append(
                DemoLogin(
                    username, f"{username}-demo-123", role.value, hospital.code, hospital.name,
                    "心内科导管室" if role == Role.NURSE else "",
                )
            )
    return logins


# --- Deliveries --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Line:
    """What a planned delivery line is; UNIT families give `count` scanned units, LOT ones one line."""

    family: str
    count: int = 1
    quantity: int = 1
    spec: int | None = None  # which specification; None: picked at random
    price: str | None = None  # None: the agreement price
    expiry_in_days: int | None = None  # None: a normal shelf life
    scanned_twice: bool = False  # the last unit's label is scanned a second time
    gift: bool = False
    unknown_product: bool = False  # a GTIN that is not in the catalog


@dataclass(frozen=True)
class _Note:
    no: int
    hospital: str
    supplier: str
    number: str
    days_ago: int
    lines: tuple[_Line, ...]
    temperature_c: str | None = None
    accept: bool = True
    accepted_by: str = "keeper"

    @property
    def receive_key(self) -> str:
        return f"demo-dn-{self.no:03d}"

    @property
    def accept_key(self) -> str:
        return f"demo-acc-{self.no:03d}"


NOTES = (
    _Note(1, LEAD, "HX", "HX-PS-000101", 6, (
        _Line("MP_FIREHAWK", count=4), _Line("MP_FIREBIRD2", count=3), _Line("LP_GUREATER", count=3),
        _Line("MDT_ONYX", count=3), _Line("ABT_XIENCE", count=2), _Line("BSC_SYNERGY", count=2),
        _Line("MDT_EUPHORA", count=4), _Line("BSC_NCEMERGE", count=2), _Line("MP_FIREFIGHTER", count=2),
        _Line("ABT_BMW", count=2), _Line("ABT_PILOT", count=1),
        _Line("MP_FIREHAWK", price="798.00"),  # invoiced above the VBP price → PRICE_MISMATCH
        _Line("BSC_SAMURAI", expiry_in_days=-20),  # → UNIT_EXPIRED
        _Line("LP_GUREATER", scanned_twice=True),  # second scan → DUPLICATE_SERIAL
    )),
    _Note(2, LEAD, "KJ", "KJ-SH-000087", 5, (
        _Line("ALC_SN60WF", count=4), _Line("EB_A1UV", count=5), _Line("ALC_TORIC", count=2),
        _Line("WGO_DTP", count=3), _Line("WGO_LS35", count=10), _Line("WGO_CS45", count=5),
        _Line("MDT_SOLERA", count=4),
        _Line("EB_A1UV", expiry_in_days=45),  # → SHELF_LIFE_TOO_SHORT
    )),
    _Note(3, LEAD, "RK", "RK-CK-003311", 4, (
        _Line("WG_SYRINGE", spec=1, quantity=1000), _Line("WG_SYRINGE", spec=2, quantity=2000),
        _Line("WG_SYRINGE", spec=3, quantity=1000), _Line("WG_SYRINGE", spec=4, quantity=400),
        _Line("WG_INFUSION", spec=0, quantity=1500), _Line("WG_INFUSION", spec=1, quantity=600),
        _Line("WG_CANNULA", spec=2, quantity=400), _Line("WG_CANNULA", spec=3, quantity=200),
        _Line("WG_CANNULA", spec=1, quantity=50, price="0.00", gift=True),  # 赠送, accepted by the operator
        _Line("WN_GAUZE", spec=0, quantity=2000), _Line("WN_GAUZE", spec=2, quantity=3000),
        _Line("MR_CTNI", quantity=20), _Line("MR_BNP", quantity=10), _Line("MR_CRP", quantity=12),
        _Line("WG_SYRINGE", quantity=100, price="0.60", unknown_product=True),  # → PRODUCT_UNKNOWN
    ), temperature_c="4.6", accepted_by="operator"),
    _Note(4, LEAD, "RK", "RK-CK-003356", 2, (
        _Line("MR_DDIMER", quantity=10), _Line("MR_PCT", quantity=6),  # 12.5 °C → TEMPERATURE_OUT_OF_RANGE
        _Line("WG_SYRINGE", spec=0, quantity=500), _Line("WG_CANNULA", spec=0, quantity=100),
    ), temperature_c="12.5"),
    _Note(5, LEAD, "XD", "XD-PS-000412", 3, (
        _Line("ABT_TACTICATH", count=2), _Line("MP_FIREMAGIC", count=3), _Line("BSC_INTELLANAV", count=1),
        _Line("MDT_ARCTIC", count=1),
        _Line("ABT_GRID", count=1),  # registration certificate expired → PRODUCT_CERTIFICATE_EXPIRED
    )),
    _Note(6, LEAD, "HX", "HX-PS-000109", 1, (
        _Line("MP_FIREHAWK", count=3), _Line("MDT_EUPHORA", count=2), _Line("ABT_BMW", count=1),
    ), accept=False),
    _Note(101, MEMBER, "HX", "HX-PS-000102", 5, (
        _Line("MP_FIREHAWK", count=3), _Line("LP_GUREATER", count=2), _Line("MP_FIREFIGHTER", count=2),
        _Line("ABT_BMW", count=1),
        _Line("LP_GUREATER", price="1280.00"),  # the pre-VBP price → PRICE_MISMATCH
    )),
    _Note(102, MEMBER, "RK", "RK-CK-003318", 4, (
        _Line("WG_SYRINGE", spec=2, quantity=800), _Line("WG_INFUSION", spec=0, quantity=600),
        _Line("WG_CANNULA", spec=2, quantity=200), _Line("WN_GAUZE", spec=2, quantity=1000),
        _Line("MR_CTNI", quantity=6),
    ), temperature_c="5.2"),
    _Note(103, MEMBER, "KJ", "KJ-SH-000090", 1, (
        _Line("EB_A1UV", count=3), _Line("WGO_LS35", count=4),
    ), accept=False),
)


def gs1_label(
    gtin: str, *, lot: str, expiry: datetime.date, produced: datetime.date | None = None, serial: str = ""
) -> str:
    """A UDI as a DataMatrix scanner sends it: ]d2 prefix, GS after a variable-length field."""
    code = f"]d201{gtin}"
    if produced is not None:
        code += f"11{produced:%y%m%d}"
    code += f"17{expiry:%y%m%d}10{lot}"
    if serial:
        code += f"{GS}21{serial}"
    return code


# --- Seeding -----------------------------------------------------------------------------------

@dataclass
class _Context:
    today: datetime.date
    hospitals: dict[str, Hospital] = field(default_factory=dict)
    locations: dict[tuple[str, str], Location] = field(default_factory=dict)
    departments: dict[tuple[str, str], Department] = field(default_factory=dict)
    suppliers: dict[str, Supplier] = field(default_factory=dict)
    manufacturers: dict[str, Manufacturer] = field(default_factory=dict)
    registrations: dict[str, Certificate] = field(default_factory=dict)
    products: dict[tuple[str, str], _ProductRow] = field(default_factory=dict)  # (hospital, family:index)
    users: dict[str, User] = field(default_factory=dict)


def seed_demo(*, today: datetime.date | None = None) -> dict[str, int]:
    """Create (or leave as it is) the demo alliance; return how many of each thing it holds."""
    context = _Context(today=today or timezone.localdate())
    with transaction.atomic():
        _seed_organisation(context)
        _seed_parties(context)
        _seed_catalog(context)
        _seed_users(context)
        _seed_deliveries(context)
        _seed_devices_and_cabinets(context)
        seed_history(hospital=context.hospitals[LEAD], users=context.users, suppliers=context.suppliers,
                     today=context.today)
        _stock_cabinet(context, LEAD, "CATH-CAB1")  # refilled with what the history (or the last demo) used
        _seed_units_and_expensing(context)
        _seed_distribution(context)
        _seed_picking(context)
        # The alerts page has something on the first visit too (beat runs these scans later on).
        alerts.scan_certificates(today=context.today)
        for spec in HOSPITALS:
            alerts.scan_expiry(hospital=context.hospitals[spec.code], today=context.today)
    return {**demo_counts(), **history_counts(context.hospitals[LEAD])}


def _seed_organisation(context: _Context) -> None:
    for spec in HOSPITALS:
        hospital, _ = Hospital.objects.update_or_create(
            code=spec.code, defaults={"name": spec.name, "alliance": ALLIANCE, "is_lead": spec.is_lead}
        )
        context.hospitals[spec.code] = hospital
        for code, name, kind, short in DEPARTMENTS:
            department, _ = Department.objects.update_or_create(
                hospital=hospital, code=code, defaults={"name": name, "kind": kind}
            )
            context.departments[(spec.code, code)] = department
            if kind == Department.Kind.WAREHOUSE:
                places = [(code, short, CW, None), (f"{code}-QUAR", f"{short}隔离区（待处理）", QUARANTINE, None)]
            else:
                places = [
                    (f"{code}-STORE", f"{short}二级库", Location.Kind.DEPARTMENT_STORE, None),
                    (f"{code}-CAB1", f"{short}智能柜1号", Location.Kind.SMART_CABINET, f"{code}-STORE"),
                ]
            for location_code, location_name, location_kind, parent in places:
                location, _ = Location.objects.update_or_create(
                    hospital=hospital, code=location_code,
                    defaults={
                        "department": department, "name": location_name, "kind": location_kind,
                        "parent": context.locations[(spec.code, parent)] if parent else None, "is_active": True,
                    },
                )
                context.locations[(spec.code, location_code)] = location


def _seed_parties(context: _Context) -> None:
    today = context.today
    rng = random.Random(20240601)
    for key, spec in SUPPLIERS.items():
        uscc = make_uscc(spec.uscc_first17)
        supplier, _ = Supplier.objects.update_or_create(
            uscc=uscc, defaults={"name": spec.name, "contact": spec.contact, "is_active": True}
        )
        context.suppliers[key] = supplier
        founded = today - datetime.timedelta(days=rng.randrange(2500, 5000))
        # The business licence (营业执照) carries the USCC as its number; 30 years ≈ 长期.
        _certificate(
            Certificate.Kind.BUSINESS_LICENCE, uscc, founded, founded + datetime.timedelta(days=30 * 365),
            supplier=supplier,
        )
        _certificate(
            Certificate.Kind.DISTRIBUTION_LICENCE, spec.distribution_licence,
            today - datetime.timedelta(days=spec.licence_issued_days_ago),
            today + datetime.timedelta(days=spec.licence_valid_days), supplier=supplier,
        )
    for key, spec in MANUFACTURERS.items():
        manufacturer, _ = Manufacturer.objects.update_or_create(
            name=spec.name,
            defaults={"country": spec.country, "uscc": make_uscc(spec.uscc_first17) if spec.uscc_first17 else ""},
        )
        context.manufacturers[key] = manufacturer
    for family in FAMILIES:
        if family.registration == EXPIRED_CERTIFICATE[1]:
            valid_to = today - datetime.timedelta(days=_EXPIRED_DAYS_AGO)
            valid_from = valid_to - datetime.timedelta(days=5 * 365)
        else:
            # A 5-year certificate issued (or renewed) between ~7 months and ~4 years ago.
            valid_from = today - datetime.timedelta(days=rng.randrange(200, 1400))
            valid_to = valid_from + datetime.timedelta(days=5 * 365)
        context.registrations[family.key] = _certificate(
            Certificate.Kind.REGISTRATION, family.registration, valid_from, valid_to,
            manufacturer=context.manufacturers[family.manufacturer],
        )


def _certificate(
    kind: str, number: str, valid_from: datetime.date, valid_to: datetime.date, **holder: object
) -> Certificate:
    certificate, _ = Certificate.objects.update_or_create(
        kind=kind, number=number,
        defaults={"valid_from": valid_from, "valid_to": valid_to, "supplier": None, "manufacturer": None, **holder},
    )
    return certificate


def _seed_catalog(context: _Context) -> None:
    today = context.today
    agreement_from = today - datetime.timedelta(days=150)
    agreement_to = today + datetime.timedelta(days=215)
    catalog = _catalog()
    for spec in HOSPITALS:
        hospital = context.hospitals[spec.code]
        rows = [row for row in catalog if spec.is_lead or row.family.in_member_catalog]
        existing = {product.internal_code: product for product in Product.objects.filter(hospital=hospital)}
        agreements = {
            (agreement.product_id, agreement.supplier_id): agreement
            for agreement in SupplyAgreement.objects.filter(hospital=hospital)
        }
        for row in rows:
            family = row.family
            values = {
                "name": family.name_of(row.index), "specification": family.specs[row.index],
                "category": family.category, "manufacturer": context.manufacturers[family.manufacturer],
                "registration_certificate": context.registrations[family.key], "udi_di": row.gtin,
                "nhsa_code": row.nhsa_code, "his_charge_code": f"{spec.his_prefix}0{row.internal_code[2:]}",
                "unit_of_measure": family.uom, "is_high_value": family.tracking == UNIT, "tracking": family.tracking,
                "storage_min_c": Decimal(family.cold[0]) if family.cold else None,
                "storage_max_c": Decimal(family.cold[1]) if family.cold else None,
                "is_consignment": family.consignment, "min_shelf_life_days": family.min_shelf_life_days,
                "is_active": True,
            }
            product = _save(existing.get(row.internal_code), Product, values, hospital=hospital,
                            internal_code=row.internal_code)
            context.products[(spec.code, f"{family.key}:{row.index}")] = row
            supplier = context.suppliers[family.supplier]
            _save(
                agreements.get((product.pk, supplier.pk)), SupplyAgreement,
                {
                    "unit_price": row.price, "valid_from": agreement_from, "valid_to": agreement_to,
                    "platform_reference": f"ZJYC-{row.nhsa_code[1:7]}-{row.internal_code}",
                    "vbp_contract": family.vbp, "is_active": True,
                },
                hospital=hospital, supplier=supplier, product=product,
            )


def _save(instance: models.Model | None, model: type[models.Model], values: dict, **keys: object) -> models.Model:
    """Create the row, or update it only where it differs (a second run writes nothing)."""
    if instance is None:
        return model.objects.create(**keys, **values)
    changed = [name for name, value in values.items() if _current(instance, name) != _key(value)]
    if changed:
        for name in changed:
            setattr(instance, name, values[name])
        instance.save(update_fields=changed)
    return instance


def _current(instance: models.Model, name: str) -> object:
    return getattr(instance, instance._meta.get_field(name).attname)


def _key(value: object) -> object:
    return value.pk if hasattr(value, "_meta") else value


def _seed_users(context: _Context) -> None:
    """Create the demo users that do not exist yet; an existing user of that name is left as it is."""
    groups = {role.value: Group.objects.get_or_create(name=role.value)[0] for role in Role}
    for login in demo_logins():
        base = login.username.rstrip("0123456789")
        last_name, first_name = next((last, first) for name, _, first, last in _ROLE_USERS if name == base)
        user, created = User.objects.get_or_create(
            username=login.username,
            defaults={
                "hospital": context.hospitals[login.hospital_code], "first_name": first_name,
                "last_name": last_name, "is_staff": login.role == Role.ADMIN,
            },
        )
        if created:
            user.set_password(login.password)
            user.save(update_fields=["password"])
            user.groups.add(groups[login.role])
            if login.role == Role.NURSE:
                user.departments.add(context.departments[(login.hospital_code, "CATH")])
        context.users[login.username] = user


def _seed_deliveries(context: _Context) -> None:
    for note in NOTES:
        hospital = context.hospitals[note.hospital]
        suffix = next(spec.user_suffix for spec in HOSPITALS if spec.code == note.hospital)
        lines, gifts = _delivery_lines(context, note)
        receiving = context.locations[(note.hospital, "CW")]
        delivered = datetime.datetime.combine(
            context.today - datetime.timedelta(days=note.days_ago), datetime.time(9, 30 + note.no % 30),
            tzinfo=timezone.get_current_timezone(),
        )
        supplier = context.suppliers[note.supplier]
        try:
            delivery = receive_delivery_note(
                actor=Actor(user=context.users[f"keeper{suffix}"]), hospital=hospital, supplier=supplier,
                number=note.number, receiving_location=receiving, lines=lines, idempotency_key=note.receive_key,
                temperature_c=Decimal(note.temperature_c) if note.temperature_c else None, delivered_at=delivered,
            )
        except Refused as refusal:
            # Seeded on an earlier day: the labels (expiry dates relative to today) differ, so the
            # key is refused as reused. That delivery is already here; keep it as it is.
            if refusal.refusal is not Refusal.IDEMPOTENCY_CONFLICT:
                raise
            delivery = DeliveryNote.objects.get(hospital=hospital, supplier=supplier, number=note.number)
        if note.accept:
            keeper = Actor(user=context.users[f"keeper{suffix}"])
            for raw_udi in delivery.lines.exclude(raw_udi="").values_list("raw_udi", flat=True):
                _scan_against(keeper, delivery, raw_udi)
            accept_delivery_note(
                actor=Actor(user=context.users[f"{note.accepted_by}{suffix}"]), note=delivery,
                idempotency_key=note.accept_key, gift_line_nos=frozenset(gifts),
            )


def _scan_against(keeper: Actor, delivery: DeliveryNote, raw_udi: str) -> None:
    """The keeper scans a delivered unit against the note, as at the warehouse (an unscanned unit
    is not accepted); the label that cannot be read, or a note accepted on an earlier run, stays as it is."""
    try:
        record_scan(actor=keeper, note=delivery, code=raw_udi)
    except Refused:
        return


def _delivery_lines(context: _Context, note: _Note) -> tuple[list[LineInput], set[int]]:
    """The scanned labels of one planned delivery note, the same on every run of the same day."""
    rng = random.Random(note.no * 7919)
    today = context.today
    lines: list[LineInput] = []
    gifts: set[int] = set()
    for planned in note.lines:
        family = FAMILY_BY_KEY[planned.family]
        if planned.spec is not None:
            indices = [planned.spec]
        elif planned.count <= len(family.specs):
            indices = sorted(rng.sample(range(len(family.specs)), planned.count))
        else:
            indices = [rng.randrange(len(family.specs)) for _ in range(planned.count)]
        for index in indices:
            row = context.products[(note.hospital, f"{family.key}:{index}")]
            gtin = row.gtin
            if planned.unknown_product:
                body = f"0{MANUFACTURERS[family.manufacturer].gs1_prefix}9999"
                gtin = body + gtin_check_digit(body)
            if planned.expiry_in_days is not None:
                expiry = today + datetime.timedelta(days=planned.expiry_in_days)
                produced = expiry - datetime.timedelta(days=family.shelf_days)
            else:
                produced = today - datetime.timedelta(days=rng.randrange(20, 60 if family.cold else 300))
                expiry = produced + datetime.timedelta(days=family.shelf_days)
            lot = f"{produced:%y%m%d}{rng.randrange(10, 100)}"
            serial = ""
            if family.tracking == UNIT:
                serial = f"{family.manufacturer[:2]}{rng.randrange(100, 1000)}{note.no:03d}{len(lines) + 1:03d}"
            label = gs1_label(gtin, lot=lot, expiry=expiry, produced=produced, serial=serial)
            price = Decimal(planned.price) if planned.price is not None else row.price
            quantity = planned.quantity if family.tracking == LOT else 1
            lines.append(LineInput(unit_price=price, udi=label, quantity=quantity))
            if planned.gift:
                gifts.add(len(lines))
        if planned.scanned_twice:
            lines.append(lines[-1])
    return lines, gifts


CABINET_UNITS = 8
NURSE_BADGES = {"nurse": "B-0001", "nurse2": "B-0002"}


def demo_device_token(code: str) -> str:
    """Demo devices get a predictable token so the simulators can be started by hand. Demo only:
    real devices get a random token from issue-token."""
    return f"demo-token-{code}"


def _seed_devices_and_cabinets(context: _Context) -> None:
    """A cabinet device per smart cabinet, a scanner station at each central warehouse, badges for
    the nurses, and the lead hospital's cath-lab cabinet stocked with tagged units."""
    for spec in HOSPITALS:
        hospital = context.hospitals[spec.code]
        for (hospital_code, location_code), location in context.locations.items():
            if hospital_code != spec.code:
                continue
            if location.kind == Location.Kind.SMART_CABINET:
                kind, name = Device.Kind.CABINET_HTTP, f"{location.name}（RFID）"
            elif location.kind == CW:
                kind, name = Device.Kind.WEDGE_SCANNER, f"{location.name}扫码工作站"
            else:
                continue
            code = f"{spec.code}-{location_code}"
            Device.objects.update_or_create(code=code, defaults={
                "hospital": hospital, "location": location, "kind": kind, "name": name,
                "token_hash": Device.hash_token(demo_device_token(code)), "config": {"gs_substitute": "|"},
                "offline_after_seconds": 300,
            })
    for username, badge in NURSE_BADGES.items():
        User.objects.filter(username=username, badge__isnull=True).update(badge=badge)
    _stock_cabinet(context, LEAD, "CATH-CAB1")


def _stock_cabinet(context: _Context, hospital_code: str, cabinet_code: str) -> None:
    cabinet = context.locations[(hospital_code, cabinet_code)]
    keeper = Actor(user=context.users["keeper"])
    units = list(
        Unit.objects.filter(hospital=context.hospitals[hospital_code], owner=Owner.HOSPITAL)
        .exclude(status__in=[UnitStatus.CONSUMED, UnitStatus.SCRAPPED, UnitStatus.RETURNED_TO_SUPPLIER])
        .order_by("pk")[:CABINET_UNITS]
    )
    for unit in units:
        if not unit.epc:
            bind_tag(unit=unit, epc=f"E280{unit.pk:020X}", actor=keeper)
    to_move = [unit for unit in units if unit.status == UnitStatus.IN_STOCK]
    if to_move:
        transfer_stock(actor=keeper, hospital=cabinet.hospital, to_location=cabinet, units=to_move,
                       idempotency_key=f"demo-stock-{hospital_code}-{cabinet_code}-{to_move[0].pk}")


# --- Distribution: par levels, open requisitions, a suggestion list --------------------------------

DEMO_NOTE = "演示申领"


def _seed_distribution(context: _Context) -> None:
    """Par levels for the lead hospital's cath-lab store and cabinet, three open requisitions (an
    urgent one from the cath-lab nurse, a routine one, one awaiting approval in orthopaedics) and the
    replenishment suggestions they leave: the distribution loop on the first visit. Created once: a
    par level or requisition already there is left as it is."""
    from inventory.services import replenishment
    from inventory.services.requisitions import RequestedLine, create_requisition

    hospital = context.hospitals[LEAD]
    keeper, nurse, operator = context.users["keeper"], context.users["nurse"], context.users["operator"]
    products = list(Product.objects.filter(hospital=hospital, is_active=True).order_by("internal_code"))
    low_value = [product for product in products if product.tracking == LOT][:6]
    high_value = [product for product in products if product.tracking == UNIT][:6]
    levels = [("CATH-STORE", product, 20, 60, 100) for product in low_value] + [
        ("CATH-CAB1", product, 2, 4, 6) for product in high_value]
    for location_code, product, minimum, target, maximum in levels:
        ParLevel.objects.get_or_create(
            location=context.locations[(LEAD, location_code)], product=product,
            defaults={"minimum": minimum, "target": target, "maximum": maximum, "updated_by": keeper},
        )
    if Requisition.objects.filter(hospital=hospital, note__startswith=DEMO_NOTE).exists():
        return
    ortho = context.departments[(LEAD, "ORTHO")]
    if not ortho.requisitions_need_approval:
        ortho.requisitions_need_approval = True
        ortho.save(update_fields=["requisitions_need_approval"])
    cath = context.departments[(LEAD, "CATH")]
    create_requisition(user=nurse, department=cath, urgency=Requisition.Urgency.URGENT, submit=True,
                       note=f"{DEMO_NOTE}：急诊 PCI 备货", lines=[RequestedLine(product, 2) for product in high_value[:2]])
    create_requisition(user=nurse, department=cath, submit=True, note=f"{DEMO_NOTE}：日常补充",
                       lines=[RequestedLine(product, 30) for product in low_value[:3]])
    create_requisition(user=operator, department=ortho, submit=True, note=f"{DEMO_NOTE}：待审批",
                       lines=[RequestedLine(product, 10) for product in low_value[3:5]])
    replenishment.replenish(hospital=hospital)


def _seed_picking(context: _Context) -> None:
    """The rest of the loop: a pick list in progress (the routine cath-lab requisition, its first lot
    scanned) and a dispatched delivery awaiting the cath-lab nurse's receipt (a fourth requisition,
    picked in full FEFO and dispatched into the department's IN_TRANSIT location). Created once."""
    from inventory.models import PickList, StockReservation
    from inventory.services import picking
    from inventory.services.requisitions import RequestedLine, create_requisition

    hospital = context.hospitals[LEAD]
    if PickList.objects.filter(hospital=hospital).exists():
        return
    keeper, nurse = context.users["keeper"], context.users["nurse"]
    warehouse, cath = context.locations[(LEAD, "CW")], context.departments[(LEAD, "CATH")]
    routine = Requisition.objects.filter(hospital=hospital, note=f"{DEMO_NOTE}：日常补充",
                                         status=Requisition.Status.APPROVED).first()
    stocked = [product for product in Product.objects.filter(hospital=hospital, tracking=LOT, is_active=True,
                                                             expensed_on_issue=False).order_by("internal_code")
               if LotBalance.objects.filter(product=product, location=warehouse, quantity__gte=10).exists()]
    if routine is None or len(stocked) < 2:
        return

    def scan_proposed(pick_list: PickList, *, first_only: bool) -> None:
        for line in pick_list.lines.order_by("pk"):
            held = StockReservation.objects.filter(holder_type="PICK_LIST_LINE", holder_id=line.pk, lot_balance__isnull=False).order_by("expiry", "pk")
            for reservation in held[:1] if first_only else held:
                label = gs1_label(line.product.udi_di, lot=reservation.lot, expiry=reservation.expiry)
                picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=label, quantity=reservation.quantity)
            if first_only:
                return

    in_progress = picking.create_pick_list(user=keeper, hospital=hospital, source_location=warehouse,
                                           requisition_lines=list(routine.lines.order_by("pk")),
                                           idempotency_key="demo-pick-in-progress")
    scan_proposed(in_progress, first_only=True)

    sent = create_requisition(user=nurse, department=cath, submit=True, note=f"{DEMO_NOTE}：已配送待签收",
                              lines=[RequestedLine(product, 10) for product in stocked[-2:]])
    dispatched = picking.create_pick_list(user=keeper, hospital=hospital, source_location=warehouse,
                                          requisition_lines=list(sent.lines.order_by("pk")),
                                          idempotency_key="demo-pick-dispatched")
    scan_proposed(dispatched, first_only=False)
    picking.dispatch_pick_list(user=keeper, pick_list=dispatched, idempotency_key="demo-dispatch")


# --- Units of measure and department expensing (科室领用即消耗) ------------------------------------

# Packaging units of catalog families (key: the family; purchase unit first): syringes come 100 支
# to a 盒 and 10 盒 to a 箱, infusion sets 50 套 to a 箱.
PACKAGING = {"WG_SYRINGE": (("盒", 100), ("箱", 1000)), "WG_INFUSION": (("箱", 50),)}
# A non-chargeable item, outside the families: examination gloves have no HIS charge code and are
# expensed to the department that receives them.
GLOVES = {
    "internal_code": "LV90001", "name": "一次性使用医用检查手套", "specification": "丁腈 M 号", "category": "医用手套",
    "registration": "粤械备20190123号", "unit_of_measure": "副", "price": Decimal("0.35"), "box": 100,
}


def _seed_units_and_expensing(context: _Context) -> None:
    """Packaging units on the syringes and infusion sets; gloves received in boxes and sent to the
    eye clinic, where they are expensed on arrival (the 科室耗材成本 page has a line at once)."""
    catalog = {row.internal_code: row for row in _catalog()}
    for spec in HOSPITALS:
        for product in Product.objects.filter(hospital=context.hospitals[spec.code], internal_code__in=catalog):
            for number, (name, factor) in enumerate(PACKAGING.get(catalog[product.internal_code].family.key, ())):
                PackagingUnit.objects.get_or_create(
                    product=product, name=name, defaults={"factor": factor, "is_purchase_unit": number == 0})
    hospital = context.hospitals[LEAD]
    manufacturer = context.manufacturers["WN"]
    registration = _certificate(Certificate.Kind.REGISTRATION, GLOVES["registration"],
                                context.today - datetime.timedelta(days=900),
                                context.today + datetime.timedelta(days=900), manufacturer=manufacturer)
    body = f"0{MANUFACTURERS['WN'].gs1_prefix}9001"
    gloves, _ = Product.objects.get_or_create(
        hospital=hospital, internal_code=GLOVES["internal_code"],
        defaults={
            "name": GLOVES["name"], "specification": GLOVES["specification"], "category": GLOVES["category"],
            "manufacturer": manufacturer, "registration_certificate": registration,
            "udi_di": body + gtin_check_digit(body), "nhsa_code": "C0103019990007000001", "his_charge_code": "",
            "unit_of_measure": GLOVES["unit_of_measure"], "is_high_value": False, "tracking": LOT,
            "expensed_on_issue": True,
        },
    )
    PackagingUnit.objects.get_or_create(product=gloves, name="盒",
                                        defaults={"factor": GLOVES["box"], "is_purchase_unit": True})
    supplier = context.suppliers["RK"]
    SupplyAgreement.objects.get_or_create(
        hospital=hospital, supplier=supplier, product=gloves,
        defaults={"unit_price": GLOVES["price"], "valid_from": context.today - datetime.timedelta(days=150),
                  "valid_to": context.today + datetime.timedelta(days=215), "is_active": True},
    )
    if LotBalance.objects.filter(product=gloves).exists():
        return
    keeper = Actor(user=context.users["keeper"])
    warehouse = context.locations[(LEAD, "CW")]
    lot = f"GL{context.today:%y%m}01"
    note = receive_delivery_note(
        actor=keeper, hospital=hospital, supplier=supplier, number=f"RK-GL-{context.today:%Y%m%d}",
        receiving_location=warehouse, idempotency_key="demo-dn-gloves",
        lines=[LineInput(GLOVES["price"] * GLOVES["box"], product=gloves, lot=lot,
                         expiry=context.today + datetime.timedelta(days=3 * 365), quantity=10, unit="盒")],
    )
    accept_delivery_note(actor=keeper, note=note, idempotency_key="demo-acc-gloves")
    transfer_stock(actor=keeper, hospital=hospital, to_location=context.locations[(LEAD, "OPH-STORE")],
                   lots=[LotQuantity(gloves, lot, 3 * GLOVES["box"], warehouse)], idempotency_key="demo-gloves-oph")


def demo_counts() -> dict[str, int]:
    """How many of each thing the demo alliance holds now."""
    hospitals = Hospital.objects.filter(code__in=[spec.code for spec in HOSPITALS])
    products = Product.objects.filter(hospital__in=hospitals)
    lines = DeliveryLine.objects.filter(note__hospital__in=hospitals)
    decisions = Counter(
        AcceptanceRecord.objects.filter(line__in=lines).values_list("decision", flat=True)
    )
    lead_products = products.filter(hospital__code=LEAD)
    return {
        "hospitals": hospitals.count(),
        "departments": Department.objects.filter(hospital__in=hospitals).count(),
        "locations": Location.objects.filter(hospital__in=hospitals).count(),
        "suppliers": Supplier.objects.filter(
            uscc__in=[make_uscc(spec.uscc_first17) for spec in SUPPLIERS.values()]
        ).count(),
        "manufacturers": Manufacturer.objects.filter(name__in=[spec.name for spec in MANUFACTURERS.values()]).count(),
        "certificates": Certificate.objects.filter(
            number__in=[family.registration for family in FAMILIES]
            + [spec.distribution_licence for spec in SUPPLIERS.values()]
            + [make_uscc(spec.uscc_first17) for spec in SUPPLIERS.values()]
        ).count(),
        "products": products.count(),
        "products_lead_hospital": lead_products.count(),
        "products_unit_tracked": products.filter(tracking=UNIT).count(),
        "products_lot_tracked": products.filter(tracking=LOT).count(),
        "products_cold_chain": products.filter(storage_max_c__isnull=False).count(),
        "products_consignment": products.filter(is_consignment=True).count(),
        "supply_agreements": SupplyAgreement.objects.filter(hospital__in=hospitals).count(),
        "users": User.objects.filter(username__in=[login.username for login in demo_logins()]).count(),
        "delivery_notes": DeliveryNote.objects.filter(hospital__in=hospitals).count(),
        "delivery_notes_awaiting_acceptance": DeliveryNote.objects.filter(
            hospital__in=hospitals, status=DeliveryNote.Status.RECEIVED
        ).count(),
        "delivery_lines": lines.count(),
        "lines_accepted": decisions[AcceptanceRecord.Decision.ACCEPTED],
        "lines_rejected": decisions[AcceptanceRecord.Decision.REJECTED],
        "units_in_stock": Unit.objects.filter(hospital__in=hospitals, status=UnitStatus.IN_STOCK).count(),
        "units_in_cabinets": Unit.objects.filter(hospital__in=hospitals, status=UnitStatus.IN_CABINET).count(),
        "devices": Device.objects.filter(hospital__in=hospitals).count(),
        "par_levels": ParLevel.objects.filter(location__hospital__in=hospitals).count(),
        "requisitions_open": Requisition.objects.filter(
            hospital__in=hospitals, status__in=Requisition.OPEN_STATUSES).count(),
        "lot_quantity_in_stock": sum(
            LotBalance.objects.filter(hospital__in=hospitals).values_list("quantity", flat=True)
        ),
    }
