"""The supplier portal (供应商门户): what a supplier's user may do — build and submit advance
shipping notices (ASN, 电子送货单) against the purchase orders addressed to their supplier.

A supplier's user is bound to one supplier and no hospital; every object here is looked up through
that supplier (`portal_orders`, `portal_notices`), so another supplier's order or notice does not
exist for them (404), and nothing of a hospital's own (stock, encounters, other prices) is reachable.

Each line is checked when it is added (`asn_line_problems`): a UDI that cannot be read, a product
not in the hospital's catalog or not on the order, a unit without a serial, a serial twice on the
notice, a serial already in the hospital's stock, more than the order still expects. A bad line is
refused with its reason and not kept; the good ones stay on the DRAFT, which the supplier completes
and submits. Submitting records the hospital's delivery note against the order
(`receiving.receive_delivery_note`), awaiting acceptance at the central warehouse.
"""
import datetime
from dataclasses import dataclass
from pathlib import PurePath

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from devices.identification import ParseError, parse_udi
from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import (
    AdvanceShippingNotice,
    AsnLine,
    Certificate,
    DeliveryNote,
    Location,
    Product,
    PurchaseOrder,
    TrackingMode,
    Unit,
    User,
)
from inventory.services.receiving import LineInput, receive_delivery_note


@dataclass(frozen=True)
class AsnLineInput:
    """One line as the supplier sends it: a unit's full UDI, or a product with lot, expiry, quantity."""

    udi: str = ""
    product: Product | None = None
    lot: str = ""
    expiry: datetime.date | None = None
    quantity: int = 1


@dataclass(frozen=True)
class RefusedLine:
    """A line not kept, with its position in what was sent and every reason."""

    position: int
    udi: str
    problems: list[Problem]

    def as_dict(self) -> dict:
        return {"position": self.position, "udi": self.udi, "problems": [p.as_dict() for p in self.problems]}


def portal_orders(user: User) -> QuerySet:
    """The purchase orders addressed to the user's supplier, across the hospitals it serves."""
    if not user.is_authenticated or user.supplier_id is None:
        return PurchaseOrder.objects.none()
    return PurchaseOrder.objects.filter(supplier_id=user.supplier_id)


def portal_notices(user: User) -> QuerySet:
    if not user.is_authenticated or user.supplier_id is None:
        return AdvanceShippingNotice.objects.none()
    return AdvanceShippingNotice.objects.filter(supplier_id=user.supplier_id)


def create_asn(
    *, actor: Actor, order: PurchaseOrder, number: str, lines: list[AsnLineInput]
) -> tuple[AdvanceShippingNotice, list[RefusedLine]]:
    """A draft shipping notice against `order` with the lines that can be delivered; the others are
    returned with their reasons. Refused when the order is not the user's supplier's (NOT_FOUND) or
    no longer open, or the number is already used for this hospital."""
    _require_own(actor, order.supplier_id, "purchase order")
    if not order.is_open_for_delivery:
        raise Refused(Refusal.ORDER_NOT_OPEN, number=order.number, status=order.get_status_display())
    number = number.strip()
    if not number:
        raise Refused(Refusal.INVALID_REQUEST, detail="number")
    with transaction.atomic():
        if AdvanceShippingNotice.objects.filter(
            supplier_id=order.supplier_id, hospital_id=order.hospital_id, number=number
        ).exists() or DeliveryNote.objects.filter(
            supplier_id=order.supplier_id, hospital_id=order.hospital_id, number=number
        ).exists():
            raise Refused(Refusal.DUPLICATE_DELIVERY_NOTE, number=number)
        asn = AdvanceShippingNotice.objects.create(
            supplier_id=order.supplier_id, hospital_id=order.hospital_id, purchase_order=order, number=number,
            created_by=actor.user,
        )
        refused = _add_lines(asn, lines)
    return asn, refused


def add_asn_lines(
    *, actor: Actor, asn: AdvanceShippingNotice, lines: list[AsnLineInput]
) -> tuple[AdvanceShippingNotice, list[RefusedLine]]:
    """Add lines to a draft notice: the good ones are kept, the others returned with their reasons."""
    _require_own(actor, asn.supplier_id, "shipping notice")
    with transaction.atomic():
        locked = AdvanceShippingNotice.objects.select_for_update().get(pk=asn.pk)
        _require_draft(locked)
        refused = _add_lines(locked, lines)
    return locked, refused


def remove_asn_line(*, actor: Actor, asn: AdvanceShippingNotice, line_no: int) -> AdvanceShippingNotice:
    _require_own(actor, asn.supplier_id, "shipping notice")
    with transaction.atomic():
        locked = AdvanceShippingNotice.objects.select_for_update().get(pk=asn.pk)
        _require_draft(locked)
        deleted, _ = AsnLine.objects.filter(asn=locked, line_no=line_no).delete()
        if not deleted:
            raise Refused(Refusal.NOT_FOUND, what="line")
    return locked


