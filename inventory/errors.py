"""Domain errors: every refusal has a stable code, an HTTP status and a message in zh and en.

Services raise `Refused`; the API turns it into `{"code", "detail", "problems"}` and the UI into a
message. This file is the one place where a refusal's wording lives.
"""
from dataclasses import dataclass, field
from enum import Enum

from django.utils.translation import get_language


class Refusal(Enum):
    """(HTTP status, English message, Chinese message). Messages may use {placeholders}."""

    # Request shape and scope
    INVALID_REQUEST = (400, "The request is invalid: {detail}", "请求无效：{detail}")
    NOT_FOUND = (404, "{what} not found.", "未找到{what}。")
    NOT_ALLOWED = (403, "You are not allowed to {action}.", "您无权{action}。")
    IDEMPOTENCY_CONFLICT = (
        409,
        "Idempotency key {key} was already used for a different request.",
        "幂等键 {key} 已用于另一个不同的请求。",
    )
    # Receiving and acceptance (验收)
    DUPLICATE_DELIVERY_NOTE = (
        409, "Delivery note {number} of this supplier already exists.", "该供应商的送货单 {number} 已存在。"
    )
    DELIVERY_ALREADY_ACCEPTED = (409, "Delivery note {number} has already been accepted.", "送货单 {number} 已验收。")
    UDI_UNPARSEABLE = (400, "The UDI cannot be read: {detail}", "UDI 无法识别：{detail}")
    PRODUCT_UNKNOWN = (
        400, "No product with UDI-DI {di} is in this hospital's catalog.", "本院目录中没有 UDI-DI 为 {di} 的产品。"
    )
    UDI_DI_MISMATCH = (
        400, "The UDI-DI {di} does not match product {product}.", "UDI-DI {di} 与产品 {product} 不符。"
    )
    NO_ACTIVE_AGREEMENT = (
        400,
        "Product {product} is not in an active supply agreement with {supplier}.",
        "产品 {product} 与供应商 {supplier} 没有有效的供货协议。",
    )
    SUPPLIER_CERTIFICATE_MISSING = (
        400, "Supplier {supplier} has no {certificate}.", "供应商 {supplier} 缺少{certificate}。"
    )
    SUPPLIER_CERTIFICATE_EXPIRED = (
        400, "The {certificate} of supplier {supplier} expired on {date}.", "供应商 {supplier} 的{certificate}已于 {date} 过期。"
    )
    PRODUCT_CERTIFICATE_MISSING = (
        400, "Product {product} has no registration certificate.", "产品 {product} 缺少注册证。"
    )
    PRODUCT_CERTIFICATE_EXPIRED = (
        400,
        "The registration certificate {number} of product {product} expired on {date}.",
        "产品 {product} 的注册证 {number} 已于 {date} 过期。",
    )
    SERIAL_MISSING = (400, "A unit-tracked product needs a serial number in its UDI.", "按单件管理的产品需要序列号。")
    UNIT_QUANTITY_NOT_ONE = (
        400, "A unit-tracked line is one scanned unit; quantity {quantity} given.", "单件管理的行只能是一件，给出数量 {quantity}。"
    )
    LOT_MISSING = (400, "The lot number and expiry date are required.", "需要批号和有效期。")
    UNIT_EXPIRED = (400, "The unit expired on {expiry}.", "该耗材已于 {expiry} 过期。")
    SHELF_LIFE_TOO_SHORT = (
        400,
        "Only {days} days of shelf life remain; at least {minimum} are required.",
        "剩余效期仅 {days} 天，至少需要 {minimum} 天。",
    )
    DUPLICATE_SERIAL = (
        409, "Serial {serial} of UDI-DI {di} is already in the system.", "UDI-DI {di} 的序列号 {serial} 已存在。"
    )
    PRICE_MISMATCH = (
        400, "Price {price} differs from the agreement price {agreed}.", "价格 {price} 与协议价 {agreed} 不一致。"
    )
    TEMPERATURE_MISSING = (
        400, "Cold-chain product: the arrival temperature was not recorded.", "冷链产品：未记录到货温度。"
    )
    TEMPERATURE_OUT_OF_RANGE = (
        400,
        "Arrival temperature {temperature} °C is outside {low}–{high} °C.",
        "到货温度 {temperature} °C 超出 {low}–{high} °C 范围。",
    )
    GIFT_NOT_AUTHORISED = (
        403, "Only an SPD operator or an administrator may accept a gift line.", "只有 SPD 运营人员或管理员可以验收赠送品。"
    )
    # Stock
    ILLEGAL_TRANSITION = (
        409, "Unit {unit} is {current}, so it cannot become {target}.", "耗材 {unit} 当前为“{current}”，不能改为“{target}”。"
    )
    UNIT_NOT_AT_LOCATION = (
        409, "Unit {unit} is not at {location}.", "耗材 {unit} 不在{location}。"
    )
    ALREADY_AT_LOCATION = (409, "Unit {unit} is already at {location}.", "耗材 {unit} 已在{location}。")
    INSUFFICIENT_STOCK = (
        409,
        "Only {available} of lot {lot} are at {location}; {requested} requested.",
        "{location} 批号 {lot} 仅有 {available}，请求 {requested}。",
    )
    REASON_REQUIRED = (400, "A reason code is required.", "必须填写原因代码。")
    WRONG_SUPPLIER = (
        409, "Unit {unit} was supplied by {supplier}, not by this supplier.", "耗材 {unit} 的供应商是 {supplier}，不是该供应商。"
    )
    LOCATION_INACTIVE = (409, "Location {location} is not active.", "库位 {location} 已停用。")
    # Use on a patient and billing
    INVALID_ENCOUNTER = (
        400, "The HIS encounter number must be 1 to 64 letters, digits, '-', '_' or '.'.",
        "HIS 就诊号须为 1 到 64 位字母、数字或 - _ .。",
    )
    LOOKS_LIKE_PERSONAL_ID = (
        400, "{field} looks like a personal identity number; only HIS references may be stored.",
        "{field} 疑似身份证号；系统只保存 HIS 就诊号等编号，不保存患者身份信息。",
    )
    ALREADY_CONSUMED = (
        409, "Unit {unit} was already used on encounter {encounter} at {at} (consumption {consumption}).",
        "耗材 {unit} 已于 {at} 用于就诊 {encounter}（使用记录 {consumption}）。",
    )
    UNIT_EXPIRED_LOCKED = (409, "Unit {unit} expired on {expiry} and is locked.", "耗材 {unit} 已于 {expiry} 过期并锁定。")
    LOT_EXPIRED_LOCKED = (409, "Lot {lot} expired on {expiry} and is locked.", "批号 {lot} 已于 {expiry} 过期并锁定。")
    UNIT_QUARANTINED = (409, "Unit {unit} is in quarantine at {location}.", "耗材 {unit} 在隔离区 {location}。")
    UNIT_NOT_IN_DEPARTMENT = (
        409, "Unit {unit} is at {location}, not in a location of {department}.",
        "耗材 {unit} 位于 {location}，不在 {department} 的库位。",
    )
    NOT_YOUR_DEPARTMENT = (403, "You do not work in {department}.", "您不属于 {department}。")
    NO_CHARGE_CODE = (
        409, "Product {product} has no HIS charge code, so its use cannot be billed.", "产品 {product} 没有 HIS 收费编码，无法计费。"
    )
    ALREADY_REFUNDED = (409, "Consumption {consumption} was already refunded.", "使用记录 {consumption} 已退费。")
    CONSUMPTION_SETTLED = (
        409, "Consumption {consumption} is on a confirmed supplier settlement.", "使用记录 {consumption} 已在已确认的寄售结算单上。"
    )
    NO_LOCATION_FOR_REFUND = (
        409, "No {kind} location to put the refunded item back into.", "没有可放回退费物品的{kind}库位。"
    )
    # Alerts
    NOTE_REQUIRED = (400, "A note is required.", "必须填写备注。")
    ALERT_ALREADY_RESOLVED = (409, "Alert {alert} is already resolved.", "预警 {alert} 已处理完毕。")
    # HIS
    ALREADY_DELIVERED_TO_HIS = (
        409, "Charge {charge} was already delivered to the HIS ({reference}).", "费用 {charge} 已送达 HIS（{reference}）。"
    )
    HIS_LINE_CONFLICT = (
        409, "HIS line {line} was already imported (batch {batch}) with different content.",
        "HIS 明细 {line} 已在批次 {batch} 导入，且内容不同。",
    )
    # Consignment settlement (寄售结算)
    SETTLEMENT_CONFIRMED = (
        409, "Settlement {settlement} is already confirmed; its lines are locked.", "结算单 {settlement} 已确认，明细已锁定。"
    )
    SETTLEMENT_PERIOD_LOCKED = (
        409, "The period shares days with confirmed settlement {settlement} ({start}–{end}).",
        "该期间与已确认的结算单 {settlement}（{start}–{end}）重叠。",
    )
    SETTLEMENT_EMPTY = (
        409, "Nothing to settle for {supplier} from {start} to {end}.", "{supplier} 在 {start} 至 {end} 没有待结算的寄售使用。"
    )
    # Reconciliation
    REPORTS_PENDING = (
        409, "The reports of reconciliation run {run} are being rendered; ask again in a minute.",
        "对账 {run} 的报告正在生成，请稍后再试。",
    )
    # RFID tags
    INVALID_EPC = (400, "EPC {epc} is not a hexadecimal tag id of 8 to 64 digits.", "EPC {epc} 不是 8 到 64 位的十六进制标签号。")
    TAG_IN_USE = (409, "Tag {epc} is already bound to unit {unit}; unbind it first.", "标签 {epc} 已绑定耗材 {unit}，请先解绑。")
    UNIT_ALREADY_TAGGED = (
        409, "Unit {unit} already carries tag {epc}; unbind it first.", "耗材 {unit} 已绑定标签 {epc}，请先解绑。"
    )
    UNIT_NOT_TAGGED = (409, "Unit {unit} carries no tag.", "耗材 {unit} 未绑定标签。")
    # Quarantine release and cost layers (data integrity)
    QUARANTINE_RELEASE_REQUIRED = (
        409,
        "{item} is in quarantine at {location}: it leaves quarantine only by a release from quarantine "
        "(a quality decision with a reason), not by a transfer.",
        "{item} 在隔离区 {location}：只能通过解除隔离（需填写原因的质量决定）移出，不能直接移库。",
    )
    NOT_IN_QUARANTINE = (409, "{item} is not in quarantine (it is at {location}).", "{item} 不在隔离区（位于 {location}）。")
    QUARANTINE_RELEASE_NOT_AUTHORISED = (
        403, "Only an SPD operator or an administrator may release stock from quarantine.",
        "只有 SPD 运营人员或管理员可以解除隔离。",
    )
    RELEASE_INTO_QUARANTINE = (
        400, "A release from quarantine must go to a location that is not a quarantine.",
        "解除隔离的目的库位不能是隔离区。",
    )
    # Least privilege and tenancy (who may change shared master data; nothing of another hospital shown)
    TAG_NOT_AVAILABLE = (409, "Tag {epc} cannot be bound here; use another tag.", "标签 {epc} 无法在本院绑定，请换用其他标签。")
    SHARED_RECORD_KEPT_ELSEWHERE = (
        403, "{record} is shared master data kept by another hospital or by the alliance; only its keeper or an "
        "alliance steward may change it.",
        "{record} 是医共体共享主数据，由其他医院或医共体维护；只有维护方或医共体管理人员可以修改。",
    )
    CERTIFICATE_RELIED_ON_ELSEWHERE = (
        403, "{record} is relied on by another hospital's acceptance; only an alliance steward may change it.",
        "{record} 是其他医院验收所依据的证照；只有医共体管理人员可以修改。",
    )
    # Acceptance verified by scanning (验收扫码核对)
    UNSCANNED_ACCEPT_NOT_AUTHORISED = (
        403,
        "Only an SPD operator or an administrator may accept units nobody scanned (lines {lines}).",
        "只有 SPD 运营人员或管理员可以验收未扫码核对的耗材（第 {lines} 行）。",
    )
    UNSCANNED_REASON_MISSING = (
        400,
        "Accepting units without scanning them (lines {lines}) needs a reason.",
        "未扫码验收（第 {lines} 行）必须填写原因。",
    )
    LINES_NOT_SCANNED = (
        409,
        "Nothing was decided: lines {lines} of delivery note {number} were not scanned. Scan the units, or have "
        "an SPD operator accept them without scanning, with a reason.",
        "未作任何验收：送货单 {number} 的第 {lines} 行未扫码核对。请扫码核对，或由 SPD 运营人员填写原因后免扫码验收。",
    )
    SCANNED_UNIT_NOT_ON_NOTE = (
        404, "The scanned code is on no line of delivery note {number}.", "扫描的条码不在送货单 {number} 的任何一行上。"
    )
    LINE_ALREADY_DECIDED = (
        409, "Line {line} of delivery note {number} is already decided.", "送货单 {number} 的第 {line} 行已验收完毕。"
    )
    # Trust at the edges: device data, device clocks, reader faults (devices/, cabinets, HIS import)
    GS_SUBSTITUTE_UNSAFE = (
        400, "The scanner station's GS substitute cannot be used: {detail}", "扫码站的 GS 替代字符不可用：{detail}"
    )
    SESSION_NOT_SUSPECT = (
        409, "Cabinet session {session} is not waiting on a suspect read.", "智能柜会话 {session} 没有待确认的异常读取。"
    )
    # Findings and their dispositions; background jobs (people's pages, second pass)
    DISPOSITION_NOT_AUTHORISED = (
        403, "Only an auditor, an SPD operator or an administrator may record what a finding turned out to be.",
        "只有审计人员、SPD 运营人员或管理员可以登记对账发现的处理意见。",
    )
    DISPOSITION_NOTE_REQUIRED = (400, "A disposition needs a note saying why.", "处理意见需要填写说明。")
    DISPOSITION_UNKNOWN_OUTCOME = (
        400, "{outcome} is not a disposition (confirmed, explained, corrected or false alarm).",
        "{outcome} 不是有效的处理结论（确认、已说明、已更正或误报）。",
    )
    JOB_NOT_READY = (409, "Background job {job} is not ready yet ({status}).", "后台任务 {job} 尚未完成（{status}）。")

    @property
    def status(self) -> int:
        return self.value[0]

    def message(self, **params: object) -> str:
        chinese = (get_language() or "").startswith("zh")
        template = self.value[2] if chinese else self.value[1]
        if isinstance(params.get("what"), str) and params["what"] in THINGS:
            params = {**params, "what": THINGS[params["what"]][1 if chinese else 0]}
        try:
            return template.format(**params)
        except (KeyError, IndexError):
            return template


