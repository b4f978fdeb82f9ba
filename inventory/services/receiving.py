"""Receiving (收货) and acceptance (验收): where a supplier's delivery becomes hospital stock.

Acceptance is decided here and only here: `acceptance_problems` lists every reason a line cannot
be accepted; accepted lines enter stock with a RECEIPT movement, rejected lines keep their reasons
and never enter stock. `preview_note` and `preview_delivery` run the same checks without writing,
for people scanning a delivery who must see each verdict at once.

Trust at the edge: a unit enters stock only when someone held it. `record_scan` marks the line a
scanned unit is as verified (who, when); a unit line nobody scanned is not accepted on paper alone —
it stays open (the note is PARTLY_ACCEPTED, to be finished later) unless an SPD operator or an
administrator accepts it without scanning, with a reason kept on its acceptance record.
"""
import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from devices.identification import ParsedUDI, ParseError, parse_udi
from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import (
    AcceptanceRecord,
    Certificate,
    DeliveryLine,
    DeliveryNote,
    Hospital,
    Location,
    Movement,
    Owner,
    Product,
    PurchaseOrder,
    Role,
    Supplier,
    SupplyAgreement,
    TrackingMode,
    Unit,
    UnitStatus,
    User,
)
from inventory.services.complaints import suspension_problems
from inventory.services.idempotency import run_once
from inventory.services.ledger import move_lot, move_unit
from inventory.services.purchasing import OrderBook, delivery_order_problems, order_for_note
from inventory.services.units_of_measure import base_unit_price, to_base_quantity, unit_named

REQUIRED_SUPPLIER_CERTIFICATES = (Certificate.Kind.BUSINESS_LICENCE, Certificate.Kind.DISTRIBUTION_LICENCE)
# Who may accept unit lines nobody scanned (with a reason), and who may mark gift lines.
UNSCANNED_DECIDERS = (Role.ADMIN, Role.SPD_OPERATOR)


@dataclass(frozen=True)
class LineInput:
    """One delivery line as sent: a scanned UDI, or product + lot + expiry + quantity."""

    unit_price: Decimal
    udi: str = ""
    product: Product | None = None
    lot: str = ""
    expiry: datetime.date | None = None
    quantity: int = 1
    # The packaging unit the supplier delivered in (e.g. 盒; "" = the base unit): `quantity` and
    # `unit_price` are then per that unit, and are recorded converted to base units, exactly.
    unit: str = ""
    # Set when the line was scanned in by a person (a delivery scanned at the warehouse): the
    # recorded line is then verified by that scan. The API's lines are never scanned.
    scanned_by: User | None = None
    scanned_at: datetime.datetime | None = None

    def as_payload(self) -> dict:
        return {
            "udi": self.udi, "product": self.product.pk if self.product else None, "lot": self.lot,
            "expiry": self.expiry, "quantity": self.quantity, "unit_price": str(self.unit_price),
            **({"unit": self.unit} if self.unit else {}),
        }


def receive_delivery_note(
    *, actor: Actor, hospital: Hospital, supplier: Supplier, number: str, receiving_location: Location,
    lines: list[LineInput], idempotency_key: str, temperature_c: Decimal | None = None,
    delivered_at: datetime.datetime | None = None, purchase_order: PurchaseOrder | None = None,
) -> DeliveryNote:
    """Record a delivery note and its lines as delivered; nothing enters stock until acceptance.

    Lines whose UDI cannot be read are kept (they will be rejected with the reason at acceptance),
    so that what the supplier delivered is recorded exactly. A note against a purchase order names
    it: the order must be this hospital's, to this supplier, and still open for delivery.
    """
    problems = delivery_order_problems(hospital=hospital, supplier=supplier, order=purchase_order)
    problems += _delivery_request_problems(hospital, receiving_location, lines)
    if problems:
        raise Refused(problems)
    payload = {
        "supplier": supplier.pk, "number": number, "location": receiving_location.pk,
        "temperature_c": str(temperature_c) if temperature_c is not None else None,
        "lines": [line.as_payload() for line in lines],
    }
    if purchase_order is not None:
        payload["purchase_order"] = purchase_order.pk

    def perform() -> DeliveryNote:
        if DeliveryNote.objects.filter(hospital=hospital, supplier=supplier, number=number).exists():
            raise Refused(Refusal.DUPLICATE_DELIVERY_NOTE, number=number)
        note = DeliveryNote.objects.create(
            hospital=hospital, supplier=supplier, number=number, receiving_location=receiving_location,
            temperature_c=temperature_c, delivered_at=delivered_at or timezone.now(), received_by=actor.user,
            purchase_order=purchase_order,
        )
        DeliveryLine.objects.bulk_create(_delivery_lines(note, lines))
        return note

    note, _ = run_once(
        hospital=hospital, key=idempotency_key, operation="receive_delivery_note", payload=payload, perform=perform
    )
    return note


