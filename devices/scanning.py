"""What a barcode scan from a device does: resolve it, and move the unit where the device says."""
import hashlib

from devices.identification import ParsedUDI, gs_substitute_problem
from devices.models import Device, DeviceEvent
from devices.services import handles, handles_batch
from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.models import Hospital, Location, Product
from inventory.selectors.units import (
    ProductRow,
    ScanResolution,
    parse_codes,
    resolve_scan,
    resolve_scans,
    units_by_udi,
)
from inventory.services.ledger import UnitRow
from inventory.services.stock import transfer_locked_units_each, transfer_stock


def describe(resolution: ScanResolution) -> dict:
    udi = resolution.udi
    problem = resolution.problem
    return {
        "udi": {
            "issuer": udi.issuer, "di": udi.di, "lot": udi.lot, "serial": udi.serial,
            "expiry": udi.expiry.isoformat() if udi.expiry else None,
            "production_date": udi.production_date.isoformat() if udi.production_date else None,
            "normalized": udi.normalized,
        },
        "product": {"id": resolution.product.pk, "name": resolution.product.name} if resolution.product else None,
        "unit": (
            {"id": resolution.unit.pk, "status": resolution.unit.status, "location": resolution.unit.location_id}
            if resolution.unit else None
        ),
        "problem": problem.as_dict() if problem else None,
    }


@handles(DeviceEvent.Kind.SCAN, needs_event_row=False)
def process_scan(event: DeviceEvent) -> dict:
    """Resolve the scanned code; a station in RECEIVE_INTO_LOCATION mode also moves the unit there."""
    device = event.device
    code = _scanned_code(event)
    if isinstance(code, Refused):
        raise code
    _require_safe_substitute(device)
    resolution = resolve_scan(device.hospital, code, separator=device.gs_substitute)
    result = describe(resolution)
    if device.scan_mode == Device.ScanMode.RECEIVE_INTO_LOCATION and device.location is not None:
        if problem := resolution.problem:
            raise Refused([problem])
        order = transfer_stock(
            actor=Actor(device=device), hospital=device.hospital, to_location=device.location,
            units=[resolution.unit], idempotency_key=f"device-{device.pk}-event-{event.event_id}",
        )
        result["stock_order"] = order.pk
    return result


@handles_batch(DeviceEvent.Kind.SCAN)
def process_scans(events: list[DeviceEvent]) -> list[dict | Refused]:
    """`process_scan` for consecutive scans of one device, with the same outcome for each, in a
    few queries: every code resolved at once, and in RECEIVE_INTO_LOCATION mode every unit that
    can move moved in one transfer order (a unit scanned twice: the second scan finds it there).
    A receiving station's units are locked by the read that finds them."""
    device = events[0].device
    try:
        _require_safe_substitute(device)
    except Refused as refused:
        return [refused for _ in events]
    codes = [_scanned_code(event) for event in events]
    readable = [code for code in codes if not isinstance(code, Refused)]
    receiving = device.scan_mode == Device.ScanMode.RECEIVE_INTO_LOCATION and device.location is not None
    resolve = _resolve_locking if receiving else resolve_scans
    resolved = iter(resolve(device.hospital, readable, separator=device.gs_substitute))
    resolutions = [code if isinstance(code, Refused) else next(resolved) for code in codes]
    if not receiving:
        return [r if isinstance(r, Refused) else describe(r) for r in resolutions]
    outcomes: list[dict | Refused] = [
        r if isinstance(r, Refused) else Refused([r.problem]) if r.problem else describe(r) for r in resolutions
    ]
    moving = [index for index, outcome in enumerate(outcomes) if isinstance(outcome, dict)]
    if not moving:
        return outcomes
    try:
        order, problems = transfer_locked_units_each(
            actor=Actor(device=device), hospital=device.hospital, to_location=device.location,
            units=[resolutions[index].unit for index in moving],
            idempotency_key=_batch_key(device, [events[index] for index in moving]),
        )
    except Refused as refused:  # request-wide (the station's location is inactive…): no scan moves
        return [refused if isinstance(outcome, dict) else outcome for outcome in outcomes]
    for index, unit_problems in zip(moving, problems, strict=True):
        if unit_problems:
            outcomes[index] = Refused(unit_problems)
        else:
            outcomes[index]["stock_order"] = order.pk  # a dict of its own (`describe`)
    return outcomes


