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
    """What the device is told. `warnings` says what it should know (its clock, a close not applied);
    `reread` asks it to read its tags again and send another door_close (a suspect read)."""
    warnings = []
    if session.device_clock_ahead_seconds is not None:
        warnings.append({"code": "DEVICE_CLOCK_AHEAD", "detail": (
            f"the device clock is {session.device_clock_ahead_seconds} s ahead of the server's; "
            f"the server's time was used: set the clock (NTP)")})
    if session.status == CabinetSession.Status.STALE:
        warnings.append({"code": "STALE_CLOSE", "detail": (
            "this close is older than one already applied to the cabinet: recorded, not applied")})
    reread = session.status == CabinetSession.Status.SUSPECT
    if reread:
        check = session.read_check
        warnings.append({"code": "READ_SUSPECT", "detail": (
            f"the read found {check['seen_expected']} of the {check['expected']} tagged units the cabinet should "
            f"hold: nothing was taken; read again and send another door_close")})
    return {
        "session": session.pk, "session_status": session.status, "user": session.user_id,
        "tags_seen": session.tags_seen, "taken": [item["unit"] for item in session.taken],
        "returned": [item["unit"] for item in session.returned], "unknown_tags": session.unknown_tags,
        "misplaced": session.misplaced, "warnings": warnings, "reread": reread,
    }


@handles(DeviceEvent.Kind.DOOR_OPEN)
def door_open(event: DeviceEvent) -> dict:
    user_ref, badge = event.payload.get("user") or "", event.payload.get("badge") or ""
    session = cabinets.open_session(
        device=event.device, cabinet=_cabinet_of(event.device), occurred_at=event.occurred_at,
        user_ref=str(user_ref), badge=str(badge), event=event, received_at=event.received_at,
    )
    return _session_result(session)


@handles(DeviceEvent.Kind.INVENTORY)
def inventory(event: DeviceEvent) -> dict:
    """An interim read while the door is open: informative (the close carries the full set), except
    for a cabinet whose last close read was held as suspect: then it is that session's new read."""
    epcs = _epcs(event)
    session = cabinets.interim_read(
        device=event.device, cabinet=_cabinet_of(event.device), occurred_at=event.occurred_at, epcs=epcs,
        event=event, received_at=event.received_at,
    )
    result = {"distinct_tags": len({epc.strip().upper() for epc in epcs})}
    if session is not None:
        result["suspect_session"] = _session_result(session)
    return result


@handles(DeviceEvent.Kind.DOOR_CLOSE)
def door_close(event: DeviceEvent) -> dict:
    session = cabinets.close_session(
        device=event.device, cabinet=_cabinet_of(event.device), occurred_at=event.occurred_at,
        epcs=_epcs(event), event=event, received_at=event.received_at,
    )
    return _session_result(session)