def _delivery_request_problems(hospital: Hospital, location: Location, lines: list[LineInput]) -> list[Problem]:
    problems = []
    if location.hospital_id != hospital.pk:
        problems.append(Problem(Refusal.NOT_FOUND, {"what": "location"}))
    if not lines:
        problems.append(Problem(Refusal.DELIVERY_NOTE_EMPTY))
    for line_no, line in enumerate(lines, start=1):
        if bool(line.udi) == bool(line.product):
            reason = "udi_or_product"
        elif line.product is not None and line.product.hospital_id != hospital.pk:
            reason = "foreign_product"
        elif line.quantity < 1:
            reason = "quantity"
        elif line.unit_price < 0:
            reason = "negative_price"
        elif line.unit and line.product is not None and line.product.tracking == TrackingMode.UNIT:
            reason = "unit_for_unit_tracked"
        else:
            if line.unit and line.product is not None:
                problems += _unit_problems(line.product, line, f"lines[{line_no - 1}]")
            continue
        problems.append(Problem(Refusal.DELIVERY_LINE_INVALID, {"line": line_no, "reason": reason}, line_no))
    return problems


def _unit_problems(product: Product, line: LineInput, where: str) -> list[Problem]:
    """Why the line's quantity or price cannot be converted from its unit to base units exactly."""
    try:
        _in_base_units(product, line, where)
    except Refused as refused:
        return refused.problems
    return []


def _in_base_units(product: Product, line: LineInput, where: str) -> tuple[int, Decimal, str, int]:
    """(quantity, unit price) of the line per base unit, and the unit and factor it was delivered in."""
    if not line.unit:
        return line.quantity, line.unit_price, "", 1
    named = unit_named(product=product, unit=line.unit, field=f"{where}.unit")
    problems = []
    quantity = price = None
    try:
        quantity = to_base_quantity(product=product, quantity=line.quantity, unit=named.name,
                                    field=f"{where}.quantity", allow_zero=False)
    except Refused as refused:
        problems += refused.problems
    try:
        price = base_unit_price(product=product, unit_price=line.unit_price, unit=named.name,
                                field=f"{where}.unit_price")
    except Refused as refused:
        problems += refused.problems
    if problems:
        raise Refused(problems)
    return quantity, price, (named.name if named.factor != 1 else ""), named.factor


def _delivery_lines(note: DeliveryNote, lines: list[LineInput], *, strict: bool = True) -> list[DeliveryLine]:
    """The note's lines as they are recorded (not saved here): a scanned UDI gives product, lot,
    serial and dates; a line whose UDI cannot be read keeps only its raw text. A line delivered in a
    packaging unit is recorded in base units; one that cannot be converted exactly is refused (or,
    with `strict=False` for a preview, left as sent: acceptance then shows what is wrong with it)."""
    scans = [_read_udi(line.udi) for line in lines]
    catalog = {
        product.udi_di: product
        for product in Product.objects.filter(hospital=note.hospital_id, udi_di__in={scan.di for scan in scans if scan})
    }
    recorded = [
        _delivery_line(note, line_no, line, scan, catalog)
        for line_no, (line, scan) in enumerate(zip(lines, scans, strict=True), start=1)
    ]
    problems = []
    for index, (line, delivery_line) in enumerate(zip(lines, recorded, strict=True)):
        if not line.unit or delivery_line.product is None:  # an unknown product is rejected at acceptance
            continue
        if delivery_line.product.tracking == TrackingMode.UNIT:
            problems.append(Problem(Refusal.DELIVERY_LINE_INVALID, {"line": index + 1, "reason": "unit_for_unit_tracked"},
                                    index + 1))
            continue
        try:
            (delivery_line.quantity, delivery_line.unit_price, delivery_line.received_unit,
             delivery_line.received_unit_factor) = _in_base_units(delivery_line.product, line, f"lines[{index}]")
        except Refused as refused:
            problems += refused.problems
    if problems and strict:
        raise Refused(problems)
    return recorded


