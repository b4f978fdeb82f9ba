"""The named background jobs: what Celery beat runs on schedule and operators run by hand.

    manage.py run_job NAME            (manage.py run_job --list)
    inventory.tasks.run_named_job(NAME)

Each job covers every hospital, calls services only, and returns a JSON-able summary of what it
did. Every job is safe to run again at any moment — twice in a row, or twice at once after a
redelivered Celery message: alerts are upserts on their unique subject, an EXPIRE movement has a
unique idempotency key per unit, a HIS delivery is claimed by one relay at a time, and a
reconciliation run is unique per hospital and period.

The default schedule (editable in the admin, django-celery-beat) is created by migration
inventory 0006_default_schedule.
"""
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from devices.retention import purge_telemetry
from inventory.models import Hospital
from inventory.services import alerts, notifications, replenishment, stocktake
from inventory.services.his import deliver_due_charges
from inventory.services.reconciliation import run_nightly_reconciliation


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    run: Callable[[], dict]


def _hospitals() -> QuerySet[Hospital]:
    return Hospital.objects.order_by("pk")


def _each_hospital(scan: Callable[[Hospital], alerts.ScanResult]) -> dict:
    total, count = alerts.ScanResult(), 0
    for hospital in _hospitals():
        total += scan(hospital)
        count += 1
    return {"hospitals": count, **total.as_dict()}


def expiry_scan() -> dict:
    """Lock the units past their expiry date (EXPIRED alerts), then raise the near-expiry tiers."""
    today, now, actor = timezone.localdate(), timezone.now(), alerts.system_actor()
    locked, expired, near, count = 0, alerts.ScanResult(), alerts.ScanResult(), 0
    for hospital in _hospitals():
        lock = alerts.lock_expired_units(hospital=hospital, today=today, actor=actor, now=now)
        locked, expired = locked + lock.locked, expired + lock.alerts
        near += alerts.scan_expiry(hospital=hospital, today=today, now=now)
        count += 1
    return {"hospitals": count, "locked": locked, "expired": expired.as_dict(), "near_expiry": near.as_dict()}


def certificate_scan() -> dict:
    return alerts.scan_certificates().as_dict()


def return_overdue_scan() -> dict:
    now = timezone.now()
    return _each_hospital(lambda hospital: alerts.scan_overdue_takes(hospital=hospital, now=now))


def device_offline_scan() -> dict:
    now = timezone.now()
    return _each_hospital(lambda hospital: alerts.scan_devices(hospital=hospital, now=now))


def cabinet_tag_scan() -> dict:
    now = timezone.now()
    return _each_hospital(lambda hospital: alerts.scan_cabinet_tags(hospital=hospital, now=now))


def par_level_scan() -> dict:
    today, now = timezone.localdate(), timezone.now()
    return _each_hospital(lambda hospital: alerts.scan_par_levels(hospital=hospital, today=today, now=now))


def his_failing_scan() -> dict:
    now = timezone.now()
    return _each_hospital(lambda hospital: alerts.scan_his_deliveries(hospital=hospital, now=now))


def mqtt_bridge_scan() -> dict:
    return alerts.scan_mqtt_bridge(now=timezone.now()).as_dict()


def device_event_retention() -> dict:
    """Delete heartbeats and temperatures past SPD_DEVICE_TELEMETRY_RETENTION_DAYS; business events stay."""
    return purge_telemetry(now=timezone.now())


HIS_RELAY_BATCH = 100
HIS_RELAY_MAX_BATCHES = 10


def his_relay() -> dict:
    """Send the due HIS charges: batches while they come back full, at most HIS_RELAY_MAX_BATCHES."""
    total: dict[str, int] = {}
    for _ in range(HIS_RELAY_MAX_BATCHES):
        report = deliver_due_charges(limit=HIS_RELAY_BATCH)
        for name, value in report.as_dict().items():
            total[name] = total.get(name, 0) + value
        if report.claimed < HIS_RELAY_BATCH or report.released:
            break
    return total


def nightly_reconciliation() -> dict:
    """Queue, for every hospital, the 进销存 reconciliation of the day (1 + billing grace) days ago:
    by then the HIS has settled that day's use (SPD_RECON_BILLING_GRACE_DAYS, default 2)."""
    return run_nightly_reconciliation()


NOTIFY_BATCH = 50
NOTIFY_MAX_BATCHES = 10


