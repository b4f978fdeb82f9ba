"""What a barcode scan from a device does: resolve it, and move the unit where the device says."""
import hashlib

from devices.identification import gs_substitute_problem
from devices.models import Device, DeviceEvent
from devices.services import handles, handles_batch
from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.selectors.units import ScanResolution, resolve_scan, resolve_scans
from inventory.services.stock import transfer_stock, transfer_units_each


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


@handles(DeviceEvent.Kind.SCAN)
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
    can move moved in one transfer order (a unit scanned twice: the second scan finds it there)."""
    device = events[0].device
    try:
        _require_safe_substitute(device)
    except Refused as refused:
        return [refused for _ in events]
    codes = [_scanned_code(event) for event in events]
    readable = [code for code in codes if not isinstance(code, Refused)]
    resolved = iter(resolve_scans(device.hospital, readable, separator=device.gs_substitute))
    resolutions = [code if isinstance(code, Refused) else next(resolved) for code in codes]
    if device.scan_mode != Device.ScanMode.RECEIVE_INTO_LOCATION or device.location is None:
        return [r if isinstance(r, Refused) else describe(r) for r in resolutions]
    outcomes: list[dict | Refused] = [
        r if isinstance(r, Refused) else Refused([r.problem]) if r.problem else describe(r) for r in resolutions
    ]
    moving = [index for index, outcome in enumerate(outcomes) if isinstance(outcome, dict)]
    if not moving:
        return outcomes
    try:
        order, problems = transfer_units_each(
            actor=Actor(device=device), hospital=device.hospital, to_location=device.location,
            units=[resolutions[index].unit for index in moving],
            idempotency_key=_batch_key(device, [events[index] for index in moving]),
        )
    except Refused as refused:  # request-wide (the station's location is inactive…): no scan moves
        return [refused if isinstance(outcome, dict) else outcome for outcome in outcomes]
    for index, unit_problems in zip(moving, problems, strict=True):
        outcomes[index] = Refused(unit_problems) if unit_problems else {**outcomes[index], "stock_order": order.pk}
    return outcomes


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