def _read_udi(raw: str) -> ParsedUDI | None:
    """The parsed UDI, or None when there is none or it cannot be read (acceptance says why)."""
    if not raw:
        return None
    try:
        return parse_udi(raw)
    except ParseError:
        return None


def _delivery_line(
    note: DeliveryNote, line_no: int, line: LineInput, scan: ParsedUDI | None, catalog: dict[str, Product]
) -> DeliveryLine:
    delivery_line = DeliveryLine(
        note=note, line_no=line_no, raw_udi=line.udi, product=line.product, lot=line.lot, expiry=line.expiry,
        quantity=line.quantity, unit_price=line.unit_price,
        scanned_by=line.scanned_by if line.scanned_at else None, scanned_at=line.scanned_at,
    )
    if scan is not None:
        delivery_line.product = catalog.get(scan.di)
        delivery_line.lot = scan.lot
        delivery_line.serial = scan.serial
        delivery_line.expiry = scan.expiry
        delivery_line.production_date = scan.production_date
    return delivery_line


def accept_delivery_note(
    *, actor: Actor, note: DeliveryNote, idempotency_key: str, gift_line_nos: frozenset[int] = frozenset(),
    put_away_to: Location | None = None, accept_unscanned: bool = False, unscanned_reason: str = "",
) -> DeliveryNote:
    """Decide every open line of a delivery note: accepted units and lots enter stock, others keep reasons.

    Accepted units get a RECEIPT movement (RECEIVED → ACCEPTED at the receiving location) and a
    PUTAWAY movement into `put_away_to` (default: the receiving location). Gift lines need an
    authorised user and enter stock at zero cost.

    A unit line that would be accepted but was never scanned (`record_scan`) is not decided: it
    stays open, the note becomes PARTLY_ACCEPTED and a later call decides what is open then. With
    `accept_unscanned` an SPD operator or administrator accepts such lines with `unscanned_reason`,
    kept on each line's acceptance record. When every open line is an unscanned unit and nothing
    else can be decided, the call is refused (LINES_NOT_SCANNED) rather than doing nothing quietly.
    """
    if gift_line_nos and not actor.user.has_role(Role.ADMIN, Role.SPD_OPERATOR):
        raise Refused(Refusal.GIFT_NOT_AUTHORISED)
    put_away_to = put_away_to or note.receiving_location
    if put_away_to.hospital_id != note.hospital_id:
        raise Refused(Refusal.NOT_FOUND, what="location")
    unscanned_reason = unscanned_reason.strip() if accept_unscanned else ""
    payload = {"note": note.pk, "gifts": sorted(gift_line_nos), "put_away_to": put_away_to.pk}
    if accept_unscanned:
        payload["accept_unscanned"] = unscanned_reason

    def perform() -> DeliveryNote:
        locked = DeliveryNote.objects.select_for_update().get(pk=note.pk)
        if locked.status == DeliveryNote.Status.ACCEPTED:
            raise Refused(Refusal.DELIVERY_ALREADY_ACCEPTED, number=locked.number)
        suspended = suspension_problems(
            hospital_id=locked.hospital_id, supplier_id=locked.supplier_id,
            product_ids=locked.lines.filter(acceptance__isnull=True, product__isnull=False).values_list("product_id", flat=True),
        )
        if suspended:  # a suspended supplier or product (services.complaints) is not accepted
            raise Refused(suspended)
        left_open = _decide_lines(
            locked, actor, gift_line_nos, put_away_to, idempotency_key,
            _UnscannedDecision(accept=accept_unscanned, reason=unscanned_reason),
        )
        locked.status = DeliveryNote.Status.PARTLY_ACCEPTED if left_open else DeliveryNote.Status.ACCEPTED
        locked.accepted_by = actor.user
        locked.accepted_at = timezone.now()
        locked.save(update_fields=["status", "accepted_by", "accepted_at"])
        return locked

    try:
        accepted, _ = run_once(
            hospital=note.hospital, key=idempotency_key, operation="accept_delivery_note", payload=payload,
            perform=perform,
        )
    except IntegrityError as error:
        # Another delivery accepted the same serial at the same moment; the unique index kept it
        # single. A retry will reject the line with DUPLICATE_SERIAL.
        raise Refused(Refusal.DUPLICATE_SERIAL, serial="?", di="?") from error
    return accepted


