"""Read paths for units: lookup by what a scanner gives, and the full trace of one unit."""
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from devices.identification import ParsedUDI, ParseError, parse_udi
from inventory.errors import Problem, Refusal, Refused
from inventory.models import Hospital, Movement, Product, StockOrder, Unit
from inventory.services.ledger import UnitRow


def units_for_list(queryset: QuerySet) -> QuerySet:
    """The units of a list page (API), with the names of their product and location read in the same
    query — only the names: a page of 50 built each product's thirty-odd columns, and the supplier's
    row, which the list shows by id."""
    own = [field.attname for field in Unit._meta.concrete_fields]
    return queryset.select_related("product", "location").only(*own, "product__name", "location__name")


@dataclass(frozen=True, slots=True)
class ProductRow:
    """A catalog product as a scan's answer names it, as plain values (a receiving station's batch
    reads it with its unit: devices/scanning.py)."""

    pk: int
    name: str


@dataclass(frozen=True)
class ScanResolution:
    """What a scanned code designates in one hospital: its parse, the catalog product, the unit
    (model instances, or plain rows where a receiving station's batch reads them: `UnitRow`)."""

    udi: ParsedUDI
    product: Product | ProductRow | None
    unit: Unit | UnitRow | None

    @property
    def problem(self) -> Problem | None:
        """Why the code designates no unit, or None if it does."""
        if self.unit is not None:
            return None
        if self.product is None:
            return Problem(Refusal.PRODUCT_UNKNOWN, {"di": self.udi.di})
        return Problem(Refusal.NOT_FOUND, {"what": f"unit {self.udi.di}/{self.udi.serial or '?'}"})


def resolve_scan(hospital: Hospital, raw: str, *, separator: str | None = None) -> ScanResolution:
    """Parse a scanned code and find its product and (for a serialised code) its unit."""
    resolution = resolve_scans(hospital, [raw], separator=separator)[0]
    if isinstance(resolution, Refused):
        raise resolution
    return resolution


def resolve_scans(
    hospital: Hospital, codes: list[str], *, separator: str | None = None
) -> list[ScanResolution | Refused]:
    """`resolve_scan` for many codes in two queries: for each code in order, its resolution, or
    the UDI_UNPARSEABLE refusal of a code that cannot be read."""
    parsed = parse_codes(codes, separator=separator)
    readable = [udi for udi in parsed if isinstance(udi, ParsedUDI)]
    dis = {udi.di for udi in readable}
    products = {product.udi_di: product for product in Product.objects.filter(hospital=hospital, udi_di__in=dis)}
    pairs = sorted({(udi.di, udi.serial) for udi in readable if udi.serial})
    units = {(unit.di, unit.serial): unit for unit in units_by_udi(hospital, pairs)} if pairs else {}
    return [
        udi if isinstance(udi, Refused) else ScanResolution(udi, products.get(udi.di), units.get((udi.di, udi.serial)))
        for udi in parsed
    ]


def parse_codes(codes: list[str], *, separator: str | None = None) -> list[ParsedUDI | Refused]:
    """Each scanned code parsed, or the UDI_UNPARSEABLE refusal of a code that cannot be read."""
    parsed: list[ParsedUDI | Refused] = []
    for raw in codes:
        try:
            parsed.append(parse_udi(raw, separator=separator))
        except ParseError as error:
            parsed.append(Refused(Refusal.UDI_UNPARSEABLE, **error.refusal_params()))
    return parsed


def units_by_udi(hospital: Hospital, pairs: list[tuple[str, str]]) -> QuerySet:
    """The hospital's units of these (DI, serial) pairs. On PostgreSQL the pairs themselves are
    looked up in the (di, serial) index: `di IN … AND serial IN …` read every unit of every DI
    scanned (55,771 rows for a batch of 500 scans on the benchmark's hospital) to keep 500."""
    units = Unit.objects.filter(hospital=hospital)
    if connection.vendor != "postgresql":
        return units.filter(di__in={di for di, _ in pairs}, serial__in={serial for _, serial in pairs})
    table = Unit._meta.db_table
    return units.filter(RawSQL(
        f'("{table}"."di", "{table}"."serial") IN (SELECT * FROM unnest(%s::text[], %s::text[]))',  # names from the model
        ([di for di, _ in pairs], [serial for _, serial in pairs]), output_field=BooleanField(),
    ))


def find_unit_by_udi(hospital: Hospital, raw: str, *, separator: str | None = None) -> Unit:
    """The unit a scanned UDI designates in this hospital, or a refusal saying why there is none."""
    resolution = resolve_scan(hospital, raw, separator=separator)
    if problem := resolution.problem:
        raise Refused([problem])
    return resolution.unit


