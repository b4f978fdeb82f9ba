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
    UDI_UNPARSEABLE = (400, "The UDI cannot be read: {reason}.", "UDI 无法识别：{reason}。")
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
    # Bad input at the edges (fuzz): every API error has one of these codes, never free text alone
    NOT_AUTHENTICATED = (401, "Authentication credentials were not provided.", "未提供身份认证信息。")
    TOKEN_EXPIRED = (401, "The token has expired; sign in again.", "令牌已过期，请重新登录。")
    AUTHENTICATION_FAILED = (
        401, "Authentication failed: the credentials are wrong, unknown or inactive.", "身份认证失败：凭据错误、未知或已停用。"
    )
    INVALID_CREDENTIALS = (400, "Username or password is wrong.", "用户名或密码错误。")
    LOCKED_OUT = (429, "Too many failed logins; try again later.", "登录失败次数过多，请稍后再试。")
    PERMISSION_DENIED = (403, "You do not have permission to perform this action.", "您没有执行该操作的权限。")
    METHOD_NOT_ALLOWED = (405, "Method {method} is not allowed here.", "此处不允许 {method} 方法。")
    NOT_ACCEPTABLE = (406, "The requested response format is not available.", "无法提供所请求的响应格式。")
    UNSUPPORTED_MEDIA_TYPE = (415, "Content type {media_type} is not supported here.", "此处不支持内容类型 {media_type}。")
    THROTTLED = (429, "Too many requests; try again in {wait} seconds.", "请求过于频繁，请 {wait} 秒后再试。")
    PARSE_ERROR = (400, "The request body cannot be parsed: it is not well-formed {media_type}.", "请求内容无法解析：不是格式正确的 {media_type}。")
    PAYLOAD_TOO_LARGE = (413, "The request body is larger than {limit} bytes.", "请求内容超过 {limit} 字节。")
    LENGTH_REQUIRED = (
        411, "Send the body with a Content-Length header (chunked bodies are not accepted here).",
        "请求内容需带 Content-Length 头（此处不接受分块传输）。",
    )
    IN_USE = (409, "This record is still in use and cannot be deleted; deactivate it instead.", "该记录仍在使用中，不能删除；请停用。")
    TEXT_INVALID = (
        400, "Text at {where} contains the NUL character or an unpaired surrogate, which cannot be stored.",
        "{where} 处的文本含有无法保存的 NUL 字符或不成对的代理字符。",
    )
    DATE_OUT_OF_RANGE = (
        400, "{date} is outside the dates this system handles ({earliest} to {latest}).",
        "{date} 超出本系统可处理的日期范围（{earliest} 至 {latest}）。",
    )
    VALUE_OUT_OF_RANGE = (
        400, "A date or number in the request is outside the range this system can handle.",
        "请求中的日期或数值超出本系统可处理的范围。",
    )
    JSON_OBJECT_REQUIRED = (400, "{field} must be a JSON object.", "{field} 必须是 JSON 对象。")
    # Device events refused before they are stored (devices/services.py EventRejected; the problem's
    # detail names the field)
    INVALID_EVENT = (400, "The device event is malformed.", "设备事件格式错误。")
    UNKNOWN_EVENT_KIND = (400, "The device event is of an unknown kind.", "设备事件类型未知。")
    INVALID_BATCH = (400, "The batch of device events is malformed.", "设备事件批次格式错误。")
    EVENT_CONFLICT = (409, "This event id was already received with a different body.", "该事件 id 已以不同内容接收过。")
    WRONG_DEVICE = (403, "A device may only send its own events.", "设备只能发送自己的事件。")
    WRONG_HOSPITAL = (403, "A device may only send events for its own hospital.", "设备只能发送本院的事件。")
    EVENT_IDS_INVALID = (400, "Name 1 to {limit} event ids (event_id parameters).", "请提供 1 到 {limit} 个事件 id（event_id 参数）。")
    # Request shapes the API refused in English only until now (issue 11)
    USE_TARGET_INVALID = (
        400, "Name one unit (udi, unit or epc) or one lot (product and lot).",
        "请指定一件耗材（udi、unit 或 epc）或一个批号（product 和 lot），只能指定一个。",
    )
    DELIVERY_LINE_TARGET_INVALID = (
        400, "Give either udi (a scanned unit) or product with lot and expiry.",
        "请给出 udi（扫描的单件）或产品及其批号和有效期，二者择一。",
    )
    PERIOD_GIVEN_TWICE = (
        400, "Give period or period_start and period_end, not both.", "请给出 period 或 period_start 与 period_end，不能同时给出。"
    )
    PERIOD_MISSING = (
        400, "Give period (YYYY-MM) or both period_start and period_end.", "请给出 period（YYYY-MM）或同时给出 period_start 与 period_end。"
    )
    SUSPECT_SHARE_INVALID = (
        400, "suspect_missing_share must be a number above 0 and at most 1.", "suspect_missing_share 必须是大于 0 且不超过 1 的数。"
    )
    SUSPECT_MIN_UNITS_INVALID = (400, "suspect_min_units must be a whole number of at least 1.", "suspect_min_units 必须是不小于 1 的整数。")
    BAD_REQUEST = (400, "The request is malformed.", "请求格式错误。")
    SERVER_ERROR = (500, "The server failed to handle the request; the error has been logged.", "服务器处理请求失败，错误已记录。")
    HOSPITAL_REQUIRED = (400, "This needs a user bound to a hospital.", "此操作需要绑定医院的用户。")
    IDEMPOTENCY_KEY_MISSING = (
        400, "idempotency_key (or the Idempotency-Key header) is required.", "必须提供 idempotency_key（或 Idempotency-Key 头）。"
    )
    IDEMPOTENCY_KEY_INVALID = (400, "idempotency_key must be 1 to 128 characters.", "idempotency_key 须为 1 到 128 个字符。")
    PERIOD_INVALID = (400, "The period ends ({end}) before it starts ({start}).", "期间的结束日 {end} 早于开始日 {start}。")
    PERIOD_TOO_LONG = (400, "A period covers at most {days} days.", "期间最长 {days} 天。")
    NOTHING_SCANNED = (400, "Nothing was scanned: name at least one unit or lot.", "未扫描任何内容：至少需要一件耗材或一个批号。")
    QUANTITY_INVALID = (400, "The quantity must be a whole number of at least 1.", "数量必须是不小于 1 的整数。")
    UNIT_NAMED_TWICE = (400, "Unit {unit} is already in the list.", "耗材 {unit} 已在列表中。")
    LOT_USE_INCOMPLETE = (
        400, "A lot-tracked use needs a lot-tracked product, its lot and a quantity of at least 1.",
        "按批号管理的使用需要批号管理的产品、批号以及不小于 1 的数量。",
    )
    DELIVERY_NOTE_EMPTY = (400, "A delivery note needs at least one line.", "送货单至少需要一行。")
    DELIVERY_LINE_INVALID = (400, "Line {line}: {reason}", "第 {line} 行：{reason}")
    NOTE_TOO_LONG = (400, "The note is longer than {limit} characters.", "备注超过 {limit} 个字符。")
    CHOICE_UNKNOWN = (400, "{field} must be one of {choices}; {value} given.", "{field} 必须是 {choices} 之一，给出的是 {value}。")
    IMPORT_BATCH_INVALID = (400, "The import batch must be 1 to 64 characters.", "导入批次须为 1 到 64 个字符。")
    SETTLEMENT_LINES_MISSING = (400, "There are no settlement lines to import.", "没有可导入的结算明细。")
    SETTLEMENT_ROW_INVALID = (400, "Row {row} {column}: {reason}", "第 {row} 行 {column}：{reason}")
    SETTLEMENT_ROW_NOT_OBJECT = (400, "Row {row} is not an object of column → value.", "第 {row} 行不是“列 → 值”的对象。")
    FILE_TOO_LARGE = (413, "The file is larger than {limit} bytes.", "文件超过 {limit} 字节。")
    FILE_TYPE_UNSUPPORTED = (400, "The settlement file must be .csv or .xlsx.", "结算文件必须是 .csv 或 .xlsx 格式。")
    FILE_ENCODING_UNKNOWN = (400, "The CSV file is neither UTF-8 nor GBK text.", "CSV 文件既不是 UTF-8 也不是 GBK 文本。")
    FILE_UNREADABLE = (400, "The file cannot be read as {format}.", "文件无法按 {format} 读取。")
    FILE_EMPTY = (400, "The file is empty.", "文件为空。")
    FILE_COLUMN_TWICE = (400, "The column {column} appears twice.", "列 {column} 出现了两次。")
    FILE_COLUMNS_MISSING = (400, "The file lacks the columns {columns}.", "文件缺少列：{columns}。")
    SCAN_CODE_MISSING = (400, "A scan payload needs the scanned code as 'code'.", "扫码数据需要以 'code' 给出扫描内容。")
    TEMPERATURE_PAYLOAD_INVALID = (
        400, "A temperature payload needs celsius between -80 and 80.", "温度数据需要 -80 到 80 之间的摄氏度（celsius）。"
    )
    DEVICE_NOT_AT_CABINET = (
        400, "Device {device} is not bound to a smart cabinet location.", "设备 {device} 未绑定到智能柜库位。"
    )
    # Distribution: requisitions (科室申领) and par levels (基数)
    REQUISITION_STATE = (
        409, "Requisition {requisition} is {current}: it cannot be {action}.", "申领单 {requisition} 当前为“{current}”，不能{action}。"
    )
    REQUISITION_EMPTY = (409, "Requisition {requisition} has no lines to submit.", "申领单 {requisition} 没有可提交的明细。")
    REQUISITION_QUANTITY_INVALID = (
        400, "{field}: the quantity must be a whole number of at least 1 in the base unit.",
        "{field}：数量必须是以基本单位计的不小于 1 的整数。",
    )
    REQUISITION_QUANTITY_TOO_LARGE = (
        409, "{field}: {quantity} is more than the {allowed} still allowed on line {line}.",
        "{field}：{quantity} 超过第 {line} 行仍允许的 {allowed}。",
    )
    REQUISITION_LOCATION_INVALID = (
        400, "{location} is not a department store or smart cabinet of {department}.",
        "{location} 不是 {department} 的二级库或智能柜。",
    )
    REQUISITION_PRODUCT_TWICE = (
        400, "Product {product} is already on this requisition; change that line instead.",
        "产品 {product} 已在该申领单上，请修改原有明细。",
    )
    REASON_MISSING = (400, "{field}: a reason is required.", "{field}：必须填写原因。")
    PAR_LEVEL_INVALID = (
        400, "{field}: minimum ≤ target ≤ maximum is required ({minimum} / {target} / {maximum}).",
        "{field}：必须满足 最低量 ≤ 补货目标 ≤ 最高量（{minimum} / {target} / {maximum}）。",
    )
    PAR_LEVEL_EXISTS = (409, "{location} already has a par level for {product}.", "{location} 已有 {product} 的基数。")
    PAR_LEVEL_LOCATION_INVALID = (
        400, "Par levels are kept for department stores, smart cabinets and warehouses, not for {location}.",
        "基数只适用于二级库、智能柜和仓库，不适用于 {location}。",
    )
    SUGGESTION_DECIDED = (409, "This suggestion is already {status}.", "该建议已{status}。")
    PROPOSAL_DECIDED = (409, "This proposed par level is already {status}.", "该基数建议已{status}。")
    EPC_LIST_INVALID = (400, "payload.epcs must be a list of tag ids (strings).", "payload.epcs 必须是标签号（字符串）的列表。")
    # Picking, dispatch and department receipt (拣货、配送、科室验收)
    PICK_LINES_MISSING = (400, "Name at least one requisition line to pick.", "至少需要一条待拣货的申领明细。")
    PICK_LINE_NOT_OPEN = (
        409, "Requisition line {line} has nothing open to pick (requisition {requisition} is {status}).",
        "申领明细 {line} 没有待拣数量（申领单 {requisition} 状态为{status}）。",
    )
    PICK_LINE_ON_ANOTHER_LIST = (
        409, "Requisition line {line} is already on open pick list {pick_list}.", "申领明细 {line} 已在未完成的拣货单 {pick_list} 上。"
    )
    PICK_LIST_STATE = (409, "Pick list {number} is {status}: it cannot {action}.", "拣货单 {number} 状态为{status}，不能{action}。")
    PICK_NOTHING_PICKED = (409, "Nothing on pick list {number} has been picked yet.", "拣货单 {number} 尚未拣出任何耗材。")
    PICK_SCAN_NOT_ON_LIST = (
        409, "{product} is not to be picked on this pick list (or its lines are complete).",
        "本拣货单没有待拣的 {product}（或相应明细已拣完）。",
    )
    PICK_SCAN_NOT_AT_SOURCE = (409, "{item} is at {location}, not at {source}.", "{item} 位于 {location}，不在 {source}。")
    PICK_SCAN_NOT_PICKABLE = (409, "{item} is {status}: it cannot be picked.", "{item} 状态为{status}，不能拣货。")
    PICK_SCAN_RESERVED = (409, "{item} is reserved for another pick list or order.", "{item} 已被其他拣货单或单据预留。")
    PICK_SCAN_ALREADY_PICKED = (409, "{item} has already been picked.", "{item} 已拣货。")
    PICK_SCAN_NOT_FEFO = (
        409,
        "Lot {lot} expires on {expiry}, later than {proposed_lot} ({proposed_expiry}) proposed: pick first expiry first.",
        "批号 {lot} 有效期至 {expiry}，晚于建议的 {proposed_lot}（{proposed_expiry}）：请按近效期先出拣货。",
    )
    PICK_SCAN_QUANTITY_TOO_LARGE = (
        409, "{quantity} of lot {lot} cannot be picked: {allowed} at most.", "批号 {lot} 不能拣 {quantity}：最多 {allowed}。"
    )
    DELIVERY_ALREADY_RECEIVED = (409, "Delivery {number} has already been received.", "配送单 {number} 已签收。")
    RECEIPT_ITEM_INVALID = (400, "Receipt item {field}: {reason}", "签收明细 {field}：{reason}")
    # Monthly close (月结) and dated entry
    PERIOD_CLOSED = (
        409,
        "{moment} is in {month}, which is closed (月结); date the correction in the open period with a reason.",
        "{moment} 属于已月结的 {month}，不能再记账；请以开放期间的日期并注明原因进行更正。",
    )
    PERIOD_NOT_CLOSABLE = (409, "{month} cannot be closed yet: {blockers}", "{month} 暂不能月结：{blockers}")
    PERIOD_ALREADY_CLOSED = (409, "{month} is already closed.", "{month} 已月结。")
    OCCURRED_IN_FUTURE = (
        400, "occurred_at {moment} is in the future (more than {seconds} s ahead).", "发生时间 {moment} 晚于当前时间（超过 {seconds} 秒）。"
    )
    HISTORY_CONTRADICTED = (
        409,
        "{item}: a date of {moment} contradicts the ledger, whose last entry for it is at {last}.",
        "{item}：日期 {moment} 与台账矛盾，台账中它的最后一笔记录在 {last}。",
    )
    # Units of measure (包装单位) and department expensing (科室领用即消耗)
    UNKNOWN_PACKAGING_UNIT = (
        400, "{field}: product {product} has no unit {unit}; its units are {units}.",
        "{field}：产品 {product} 没有单位“{unit}”；可用单位为 {units}。",
    )
    QUANTITY_NOT_WHOLE_BASE_UNITS = (
        400, "{field}: {quantity} {unit} is not a whole number of {base} (1 {unit} = {factor} {base}).",
        "{field}：{quantity} {unit} 不是整数个{base}（1 {unit} = {factor} {base}）。",
    )
    QUANTITY_NOT_POSITIVE = (400, "{field}: the quantity must be above 0; {quantity} given.", "{field}：数量必须大于 0，给出的是 {quantity}。")
    NOT_WHOLE_BILLING_UNITS = (
        409, "{quantity} {base} of {product} is not a whole number of its billing unit {unit} (1 {unit} = {factor} {base}).",
        "产品 {product} 的 {quantity} {base} 不是整数个计价单位“{unit}”（1 {unit} = {factor} {base}）。",
    )
    PRICE_NOT_WHOLE_CENTS_PER_BASE_UNIT = (
        400, "{field}: {price} per {unit} is not a whole number of cents per {base} (1 {unit} = {factor} {base}).",
        "{field}：每{unit} {price} 元折合每{base}不是整分（1 {unit} = {factor} {base}）。",
    )
    NOT_EXPENSED_ON_ISSUE = (
        409, "Product {product} is not expensed to the department; its use is billed to a patient.",
        "产品 {product} 不是科室领用即消耗的物品，其使用须向患者计费。",
    )
    NOT_A_DEPARTMENT_STORE = (
        409, "{location} is not a store or cabinet of a clinical department.", "{location} 不是临床科室的二级库或智能柜。"
    )
    EXPENSED_NOT_BILLED = (
        409, "Product {product} is expensed to the department (科室领用即消耗), never billed to a patient: it is "
        "expensed when the department receives it, or at the department's count.",
        "产品 {product} 属于科室领用即消耗物品，不向患者计费：科室收货时或科室盘点时计入科室成本。",
    )
    COUNT_ABOVE_BOOK = (
        409, "Lot {lot} of {product}: {counted} counted but only {on_hand} on the books; a surplus is a stocktake matter.",
        "产品 {product} 批号 {lot}：盘点 {counted}，账面仅 {on_hand}；盘盈须走盘点调整。",
    )
    # Processing (加工: packs, kits, sets, internal labels)
    PACK_DEFINITION_EMPTY = (400, "A definition needs at least one line.", "定义至少需要一行。")
    PACK_LINE_QUANTITY = (
        400, "Line {product}: the quantity must be a whole number of at least 1, {quantity} given.",
        "{product} 行：数量必须是不小于 1 的整数，给出的是 {quantity}。",
    )
    PACK_LINE_TWICE = (400, "Product {product} is listed twice.", "产品 {product} 列出了两次。")
    PACK_DEFINITION_CYCLE = (
        400, "A definition cannot contain itself: {product} leads back to {definition}.",
        "定义不能包含自身：{product} 又包含了 {definition}。",
    )
    PACK_DEFINITION_CODE_TAKEN = (
        409, "The code {code} is already a product of this hospital.", "编码 {code} 已是本院的产品编码。"
    )
    NOT_A_PROCESSING_STATION = (400, "{location} is not a processing station.", "{location} 不是加工间。")
    PACK_MEMBER_NOT_IN_DEFINITION = (
        400, "{item} ({product}) is not in definition {definition}.", "{item}（{product}）不在定义 {definition} 中。"
    )
    PACK_MEMBERS_SHORT = (
        400, "{product}: {expected} needed, {scanned} scanned.", "{product}：需要 {expected}，已扫 {scanned}。"
    )
    PACK_MEMBERS_EXCESS = (
        409, "{product}: only {expected} belong in the pack, {scanned} scanned.",
        "{product}：包内只需 {expected}，却扫了 {scanned}。",
    )
    PACK_MEMBER_SCANNED_TWICE = (400, "{item} was scanned twice.", "{item} 扫描了两次。")
    MEMBER_NOT_AT_STATION = (
        409, "{item} is not in stock at {station} (it is {status}).", "{item} 不在 {station} 的库存中（当前：{status}）。"
    )
    NOT_FEFO = (
        409, "{product}: lot {lot} is not first to expire; take {proposed} (expires {expiry}) first.",
        "{product}：批号 {lot} 不是最先到期的，请先取 {proposed}（有效期至 {expiry}）。",
    )
    NOT_A_PACK = (400, "{item} is not a pack.", "{item} 不是加工包。")
    PACK_MEMBER_EXPIRED = (
        409, "Pack {pack} is locked: its member {member} expired on {expiry}.",
        "加工包 {pack} 已锁定：其中的 {member} 已于 {expiry} 过期。",
    )
    PACK_MEMBER_NOT_LIVE = (409, "{member} is no longer in pack {pack}.", "{member} 已不在加工包 {pack} 中。")
    PACK_NOT_IN_STOCK = (
        409, "Pack {pack} cannot be broken up where it is ({status}); bring it to a store first.",
        "加工包 {pack} 在当前状态（{status}）下不能拆包，请先送回库房。",
    )
    LABEL_NEEDS_GTIN = (
        400, "{item} has no GTIN (UDI-DI {di}); a GS1 label cannot carry it.",
        "{item} 没有 GTIN（UDI-DI {di}），无法打印 GS1 标签。",
    )

    # Stocktakes (盘点)
    STOCKTAKE_FROZEN = (
        409, "{location} is being counted (stocktake {session}): nothing may leave it until the count is submitted.",
        "{location} 正在盘点（盘点单 {session}）：提交盘点前不能出库。",
    )
    STOCKTAKE_NOT_OPEN = (409, "Stocktake {session} is {status}: it cannot be changed so.", "盘点单 {session} 状态为“{status}”，不能进行此操作。")
    STOCKTAKE_LOCATION_NOT_IN_SESSION = (
        409, "{location} is not counted by stocktake {session}.", "{location} 不在盘点单 {session} 的范围内。"
    )
    STOCKTAKE_UNIT_NOT_COUNTABLE = (
        409, "Unit {unit} is {status}: it should not be on a shelf; check its record.", "耗材 {unit} 状态为“{status}”，不应在货架上，请核查。"
    )
    STOCKTAKE_NOT_COUNTED = (409, "Line {line} has not been counted yet.", "盘点行 {line} 尚未盘点。")
    STOCKTAKE_RECOUNT_BY_COUNTER = (
        409, "You counted line {line} yourself: someone else must recount it.", "盘点行 {line} 由您本人盘点，须由他人复盘。"
    )
    STOCKTAKE_APPROVE_OWN_VARIANCE = (
        409, "You counted or recounted a variance over the threshold (line {line}): someone else must approve it.",
        "您本人盘点或复盘了超过阈值的差异（盘点行 {line}），须由他人审批。",
    )
    STOCKTAKE_RECOUNT_REQUIRED = (
        409, "The variance of {item} (line {line}) is over the threshold: it needs a recount by another person.",
        "{item}（盘点行 {line}）的差异超过阈值，须由另一人复盘。",
    )
    STOCKTAKE_LINES_UNCOUNTED = (
        409, "{count} lines are neither confirmed nor counted.", "还有 {count} 行既未确认也未盘点。"
    )
    # Purchasing (采购: services.purchasing)
    ORDER_EMPTY = (400, "A purchase order or plan needs at least one line.", "采购订单或计划至少需要一行。")
    ORDER_AGREEMENT_INVALID = (
        400,
        "Line {line}: no supply agreement of {supplier} for {product} is in force today.",
        "第 {line} 行：{supplier} 对 {product} 今天没有有效的供货协议。",
    )
    PLATFORM_REFERENCE_REQUIRED = (
        400,
        "Line {line}: {product} is high-value or VBP and is ordered only through the procurement platform: "
        "give its platform order reference, or an SPD operator's emergency reason.",
        "第 {line} 行：{product} 为高值或集采产品，只能通过采购平台采购：请填写平台订单号，或由 SPD 运营人员记录紧急原因。",
    )
    EMERGENCY_NOT_AUTHORISED = (
        403,
        "Line {line}: only an SPD operator may order off the platform with an emergency reason.",
        "第 {line} 行：只有 SPD 运营人员可以记录紧急原因进行平台外采购。",
    )
    NHSA_CODE_MISSING = (
        400,
        "Line {line}: {product} has no 医保 code and cannot be ordered unless exempted with a reason.",
        "第 {line} 行：{product} 没有医保耗材编码，除非注明豁免原因，否则不能采购。",
    )
    # Consignment statements between the hospital and its supplier (services.settlement_workflow)
    SETTLEMENT_STAGE = (
        409, "Statement {settlement} is {stage}: it cannot be {action} now.", "结算单 {settlement} 当前为“{stage}”，不能{action}。"
    )
    SETTLEMENT_REASON_MISSING = (400, "Give the reason.", "请填写原因。")
    # Purchase plans from demand (services.purchasing.plan_from_demand)
    DEMAND_ALREADY_PLANNED = (409, "{source} is already in purchase plan {plan}.", "{source} 已在采购计划 {plan} 中。")
    DEMAND_NOT_OPEN = (409, "{source} is no longer open ({status}).", "{source} 已不再待处理（{status}）。")
    DEMAND_NOT_SHORT = (
        409, "{source}: the central warehouse can cover it from stock.", "{source}：中心库现有库存可满足，无需采购。"
    )
    DEMAND_NO_AGREEMENT = (
        400, "{source}: no supply agreement for {product} is in force today.", "{source}：产品 {product} 今日没有有效的供货协议。"
    )
    DEMAND_NOTHING_PLANNED = (409, "None of the selected needs can be planned.", "所选需求均无法列入采购计划。")
    DEMAND_NOTHING_SELECTED = (400, "Select at least one suggestion or requisition line.", "请至少选择一条建议或申领明细。")
    PLAN_ALREADY_ORDERED = (409, "Purchase plan {plan} has already been ordered.", "采购计划 {plan} 已下单。")
    ORDER_NOT_OPEN = (
        409, "Purchase order {number} is {status}: nothing more is delivered against it.",
        "采购订单 {number} 状态为{status}：不能再按此订单送货。",
    )
    ORDER_SUPPLIER_MISMATCH = (
        400, "Purchase order {number} is addressed to another supplier.", "采购订单 {number} 属于其他供应商。"
    )
    PRODUCT_NOT_ON_ORDER = (
        400, "Product {product} is not on purchase order {number}.", "产品 {product} 不在采购订单 {number} 中。"
    )
    OVER_DELIVERY = (
        400,
        "Over-delivery: purchase order {number} still expects {outstanding} of {product}, {quantity} delivered.",
        "超量送货：采购订单 {number} 中 {product} 仅剩 {outstanding} 未到，本次送来 {quantity}。",
    )
    CLOSE_REASON_MISSING = (400, "Closing an order needs a reason.", "关闭订单需要填写原因。")
    # Price changes (调价: services.prices)
    PRICE_EDIT_REFUSED = (
        409,
        "A purchase price is never edited in place: record a price change (a new dated agreement with a reason "
        "and an approver).",
        "采购价格不能直接修改：请登记调价（新的带日期协议，注明原因和审批人）。",
    )
    PRICE_CHANGE_DATE_INVALID = (
        400,
        "The new price must start after {start}, no later than {end}, and not before today.",
        "新价格的生效日须晚于 {start}、不晚于 {end}，且不早于今天。",
    )
    PRICE_CHANGE_APPROVER_INVALID = (
        400,
        "The approver must be an administrator or SPD operator of this hospital.",
        "审批人必须是本院的管理员或 SPD 运营人员。",
    )
    PRICE_CHANGE_REASON_MISSING = (400, "A price change needs a reason.", "调价需要填写原因。")
    PRICE_UNCHANGED = (400, "The new price {price} is the current price.", "新价格 {price} 与现价相同。")
    AGREEMENT_NOT_CURRENT = (
        409, "This agreement has already ended or been replaced.", "该协议已结束或已被替换。"
    )
    # Supplier portal (services.portal)
    ASN_DUPLICATE_SERIAL = (
        400, "Serial {serial} of UDI-DI {di} is on this shipping notice twice.", "UDI-DI {di} 的序列号 {serial} 在本送货单中重复。"
    )
    SERIAL_IN_STOCK = (
        409, "Serial {serial} of UDI-DI {di} is already in the hospital's stock.", "UDI-DI {di} 的序列号 {serial} 已在医院库存中。"
    )
    CERTIFICATE_FILE_TYPE = (
        400, "A certificate must be a PDF, PNG or JPEG file ({name} is not).", "证照文件必须是 PDF、PNG 或 JPEG（{name} 不是）。"
    )
    CERTIFICATE_KIND_NOT_SUPPLIERS = (
        400, "A supplier uploads its own licences and authorisations, not a {kind}.", "供应商只能上传自己的执照和授权书，不能上传{kind}。"
    )
    CERTIFICATE_NUMBER_TAKEN = (409, "A {kind} numbered {number} already exists.", "编号为 {number} 的{kind}已存在。")
    CERTIFICATE_DATES = (400, "The end of validity is before its start.", "有效期的结束早于开始。")
    VBP_EXTENSION_NOT_LATER = (
        400, "An extension must end after the current end, {end}.", "顺延后的结束日须晚于当前结束日 {end}。"
    )
    # Complaints and suspensions (services.complaints)
    SUPPLIER_SUSPENDED = (
        409,
        "Supplier {supplier} is suspended since {since} after {count} upheld complaints: no new orders or "
        "acceptance until an SPD operator lifts the suspension.",
        "供应商 {supplier} 因 {count} 起成立的投诉自 {since} 起被暂停：在 SPD 运营人员解除暂停前不得下单或验收。",
    )
    PRODUCT_SUSPENDED = (
        409,
        "Product {product} is suspended since {since} after {count} upheld complaints: no new orders or "
        "acceptance until an SPD operator lifts the suspension.",
        "产品 {product} 因 {count} 起成立的投诉自 {since} 起被暂停：在 SPD 运营人员解除暂停前不得下单或验收。",
    )
    COMPLAINT_SUBJECT_MISSING = (
        400, "A complaint is about a supplier, a product or both: name at least one.", "投诉须指明供应商或产品（至少一项）。"
    )
    COMPLAINT_ALREADY_DECIDED = (409, "This complaint was already decided: {outcome}.", "该投诉已有结论：{outcome}。")
    COMPLAINT_REASON_MISSING = (400, "Give the reason for the outcome.", "请填写结论的理由。")
    SUSPENSION_ALREADY_LIFTED = (409, "This suspension was already lifted on {date}.", "该暂停已于 {date} 解除。")
    SUSPENSION_LIFT_REASON_MISSING = (400, "Lifting a suspension needs a reason.", "解除暂停需要填写原因。")
    AHP_INCONSISTENT = (
        400,
        "The pairwise comparisons are inconsistent: CR = {cr}, it must be below {limit}. Revise the judgements.",
        "两两比较判断矩阵不一致：CR = {cr}，须小于 {limit}，请修改判断。",
    )
    # Supplier evaluation (services.evaluation)
    EVALUATION_SET_FROZEN = (
        409, "Indicator set {set} is used by an evaluation run and frozen: make a new version to change it.",
        "评价指标体系 {set} 已被评价使用并冻结：如需修改请建立新版本。",
    )
    EVALUATION_SET_INVALID = (400, "The indicator set is not valid: {detail}", "评价指标体系无效：{detail}")
    EVALUATION_RUN_FINALISED = (
        409, "Evaluation run {run} was finalised on {date}: its values and results no longer change.",
        "评价 {run} 已于 {date} 定稿，数据和结果不可再改。",
    )
    EVALUATION_SCORE_OUT_OF_RANGE = (
        400, "The score of {indicator} for {supplier} must be from {low} to {high}; {value} given.",
        "{supplier} 的“{indicator}”评分须在 {low} 到 {high} 之间，填写的是 {value}。",
    )
    EVALUATION_VALUE_MISSING = (
        409, "No value of {indicator} for {supplier} yet: {reason}.",
        "{supplier} 的“{indicator}”尚无数值：{reason}。",
    )
    EVALUATION_NOT_IN_RUN = (400, "{what} is not part of this evaluation run.", "{what}不在本次评价中。")
    ASN_EMPTY = (400, "The shipping notice has no line to deliver.", "电子送货单没有可送货的明细。")
    ASN_ALREADY_SUBMITTED = (409, "Shipping notice {number} has already been submitted.", "电子送货单 {number} 已提交。")
    NO_RECEIVING_LOCATION = (
        409, "The hospital has no central warehouse to receive deliveries.", "医院没有可收货的中心库。"
    )
    # Consumable review (services.review)
    REVENUE_ROW_INVALID = (
        400, "Row {row}: the value of {field} is not valid.", "第 {row} 行：{field} 的值无效。"
    )
    # Clinical teams (诊疗组, services.clinical_teams)
    CLINICAL_TEAM_CODE_TAKEN = (
        409, "Clinical team code {code} is already used in this hospital.", "诊疗组编码 {code} 在本院已被使用。"
    )
    TEAM_MEMBERSHIP_OVERLAPS = (
        409,
        "Doctor {doctor} is already in clinical team {team} of {department} from {since} to {until}: a doctor "
        "is in one team of a department on a day; end that membership first.",
        "医生 {doctor} 在 {since} 至 {until} 已属于{department}的诊疗组 {team}：同一天医生在一个科室只能属于一个诊疗组，"
        "请先结束该成员关系。",
    )
    TEAM_MEMBERSHIP_DATES = (
        400, "A membership cannot end ({until}) before it starts ({since}).", "成员关系的结束日期（{until}）不能早于开始日期（{since}）。"
    )
    TEAM_MEMBERSHIP_ENDED = (
        409, "Doctor {doctor}'s membership of {team} already ended on {until}.", "医生 {doctor} 在 {team} 的成员关系已于 {until} 结束。"
    )
    TEAM_DOCTOR_REQUIRED = (400, "The doctor's HIS code is required.", "需要医生的 HIS 工号。")
    # Recalls (召回)
    RECALL_LOCKED = (
        409, "{item} is under recall {recall}: it may only be quarantined, returned to the supplier or scrapped.",
        "{item} 处于召回 {recall} 中：只能隔离、退回供应商或报损。",
    )
    RECALL_CLOSED = (409, "Recall {recall} is closed.", "召回 {recall} 已关闭。")
    RECALL_NOT_CLOSABLE = (
        409, "Recall {recall} cannot be closed: {count} in-stock item(s) are not yet quarantined or returned.",
        "召回 {recall} 不能关闭：仍有 {count} 件在库物品未隔离或退回。",
    )
    RECALL_SCAN_NOT_AFFECTED = (
        409, "{item} is not affected by recall {recall}.", "{item} 不在召回 {recall} 范围内。"
    )
    # County alliance catalog (services.alliance_catalog)
    ALLIANCE_CATALOG_KEEPERS_ONLY = (
        403,
        "Only the alliance's stewards (the lead hospital's administrators and SPD operators, alliance "
        "administrators and operators) keep the alliance catalog.",
        "只有医共体主数据管理人员（牵头医院的管理员和 SPD 运营人员、联盟管理员和联盟SPD运营）可以维护联盟目录。",
    )
    ALLIANCE_ENTRY_EXISTS = (
        409, "The alliance catalog already has an entry with code {code} or UDI-DI {di}.",
        "联盟目录中已有编码为 {code} 或 UDI-DI 为 {di} 的条目。",
    )
    ALLIANCE_ADOPTER_NOT_MEMBER = (
        400, "{hospital} is not a member of the alliance {alliance}.", "{hospital} 不是医共体 {alliance} 的成员。"
    )
    ALLIANCE_NOTHING_CHOSEN = (400, "Choose at least one alliance catalog entry.", "请至少选择一个联盟目录条目。")
    ALLIANCE_CODE_TAKEN = (
        409, "Internal code {code} is already used by another product of this hospital.",
        "院内码 {code} 已被本院其他产品使用。",
    )
    ALLIANCE_PRODUCT_LINKED_ELSEWHERE = (
        409, "Product {product} is already adopted from alliance entry {entry}.", "产品 {product} 已关联联盟目录条目 {entry}。"
    )
    ALLIANCE_DI_FIXED = (
        409, "Members have adopted this entry: its UDI-DI cannot change.", "已有成员医院采用该条目，UDI-DI 不能修改。"
    )
    ALLIANCE_FIELD_KEPT_BY_ALLIANCE = (
        409,
        "This product is adopted from the alliance catalog: its {field} follows the alliance entry; ask the "
        "alliance's stewards to change it there.",
        "该产品采用自联盟目录，其{field}随联盟条目变化；请联系医共体主数据管理人员在联盟目录中修改。",
    )
    ALLIANCE_APPROVER_INVALID = (
        400, "The approver must be one of the alliance's stewards.", "审批人必须是医共体主数据管理人员。"
    )

    # County alliance (医共体): transfers between members, central purchasing, settlement
    # (services/transfers.py, central_purchasing.py, alliance_settlement.py)
    ALLIANCE_NOT_MEMBER = (
        404, "Hospital {hospital} is not a member of your county alliance.", "医院 {hospital} 不是本医共体成员。"
    )
    ALLIANCE_PRODUCT_NOT_IN_CATALOG = (
        409,
        "{hospital} has no active catalog entry with the UDI-DI of {product}: it must adopt the product first.",
        "{hospital} 的目录中没有与 {product} 相同 UDI-DI 的在用产品，请先纳入目录。",
    )
    ALLIANCE_TRANSFER_STATE = (
        409, "Transfer {number} is {status}: it cannot {action}.", "调拨单 {number} 状态为{status}，不能{action}。"
    )
    ALLIANCE_TRANSFER_ALREADY_RECEIVED = (409, "Transfer {number} has already been received.", "调拨单 {number} 已签收。")
    ALLIANCE_STOCK_NOT_TRANSFERABLE = (
        409, "{item} cannot be transferred: {reason}.", "{item} 不能调拨：{reason}。"
    )
    ALLIANCE_LOCATION_INVALID = (
        400, "{location} cannot {role} an alliance transfer.", "库位 {location} 不能作为调拨的{role}。"
    )
    ALLIANCE_SCAN_NOT_ON_TRANSFER = (
        409, "The scanned item is not on transfer {number}.", "扫描的物品不在调拨单 {number} 上。"
    )
    ALLIANCE_SCAN_COMPLETE = (
        409, "{item} of transfer {number} is already counted in full.", "调拨单 {number} 的 {item} 已全部清点。"
    )
    ALLIANCE_RECEIPT_LINE_INVALID = (400, "Transfer receipt, {field}: {reason}.", "调拨签收 {field}：{reason}。")
    ALLIANCE_STOCK_RESERVED = (
        409, "{item} is reserved for alliance transfer {number}: cancel the transfer first to use it otherwise.",
        "{item} 已被医共体调拨单 {number} 预留：如需另作他用，请先取消该调拨单。",
    )
    ALLIANCE_LOT_RESERVED = (
        409,
        "Lot {lot} at {location}: {reserved} of {quantity} are reserved for alliance transfer(s) {numbers}; "
        "{available} available, {requested} requested.",
        "{location} 的批号 {lot}：{quantity} 中有 {reserved} 已被医共体调拨单 {numbers} 预留；可用 {available}，需要 {requested}。",
    )
    ALLIANCE_TRANSIT_LOCKED = (
        409,
        "{item} is in transit at {location}: it moves only by its alliance transfer's receipt or return.",
        "{item} 位于医共体调拨在途库位 {location}：只能通过调拨单的签收或退回移动。",
    )
    CENTRAL_ORDER_INVALID = (400, "Central order: {reason}.", "集中采购单：{reason}。")
    CENTRAL_PLAN_NOT_IN_ALLIANCE_CATALOG = (
        409, "{source}: {product} of {hospital} is not linked to the alliance catalog, so the centre cannot buy it.",
        "{source}：{hospital} 的 {product} 未关联医共体目录，无法集中采购。",
    )
    CENTRAL_ORDER_NOTHING_TO_DISTRIBUTE = (
        409,
        "Nothing of central order {number} can be sent to {hospital} now (nothing open, or no stock at {location}).",
        "集中采购单 {number} 目前没有可配送给 {hospital} 的物品（无待配送数量，或 {location} 无库存）。",
    )
    ALLOCATION_MONTH_NOT_OVER = (
        409, "The month {month} is not over: its allocation statement cannot be issued yet.",
        "{month} 月尚未结束，不能出具结算分摊单。",
    )

    @property
    def status(self) -> int:
        return self.value[0]

    def message(self, **params: object) -> str:
        chinese = (get_language() or "").startswith("zh")
        template = self.value[2] if chinese else self.value[1]
        if isinstance(params.get("what"), str) and params["what"] in THINGS:
            params = {**params, "what": THINGS[params["what"]][1 if chinese else 0]}
        if isinstance(params.get("reason"), str) and params["reason"] in REASONS:
            reason = REASONS[params["reason"]][1 if chinese else 0]
            params = {**params, "reason": reason.format_map(_Lenient(params))}
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
    "stocktake": ("stocktake", "盘点单"),
    "resource": ("Resource", "资源"),
    "requisition": ("requisition", "申领单"),
    "requisition line": ("requisition line", "申领明细"),
    "par level": ("par level", "基数"),
    "suggestion": ("replenishment suggestion", "补货建议"),
    "purchase order": ("purchase order", "采购订单"),
    "purchase plan": ("purchase plan", "采购计划"),
    "shipping notice": ("shipping notice", "电子送货单"),
    "line": ("line", "明细行"),
    "transfer": ("alliance transfer", "调拨单"),
    "hospital": ("hospital", "医院"),
    "central order": ("central order", "集中采购单"),
    "alliance entry": ("alliance catalog entry", "联盟目录条目"),
    "alliance agreement": ("alliance supply agreement", "联盟供货协议"),
    "evaluation run": ("evaluation run", "供应商评价"),
    "indicator set": ("indicator set", "评价指标体系"),
    "indicator": ("indicator", "评价指标"),
    "supplier": ("supplier", "供应商"),
    "clinical team": ("clinical team", "诊疗组"),
    "team member": ("team member", "诊疗组成员"),
}