@dataclass(frozen=True)
class _UnscannedDecision:
    """What to do with unit lines nobody scanned: leave them open, or accept them with a reason."""

    accept: bool
    reason: str

    def require_authorised(self, actor: Actor, unscanned: list[DeliveryLine]) -> None:
        if not self.accept or not unscanned:
            return
        lines = ", ".join(str(line.line_no) for line in unscanned)
        if not actor.user.has_role(*UNSCANNED_DECIDERS):
            raise Refused(Refusal.UNSCANNED_ACCEPT_NOT_AUTHORISED, lines=lines)
        if not self.reason:
            raise Refused(Refusal.UNSCANNED_REASON_MISSING, lines=lines)


def needs_scan(line: DeliveryLine) -> bool:
    """A unit line not verified by a scan: it is accepted only by an explicit decision."""
    return line.product is not None and line.product.tracking == TrackingMode.UNIT and line.scanned_at is None


def _decide_lines(
    note: DeliveryNote, actor: Actor, gift_line_nos: frozenset[int], put_away_to: Location, key: str,
    unscanned: _UnscannedDecision,
) -> list[DeliveryLine]:
    """Decide the note's open lines; return the unscanned unit lines left open."""
    lines = list(
        note.lines.filter(acceptance__isnull=True).select_related("product__registration_certificate")
        .order_by("line_no")
    )
    unscanned.require_authorised(actor, [line for line in lines if needs_scan(line)])
    context = _AcceptanceContext.load(note, lines, lock_order=True)
    document = (Movement.DocumentType.DELIVERY_NOTE, note.pk)
    left_open = []
    for line in lines:
        is_gift = line.line_no in gift_line_nos
        problems = acceptance_problems(line, note=note, context=context, is_gift=is_gift)
        without_scan = not problems and needs_scan(line)
        if without_scan and not unscanned.accept:
            # Its serial (and its quantity on the order) stays reserved: a second line with it is a duplicate.
            context.accept(line, keep=False)
            left_open.append(line)
            continue
        AcceptanceRecord.objects.create(
            line=line, is_gift=is_gift, decided_by=actor.user,
            decision=AcceptanceRecord.Decision.REJECTED if problems else AcceptanceRecord.Decision.ACCEPTED,
            reason_code=problems[0].code if problems else "",
            reasons=[problem.as_dict() for problem in problems],
            accepted_without_scan=without_scan, without_scan_reason=unscanned.reason if without_scan else "",
        )
        if problems:
            continue
        unit_cost = Decimal("0") if is_gift else line.unit_price
        owner = Owner.SUPPLIER if line.product.is_consignment else Owner.HOSPITAL
        movement_key = f"{note.hospital_id}:{key}:{line.line_no}"
        context.accept(line, keep=True)
        if line.product.tracking == TrackingMode.UNIT:
            _receive_unit(line, note, actor, document, movement_key, unit_cost, owner, is_gift, put_away_to)
        else:
            move_lot(
                product=line.product, lot=line.lot, quantity=line.quantity, source=None, to_location=put_away_to,
                kind=Movement.Kind.RECEIPT, actor=actor, idempotency_key=movement_key, document=document,
                new_balance_defaults={"expiry": line.expiry, "owner": owner, "unit_cost": unit_cost, "is_gift": is_gift},
            )
    if left_open and len(left_open) == len(lines):
        raise Refused(
            Refusal.LINES_NOT_SCANNED, number=note.number, lines=", ".join(str(line.line_no) for line in left_open)
        )
    if context.order is not None:
        context.order.save()
    return left_open


