"""Stored codes in the reader's language: alerts and the reasons of returns, scraps and refunds.

The alert scans store an English `message` (for logs and the API) and the facts in `details`; the
pages word each kind again from those facts. Orders and refunds store a reason code (DAMAGED,
NOT_USED…); people read its label (`reason_label`), never the code.
"""
import datetime

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from inventory.models import Alert, Certificate

Kind = Alert.Kind

# The reasons a person picks on the return (退货), scrap (报损), refund (退费) and release (解除隔离) forms.
RETURN_REASONS = (
    ("QUALITY", gettext_lazy("Quality problem")),
    ("RECALL", gettext_lazy("Recall")),
    ("NEAR_EXPIRY", gettext_lazy("Near expiry")),
    ("EXPIRED", gettext_lazy("Expired")),
    ("WRONG_DELIVERY", gettext_lazy("Delivered in error")),
    ("OVERSTOCK", gettext_lazy("Overstock")),
)
SCRAP_REASONS = (
    ("DAMAGED", gettext_lazy("Damaged")),
    ("CONTAMINATED", gettext_lazy("Contaminated / packaging opened")),
    ("EXPIRED", gettext_lazy("Expired")),
    ("LOST", gettext_lazy("Lost")),
)
REFUND_REASONS = (
    ("NOT_USED", gettext_lazy("Not used on the patient")),
    ("WRONG_ENCOUNTER", gettext_lazy("Recorded against the wrong encounter")),
    ("WRONG_ITEM", gettext_lazy("Wrong item recorded")),
    ("OPENED_NOT_USED", gettext_lazy("Opened but not used (to quarantine)")),
)
RELEASE_REASONS = (
    ("QC_PASSED", gettext_lazy("Quality check passed")),
    ("DEFECT_NOT_CONFIRMED", gettext_lazy("Suspected defect not confirmed")),
    ("RECALL_LIFTED", gettext_lazy("Recall lifted")),
    ("REFUND_CHECKED", gettext_lazy("Refunded item checked and intact")),
)
_REASON_LABELS = dict((*RETURN_REASONS, *SCRAP_REASONS, *REFUND_REASONS, *RELEASE_REASONS))


def reason_label(code: str | None) -> str:
    """The label of a stored reason code in the active language (the code itself if unknown, e.g. one
    given through the API)."""
    if not code:
        return ""
    label = _REASON_LABELS.get(code)
    return str(label) if label is not None else code


def describe_alert(alert: Alert) -> str:
    """One sentence saying what the alert is about, in the active language (the stored message if
    the kind or its facts are unknown)."""
    wording = _WORDING.get(alert.kind)
    if wording is None:
        return alert.message
    try:
        return wording(alert, alert.details or {})
    except (KeyError, TypeError, ValueError):
        return alert.message


def _when(value: str | None) -> str:
    if not value:
        return "?"
    moment = datetime.datetime.fromisoformat(value)
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return f"{moment:%Y-%m-%d %H:%M}"


def _product(alert: Alert) -> str:
    product = alert.product or (alert.unit.product if alert.unit else None)
    return product.name if product else "?"


def _near_expiry(alert: Alert, details: dict) -> str:
    if alert.subject_key.startswith("unit:"):
        return _("%(product)s SN %(serial)s expires on %(expiry)s: %(days)s days left") % {
            "product": _product(alert), "serial": details["serial"], "expiry": details["expiry"],
            "days": details["days_left"],
        }
    return _("%(product)s lot %(lot)s (%(quantity)s) expires on %(expiry)s: %(days)s days left") % {
        "product": _product(alert), "lot": details["lot"], "quantity": details["quantity"],
        "expiry": details["expiry"], "days": details["days_left"],
    }


def _expired(alert: Alert, details: dict) -> str:
    if alert.subject_key.startswith("unit:"):
        return _("%(product)s SN %(serial)s expired on %(expiry)s and is locked: return it to the supplier or "
                 "scrap it") % {"product": _product(alert), "serial": details["serial"], "expiry": details["expiry"]}
    return _("%(product)s lot %(lot)s (%(quantity)s) expired on %(expiry)s and is locked") % {
        "product": _product(alert), "lot": details["lot"], "quantity": details["quantity"],
        "expiry": details["expiry"],
    }


def _certificate(alert: Alert, details: dict) -> str:
    values = {
        "kind": Certificate.Kind(details["kind"]).label, "number": details["number"], "holder": details["holder"],
        "date": details["valid_to"], "days": details.get("days_left"),
    }
    if alert.kind == Kind.CERTIFICATE_EXPIRED:
        return _("%(kind)s %(number)s of %(holder)s expired on %(date)s: its deliveries are refused at acceptance") % values
    return _("%(kind)s %(number)s of %(holder)s expires on %(date)s: %(days)s days left") % values


def _return_overdue(alert: Alert, details: dict) -> str:
    return _("%(product)s SN %(serial)s taken at %(at)s by %(by)s is neither used nor returned after %(hours)s h") % {
        "product": _product(alert), "serial": details["serial"], "at": _when(details["taken_at"]),
        "by": details.get("taken_by") or "?", "hours": details["deadline_hours"],
    }


