"""Dead letters (死信): what the MQTT bridge received and could not store, kept for operators.

An HTTP device is told at once by its response; an MQTT cabinet only by a message on its results
topic, which nobody may be reading. So every message that was refused in whole or in part —
unparseable, oversized, for an unknown or inactive device, on a wrong topic, or holding events the
ingest refused — leaves a RejectedMessage row, listed at /api/v1/devices/rejected-messages/.
"""
from devices.models import Device, RejectedMessage
from inventory.models import Hospital

MAX_STORED_PAYLOAD = 64 * 1024


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
        topic=topic[:512], payload=payload[:MAX_STORED_PAYLOAD].decode("utf-8", "backslashreplace"),
        payload_bytes=len(payload), hospital_id=hospital_id, device=device,
        error_code=codes[0] if len(codes) == 1 else "SEVERAL",
        error_detail="; ".join(f"{r['event_id'] or '-'}: {r['error_code']} {r['error_detail']}" for r in rejected[:20]),
        results=rejected,
    )