def _receive_unit(
    line: DeliveryLine, note: DeliveryNote, actor: Actor, document: tuple[str, int], movement_key: str,
    unit_cost: Decimal, owner: str, is_gift: bool, put_away_to: Location,
) -> Unit:
    parsed = parse_udi(line.raw_udi)
    unit = Unit.objects.create(
        hospital_id=note.hospital_id, product=line.product, supplier_id=note.supplier_id, delivery_line=line,
        udi_raw=line.raw_udi, udi=parsed.normalized, di=parsed.di, lot=parsed.lot, serial=parsed.serial,
        expiry=parsed.expiry, production_date=parsed.production_date, owner=owner, unit_cost=unit_cost,
        is_gift=is_gift, status=UnitStatus.RECEIVED, location=None,
    )
    move_unit(
        unit=unit, kind=Movement.Kind.RECEIPT, to_status=UnitStatus.ACCEPTED, to_location=note.receiving_location,
        actor=actor, idempotency_key=f"{movement_key}:receipt", document=document,
    )
    move_unit(
        unit=unit, kind=Movement.Kind.PUTAWAY, to_status=put_away_to.holds_units_as, to_location=put_away_to,
        actor=actor, idempotency_key=f"{movement_key}:putaway", document=document,
    )
    return unit


@dataclass
class _AcceptanceContext:
    """What acceptance checks need, read once per delivery note rather than once per line."""

    today: datetime.date
    agreements: dict[int, list[SupplyAgreement]]
    supplier_certificates: dict[str, list[Certificate]]
    serials_taken: set[tuple[str, str]]
    order: OrderBook | None = None  # the purchase order the note is against, if any

    @classmethod
    def load(cls, note: DeliveryNote, lines: list[DeliveryLine], *, lock_order: bool = False) -> "_AcceptanceContext":
        today = timezone.localdate()
        product_ids = {line.product_id for line in lines if line.product_id}
        agreements: dict[int, list[SupplyAgreement]] = {}
        for agreement in SupplyAgreement.objects.filter(
            hospital_id=note.hospital_id, supplier_id=note.supplier_id, product_id__in=product_ids, is_active=True,
            valid_from__lte=today, valid_to__gte=today,
        ):
            agreements.setdefault(agreement.product_id, []).append(agreement)
        certificates: dict[str, list[Certificate]] = {}
        for certificate in Certificate.objects.filter(supplier_id=note.supplier_id):
            certificates.setdefault(certificate.kind, []).append(certificate)
        serials = {(line.product.udi_di, line.serial) for line in lines if line.product and line.serial}
        taken = set(
            Unit.objects.filter(
                di__in={di for di, _ in serials}, serial__in={serial for _, serial in serials}
            ).values_list("di", "serial")
        )
        return cls(today, agreements, certificates, taken, order_for_note(note, lock=lock_order))

    def accept(self, line: DeliveryLine, *, keep: bool = False) -> None:
        """Count an accepted line: its serial (and its quantity on the order) is taken for the lines
        after it; `keep`: it is accepted now, and counts as delivered on the order."""
        if line.product.tracking == TrackingMode.UNIT:
            self.serials_taken.add((line.product.udi_di, line.serial))
        if self.order is not None:
            self.order.take(line, keep=keep)


def acceptance_problems(
    line: DeliveryLine, *, note: DeliveryNote, context: _AcceptanceContext, is_gift: bool = False
) -> list[Problem]:
    """Every reason this line cannot be accepted (empty: accept it). The order is the check order."""
    if line.raw_udi:
        try:
            parsed = parse_udi(line.raw_udi)
        except ParseError as error:
            return [Problem(Refusal.UDI_UNPARSEABLE, error.refusal_params())]
        if line.product is None:
            return [Problem(Refusal.PRODUCT_UNKNOWN, {"di": parsed.di})]
        if parsed.di != line.product.udi_di:
            return [Problem(Refusal.UDI_DI_MISMATCH, {"di": parsed.di, "product": line.product})]
    product = line.product
    problems = []
    agreements = context.agreements.get(product.pk, [])
    if not agreements:
        problems.append(Problem(Refusal.NO_ACTIVE_AGREEMENT, {"product": product, "supplier": note.supplier}))
    problems += _certificate_problems(product, note.supplier, context)
    if product.tracking == TrackingMode.UNIT:
        if line.quantity != 1:
            problems.append(Problem(Refusal.UNIT_QUANTITY_NOT_ONE, {"quantity": line.quantity}))
        if not line.serial:
            problems.append(Problem(Refusal.SERIAL_MISSING))
        elif (product.udi_di, line.serial) in context.serials_taken:
            problems.append(Problem(Refusal.DUPLICATE_SERIAL, {"serial": line.serial, "di": product.udi_di}))
    elif not line.lot or not line.expiry:
        problems.append(Problem(Refusal.LOT_MISSING))
    problems += _shelf_life_problems(product, line.expiry, context.today)
    if agreements and not is_gift and all(line.unit_price != agreement.unit_price for agreement in agreements):
        problems.append(Problem(Refusal.PRICE_MISMATCH, {"price": line.unit_price, "agreed": agreements[0].unit_price}))
    problems += _temperature_problems(product, note.temperature_c)
    if context.order is not None:
        problems += context.order.problems(line)
    return problems


