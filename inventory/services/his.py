"""The hospital information system (HIS): our charges go out through an outbox, its settlement comes in.

Outbound: the relay (`deliver_due_charges`)
    Every Charge is written together with its ChargeDelivery row (the outbox) in one transaction. The
    relay claims the due rows with `select_for_update(skip_locked=True)`, COMMITS the claim, and only
    then POSTs each charge to the HIS, outside any transaction: no lock or open transaction waits on
    the network.

    A charge is never lost and never delivered as two charges, also when the relay dies after the
    HIS accepted it:

    - Never lost: the outbox row commits with the charge and stays PENDING/FAILED until the HIS
      answers with its reference. A claim is a lease (`claimed_until`): the rows of a relay that
      died are taken up again by the next run once the lease has passed.
    - Never two charges: every send of a charge carries the same header `Idempotency-Key:
      charge-<id>` and the same body. The HIS keeps the first charge per key and answers a repeat
      with that first charge's reference (a 2xx, or a 409 carrying `his_reference`), so resending
      after "the HIS accepted it but the answer was lost" records the first reference instead of
      creating a second charge.
    - One outcome per attempt: the claim's `claimed_until` value is its lease token. Each outcome is
      written by an `update()` conditional on that token, so two relays never both act on one row;
      a relay whose lease was taken over discards its outcome (counted as `lost`).

    Errors (5xx, 429, timeouts, refused or dropped connections, and other 4xx, since the HIS side
    may be fixed) make the delivery FAILED and it is retried with exponential back-off and jitter.
    After SPD_HIS_MAX_ATTEMPTS attempts it is GAVE_UP and waits for a person's `resend`. A refund is
    sent only once the charge it reverses has been delivered. When the
    HIS does not answer at all, the rest of the batch is released unsent for the next run instead of
    waiting one timeout per row.

Inbound: settlement lines (`parse_settlement_file`, `import_settlement_lines`)
    The HIS's settlement data (结算明细) is imported in full, by API or file, all-or-nothing, for the
    nightly reconciliation. Re-importing a line already held with the same content is skipped; the
    same line id with different content is a conflict. A settlement date outside the accepted window
    (SPD_ACCEPTED_DATE_YEARS of today) refuses its row, like any bad value.

Settings (read at each use, with these defaults):
    SPD_HIS_CHARGE_URL            where charges are POSTed ("http://127.0.0.1:8900/charges")
    SPD_HIS_TIMEOUT_SECONDS       connect and read timeout of one request (5); a claim lasts twice this
    SPD_HIS_MAX_ATTEMPTS          attempts before a delivery is GAVE_UP (12)
    SPD_HIS_BACKOFF_BASE_SECONDS  delay before the first retry (5); doubles per attempt, with jitter,
                                  capped at one hour
    SPD_HIS_TOKEN                 bearer token for the HIS (optional; empty sends no Authorization)
    SPD_HIS_SETTLEMENT_MAX_BYTES  largest settlement file accepted (20 MiB)
"""
import datetime
import http.client
import json
import logging
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from inventory.date_window import accepted_window, accepted_years, window_problem
from inventory.errors import Problem, Refusal, Refused
from inventory.models import Charge, ChargeDelivery, HisSettlementLine, Hospital
from inventory.selectors.periods import closed_through
from inventory.spreadsheets import read_table
from inventory.validators import is_his_reference, looks_like_personal_id

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600
MAX_ERROR_CHARS = 2000
MAX_RESPONSE_BYTES = 64 * 1024
DUE = (ChargeDelivery.Status.PENDING, ChargeDelivery.Status.FAILED)


def _setting(name: str, default: Any) -> Any:
    value = getattr(settings, name, default)
    return default if value in (None, "") else value


def his_timeout() -> float:
    return float(_setting("SPD_HIS_TIMEOUT_SECONDS", 5))


def his_max_attempts() -> int:
    return int(_setting("SPD_HIS_MAX_ATTEMPTS", 12))


def idempotency_key(charge_id: int) -> str:
    """The key the HIS de-duplicates on: stable per charge, so every resend is the same request."""
    return f"charge-{charge_id}"


# --- outbound: the relay ----------------------------------------------------------------------------


