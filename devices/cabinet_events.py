"""Smart-cabinet events (door_open, inventory, door_close) handed to the inventory's cabinet service."""
from devices.models import Device, DeviceEvent
from devices.services import handles
from inventory.errors import Refusal, Refused
from inventory.models import CabinetSession, Location
from inventory.services import cabinets

CABINET_KINDS = (Device.Kind.CABINET_HTTP, Device.Kind.CABINET_MQTT, Device.Kind.RFID_READER)


def _cabinet_of(device: Device) -> Location:
    location = device.location
    if device.kind not in CABINET_KINDS or location is None or location.kind != Location.Kind.SMART_CABINET:
        raise Refused(Refusal.DEVICE_NOT_AT_CABINET, device=device.code)
    return location


def _epcs(event: DeviceEvent) -> list[str]:
    epcs = event.payload.get("epcs")
    if not isinstance(epcs, list) or not all(isinstance(epc, str) for epc in epcs):
        raise Refused(Refusal.EPC_LIST_INVALID)
    return epcs


def _session_result(session: CabinetSession) -> dict:
    return {
        "session": session.pk, "session_status": session.status, "user": session.user_id,
        "tags_seen": session.tags_seen, "taken": [item["unit"] for item in session.taken],
        "returned": [item["unit"] for item in session.returned], "unknown_tags": session.unknown_tags,
        "misplaced": session.misplaced,
    }


@handles(DeviceEvent.Kind.DOOR_OPEN)
def door_open(event: DeviceEvent) -> dict:
    user_ref, badge = event.payload.get("user") or "", event.payload.get("badge") or ""
    session = cabinets.open_session(
        device=event.device, cabinet=_cabinet_of(event.device), occurred_at=event.occurred_at,
        user_ref=str(user_ref), badge=str(badge), event=event,
    )
    return _session_result(session)


@handles(DeviceEvent.Kind.INVENTORY)
def inventory(event: DeviceEvent) -> dict:
    """An interim read while the door is open: informative only; the close carries the full set."""
    _cabinet_of(event.device)
    return {"distinct_tags": len({epc.strip().upper() for epc in _epcs(event)})}


@handles(DeviceEvent.Kind.DOOR_CLOSE)
def door_close(event: DeviceEvent) -> dict:
    session = cabinets.close_session(
        device=event.device, cabinet=_cabinet_of(event.device), occurred_at=event.occurred_at,
        epcs=_epcs(event), event=event,
    )
    return _session_result(session)
