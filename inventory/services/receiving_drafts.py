"""Receiving drafts (ReceivingDraft): a supplier's delivery scanned in at the warehouse, line by
line, before it is recorded as a delivery note (docs/receiving.md).

A draft is kept in the database for the hospital (anyone of it may resume it) until it is recorded
(`record_draft`: `receive_delivery_note` with its lines) or discarded. Every change locks the
draft's row and reads its lines again under the lock, so two people scanning into one draft lose
nothing. Nothing is decided here: each line's verdict is acceptance's own (`preview_delivery`).
"""
import datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.models import DeliveryNote, Hospital, Location, Product, ReceivingDraft, Supplier, TrackingMode, User
from inventory.selectors.units import resolve_scan
from inventory.services.receiving import LineInput, LinePreview, agreed_price, preview_delivery, receive_delivery_note
from inventory.services.units_of_measure import base_unit_price, unit_named


class Draft:
    """A delivery being scanned in (a ReceivingDraft row): the header chosen first and the lines
    scanned so far (`lines`: dicts with udi, product, lot, expiry, quantity, price, unit,
    scanned_by, scanned_at)."""

    def __init__(self, row: ReceivingDraft) -> None:
        self.row, self.key, self.hospital = row, row.key, row.hospital
        self.supplier = row.supplier
        self.location = row.receiving_location
        self.temperature = row.temperature_c

    @property
    def lines(self) -> list[dict]:
        return self.row.lines

    @property
    def number(self) -> str:
        return self.row.number

    def inputs(self) -> list[LineInput]:
        """The lines as the receiving service takes them."""
        products = Product.objects.filter(hospital=self.hospital).in_bulk(
            {line["product"] for line in self.lines if line["product"]}
        )
        scanners = User.objects.in_bulk({line.get("scanned_by") for line in self.lines if line.get("scanned_by")})
        return [
            LineInput(
                Decimal(line["price"]), udi=line["udi"], product=products.get(line["product"]), lot=line["lot"],
                expiry=datetime.date.fromisoformat(line["expiry"]) if line["expiry"] else None,
                quantity=line["quantity"], unit=line.get("unit", ""), scanned_by=scanners.get(line.get("scanned_by")),
                scanned_at=datetime.datetime.fromisoformat(line["scanned_at"]) if line.get("scanned_at") else None,
            )
            for line in self.lines
        ]

    def previews(self) -> list[LinePreview]:
        """Each line as acceptance would decide it once recorded (nothing written)."""
        if not self.lines:
            return []
        return preview_delivery(hospital=self.hospital, supplier=self.supplier, lines=self.inputs(),
                                temperature_c=self.temperature)

    def price_for(self, product: Product | None, typed: str) -> Decimal:
        """The price typed with the scan, else the agreement's (0 without one: acceptance says why)."""
        if typed.strip():
            try:
                price = Decimal(typed.strip())
            except InvalidOperation:
                price = None
            if price is None or price < 0 or price != price.quantize(Decimal("0.01")):
                raise Refused(Refusal.INVALID_REQUEST, detail=_("the unit price must be an amount like 1200.00"))
            return price.quantize(Decimal("0.01"))
        if product is None:
            return Decimal("0.00")
        return agreed_price(hospital=self.hospital, supplier=self.supplier, product=product) or Decimal("0.00")

    def _save(self, user: User) -> None:
        self.row.updated_by = user
        self.row.updated_at = timezone.now()
        self.row.save(update_fields=["lines", "updated_by", "updated_at"])


def drafts_of(hospital: Hospital):
    """The hospital's drafts, with what their pages show."""
    return ReceivingDraft.objects.filter(hospital=hospital).select_related(
        "hospital", "supplier", "receiving_location", "created_by", "updated_by")


def _locked(draft: Draft) -> Draft:
    """The draft read again under its row lock (inside the caller's transaction)."""
    try:
        return Draft(drafts_of(draft.hospital).select_for_update(of=("self",)).get(pk=draft.row.pk))
    except ReceivingDraft.DoesNotExist:
        raise Refused(Refusal.NOT_FOUND, what=_("Draft")) from None


def whole_quantity(typed: str) -> int:
    """A quantity typed beside a scan: blank is 1; anything but a whole number ≥ 1 is refused."""
    try:
        quantity = int(typed.strip() or "1")
    except ValueError:
        quantity = 0
    if quantity < 1:
        raise Refused(Refusal.QUANTITY_INVALID)
    return quantity


def start_draft(
    *, user: User, hospital: Hospital, key: str, supplier: Supplier, number: str, receiving_location: Location,
    temperature_c: Decimal | None,
) -> ReceivingDraft:
    """Step 1: who delivers, the note's number, where it is received. Only the draft is written."""
    return ReceivingDraft.objects.create(
        hospital=hospital, key=key, supplier=supplier, number=number, receiving_location=receiving_location,
        temperature_c=temperature_c, created_by=user, updated_by=user,
    )