def charge_message(charge: Charge) -> dict:
    """The JSON body sent to the HIS for `charge`.

    It depends on the charge alone (no send time, no attempt number), so every resend of a charge is
    byte-for-byte the request the HIS saw first. Money is sent as decimal strings, never floats.
    """
    consumption = charge.consumption
    message = {
        "charge_id": charge.pk,
        "idempotency_key": idempotency_key(charge.pk),
        "kind": charge.kind,
        "refund_of": charge.refund_of_id,
        "hospital": charge.hospital.code,
        "encounter": charge.encounter,
        "his_charge_code": charge.his_charge_code,
        "nhsa_code": charge.nhsa_code,
        "quantity": charge.quantity,
        "unit_price": str(charge.unit_price),
        "amount": str(charge.amount),
        "is_zero_cost": charge.is_zero_cost,
        "occurred_at": consumption.occurred_at.isoformat(),
        "surgery_id": consumption.surgery_id,
        "surgery_name": consumption.surgery_name,
        "doctor": consumption.doctor,
        "department": consumption.department.code,
    }
    if charge.billing_unit:
        # Quantity and unit price are per the product's billing unit (约定计价单位), not its base unit.
        message["unit"] = charge.billing_unit
    return message


@dataclass
class RelayReport:
    """What one relay run did. `released`: claimed but left unsent because the HIS did not answer."""

    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    gave_up: int = 0
    released: int = 0
    lost: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HisAnswer:
    """The HIS's answer to one send: its reference, or why there is none."""

    his_reference: str = ""
    error: str = ""
    no_answer: bool = False  # timeout, refused or dropped connection: the HIS may be down
    retry_after: float | None = None


def deliver_due_charges(*, limit: int = 100, now: datetime.datetime | None = None) -> RelayReport:
    """Send the due charges to the HIS, each at most by this relay at a time; see the module docstring.

    `now` is the relay's clock (tests advance it instead of sleeping); it moves on with real time
    while the run lasts. Safe to run in any number of processes at once.
    """
    start, started = now or timezone.now(), time.monotonic()

    def clock() -> datetime.datetime:
        return start + datetime.timedelta(seconds=time.monotonic() - started)

    report = RelayReport()
    lease = datetime.timedelta(seconds=2 * his_timeout())
    claim_token = start + lease
    claimed = _claim(limit=limit, now=start, until=claim_token)
    if not claimed:
        return report
    deliveries = list(
        ChargeDelivery.objects.filter(pk__in=claimed, claimed_until=claim_token)
        .select_related("charge__hospital", "charge__consumption__department")
        .order_by("pk")
    )
    report.claimed = len(deliveries)
    for index, delivery in enumerate(deliveries):
        token = _renew(delivery, old=claim_token, new=clock() + lease)
        if token is None:
            report.lost += 1
            continue
        answer = send_charge(delivery.charge)
        _record(delivery, answer, token=token, at=clock(), report=report)
        if answer.no_answer:
            rest = [later.pk for later in deliveries[index + 1:]]
            report.released = ChargeDelivery.objects.filter(pk__in=rest, claimed_until=claim_token).update(
                claimed_until=None
            )
            break
    return report


