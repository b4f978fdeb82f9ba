"""What a barcode scan from a device does: resolve it, and move the unit where the device says."""
from devices.models import Device, DeviceEvent
from devices.services import handles
from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.selectors.units import ScanResolution, resolve_scan
from inventory.services.stock import transfer_stock


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
    code = event.payload.get("code")
    if not isinstance(code, str) or not code:
        raise Refused(Refusal.INVALID_REQUEST, detail="a scan payload needs the scanned code as 'code'")
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