def _certificate_problems(product: Product, supplier: Supplier, context: _AcceptanceContext) -> list[Problem]:
    problems = []
    for kind in REQUIRED_SUPPLIER_CERTIFICATES:
        held = context.supplier_certificates.get(kind, [])
        label = Certificate.Kind(kind).label
        if not held:
            problems.append(Problem(Refusal.SUPPLIER_CERTIFICATE_MISSING, {"supplier": supplier, "certificate": label}))
        elif not any(certificate.is_valid_on(context.today) for certificate in held):
            latest = max(certificate.valid_to for certificate in held)
            problems.append(
                Problem(
                    Refusal.SUPPLIER_CERTIFICATE_EXPIRED, {"supplier": supplier, "certificate": label, "date": latest}
                )
            )
    registration = product.registration_certificate
    if registration is None:
        problems.append(Problem(Refusal.PRODUCT_CERTIFICATE_MISSING, {"product": product}))
    elif not registration.is_valid_on(context.today):
        problems.append(
            Problem(
                Refusal.PRODUCT_CERTIFICATE_EXPIRED,
                {"product": product, "number": registration.number, "date": registration.valid_to},
            )
        )
    return problems


def _shelf_life_problems(product: Product, expiry: datetime.date | None, today: datetime.date) -> list[Problem]:
    if expiry is None:
        return []
    if expiry < today:
        return [Problem(Refusal.UNIT_EXPIRED, {"expiry": expiry})]
    minimum = product.min_shelf_life_days
    if minimum is None:
        minimum = settings.SPD_MIN_SHELF_LIFE_DAYS
    days_left = (expiry - today).days
    if days_left < minimum:
        return [Problem(Refusal.SHELF_LIFE_TOO_SHORT, {"days": days_left, "minimum": minimum})]
    return []


def _temperature_problems(product: Product, temperature_c: Decimal | None) -> list[Problem]:
    if not product.is_cold_chain:
        return []
    if temperature_c is None:
        return [Problem(Refusal.TEMPERATURE_MISSING)]
    low, high = product.storage_min_c, product.storage_max_c
    if (low is not None and temperature_c < low) or (high is not None and temperature_c > high):
        return [Problem(Refusal.TEMPERATURE_OUT_OF_RANGE, {"temperature": temperature_c, "low": low, "high": high})]
    return []


# --- looking ahead: what acceptance would decide, without deciding ---------------------------------


@dataclass(frozen=True)
class LinePreview:
    """What acceptance would decide for one delivery line if it ran now. Nothing is written."""

    line: DeliveryLine
    problems: list[Problem]

    @property
    def accepted(self) -> bool:
        return not self.problems

    @property
    def unverified(self) -> bool:
        """It would be accepted, but it is a unit nobody has scanned: it waits for a scan (or an
        operator's decision to accept it without one)."""
        return not self.problems and needs_scan(self.line)


def preview_note(note: DeliveryNote, *, gift_line_nos: frozenset[int] = frozenset()) -> list[LinePreview]:
    """What `accept_delivery_note` would decide for every open line of a recorded note, in line
    order: the same checks in the same order (a serial accepted on an earlier line is taken for the
    later ones). Writes nothing, so a scanning person sees each verdict before finishing the acceptance."""
    lines = list(
        note.lines.filter(acceptance__isnull=True).select_related("product__registration_certificate", "scanned_by")
        .order_by("line_no")
    )
    return _preview(note, lines, gift_line_nos)