def _claim(*, limit: int, now: datetime.datetime, until: datetime.datetime) -> list[int]:
    """Mark up to `limit` due, unclaimed deliveries as ours until `until`, commit, and return their ids.

    A refund waits until the charge it reverses has been delivered: the HIS cannot reverse a charge
    it does not hold. Rows locked by a relay that is claiming right now are skipped, not waited for.
    The update repeats the due condition, which keeps the claim exclusive also where the database
    has no row locks (SQLite serialises the writers instead).
    """
    due = (
        Q(status__in=DUE, next_attempt_at__lte=now)
        & (Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        & (Q(charge__refund_of__isnull=True) | Q(charge__refund_of__delivery__status=ChargeDelivery.Status.DELIVERED))
    )
    with transaction.atomic():
        ids = list(
            ChargeDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(due)
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            ChargeDelivery.objects.filter(due, pk__in=ids).update(claimed_until=until)
    return ids


def _renew(delivery: ChargeDelivery, *, old: datetime.datetime, new: datetime.datetime) -> datetime.datetime | None:
    """Extend our lease on one row just before sending it; None if another relay has taken it over.

    Needed because a batch is sent one row after the other: without it, the lease of the last rows
    could pass while the first ones are still being sent.
    """
    if ChargeDelivery.objects.filter(pk=delivery.pk, claimed_until=old).update(claimed_until=new):
        return new
    return None


def _record(
    delivery: ChargeDelivery, answer: HisAnswer, *, token: datetime.datetime, at: datetime.datetime,
    report: RelayReport,
) -> None:
    """Write the outcome of one attempt, only if our lease (`token`) still holds."""
    mine = ChargeDelivery.objects.filter(pk=delivery.pk, claimed_until=token)
    if answer.his_reference:
        written = mine.update(
            status=ChargeDelivery.Status.DELIVERED, his_reference=answer.his_reference, delivered_at=at,
            attempts=F("attempts") + 1, claimed_until=None,
        )
        outcome = "delivered"
    else:
        attempts = delivery.attempts + 1
        gave_up = attempts >= his_max_attempts()
        written = mine.update(
            status=ChargeDelivery.Status.GAVE_UP if gave_up else ChargeDelivery.Status.FAILED,
            attempts=F("attempts") + 1,
            last_error=answer.error[:MAX_ERROR_CHARS],
            next_attempt_at=at + datetime.timedelta(seconds=max(backoff_seconds(attempts), answer.retry_after or 0)),
            first_failed_at=Coalesce(F("first_failed_at"), Value(at)),
            claimed_until=None,
        )
        outcome = "gave_up" if gave_up else "failed"
        if written:
            logger.warning("HIS delivery of charge %s %s (attempt %s): %s", delivery.charge_id, outcome, attempts,
                           answer.error)
    if written:
        setattr(report, outcome, getattr(report, outcome) + 1)
    else:
        report.lost += 1
        logger.info("HIS delivery of charge %s was taken over by another relay", delivery.charge_id)


def backoff_seconds(attempts: int) -> float:
    """Delay before the next try after `attempts` failed ones: base × 2^(attempts-1), capped, with jitter.

    The jitter (a random 50–100 % of the delay) spreads the retries of many charges that failed
    together, e.g. during an HIS outage, so they do not all come back at the same second.
    """
    base = float(_setting("SPD_HIS_BACKOFF_BASE_SECONDS", 5))
    delay = min(MAX_BACKOFF_SECONDS, base * 2 ** min(max(attempts - 1, 0), 30))
    return delay * random.uniform(0.5, 1.0)


def send_charge(charge: Charge) -> HisAnswer:
    """POST one charge to the HIS and interpret the answer; never raises for a network or HTTP error."""
    url = _setting("SPD_HIS_CHARGE_URL", "http://127.0.0.1:8900/charges")
    if not url.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"SPD_HIS_CHARGE_URL must be an http(s) URL, not {url!r}")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Accept": "application/json",
        "Idempotency-Key": idempotency_key(charge.pk),
    }
    if token := _setting("SPD_HIS_TOKEN", ""):
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(charge_message(charge), ensure_ascii=False, sort_keys=True).encode()
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    timeout = his_timeout()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return interpret_answer(response.status, response.read(MAX_RESPONSE_BYTES))
    except urllib.error.HTTPError as error:
        answer = interpret_answer(error.code, error.read(MAX_RESPONSE_BYTES))
        if not answer.his_reference and error.code in (429, 503):
            return HisAnswer(error=answer.error, retry_after=_seconds(error.headers.get("Retry-After")))
        return answer
    except TimeoutError:
        return HisAnswer(error=f"no answer within {timeout:g} s", no_answer=True)
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            return HisAnswer(error=f"no answer within {timeout:g} s", no_answer=True)
        return HisAnswer(error=f"cannot reach the HIS at {url}: {error.reason}", no_answer=True)
    except (OSError, http.client.HTTPException) as error:
        return HisAnswer(error=f"connection to the HIS failed: {type(error).__name__}: {error}", no_answer=True)


