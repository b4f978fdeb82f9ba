"""Read paths of the device side: what became of a device's events."""
from devices.models import Device, DeviceEvent
from devices.services import IngestOutcome

MAX_OUTCOME_QUERY = 500
UNKNOWN_DETAIL = "not stored: never received, or rejected before it was stored; send it again"


def event_outcomes(*, device: Device, event_ids: list[str]) -> list[dict]:
    """The stored outcome of each of `device`'s events named, in the order asked, in the shape the
    ingest answers with (`replayed` true: nothing is ingested by asking); status UNKNOWN for an
    event id it never stored. A device that lost an answer (bridge crash, results not subscribed)
    asks here instead of guessing, and sends again what is UNKNOWN."""
    found = {event.event_id: event for event in DeviceEvent.objects.filter(device=device, event_id__in=set(event_ids))}
    return [
        IngestOutcome(found[event_id], replayed=True).as_dict() if event_id in found else {
            "event_id": event_id, "status": "UNKNOWN", "replayed": False, "result": {}, "error_code": "",
            "error_detail": UNKNOWN_DETAIL,
        }
        for event_id in event_ids
    ]