def preview_delivery(
    *, hospital: Hospital, supplier: Supplier, lines: list[LineInput], temperature_c: Decimal | None = None,
    gift_line_nos: frozenset[int] = frozenset(),
) -> list[LinePreview]:
    """The same for a delivery not recorded yet (one being scanned in): each line as
    `receive_delivery_note` would record it, and what acceptance would then decide. Writes nothing."""
    note = DeliveryNote(hospital=hospital, supplier=supplier, temperature_c=temperature_c)
    return _preview(note, _delivery_lines(note, lines, strict=False), gift_line_nos)


def _preview(note: DeliveryNote, lines: list[DeliveryLine], gift_line_nos: frozenset[int]) -> list[LinePreview]:
    context = _AcceptanceContext.load(note, lines)
    previews = []
    for line in lines:
        problems = acceptance_problems(line, note=note, context=context, is_gift=line.line_no in gift_line_nos)
        if not problems:
            context.accept(line)
        previews.append(LinePreview(line, problems))
    return previews


def find_line(note: DeliveryNote, raw_udi: str) -> DeliveryLine | None:
    """The line of a recorded note that a scanned code is: the same UDI-DI and serial for a unit,
    the same UDI-DI and lot (the code has no serial) for a lot line; None if it is on no line.
    Refused (UDI_UNPARSEABLE) when the code cannot be read."""
    try:
        scanned = parse_udi(raw_udi)
    except ParseError as error:
        raise Refused(Refusal.UDI_UNPARSEABLE, **error.refusal_params()) from error
    candidates = note.lines.filter(serial=scanned.serial) if scanned.serial else note.lines.filter(
        serial="", lot=scanned.lot
    )
    for line in candidates.select_related("product").order_by("line_no"):
        recorded = _read_udi(line.raw_udi)
        di = line.product.udi_di if line.product else (recorded.di if recorded else None)
        if di != scanned.di:
            continue
        if scanned.serial and line.serial == scanned.serial:
            return line
        if not scanned.serial and not line.serial and line.lot and line.lot == scanned.lot:
            return line
    return None


def record_scan(*, actor: Actor, note: DeliveryNote, code: str) -> DeliveryLine:
    """Record that the unit (or lot label) `code` was physically seen against its line of `note`.

    The line is verified by scan: who and when, kept from the first scan (scanning it again changes
    nothing). Refused when the code cannot be read (UDI_UNPARSEABLE), is on no line of the note
    (SCANNED_UNIT_NOT_ON_NOTE), or its line or the whole note is already decided.
    """
    if note.status == DeliveryNote.Status.ACCEPTED:
        raise Refused(Refusal.DELIVERY_ALREADY_ACCEPTED, number=note.number)
    line = find_line(note, code)
    if line is None:
        raise Refused(Refusal.SCANNED_UNIT_NOT_ON_NOTE, number=note.number)
    if AcceptanceRecord.objects.filter(line=line).exists():
        raise Refused(Refusal.LINE_ALREADY_DECIDED, number=note.number, line=line.line_no)
    with transaction.atomic():
        # Conditional: two people scanning the same unit at once keep the first scan.
        DeliveryLine.objects.filter(pk=line.pk, scanned_at__isnull=True).update(
            scanned_by=actor.user, scanned_at=timezone.now()
        )
        line.refresh_from_db(fields=["scanned_by", "scanned_at"])
    return line


def received_as(line: DeliveryLine) -> str:
    """What the supplier delivered on the line, in the unit it delivered in: "3 盒" (30 支 in stock)."""
    base = line.product.unit_of_measure if line.product_id else ""
    return f"{line.quantity // line.received_unit_factor} {line.received_unit or base}".strip()


def agreed_price(*, hospital: Hospital, supplier: Supplier, product: Product) -> Decimal | None:
    """The purchase price of the supply agreement in force today between the hospital and the
    supplier for the product (the price a delivery line is expected to carry), or None."""
    today = timezone.localdate()
    agreement = SupplyAgreement.objects.filter(
        hospital=hospital, supplier=supplier, product=product, is_active=True, valid_from__lte=today,
        valid_to__gte=today,
    ).order_by("-valid_from", "-pk").first()
    return agreement.unit_price if agreement else None