def _resolve_locking(
    hospital: Hospital, codes: list[str], *, separator: str | None = None
) -> list[ScanResolution | Refused]:
    """`resolve_scans` for a receiving station: the units found are locked (FOR UPDATE, in
    primary-key order, as `transfer_stock` locks them) and read with their location and product by
    the query that finds them — the (DI, serial) pairs probed in their unique index. The product of
    a DI is the unit's own when it is the hospital's product of that DI, as it always is for units
    received here; the catalog is read only for the DIs of the other codes."""
    parsed = parse_codes(codes, separator=separator)
    readable = [udi for udi in parsed if isinstance(udi, ParsedUDI)]
    pairs = sorted({(udi.di, udi.serial) for udi in readable if udi.serial})
    units, products = _locked_units_by_udi(hospital, pairs) if pairs else ({}, {})
    if missing := {udi.di for udi in readable} - products.keys():
        products.update((product.udi_di, product)
                        for product in Product.objects.filter(hospital=hospital, udi_di__in=missing).order_by())
    return [
        udi if isinstance(udi, Refused) else ScanResolution(udi, products.get(udi.di), units.get((udi.di, udi.serial)))
        for udi in parsed
    ]


def _locked_units_by_udi(
    hospital: Hospital, pairs: list[tuple[str, str]]
) -> tuple[dict[tuple[str, str], UnitRow], dict[str, ProductRow]]:
    """The units, locked, by (DI, serial), and the products of their DIs (a unit's product when it is
    the hospital's product of that DI), read as plain rows; their few locations read once each, not
    once per unit."""
    rows = list(units_by_udi(hospital, pairs).select_for_update(of=("self",)).order_by("pk").values_list(
        *_UNIT_ROW_COLUMNS, "di", "product__name", "product__udi_di", "product__hospital_id"))
    locations = Location.objects.in_bulk({row[_LOCATION_COLUMN] for row in rows} - {None})
    units, products = {}, {}
    for *columns, di, name, product_di, product_hospital_id in rows:
        unit = UnitRow(*columns, location=locations.get(columns[_LOCATION_COLUMN]))
        units[(di, unit.serial)] = unit
        if product_di == di and product_hospital_id == hospital.pk:
            products[di] = ProductRow(unit.product_id, name)
    return units, products


# `UnitRow`'s fields but its location, which is read once per location.
_UNIT_ROW_COLUMNS = ("pk", "hospital_id", "product_id", "lot", "serial", "expiry", "status", "status_since", "location_id")
_LOCATION_COLUMN = _UNIT_ROW_COLUMNS.index("location_id")


def _require_safe_substitute(device: Device) -> None:
    """A substitute stored before it was checked (or edited in the database) must not misread codes."""
    if device.gs_substitute is not None and (problem := gs_substitute_problem(device.gs_substitute)):
        raise Refused(Refusal.GS_SUBSTITUTE_UNSAFE, detail=problem)


def _scanned_code(event: DeviceEvent) -> str | Refused:
    code = event.payload.get("code")
    if not isinstance(code, str) or not code:
        return Refused(Refusal.SCAN_CODE_MISSING)
    return code


def _batch_key(device: Device, events: list[DeviceEvent]) -> str:
    """One idempotency key for the scans of a batch: the events are stored once, so is the key."""
    ids = hashlib.sha256("\n".join(event.event_id for event in events).encode()).hexdigest()
    return f"device-{device.pk}-scans-{ids}"