def add_scanned_line(*, user: User, draft: Draft, code: str, quantity: str = "", unit_price: str = "") -> Draft:
    """One scanned unit (or a lot's UDI with the quantity typed beside it) added as the draft's last
    line, at the price typed or the agreement's. An empty or unreadable code, a code already on the
    draft, a bad quantity (for a lot) or price are refused and nothing is added."""
    with transaction.atomic():
        current = _locked(draft)
        if current.row.note_id:
            raise Refused(Refusal.INVALID_REQUEST, detail=_("this delivery note is already recorded"))
        if not code:
            raise Refused(Refusal.NOTHING_SCANNED)
        resolution = resolve_scan(current.hospital, code)  # an unreadable code is refused, not recorded
        for line_no, line in enumerate(current.lines, start=1):
            if line["udi"] == code:
                raise Refused(Refusal.INVALID_REQUEST, detail=_("this code is already on line %(line)s") % {
                    "line": line_no})
        count = 1
        if resolution.product is not None and resolution.product.tracking == TrackingMode.LOT:
            count = whole_quantity(quantity)
        price = current.price_for(resolution.product, unit_price)
        current.lines.append({
            "udi": code, "product": None, "lot": "", "expiry": "", "quantity": count, "price": str(price),
            "scanned_by": user.pk, "scanned_at": timezone.now().isoformat(),
        })
        current._save(user)
        return current


def add_lot_line(
    *, user: User, draft: Draft, product: Product, lot: str, expiry: datetime.date, quantity: int, unit: str = "",
    unit_price: Decimal | None = None,
) -> Draft:
    """A lot line typed from the paper note, in any packaging unit of the product; without a price,
    the agreement's (per base unit, times the packaging unit's factor), else 0. A unit the product
    does not have, or a price that is no whole amount per base unit, is refused."""
    packaging = unit_named(product=product, unit=unit)
    price = unit_price
    if price is None:
        price = agreed_price(hospital=draft.hospital, supplier=draft.supplier, product=product)
        price = price * packaging.factor if price is not None else None  # the agreement is per base unit
    price = price if price is not None else Decimal("0.00")
    base_unit_price(product=product, unit_price=price, unit=packaging.name)
    with transaction.atomic():
        current = _locked(draft)
        current.lines.append({
            "udi": "", "product": product.pk, "lot": lot.strip(), "expiry": expiry.isoformat(), "quantity": quantity,
            "price": str(price), "scanned_by": None, "scanned_at": "",
            **({"unit": packaging.name} if packaging.factor != 1 else {}),
        })
        current._save(user)
        return current


def set_line_quantity(*, user: User, draft: Draft, line_no: int, quantity: str) -> Draft:
    """Correct the quantity of a lot line after its scan (the count on the box, not on the label);
    a unit line is always one unit."""
    with transaction.atomic():
        current = _locked(draft)
        if current.row.note_id or not 1 <= line_no <= len(current.lines):
            raise Refused(Refusal.NOT_FOUND, what=_("Line %(line)s") % {"line": line_no})
        previews = {preview.line.line_no: preview for preview in current.previews()}
        line = previews[line_no].line
        if line.serial or (line.product is not None and line.product.tracking == TrackingMode.UNIT):
            raise Refused(Refusal.INVALID_REQUEST, detail=_("a unit line is always one unit"))
        current.lines[line_no - 1]["quantity"] = whole_quantity(quantity)
        current._save(user)
        return current


def remove_line(*, user: User, draft: Draft, line_no: int) -> bool:
    """Take line `line_no` off the draft (the lines after it move up); False if there is no such line
    or the draft is recorded already."""
    with transaction.atomic():
        current = _locked(draft)
        if current.row.note_id is not None or not 1 <= line_no <= len(current.lines):
            return False
        current.lines.pop(line_no - 1)
        current._save(user)
        return True


def discard_draft(*, draft: Draft) -> bool:
    """Throw the draft away (nothing was recorded); a draft already recorded as a note stays."""
    with transaction.atomic():
        current = _locked(draft)
        if current.row.note_id is not None:
            return False
        current.row.delete()
        return True


def record_draft(*, actor: Actor, draft: Draft) -> tuple[DeliveryNote, Draft, bool]:
    """Record the draft as a delivery note (`receive_delivery_note`, keyed by the draft): the note,
    the draft and whether it was recorded now (False: a double submit, the same note). Refused as
    the receiving service refuses, nothing written."""
    with transaction.atomic():
        current = _locked(draft)
        if current.row.note_id:  # recorded meanwhile (a double submit): the same note
            return current.row.note, current, False
        note = receive_delivery_note(
            actor=actor, hospital=current.hospital, supplier=current.supplier, number=current.number,
            receiving_location=current.location, lines=current.inputs(), temperature_c=current.temperature,
            idempotency_key=f"web-receive-{current.key}",
        )
        current.row.note = note
        current.row.save(update_fields=["note"])
        return note, current, True