def notification_relay() -> dict:
    """Send the due alert notifications (e-mail, group robots): batches while they come back full."""
    total: dict[str, int] = {}
    for _ in range(NOTIFY_MAX_BATCHES):
        report = notifications.deliver_due_notifications(limit=NOTIFY_BATCH)
        for name, value in report.as_dict().items():
            total[name] = total.get(name, 0) + value
        if report.claimed < NOTIFY_BATCH:
            break
    return total


def alert_digest() -> dict:
    """Queue each notification rule's daily digest of the open alerts below its threshold, then send."""
    queued = notifications.queue_digests(now=timezone.now()).as_dict()
    return {**queued, "sent": notification_relay()}


def replenishment_suggestions() -> dict:
    """Replenishment suggestions and proposed par levels for every department store and cabinet."""
    now, total, count = timezone.now(), replenishment.ReplenishmentResult(), 0
    for hospital in _hospitals():
        result = replenishment.replenish(hospital=hospital, now=now)
        total.suggestions += result.suggestions
        total.proposals += result.proposals
        count += 1
    return {"hospitals": count, **total.as_dict()}


def set_partner_scan() -> dict:
    """A set's component used without its partner on the same encounter (docs/processing.md)."""
    from inventory.services.processing import scan_set_partners

    now = timezone.now()
    return _each_hospital(lambda hospital: scan_set_partners(hospital=hospital, now=now))


def daily_stocktake_worklists() -> dict:
    """Build every department's daily dynamic check (动态盘点) for today (once per department and day)."""
    return stocktake.build_daily_worklists()


def review_scan() -> dict:
    """Watched items' unusual use and 耗占比 above the red lines, for the last complete month (docs/review.md)."""
    from inventory.services import review

    now = timezone.now()
    anomalies = _each_hospital(lambda hospital: review.scan_use_anomalies(hospital=hospital, now=now))
    red_lines = _each_hospital(lambda hospital: review.scan_red_lines(hospital=hospital, now=now))
    return {"use_anomaly": anomalies, "red_line": red_lines}


def vbp_scan() -> dict:
    """VBP contracts lagging, substitutes used, renewals due (docs/procurement.md)."""
    from inventory.services.vbp import scan_vbp

    return scan_vbp().as_dict()


JOBS: dict[str, Job] = {
    job.name: job for job in (
        Job("expiry_scan", "lock expired units; near-expiry and expired alerts (daily)", expiry_scan),
        Job("certificate_scan", "certificates expiring or expired (daily)", certificate_scan),
        Job("return_overdue_scan", "units taken and overdue for return, 定时回库 (every few minutes)",
            return_overdue_scan),
        Job("device_offline_scan", "devices silent longer than their threshold (every few minutes)",
            device_offline_scan),
        Job("cabinet_tag_scan", "unknown and misplaced tags seen by the cabinets", cabinet_tag_scan),
        Job("par_level_scan", "stock below the par level of a location", par_level_scan),
        Job("his_failing_scan", "charges failing to reach the HIS for too long", his_failing_scan),
        Job("his_relay", "send the due charges of the HIS outbox (continuously)", his_relay),
        Job("nightly_reconciliation", "进销存 reconciliation of the day settled by the HIS (02:00)", nightly_reconciliation),
        Job("mqtt_bridge_scan", "the MQTT cabinet bridge has stopped beating (every minute)", mqtt_bridge_scan),
        Job("device_event_retention", "delete old heartbeat and temperature events (daily)", device_event_retention),
        Job("notification_relay", "send the due alert e-mails and group-robot messages (every minute)",
            notification_relay),
        Job("alert_digest", "daily digest of the alerts below each notification rule's threshold (08:00)",
            alert_digest),
        Job("replenishment_suggestions", "replenishment suggestions and proposed par levels, 主动配送 (05:30)",
            replenishment_suggestions),
        Job("set_partner_scan", "set components used without their partner (hourly)", set_partner_scan),
        Job("daily_stocktake_worklists", "each department's daily dynamic check worklist (21:30)",
            daily_stocktake_worklists),
        Job("review_scan", "watched items' unusual use and 耗占比 red lines (daily 06:30)", review_scan),
        Job("vbp_scan", "VBP contracts lagging, substitutes used, renewals due (daily, 06:15)", vbp_scan),
    )
}


def run_job(name: str) -> dict:
    """Run the job called `name`; KeyError naming the valid jobs if there is none."""
    try:
        job = JOBS[name]
    except KeyError:
        raise KeyError(f"unknown job {name!r}; valid jobs: {', '.join(JOBS)}") from None
    return job.run()