# The names of things a refusal may mention, in each language (the `what` of NOT_FOUND).
THINGS = {
    "unit": ("unit", "耗材"),
    "location": ("location", "库位"),
    "product": ("product", "产品"),
    "department": ("department", "科室"),
    "alert": ("alert", "预警"),
    "product or location": ("product or location", "产品或库位"),
    "lot": ("lot", "批号"),
    "finding": ("finding", "对账发现"),
    "job": ("background job", "后台任务"),
}


@dataclass
class Problem:
    """One reason a request cannot be done, e.g. one unit of a transfer that is not in stock."""

    refusal: Refusal
    params: dict = field(default_factory=dict)
    item: object = None

    @property
    def code(self) -> str:
        return self.refusal.name

    @property
    def detail(self) -> str:
        return self.refusal.message(**self.params)

    def as_dict(self) -> dict:
        data = {"code": self.code, "detail": self.detail}
        if self.item is not None:
            data["item"] = self.item
        return data


class Refused(Exception):
    """A service refused a request; nothing was changed. Carries every problem found, not just one."""

    def __init__(self, refusal: Refusal | list[Problem], item: object = None, **params: object) -> None:
        if isinstance(refusal, list):
            self.problems = refusal
        else:
            self.problems = [Problem(refusal, params, item)]
        super().__init__(self.detail)

    @property
    def refusal(self) -> Refusal:
        return self.problems[0].refusal

    @property
    def code(self) -> str:
        return self.problems[0].code

    @property
    def detail(self) -> str:
        return "; ".join(problem.detail for problem in self.problems)

    @property
    def status(self) -> int:
        return max(problem.refusal.status for problem in self.problems)