@dataclass(frozen=True)
class TraceEvent:
    at: datetime | None
    kind: str
    summary: str
    details: dict


def unit_trace(unit: Unit) -> list[TraceEvent]:
    """Everything known about one unit, oldest first: where it came from and everything that moved it.

    Backward: manufacturer, registration certificate, supplier and its licences, delivery note and
    acceptance. Forward: every movement with its locations, actor and source document.
    """
    unit = Unit.objects.select_related(
        "product__manufacturer", "product__registration_certificate", "supplier", "delivery_line__note",
        "delivery_line__acceptance__decided_by",
    ).get(pk=unit.pk)
    events = [_origin_event(unit)]
    line = unit.delivery_line
    if line is not None:
        note = line.note
        events.append(
            TraceEvent(
                note.delivered_at, "DELIVERY",
                f"Delivery note {note.number} from {unit.supplier.name}, line {line.line_no}",
                {
                    "delivery_note_id": note.pk, "number": note.number, "line_no": line.line_no,
                    "unit_price": str(line.unit_price), "temperature_c": _text(note.temperature_c),
                    "raw_udi": line.raw_udi,
                },
            )
        )
        acceptance = getattr(line, "acceptance", None)
        if acceptance is not None:
            events.append(
                TraceEvent(
                    acceptance.decided_at, "ACCEPTANCE", f"{acceptance.get_decision_display()} by {acceptance.decided_by}",
                    {"decision": acceptance.decision, "is_gift": acceptance.is_gift, "by": acceptance.decided_by.username,
                     "by_name": acceptance.decided_by.get_full_name() or acceptance.decided_by.username},
                )
            )
    # A unit transferred from another member of the alliance (services/transfers.py) shows its movements
    # in the books of the hospital it belongs to now, from its ALLIANCE_IN on: the sender's own moves
    # are the sender's (its origin — supplier, delivery, acceptance — stays, for recalls).
    movements = unit.movements.filter(hospital_id=unit.hospital_id).select_related(
        "from_location", "to_location", "actor_user", "actor_device")
    orders = {
        order.pk: order
        for order in StockOrder.objects.filter(
            pk__in=[m.document_id for m in movements if m.document_type == Movement.DocumentType.STOCK_ORDER]
        )
    }
    for movement in movements.order_by("id"):
        order = orders.get(movement.document_id) if movement.document_type == Movement.DocumentType.STOCK_ORDER else None
        events.append(_movement_event(movement, order))
    return events


def _origin_event(unit: Unit) -> TraceEvent:
    product = unit.product
    registration = product.registration_certificate
    supplier_licences = [
        {"kind": c.kind, "number": c.number, "valid_to": c.valid_to.isoformat(), "valid_today": c.is_valid_on(timezone.localdate())}
        for c in unit.supplier.certificates.all()
    ]
    return TraceEvent(
        None, "ORIGIN", f"{product.name} by {product.manufacturer.name}, supplied by {unit.supplier.name}",
        {
            "product_id": product.pk, "product": product.name, "specification": product.specification,
            "udi_di": unit.di, "lot": unit.lot, "serial": unit.serial, "expiry": _text(unit.expiry),
            "production_date": _text(unit.production_date), "manufacturer": product.manufacturer.name,
            "registration_certificate": registration.number if registration else None,
            "registration_valid_to": _text(registration.valid_to) if registration else None,
            "supplier": unit.supplier.name, "supplier_uscc": unit.supplier.uscc,
            "supplier_certificates": supplier_licences, "owner": unit.owner, "unit_cost": str(unit.unit_cost),
            "is_gift": unit.is_gift,
        },
    )


def _movement_event(movement: Movement, order: StockOrder | None) -> TraceEvent:
    actor = movement.actor_user.username if movement.actor_user else f"device {movement.actor_device.code}"
    # People are named as colleagues know them; the username stays in `actor` for integrators.
    actor_name = (
        (movement.actor_user.get_full_name() or movement.actor_user.username) if movement.actor_user
        else movement.actor_device.name or movement.actor_device.code
    )
    place = movement.to_location.name if movement.to_location else "—"
    return TraceEvent(
        movement.occurred_at, f"MOVEMENT_{movement.kind}",
        f"{movement.get_kind_display()} → {place} by {actor}",
        {
            "movement_id": movement.pk, "kind": movement.kind,
            "from_location": movement.from_location.name if movement.from_location else None,
            "to_location": movement.to_location.name if movement.to_location else None,
            "from_status": movement.from_status, "to_status": movement.to_status, "actor": actor, "actor_name": actor_name,
            "recorded_at": movement.recorded_at.isoformat(), "reason_code": movement.reason_code,
            "note": movement.note, "document_type": movement.document_type, "document_id": movement.document_id,
            "document_kind": order.kind if order else None,
        },
    )


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
