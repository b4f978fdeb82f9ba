"""Dead letters (死信): what the MQTT bridge received and could not store, kept for operators.

An HTTP device is told at once by its response; an MQTT cabinet only by a message on its results
topic, which nobody may be reading. So every message that was refused in whole or in part —
unparseable, oversized, for an unknown or inactive device, on a wrong topic, or holding events the
ingest refused — leaves a RejectedMessage row, listed at /api/v1/devices/rejected-messages/.
"""
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from devices.models import Device, RejectedMessage
from inventory.models import Hospital

MAX_STORED_PAYLOAD = 64 * 1024
SEVERAL = "SEVERAL"  # the events of one message refused for different reasons (each is in `results`)

# Why a message was refused, for people (the dead-letter page): the bridge's own codes and those of
# the ingest (devices/services.py EventRejected), in the words an operator acts on.
REASONS: dict[str, Promise] = {
    "INVALID_TOPIC": _("Sent on a topic that is not a cabinet's events topic"),
    "PAYLOAD_TOO_LARGE": _("Message larger than the limit"),
    "INVALID_JSON": _("Not UTF-8 JSON"),
    "UNKNOWN_DEVICE": _("No active MQTT cabinet of that code"),
    "WRONG_HOSPITAL": _("The cabinet belongs to another hospital than its topic names"),
    "INVALID_QUERY": _("Malformed question about earlier events"),
    "INVALID_EVENT": _("Malformed event"),
    "UNKNOWN_EVENT_KIND": _("Event of an unknown kind"),
    "INVALID_BATCH": _("Malformed batch of events"),
    "EVENT_CONFLICT": _("Event id already received with a different body"),
    "WRONG_DEVICE": _("Event addressed to another device"),
    "DATE_OUT_OF_RANGE": _("Event time outside the accepted dates (device clock)"),
    "INTERNAL_ERROR": _("Could not be processed (server error, logged)"),
    SEVERAL: _("Several events refused for different reasons"),
}


def reason_of(code: str) -> str:
    """The reason for people, in the active language; an unknown code is shown as it is."""
    return str(REASONS.get(code, code))


def _storable(value: object) -> object:
    """`value` with NUL and unpaired surrogates written as escapes (\\x00, \\ud800): PostgreSQL keeps
    neither in text or jsonb, and the dead letter of a message carrying one must still be stored."""
    if isinstance(value, str):
        return value.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode()
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def record_rejected_message(
    *, topic: str, payload: bytes, rejected: list[dict], device: Device | None = None,
    hospital_code: str | None = None, device_code: str | None = None,
) -> RejectedMessage:
    """Store one dead letter for `rejected` (the rejection results sent back for this message).

    The device is `device`, or else the one of that code and hospital (from the topic), whatever
    its kind or state (an inactive cabinet still sending is worth knowing). The hospital is the
    device's, or else the one `hospital_code` names, if any.
    """
    if device is None and device_code and hospital_code:
        device = Device.objects.filter(code=device_code, hospital__code=hospital_code).first()
    hospital_id = device.hospital_id if device is not None else (
        Hospital.objects.filter(code=hospital_code).values_list("pk", flat=True).first() if hospital_code else None
    )
    codes = sorted({result["error_code"] for result in rejected})
    return RejectedMessage.objects.create(
        topic=_storable(topic[:512]), payload=_storable(payload[:MAX_STORED_PAYLOAD].decode("utf-8", "backslashreplace")),
        payload_bytes=len(payload), hospital_id=hospital_id, device=device,
        error_code=codes[0] if len(codes) == 1 else SEVERAL,
        error_detail=_storable(
            "; ".join(f"{r['event_id'] or '-'}: {r['error_code']} {r['error_detail']}" for r in rejected[:20])
        ),
        results=_storable(rejected),
    )