def submit_asn(*, actor: Actor, asn: AdvanceShippingNotice) -> DeliveryNote:
    """Submit the notice: it becomes the hospital's delivery note against the order, at the order's
    prices, received at the hospital's central warehouse and awaiting acceptance."""
    _require_own(actor, asn.supplier_id, "shipping notice")
    with transaction.atomic():
        locked = AdvanceShippingNotice.objects.select_for_update().select_related("purchase_order").get(pk=asn.pk)
        _require_draft(locked)
        lines = list(locked.lines.select_related("product").order_by("line_no"))
        if not lines:
            raise Refused(Refusal.ASN_EMPTY)
        location = Location.objects.filter(
            hospital_id=locked.hospital_id, kind=Location.Kind.CENTRAL_WAREHOUSE, is_active=True
        ).order_by("code", "pk").first()
        if location is None:
            raise Refused(Refusal.NO_RECEIVING_LOCATION)
        prices = {
            line.product_id: line.unit_price
            for line in locked.purchase_order.lines.order_by("-line_no")
        }
        note = receive_delivery_note(
            actor=actor, hospital=locked.hospital, supplier=locked.supplier, number=locked.number,
            receiving_location=location, purchase_order=locked.purchase_order, idempotency_key=f"asn-{locked.pk}",
            lines=[
                LineInput(prices[line.product_id], udi=line.raw_udi)
                if line.raw_udi else
                LineInput(prices[line.product_id], product=line.product, lot=line.lot, expiry=line.expiry,
                          quantity=line.quantity)
                for line in lines
            ],
        )
        locked.status = AdvanceShippingNotice.Status.SUBMITTED
        locked.submitted_at = timezone.now()
        locked.delivery_note = note
        locked.save(update_fields=["status", "submitted_at", "delivery_note"])
    return note


def _require_own(actor: Actor, supplier_id: int, what: str) -> None:
    if actor.user is None or actor.user.supplier_id is None or actor.user.supplier_id != supplier_id:
        raise Refused(Refusal.NOT_FOUND, what=what)


def _require_draft(asn: AdvanceShippingNotice) -> None:
    if asn.status != AdvanceShippingNotice.Status.DRAFT:
        raise Refused(Refusal.ASN_ALREADY_SUBMITTED, number=asn.number)


def _add_lines(asn: AdvanceShippingNotice, lines: list[AsnLineInput]) -> list[RefusedLine]:
    """Check each line against the order, the catalog, the notice's lines so far and the stock;
    keep the good ones (numbered after the existing lines), return the others."""
    order = asn.purchase_order
    catalog = {product.udi_di: product for product in Product.objects.filter(hospital_id=asn.hospital_id)}
    on_order = dict(
        order.lines.values("product_id").annotate(left=Sum("quantity") - Sum("delivered_quantity"))
        .values_list("product_id", "left")
    )
    existing = list(asn.lines.select_related("product"))
    planned: dict[int, int] = {}
    serials: set[tuple[str, str]] = set()
    for line in existing:
        planned[line.product_id] = planned.get(line.product_id, 0) + line.quantity
        if line.serial:
            serials.add((line.product.udi_di, line.serial))
    next_no = max((line.line_no for line in existing), default=0) + 1
    kept, refused = [], []
    parsed_lines = [_parse(line, catalog, asn.hospital_id) for line in lines]
    in_stock = set(Unit.objects.filter(
        di__in={parsed.di for parsed in parsed_lines if parsed.di}, serial__in={p.serial for p in parsed_lines if p.serial}
    ).values_list("di", "serial"))
    for position, (line, parsed) in enumerate(zip(lines, parsed_lines, strict=True), start=1):
        problems = parsed.problems or _line_problems(parsed, on_order, planned, serials, in_stock, order)
        if problems:
            refused.append(RefusedLine(position, line.udi, problems))
            continue
        planned[parsed.product.pk] = planned.get(parsed.product.pk, 0) + parsed.quantity
        if parsed.serial:
            serials.add((parsed.di, parsed.serial))
        kept.append(AsnLine(
            asn=asn, line_no=next_no, raw_udi=line.udi, product=parsed.product, lot=parsed.lot,
            serial=parsed.serial, expiry=parsed.expiry, quantity=parsed.quantity,
        ))
        next_no += 1
    AsnLine.objects.bulk_create(kept)
    return refused


@dataclass
class _Parsed:
    product: Product | None = None
    di: str = ""
    lot: str = ""
    serial: str = ""
    expiry: datetime.date | None = None
    quantity: int = 1
    problems: list[Problem] | None = None


def _parse(line: AsnLineInput, catalog: dict[str, Product], hospital_id: int) -> _Parsed:
    if line.udi:
        try:
            scan = parse_udi(line.udi)
        except ParseError as error:
            return _Parsed(problems=[Problem(Refusal.UDI_UNPARSEABLE, error.refusal_params())])
        product = catalog.get(scan.di)
        if product is None:
            return _Parsed(di=scan.di, problems=[Problem(Refusal.PRODUCT_UNKNOWN, {"di": scan.di})])
        quantity = 1 if product.tracking == TrackingMode.UNIT else max(line.quantity, 1)
        return _Parsed(product, scan.di, scan.lot, scan.serial, scan.expiry, quantity)
    product = line.product
    if product is None or product.hospital_id != hospital_id:
        return _Parsed(problems=[Problem(Refusal.DELIVERY_LINE_INVALID, {"line": "-", "reason": "udi_or_product"})])
    return _Parsed(product, product.udi_di, line.lot, "", line.expiry, line.quantity)