def interpret_answer(status: int, raw: bytes) -> HisAnswer:
    """2xx or 409 with a `his_reference` → delivered (a 409 is the HIS saying it already holds it)."""
    text = raw.decode("utf-8", "replace")
    if 200 <= status < 300 or status == 409:
        try:
            reference = json.loads(text).get("his_reference")
        except (ValueError, AttributeError):
            reference = None
        if isinstance(reference, str | int) and str(reference).strip():
            return HisAnswer(his_reference=str(reference).strip()[:64])
        return HisAnswer(error=f"HTTP {status} without a his_reference: {text}")
    return HisAnswer(error=f"HTTP {status}: {text}")


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def resend(delivery: ChargeDelivery, *, now: datetime.datetime | None = None) -> ChargeDelivery:
    """Queue a FAILED or GAVE_UP delivery for the next relay run, now (manual resend, 重新推送).

    The attempt count is kept: a delivery that gave up gets one more try, and gives up again if that
    fails. Resending is as safe as any retry, since the HIS de-duplicates on the charge's key. A
    PENDING delivery is already queued and is left as it is; a DELIVERED one is refused.
    """
    now = now or timezone.now()
    changed = ChargeDelivery.objects.filter(
        pk=delivery.pk, status__in=(ChargeDelivery.Status.FAILED, ChargeDelivery.Status.GAVE_UP)
    ).update(status=ChargeDelivery.Status.PENDING, next_attempt_at=now)
    delivery.refresh_from_db()
    if not changed and delivery.status == ChargeDelivery.Status.DELIVERED:
        raise Refused(Refusal.ALREADY_DELIVERED_TO_HIS, charge=delivery.charge_id, reference=delivery.his_reference)
    if changed:
        logger.info("HIS delivery of charge %s queued again by hand", delivery.charge_id)
    return delivery


def failing_deliveries(
    hospital: Hospital, older_than: datetime.timedelta, *, now: datetime.datetime | None = None
) -> QuerySet[ChargeDelivery]:
    """Deliveries of `hospital` failing (FAILED or GAVE_UP) since longer than `older_than`: for the alert."""
    since = (now or timezone.now()) - older_than
    return ChargeDelivery.objects.filter(
        charge__hospital=hospital,
        status__in=(ChargeDelivery.Status.FAILED, ChargeDelivery.Status.GAVE_UP),
        first_failed_at__lte=since,
    ).select_related("charge").order_by("first_failed_at", "pk")


# --- inbound: settlement lines -----------------------------------------------------------------------

SETTLEMENT_COLUMNS = (
    "his_line_id", "encounter", "his_charge_code", "nhsa_code", "quantity", "unit_price", "amount", "settled_at",
    "spd_charge_id",
)
REQUIRED_COLUMNS = ("his_line_id", "encounter", "his_charge_code", "quantity", "unit_price", "amount", "settled_at")
HEADER_ALIASES = {
    "明细号": "his_line_id", "就诊号": "encounter", "收费编码": "his_charge_code", "医保编码": "nhsa_code",
    "数量": "quantity", "单价": "unit_price", "金额": "amount", "结算时间": "settled_at",
}
# The same rule as for consumptions: HIS references only, never a resident identity number.
_CHARGE_KEY = re.compile(r"^(?:charge-)?(\d{1,18})$")
_COMPARED = ("encounter", "his_charge_code", "nhsa_code", "quantity", "unit_price", "amount", "settled_at", "charge_id")


@dataclass
class ImportReport:
    """The outcome of one import: `skipped` lines were already held with the same content."""

    batch: str
    rows: int
    created: int
    skipped: int
    linked: int
    released: int = 0  # quarantined lines (see repair_dates) sent again with a good date

    def as_dict(self) -> dict:
        return asdict(self)


class _BadValue(ValueError):
    """Why a cell is refused: a key of inventory.errors.REASONS and its parameters."""

    def __init__(self, reason: str, **params: object) -> None:
        super().__init__(reason)
        self.reason, self.params = reason, params