# Why one value is refused (the `reason` of a row or line refusal), in each language.
REASONS = {
    "required": ("is required", "为必填项"),
    "too_long": ("is longer than {limit} characters", "超过 {limit} 个字符"),
    "nul": ("contains the NUL character", "含有 NUL 字符"),
    "whole_number": ("must be a whole number other than 0", "必须是非 0 的整数"),
    "decimal": ("must be a decimal number", "必须是十进制数"),
    "two_places": ("has more than 2 decimal places", "小数超过 2 位"),
    "negative": ("must not be negative", "不能为负数"),
    "too_large": ("is too large", "数值过大"),
    "needs_offset": ("needs a time zone offset, e.g. 2024-05-01T10:30:00+08:00", "需要时区偏移，例如 2024-05-01T10:30:00+08:00"),
    "outside_window": (
        "is outside the accepted dates {low} to {high} (within {years} years of today)",
        "超出可接受的日期范围 {low} 至 {high}（今天前后 {years} 年内）",
    ),
    "not_a_date": ("must be a date or a date and time with its offset (ISO 8601)", "必须是日期，或带时区偏移的日期时间（ISO 8601）"),
    "charge_key": ("must be our charge id or idempotency key (charge-<id>)", "必须是本系统的收费 id 或幂等键（charge-<id>）"),
    "unknown_charge": ("names no charge of this hospital ({value})", "不是本院的收费记录（{value}）"),
    "repeated": ("{value} appears again with other content", "{value} 重复出现且内容不同"),
    "udi_or_product": (
        "give either a scanned udi or a product with lot, expiry and quantity", "请给出扫描的 UDI，或产品及其批号、有效期和数量（二选一）"
    ),
    "foreign_product": ("product not in this hospital's catalog", "产品不在本院目录中"),
    "quantity": ("quantity must be at least 1", "数量至少为 1"),
    "negative_price": ("unit_price cannot be negative", "单价不能为负数"),
    "unit_for_unit_tracked": (
        "a unit-tracked line is one scanned unit: it takes no packaging unit", "单件管理的行是一件扫码耗材，不能指定包装单位"
    ),
    "score_not_entered": ("no score has been entered", "尚未录入评分"),
    "no_orders_in_period": ("no purchase order was promised in the period", "评价期内没有约定交货的采购订单"),
    "foreign_agreement": ("the supply agreement is not one of this product's", "供货协议不属于该产品"),
    # Why a scanned code is not a UDI (devices/identification: ParseError.reason)
    "UDI_MALFORMED": ("it is not a UDI in a known format (GS1, HIBCC, MA)", "不是可识别格式（GS1、HIBCC、MA）的 UDI"),
    "UDI_NOT_TEXT": ("the UDI must be text", "UDI 必须是文本"),
    "UDI_EMPTY": ("nothing was scanned", "未扫描到任何内容"),
    "UDI_NOT_ASCII": ("it contains the non-ASCII character {char}", "含有非 ASCII 字符 {char}"),
    "GS1_SYMBOLOGY_UNKNOWN": ("the symbology identifier at its start is not recognised", "开头的码制标识符无法识别"),
    "GS1_BARE_GTIN": (
        "{code} is a bare GTIN from a linear barcode; scan the UDI DataMatrix or GS1-128 label",
        "{code} 只是一维条码上的 GTIN，请扫描 UDI 的 DataMatrix 或 GS1-128 标签",
    ),
    "GS1_MALFORMED": ("it is not a GS1 element string", "不是 GS1 元素串"),
    "GS1_AI_UNKNOWN": ("it holds an unknown GS1 application identifier", "含有未知的 GS1 应用标识符"),
    "GS1_AI_VALUE_INVALID": ("the value of AI ({ai}) does not have the form GS1 requires", "AI ({ai}) 的值不符合 GS1 规定的格式"),
    "GS1_DATE_INVALID": ("a date in it is not a valid date", "其中的日期无效"),
    "GS1_HRI_MALFORMED": ("the human-readable text is not (AI)data(AI)data…", "人工识读文本不是 (AI)数据(AI)数据… 的形式"),
    "GS1_AI_REPEATED": ("AI ({ai}) appears twice with different values", "AI ({ai}) 出现两次且值不同"),
    "GS1_GTIN_MISSING": ("it has no GTIN (AI 01), which a GS1 UDI needs", "缺少 GS1 UDI 必需的 GTIN（AI 01）"),
    "GS1_CHECK_DIGIT": (
        "the GTIN check digit is wrong in (01){gtin}: expected {expected}", "(01){gtin} 的 GTIN 校验位错误：应为 {expected}"
    ),
}


class _Lenient(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


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
        if isinstance(self.params.get("reason"), str) and self.params["reason"] in REASONS:
            data["reason"] = self.params["reason"]  # the stable code of why, e.g. GS1_CHECK_DIGIT
        if isinstance(self.params.get("field"), str):
            data["field"] = self.params["field"]  # the request field the problem is about, e.g. lines[1].quantity
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