def _line_problems(
    parsed: _Parsed, on_order: dict[int, int], planned: dict[int, int], serials: set[tuple[str, str]],
    in_stock: set[tuple[str, str]], order: PurchaseOrder,
) -> list[Problem]:
    product = parsed.product
    if product.pk not in on_order:
        return [Problem(Refusal.PRODUCT_NOT_ON_ORDER, {"product": product, "number": order.number})]
    if product.tracking == TrackingMode.UNIT:
        if not parsed.serial:
            return [Problem(Refusal.SERIAL_MISSING)]
        if (parsed.di, parsed.serial) in serials:
            return [Problem(Refusal.ASN_DUPLICATE_SERIAL, {"serial": parsed.serial, "di": parsed.di})]
        if (parsed.di, parsed.serial) in in_stock:
            return [Problem(Refusal.SERIAL_IN_STOCK, {"serial": parsed.serial, "di": parsed.di})]
    elif not parsed.lot or not parsed.expiry or parsed.quantity < 1:
        return [Problem(Refusal.LOT_MISSING)]
    outstanding = on_order[product.pk] - planned.get(product.pk, 0)
    if parsed.quantity > outstanding:
        return [Problem(Refusal.OVER_DELIVERY, {
            "number": order.number, "outstanding": max(outstanding, 0), "product": product, "quantity": parsed.quantity,
        })]
    return []


# --- certificates ---------------------------------------------------------------------------------

SUPPLIER_CERTIFICATE_KINDS = (
    Certificate.Kind.BUSINESS_LICENCE, Certificate.Kind.DISTRIBUTION_LICENCE, Certificate.Kind.AUTHORISATION,
)
# What the first bytes of each accepted type are: the name's extension alone proves nothing.
_SIGNATURES = {".pdf": (b"%PDF-",), ".png": (b"\x89PNG\r\n\x1a\n",), ".jpg": (b"\xff\xd8\xff",),
               ".jpeg": (b"\xff\xd8\xff",)}


def portal_certificates(user: User) -> QuerySet:
    if not user.is_authenticated or user.supplier_id is None:
        return Certificate.objects.none()
    return Certificate.objects.filter(supplier_id=user.supplier_id)


def upload_certificate(
    *, actor: Actor, kind: str, number: str, valid_from: datetime.date, valid_to: datetime.date, file: UploadedFile
) -> Certificate:
    """A certificate of the user's supplier with its scan, stored in the media storage and shown to
    the hospitals (and checked at acceptance, and alerted before it expires, as every certificate).
    Refused: a kind that is not a supplier's, a file over SPD_CERTIFICATE_MAX_BYTES, a file that is
    not really a PDF, PNG or JPEG, dates the wrong way round, a number already recorded."""
    supplier_id = actor.user.supplier_id if actor.user is not None else None
    if supplier_id is None:
        raise Refused(Refusal.NOT_FOUND, what="resource")
    problems = []
    if kind not in SUPPLIER_CERTIFICATE_KINDS:
        problems.append(Problem(Refusal.CERTIFICATE_KIND_NOT_SUPPLIERS, {"kind": Certificate.Kind(kind).label}))
    if valid_to < valid_from:
        problems.append(Problem(Refusal.CERTIFICATE_DATES))
    if file.size is not None and file.size > settings.SPD_CERTIFICATE_MAX_BYTES:
        problems.append(Problem(Refusal.FILE_TOO_LARGE, {"limit": settings.SPD_CERTIFICATE_MAX_BYTES}))
    elif not _is_pdf_or_image(file):
        problems.append(Problem(Refusal.CERTIFICATE_FILE_TYPE, {"name": PurePath(file.name or "?").name}))
    if problems:
        raise Refused(problems)
    number = number.strip()
    with transaction.atomic():
        if Certificate.objects.filter(kind=kind, number=number).exists():
            raise Refused(Refusal.CERTIFICATE_NUMBER_TAKEN, kind=Certificate.Kind(kind).label, number=number)
        certificate = Certificate(
            kind=kind, number=number, supplier_id=supplier_id, valid_from=valid_from, valid_to=valid_to,
            uploaded_by=actor.user,
        )
        certificate.file.save(f"{supplier_id}-{PurePath(file.name).name}", file, save=False)
        certificate.save()
    return certificate


def _is_pdf_or_image(file: UploadedFile) -> bool:
    signatures = _SIGNATURES.get(PurePath(file.name or "").suffix.lower())
    if not signatures:
        return False
    file.seek(0)
    head = file.read(16)
    file.seek(0)
    return any(head.startswith(signature) for signature in signatures)