def import_settlement_lines(*, hospital: Hospital, rows: list[dict], batch: str) -> ImportReport:
    """Store the HIS settlement lines `rows` for `hospital`, all or nothing.

    Every row is checked before anything is stored; any bad row refuses the whole import, listing
    every bad row by number (the row's `_row`, set by `parse_settlement_file` to its line in the file,
    else its 1-based position). A line already held with the same `his_line_id` is skipped when
    its content is the same and refused as a conflict (409) when it differs, so re-importing a file
    is harmless; a quarantined line (`repair_dates`) sent again with the same content and a good
    date gets that date and leaves quarantine. A row naming one of our charges (`spd_charge_id`: the id or our idempotency key
    `charge-<id>`) is linked to it.
    """
    batch = str(batch or "").strip()
    if not batch or len(batch) > 64:
        raise Refused(Refusal.IMPORT_BATCH_INVALID)
    if not rows:
        raise Refused(Refusal.SETTLEMENT_LINES_MISSING)
    lines, problems = _clean_rows(rows)
    _link_charges(hospital, lines, problems)
    try:
        with transaction.atomic():
            return _store(hospital, lines, problems, batch=batch, rows=len(rows))
    except IntegrityError:
        # A concurrent import stored some of these line ids first: compare with what it stored.
        with transaction.atomic():
            return _store(hospital, lines, problems, batch=batch, rows=len(rows))


def _clean_rows(rows: list[dict]) -> tuple[list[dict], list[Problem]]:
    lines, problems, seen = [], [], {}
    for position, raw in enumerate(rows, start=1):
        row = raw.get("_row", position) if isinstance(raw, dict) else position
        line, row_problems = _clean_row(raw, row)
        problems += row_problems
        if line is None:
            continue
        first = seen.get(line["his_line_id"])
        if first is None:
            seen[line["his_line_id"]] = line
            lines.append(line)
        elif {**first, "row": None} != {**line, "row": None}:
            problems.append(_problem(row, "his_line_id", "repeated", value=line["his_line_id"]))
    return lines, problems


def _clean_row(raw: object, row: object) -> tuple[dict | None, list[Problem]]:
    if not isinstance(raw, dict):
        return None, [Problem(Refusal.SETTLEMENT_ROW_NOT_OBJECT, {"row": row}, {"row": row, "field": ""})]
    problems: list[Problem] = []
    line: dict[str, Any] = {"row": row}
    for name, clean in _CLEANERS.items():
        value = raw.get(name)
        if _blank(value) and name in REQUIRED_COLUMNS:
            problems.append(_problem(row, name, "required"))
            continue
        try:
            line[name] = clean(value)
        except _BadValue as error:
            problems.append(_problem(row, name, error.reason, **error.params))
        except Refused as refused:
            problems += [Problem(p.refusal, p.params, {"row": row, "field": name}) for p in refused.problems]
    return (None if problems else line), problems


def _problem(row: object, field: str, reason: str, **params: object) -> Problem:
    return Problem(
        Refusal.SETTLEMENT_ROW_INVALID, {"row": row, "column": field, "reason": reason, **params},
        {"row": row, "field": field},
    )


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: object, max_length: int, *, required: bool = True) -> str:
    text = "" if value is None else str(value).strip()
    if isinstance(value, float) and value.is_integer():  # a code typed as a number in a spreadsheet
        text = str(int(value))
    if len(text) > max_length:
        raise _BadValue("too_long", limit=max_length)
    if "\x00" in text:  # PostgreSQL cannot store it (an XLSX cell or a JSON line may carry one)
        raise _BadValue("nul")
    if required and not text:
        raise _BadValue("required")
    return text


def _encounter(value: object) -> str:
    text = _text(value, 64)
    if looks_like_personal_id(text):
        raise Refused(Refusal.LOOKS_LIKE_PERSONAL_ID, field="encounter")
    if not is_his_reference(text):
        raise Refused(Refusal.INVALID_ENCOUNTER)
    return text