def _device_offline(alert: Alert, details: dict) -> str:
    name = alert.device.name if alert.device else ""
    if details.get("last_seen"):
        return _("Device %(code)s %(name)s is offline (last seen %(at)s)") % {
            "code": details["code"], "name": name, "at": _when(details["last_seen"])}
    return _("Device %(code)s %(name)s is offline (never seen)") % {"code": details["code"], "name": name}


def _tag(alert: Alert, details: dict) -> str:
    cabinet = alert.location.name if alert.location else "?"
    if alert.kind == Kind.UNKNOWN_TAG:
        return _("Cabinet %(cabinet)s sees tag %(epc)s, bound to no unit") % {"cabinet": cabinet, "epc": details["epc"]}
    return _("Cabinet %(cabinet)s sees tag %(epc)s of a unit that belongs elsewhere") % {
        "cabinet": cabinet, "epc": details["epc"]}


def _below_par(alert: Alert, details: dict) -> str:
    return _("%(location)s holds %(on_hand)s of %(product)s, below its par level %(minimum)s: replenish %(wanted)s") % {
        "location": alert.location.name if alert.location else "?", "on_hand": details["on_hand"],
        "product": _product(alert), "minimum": details["minimum"], "wanted": details["replenish"],
    }


def _his_failing(alert: Alert, details: dict) -> str:
    return _("%(count)s charges have not reached the HIS (failing since %(since)s; %(gave_up)s given up)") % {
        "count": details["count"], "since": _when(details["since"]), "gave_up": details["gave_up"],
    }


def _clock_skew(alert: Alert, details: dict) -> str:
    name = alert.device.name if alert.device else ""
    if details.get("ahead_seconds") is not None:
        return _("Device %(code)s %(name)s: its clock is %(seconds)s s ahead of the server's; set its clock (NTP)") % {
            "code": details["code"], "name": name, "seconds": details["ahead_seconds"]}
    return _("Device %(code)s %(name)s sends dates outside the accepted range, which are refused; set its clock "
             "(NTP)") % {"code": details["code"], "name": name}


def _read_suspect(alert: Alert, details: dict) -> str:
    return _("Cabinet %(cabinet)s read %(seen)s of the %(expected)s tagged units it should hold: reader fault? "
             "Nothing was taken; the cabinet is asked to read again") % {
        "cabinet": alert.location.name if alert.location else "?", "seen": details["seen_expected"],
        "expected": details["expected"]}


def _stale_close(alert: Alert, details: dict) -> str:
    return _("Cabinet %(cabinet)s: a door close of %(at)s arrived after a later one and was not applied") % {
        "cabinet": alert.location.name if alert.location else "?", "at": _when(details["closed_at"])}


def _urgent_requisition(alert: Alert, details: dict) -> str:
    return _("Urgent requisition %(number)s for %(location)s: %(lines)s lines to pick first") % {
        "number": details["number"], "location": alert.location.name if alert.location else "?",
        "lines": details["lines"]}


def _recall_followed(alert: Alert, details: dict) -> str:
    if "received" in details:  # more stock arrived by an alliance transfer under a recall already open here
        return _("Recall R%(recall)s: %(received)s more received by alliance transfer %(transfer)s from %(hospital)s, "
                 "under its recall R%(origin)s; now %(stock)s items in stock to quarantine or return, %(uses)s uses "
                 "on patients to follow up") % {
            "recall": details["recall"], "received": details["received"], "transfer": details["transfer"],
            "hospital": details["origin_hospital"], "origin": details["origin"], "stock": details["stock"],
            "uses": details["uses"]}
    return _("Recall R%(recall)s opened here for the alliance by %(who)s of %(hospital)s, following its recall "
             "R%(origin)s: %(stock)s items in stock to quarantine or return, %(uses)s uses on patients to follow "
             "up") % {"recall": details["recall"], "who": details["opened_by"], "hospital": details["origin_hospital"],
                      "origin": details["origin"], "stock": details["stock"], "uses": details["uses"]}


_WORDING = {
    Kind.NEAR_EXPIRY: _near_expiry,
    Kind.EXPIRED: _expired,
    Kind.CERTIFICATE_EXPIRING: _certificate,
    Kind.CERTIFICATE_EXPIRED: _certificate,
    Kind.RETURN_OVERDUE: _return_overdue,
    Kind.DEVICE_OFFLINE: _device_offline,
    Kind.UNKNOWN_TAG: _tag,
    Kind.MISPLACED_TAG: _tag,
    Kind.BELOW_PAR: _below_par,
    Kind.HIS_DELIVERY_FAILING: _his_failing,
    Kind.DEVICE_CLOCK_SKEW: _clock_skew,
    Kind.CABINET_READ_SUSPECT: _read_suspect,
    Kind.CABINET_STALE_CLOSE: _stale_close,
    Kind.URGENT_REQUISITION: _urgent_requisition,
    Kind.RECALL_FOLLOWED: _recall_followed,
}