def _quantity(value: object) -> int:
    if isinstance(value, bool):
        raise _BadValue("whole_number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _BadValue("whole_number") from None
    if not number.is_finite() or number != number.to_integral_value() or number == 0 or abs(number) > 2**31 - 1:
        raise _BadValue("whole_number")
    return int(number)


def _money(value: object, *, max_digits: int, negative: bool) -> Decimal:
    if isinstance(value, bool):
        raise _BadValue("decimal")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _BadValue("decimal") from None
    if not number.is_finite():
        raise _BadValue("decimal")
    if number != number.quantize(Decimal("0.01")):
        raise _BadValue("two_places")
    if number < 0 and not negative:
        raise _BadValue("negative")
    if abs(number) >= Decimal(10) ** (max_digits - 2):
        raise _BadValue("too_large")
    return number.quantize(Decimal("0.01"))


def _settled_at(value: object) -> datetime.datetime:
    """An aware datetime, or a date (its start in the server's time zone); a naive time is ambiguous.
    Either must lie within the accepted window (SPD_ACCEPTED_DATE_YEARS of today)."""
    moment: object = value
    if isinstance(value, str):
        text = value.strip()
        try:
            moment = parse_date(text) or parse_datetime(text)
        except ValueError:
            moment = None
    if isinstance(moment, datetime.datetime):
        if timezone.is_naive(moment):
            raise _BadValue("needs_offset")
    elif isinstance(moment, datetime.date):
        _refuse_outside_window(moment)  # checked as a date: year 1 has no local midnight in UTC
        moment = timezone.make_aware(datetime.datetime.combine(moment, datetime.time.min))
    else:
        raise _BadValue("not_a_date")
    _refuse_outside_window(moment)
    return moment


def _refuse_outside_window(moment: datetime.datetime | datetime.date) -> None:
    if window_problem(moment):
        low, high = accepted_window()
        raise _BadValue("outside_window", low=timezone.localdate(low), high=timezone.localdate(high),
                        years=accepted_years())


def _charge_id(value: object) -> int | None:
    if _blank(value):
        return None
    match = _CHARGE_KEY.match(_text(value, 64))
    if not match:
        raise _BadValue("charge_key")
    return int(match.group(1))


_CLEANERS: dict[str, Callable[[Any], Any]] = {
    "his_line_id": lambda v: _text(v, 64),
    "encounter": _encounter,
    "his_charge_code": lambda v: _text(v, 32),
    "nhsa_code": lambda v: _text(v, 32, required=False),
    "quantity": _quantity,
    "unit_price": lambda v: _money(v, max_digits=12, negative=False),
    "amount": lambda v: _money(v, max_digits=14, negative=True),
    "settled_at": _settled_at,
    "spd_charge_id": _charge_id,
}


def _link_charges(hospital: Hospital, lines: list[dict], problems: list[Problem]) -> None:
    """Each line naming one of our charges gets it and its use (the charge's consumption: the line
    stores both, for the reconciliation's match); a line naming a charge we do not have is refused."""
    wanted = {line["spd_charge_id"] for line in lines if line["spd_charge_id"] is not None}
    use_of = dict(Charge.objects.filter(hospital=hospital, pk__in=wanted).values_list("pk", "consumption_id"))
    for line in lines:
        charge_id = line.pop("spd_charge_id")
        if charge_id is not None and charge_id not in use_of:
            problems.append(_problem(line["row"], "spd_charge_id", "unknown_charge", value=charge_id))
        line["charge_id"], line["use_id"] = charge_id, use_of.get(charge_id)


def _content(line: dict | HisSettlementLine) -> tuple:
    if isinstance(line, HisSettlementLine):
        return tuple(getattr(line, name) for name in _COMPARED)
    return tuple(line.get(name) for name in _COMPARED)


def _chunks(items: list, size: int = 500) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _by_row(problem: Problem) -> tuple:
    row = problem.item.get("row")
    return (0, row, "") if isinstance(row, int) else (1, 0, str(row))


def _store(hospital: Hospital, lines: list[dict], problems: list[Problem], *, batch: str, rows: int) -> ImportReport:
    held: dict[str, HisSettlementLine] = {}
    for chunk in _chunks([line["his_line_id"] for line in lines]):
        held.update(
            (line.his_line_id, line)
            for line in HisSettlementLine.objects.filter(hospital=hospital, his_line_id__in=chunk)
        )
    new, skipped, conflicts, released = [], 0, [], []
    for line in lines:
        first = held.get(line["his_line_id"])
        if first is None:
            new.append(line)
        elif _content(first) == _content(line):
            skipped += 1
        elif first.quarantined_at is not None and _content(first) == _content({**line, "settled_at": None}):
            first.settled_at, first.quarantined_at = line["settled_at"], None  # sent again with a good date
            released.append(first)
        else:
            conflicts.append(
                Problem(Refusal.HIS_LINE_CONFLICT, {"line": line["his_line_id"], "batch": first.import_batch},
                        {"row": line["row"], "field": "his_line_id", "imported_in": first.import_batch})
            )
    problems = sorted(problems + conflicts + _closed_period_problems(hospital, new, released), key=_by_row)
    if problems:
        raise Refused(problems)
    imported_at = timezone.now()
    HisSettlementLine.objects.bulk_update(released, ["settled_at", "quarantined_at"], batch_size=500)
    HisSettlementLine.objects.bulk_create(
        [
            HisSettlementLine(
                hospital=hospital, imported_at=imported_at, import_batch=batch, use_id=line["use_id"],
                **{name: line[name] for name in ("his_line_id", *_COMPARED)},
            )
            for line in new
        ],
        batch_size=500,
    )
    return ImportReport(
        batch=batch, rows=rows, created=len(new), skipped=skipped,
        linked=sum(1 for line in new if line["charge_id"] is not None), released=len(released),
    )


def _closed_period_problems(hospital: Hospital, new: list[dict], released: list[HisSettlementLine]) -> list[Problem]:
    """Lines that would be settled inside a closed month (月结): refused, like any write dated there."""
    through = closed_through(hospital.pk)
    if through is None:
        return []
    moments = [(line["row"], line["settled_at"]) for line in new]
    moments += [(line.his_line_id, line.settled_at) for line in released]
    return [
        Problem(Refusal.PERIOD_CLOSED, {"moment": timezone.localtime(moment).isoformat(timespec="seconds"),
                                        "month": timezone.localtime(moment).strftime("%Y-%m")},
                {"row": row, "field": "settled_at"})
        for row, moment in moments if moment is not None and moment < through
    ]


def parse_settlement_file(uploaded: IO[bytes], filename: str) -> list[dict]:
    """The rows of a settlement file (CSV or XLSX) as dicts keyed by our column names.

    The first row names the columns, in English (his_line_id, encounter, his_charge_code, nhsa_code,
    quantity, unit_price, amount, settled_at, spd_charge_id) or Chinese (明细号, 就诊号, 收费编码,
    医保编码, 数量, 单价, 金额, 结算时间); other columns are ignored. CSV may be UTF-8 (with or without
    BOM) or GBK/GB18030 as Chinese Excel saves it. XLSX: the first sheet. Times without an offset
    are the hospital's local time (settings.TIME_ZONE). Each row carries `_row`, its line number in
    the file, which error reports refer to. Blank rows are left out.
    """
    limit = int(_setting("SPD_HIS_SETTLEMENT_MAX_BYTES", 20 * 1024 * 1024))
    data = uploaded.read(limit + 1)
    if len(data) > limit:
        raise Refused(Refusal.FILE_TOO_LARGE, limit=limit)
    return _rows_by_header(read_table(data, filename))


def _rows_by_header(table: Iterable[tuple[int, list]]) -> list[dict]:
    rows = iter(row for row in table if any(not _blank(cell) for cell in row[1]))
    header_row = next(rows, None)
    if header_row is None:
        raise Refused(Refusal.FILE_EMPTY)
    columns: dict[int, str] = {}
    for index, cell in enumerate(header_row[1]):
        heading = str(cell or "").strip().lstrip("\ufeff")
        column = HEADER_ALIASES.get(heading, heading.lower())
        if column not in SETTLEMENT_COLUMNS:
            continue
        if column in columns.values():
            raise Refused(Refusal.FILE_COLUMN_TWICE, column=column)
        columns[index] = column
    missing = [column for column in REQUIRED_COLUMNS if column not in columns.values()]
    if missing:
        raise Refused(Refusal.FILE_COLUMNS_MISSING, columns=", ".join(missing))
    return [
        {"_row": number, **{column: _local(_cell(cells, index)) for index, column in columns.items()}}
        for number, cells in rows
    ]


def _cell(cells: list, index: int) -> object:
    value = cells[index] if index < len(cells) else None
    return value.strip() if isinstance(value, str) else value


def _local(value: object) -> object:
    """A file's naive date-time (an Excel cell, or text like 2024/05/01 10:30) in the local time zone."""
    if isinstance(value, str) and re.match(r"^\d{4}/\d{1,2}/\d{1,2}\b", value):
        value = value.replace("/", "-")
    if isinstance(value, str) and re.match(r"^\d{4}-\d{1,2}-\d{1,2}[ T]\d", value):
        try:
            value = parse_datetime(value) or value
        except ValueError:
            return value
    if isinstance(value, datetime.datetime) and timezone.is_naive(value):
        return timezone.make_aware(value)
    return value
