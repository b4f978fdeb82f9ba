"""Alerts (预警): raised by set-based scans, de-duplicated by subject, acknowledged and resolved by people.

One unresolved alert per (hospital, kind, subject_key) — the database enforces it with a partial
UNIQUE constraint. Raising an alert that is already open bumps `last_seen_at` and `occurrences`,
refreshes its message and details, and may escalate (never lower) its severity; an escalation
re-opens an acknowledged alert, since what was acknowledged is no longer the whole story.

Each scan computes the full set of subjects its condition holds for, in one or a few queries, and
hands it to `sync_alerts`, which in one transaction creates the missing alerts, bumps the open ones
and resolves (automatically, `resolved_by` empty) the open ones whose condition has gone away. A
person may resolve an alert by hand with a note; if the condition still holds, the next scan raises
a new alert.

A new alert, and one escalated to a higher severity, also gets its notifications (e-mail, 企业微信 /
钉钉 group robots) written in the same transaction and sent after it commits, outside it: see
inventory/services/notifications.py. A failing channel never touches the alert.

Scans and their subjects:
    scan_expiry            NEAR_EXPIRY   unit:<id>, lot:<lot balance id>   tiered (SPD_EXPIRY_TIERS)
    lock_expired_units     EXPIRED       unit:<id>, lot:<lot balance id>   units moved to EXPIRED
    scan_certificates      CERTIFICATE_EXPIRING / _EXPIRED   certificate:<id>, per concerned hospital
    scan_overdue_takes     RETURN_OVERDUE    unit:<id>
    scan_devices           DEVICE_OFFLINE    device:<id>
    scan_cabinet_tags      UNKNOWN_TAG / MISPLACED_TAG   tag:<epc>
    scan_par_levels        BELOW_PAR     par:<location id>:<product id>
    scan_his_deliveries    HIS_DELIVERY_FAILING   his-outbox (one alert per hospital, with the count)
    scan_mqtt_bridge       MQTT_BRIDGE_DOWN   mqtt-bridge (each hospital with active MQTT cabinets)

Raised as events arrive (devices/services.py, services/cabinets.py), not by a scan:
    report_device_clock    DEVICE_CLOCK_SKEW      device:<id>     a time beyond the accepted skew or window
                                                  (resolved by scan_devices once the clock is right)
    report_cabinet_read    CABINET_READ_SUSPECT   cabinet:<location id>   a close read held as suspect
    report_stale_close     CABINET_STALE_CLOSE    cabinet:<location id>   a close older than the last applied

Settings (read at each use, with these defaults):
    SPD_EXPIRY_TIERS               near-expiry tiers in days, (90, 60, 30); the narrowest is CRITICAL,
                                   the next WARNING, wider ones INFO
    SPD_CERTIFICATE_WARN_DAYS      warn this many days before a certificate expires (30)
    SPD_HIS_FAILING_ALERT_MINUTES  alert when a charge has been failing to reach the HIS this long (30)
    SPD_MQTT_BRIDGE_DOWN_AFTER_SECONDS  alert when no MQTT bridge has beaten, connected, this long (120)

The nightly expiry lock is done by the system actor: an inactive user named "system", with no
hospital and no usable password, created on first use (`system_actor`), so that every movement
still names who made it.
"""
import datetime
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Count, F, IntegerField, Max, Min, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from devices.models import BridgeHeartbeat, Device, DeviceEvent
from inventory.actors import Actor
from inventory.date_window import max_clock_ahead, readable
from inventory.errors import Refusal, Refused
from inventory.models import (
    UNIT_TRANSITIONS,
    Alert,
    CabinetSession,
    Certificate,
    ChargeDelivery,
    Hospital,
    LotBalance,
    Movement,
    ParLevel,
    Product,
    SupplyAgreement,
    Unit,
    UnitStatus,
    User,
)
from inventory.services import notifications
from inventory.services.cabinets import APPLIED, deadline_hours, overdue_takes
from inventory.services.his import failing_deliveries
from inventory.services.ledger import move_unit
from inventory.validators import refuse_personal_ids

logger = logging.getLogger(__name__)
Kind, Severity, Status = Alert.Kind, Alert.Severity, Alert.Status

SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
SUBJECT_FIELDS = ("unit", "product", "location", "certificate", "device")
AUTO_RESOLVE_NOTE = "condition cleared"
SYSTEM_USERNAME = "system"
# Movement.DocumentType has no entry for a system lock yet: the EXPIRE movement names its EXPIRED alert.
EXPIRY_LOCK_DOCUMENT = Movement.DocumentType.ALERT
# Units still in the hospital's hands, whose expiry matters.
HELD = (UnitStatus.ACCEPTED, UnitStatus.IN_STOCK, UnitStatus.IN_CABINET, UnitStatus.TAKEN)
# Units counted as on hand against a par level.
ON_HAND = (UnitStatus.IN_STOCK, UnitStatus.IN_CABINET)
# Licences a holder renews (one in force at a time); a later one of the same holder and kind replaces it.
RENEWED_KINDS = (
    Certificate.Kind.BUSINESS_LICENCE, Certificate.Kind.DISTRIBUTION_LICENCE, Certificate.Kind.PRODUCTION_LICENCE,
    Certificate.Kind.AUTHORISATION,
)
_CHUNK = 500


# --- settings -------------------------------------------------------------------------------------


def expiry_tiers() -> tuple[int, ...]:
    """The near-expiry tiers in days, widest first, e.g. (90, 60, 30)."""
    value = getattr(settings, "SPD_EXPIRY_TIERS", None) or (90, 60, 30)
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    return tuple(sorted({int(days) for days in value}, reverse=True))


def certificate_warn_days() -> int:
    return int(getattr(settings, "SPD_CERTIFICATE_WARN_DAYS", None) or 30)


def his_failing_alert_minutes() -> int:
    return int(getattr(settings, "SPD_HIS_FAILING_ALERT_MINUTES", None) or 30)


def system_actor() -> Actor:
    """Who the system's own changes (the nightly expiry lock) are attributed to.

    An inactive user "system" with no hospital and an unusable password: it can never sign in, and
    a person's account can never be taken for it (refused if the name is already a person's).
    """
    user, _ = User.objects.get_or_create(
        username=SYSTEM_USERNAME,
        defaults={"is_active": False, "first_name": "SPD", "last_name": "system", "password": make_password(None)},
    )
    if user.is_active or user.hospital_id is not None or user.has_usable_password():
        raise ImproperlyConfigured(f"The username {SYSTEM_USERNAME!r} belongs to a person; it is reserved for SPD.")
    return Actor(user=user)


# --- raising and resolving ------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertSpec:
    """One alert a scan wants open: its subject, severity, text and the objects it is about."""

    hospital_id: int
    subject_key: str
    severity: str
    message: str
    details: dict = field(default_factory=dict)
    subject: dict = field(default_factory=dict)  # unit_id, product_id, location_id, certificate_id, device_id


@dataclass
class ScanResult:
    """What a scan did to the alerts: created, bumped (raised again), resolved automatically."""

    raised: int = 0
    updated: int = 0
    resolved: int = 0

    def __add__(self, other: "ScanResult") -> "ScanResult":
        return ScanResult(self.raised + other.raised, self.updated + other.updated, self.resolved + other.resolved)

    def as_dict(self) -> dict:
        return asdict(self)


def sync_alerts(
    *, kind: str, specs: Iterable[AlertSpec], scope: Q, now: datetime.datetime | None = None,
    resolve_missing: bool = True,
) -> ScanResult:
    """Make the open alerts of `kind` within `scope` (a filter on Alert) be exactly `specs`.

    Missing ones are created, open ones bumped (escalated if the new severity is higher), and —
    with `resolve_missing` — open ones within `scope` not in `specs` are resolved automatically.
    All in one transaction, locking the open alerts concerned; if a concurrent scan created one of
    the same subject meanwhile (the partial UNIQUE constraint says so), it is read again and bumped.
    """
    now = now or timezone.now()
    wanted = {(spec.hospital_id, spec.subject_key): spec for spec in specs}
    attempts_left = 3
    while True:
        attempts_left -= 1
        try:
            with transaction.atomic():
                return _sync_once(kind, wanted, scope, now, resolve_missing)
        except IntegrityError:
            if not attempts_left:
                raise


def _sync_once(
    kind: str, wanted: dict[tuple[int, str], AlertSpec], scope: Q, now: datetime.datetime, resolve_missing: bool
) -> ScanResult:
    open_alerts = Alert.objects.select_for_update().filter(kind=kind).exclude(status=Status.RESOLVED).order_by("pk")
    in_scope = {(a.hospital_id, a.subject_key): a for a in open_alerts.filter(scope)} if resolve_missing else {}
    existing = dict(in_scope)
    # A subject may already be open outside the scope (e.g. a tag last seen in another cabinet): bump that one.
    missing = [key for key in wanted if key not in existing]
    for start in range(0, len(missing), _CHUNK):
        chunk = missing[start:start + _CHUNK]
        for alert in open_alerts.filter(hospital_id__in={h for h, _ in chunk}, subject_key__in={k for _, k in chunk}):
            if (key := (alert.hospital_id, alert.subject_key)) in wanted:
                existing[key] = alert
    created = [
        Alert(
            hospital_id=spec.hospital_id, kind=kind, subject_key=spec.subject_key, severity=spec.severity,
            message=spec.message[:500], details=spec.details, first_raised_at=now, last_seen_at=now,
            **_subject_ids(spec.subject),
        )
        for key, spec in wanted.items() if key not in existing
    ]
    bumped, escalated = [], []
    for key, alert in existing.items():
        if (spec := wanted.get(key)) is None:
            continue
        if SEVERITY_RANK[spec.severity] > SEVERITY_RANK[alert.severity]:
            alert.severity, alert.status = spec.severity, Status.OPEN
            escalated.append(alert)
        alert.message, alert.details, alert.last_seen_at = spec.message[:500], spec.details, now
        alert.occurrences += 1
        for name, value in _subject_ids(spec.subject).items():
            setattr(alert, name, value)
        bumped.append(alert)
    gone = [alert.pk for key, alert in in_scope.items() if key not in wanted]
    Alert.objects.bulk_create(created, batch_size=_CHUNK)
    Alert.objects.bulk_update(
        bumped, ["severity", "status", "message", "details", "last_seen_at", "occurrences",
                 *(f"{name}_id" for name in SUBJECT_FIELDS)],
        batch_size=_CHUNK,
    )
    _queue_notifications(created + escalated, now)
    return ScanResult(len(created), len(bumped), _resolve_automatically(gone, now))


def _queue_notifications(alerts: list[Alert], now: datetime.datetime) -> None:
    """The messages of new and escalated alerts join the alerts' transaction (an outbox), sent after
    it commits. Writing them may not cost the alert: an error here is logged and the alert stands."""
    if not alerts:
        return
    try:
        notifications.queue_alert_notifications(alerts=alerts, now=now)
    except DatabaseError:
        logger.exception("alert notifications not queued for %s alerts", len(alerts))


def _subject_ids(subject: dict) -> dict:
    return {f"{name}_id": subject.get(f"{name}_id") for name in SUBJECT_FIELDS}


def _resolve_automatically(pks: list[int], now: datetime.datetime) -> int:
    resolved = 0
    for start in range(0, len(pks), _CHUNK):
        resolved += Alert.objects.filter(pk__in=pks[start:start + _CHUNK]).exclude(status=Status.RESOLVED).update(
            status=Status.RESOLVED, resolved_at=now, resolved_by=None, resolve_note=AUTO_RESOLVE_NOTE
        )
    return resolved


def raise_alert(
    *, hospital: Hospital, kind: str, subject_key: str, severity: str, message: str, details: dict | None = None,
    now: datetime.datetime | None = None, **subject_fks: object,
) -> Alert:
    """Raise one alert, or bump the open one of the same subject; returns the open alert.

    `subject_fks` name what the alert is about: unit, product, location, certificate, device (an
    object or its id, e.g. `unit=unit` or `unit_id=7`).
    """
    subject = {}
    for name, value in subject_fks.items():
        base = name.removesuffix("_id")
        if base not in SUBJECT_FIELDS:
            raise TypeError(f"raise_alert() got an unexpected subject {name!r}")
        subject[f"{base}_id"] = value if name.endswith("_id") or value is None else value.pk
    spec = AlertSpec(hospital.pk, subject_key, severity, message, details or {}, subject)
    sync_alerts(kind=kind, specs=[spec], scope=Q(hospital=hospital), now=now, resolve_missing=False)
    return Alert.objects.exclude(status=Status.RESOLVED).get(hospital=hospital, kind=kind, subject_key=subject_key)


def auto_resolve(
    *, hospital: Hospital, kind: str, subject_keys: Iterable[str], now: datetime.datetime | None = None
) -> int:
    """Resolve the open alerts of these subjects because their condition went away (no person, no note)."""
    keys = list(subject_keys)
    pks = [
        pk for start in range(0, len(keys), _CHUNK)
        for pk in Alert.objects.filter(hospital=hospital, kind=kind, subject_key__in=keys[start:start + _CHUNK])
        .exclude(status=Status.RESOLVED).values_list("pk", flat=True)
    ]
    return _resolve_automatically(pks, now or timezone.now())


def acknowledge(*, alert: Alert, user: User, note: str = "", now: datetime.datetime | None = None) -> Alert:
    """Record that `user` has seen the alert and is on it. Acknowledging it again changes nothing."""
    note = _note(note)
    with transaction.atomic():
        locked = _lock_for(user, alert)
        if locked.status == Status.ACKNOWLEDGED:
            return locked
        locked.status, locked.acknowledged_at, locked.acknowledged_by = Status.ACKNOWLEDGED, now or timezone.now(), user
        locked.acknowledge_note = note
        locked.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "acknowledge_note"])
        return locked


def resolve(*, alert: Alert, user: User, note: str, now: datetime.datetime | None = None) -> Alert:
    """Close the alert by hand, saying why (the note is required). A condition that still holds is
    raised again, as a new alert, by the next scan."""
    note = _note(note)
    if not note:
        raise Refused(Refusal.NOTE_REQUIRED)
    with transaction.atomic():
        locked = _lock_for(user, alert)
        locked.status, locked.resolved_at, locked.resolved_by = Status.RESOLVED, now or timezone.now(), user
        locked.resolve_note = note
        locked.save(update_fields=["status", "resolved_at", "resolved_by", "resolve_note"])
        return locked


def _note(note: str | None) -> str:
    note = (note or "").strip()
    if len(note) > 500:
        raise Refused(Refusal.NOTE_TOO_LONG, limit=500)
    refuse_personal_ids(note=note)
    return note


def _lock_for(user: User, alert: Alert) -> Alert:
    locked = Alert.objects.select_for_update().get(pk=alert.pk)
    if not (user.is_superuser and user.hospital_id is None) and locked.hospital_id != user.hospital_id:
        raise Refused(Refusal.NOT_FOUND, what="alert")
    if locked.status == Status.RESOLVED:
        raise Refused(Refusal.ALERT_ALREADY_RESOLVED, alert=locked.pk)
    return locked


# --- expiry ---------------------------------------------------------------------------------------


def tier_of(days_left: int, tiers: tuple[int, ...]) -> tuple[int, str] | None:
    """The narrowest tier `days_left` falls in and its severity, or None if it is beyond the widest."""
    narrowest_first = sorted(tiers)
    for index, tier in enumerate(narrowest_first):
        if days_left <= tier:
            return tier, ((Severity.CRITICAL, Severity.WARNING)[index] if index < 2 else Severity.INFO)
    return None


def scan_expiry(
    *, hospital: Hospital, today: datetime.date | None = None, tiers: Iterable[int] | None = None,
    now: datetime.datetime | None = None,
) -> ScanResult:
    """NEAR_EXPIRY alerts for the units held and the lot balances on hand that expire within a tier.

    Severity rises as the tier narrows (e.g. 90 days INFO, 60 WARNING, 30 CRITICAL). Units and lots
    that have expired, left the hospital or been used are resolved here (the EXPIRED alert, raised
    by `lock_expired_units`, takes over for the expired ones).
    """
    today = today or timezone.localdate()
    tiers = tuple(sorted({int(days) for days in tiers}, reverse=True)) if tiers else expiry_tiers()
    horizon = today + datetime.timedelta(days=tiers[0])
    specs = []
    units = Unit.objects.filter(hospital=hospital, status__in=HELD, expiry__gte=today, expiry__lte=horizon)
    for unit in units.values("pk", "serial", "lot", "expiry", "status", "product_id", "product__name", "location_id"):
        days_left = (unit["expiry"] - today).days
        tier, severity = tier_of(days_left, tiers)
        specs.append(AlertSpec(
            hospital.pk, f"unit:{unit['pk']}", severity,
            f"{unit['product__name']} SN {unit['serial']} expires on {unit['expiry']}: {days_left} days left",
            {"expiry": unit["expiry"].isoformat(), "days_left": days_left, "tier": tier, "serial": unit["serial"],
             "lot": unit["lot"], "status": unit["status"]},
            {"unit_id": unit["pk"], "product_id": unit["product_id"], "location_id": unit["location_id"]},
        ))
    lots = LotBalance.objects.filter(hospital=hospital, quantity__gt=0, expiry__gte=today, expiry__lte=horizon)
    for lot in lots.values("pk", "lot", "expiry", "quantity", "product_id", "product__name", "location_id"):
        days_left = (lot["expiry"] - today).days
        tier, severity = tier_of(days_left, tiers)
        specs.append(AlertSpec(
            hospital.pk, f"lot:{lot['pk']}", severity,
            f"{lot['product__name']} lot {lot['lot']} ({lot['quantity']}) expires on {lot['expiry']}: "
            f"{days_left} days left",
            {"expiry": lot["expiry"].isoformat(), "days_left": days_left, "tier": tier, "lot": lot["lot"],
             "quantity": lot["quantity"]},
            {"product_id": lot["product_id"], "location_id": lot["location_id"]},
        ))
    return sync_alerts(kind=Kind.NEAR_EXPIRY, specs=specs, scope=Q(hospital=hospital), now=now)


@dataclass
class ExpiryLockResult:
    locked: int
    alerts: ScanResult

    def as_dict(self) -> dict:
        return {"locked": self.locked, **self.alerts.as_dict()}


def lock_expired_units(
    *, hospital: Hospital, today: datetime.date | None = None, actor: Actor | None = None,
    now: datetime.datetime | None = None,
) -> ExpiryLockResult:
    """Lock every held unit past its expiry date (→ EXPIRED, one EXPIRE movement each) and keep one
    CRITICAL EXPIRED alert open per expired unit and per expired lot balance still on hand.

    Units whose status cannot go to EXPIRED (see UNIT_TRANSITIONS: e.g. TAKEN) keep their status but
    are alerted; every service refuses to issue, take or use them by their date alone. An EXPIRED
    alert is resolved once its unit is returned or scrapped (or its lot balance is empty).
    """
    today = today or timezone.localdate()
    now = now or timezone.now()
    actor = actor or system_actor()
    lockable = [status for status in HELD if UnitStatus.EXPIRED in UNIT_TRANSITIONS[status]]
    with transaction.atomic():
        to_lock = list(
            Unit.objects.select_for_update(of=("self",)).filter(hospital=hospital, status__in=lockable, expiry__lt=today)
            .order_by("pk")
        )
        alerts = sync_alerts(kind=Kind.EXPIRED, specs=_expired_specs(hospital, today), scope=Q(hospital=hospital),
                             now=now)
        alert_ids = dict(
            Alert.objects.filter(hospital=hospital, kind=Kind.EXPIRED).exclude(status=Status.RESOLVED)
            .values_list("subject_key", "pk")
        )
        for unit in to_lock:
            move_unit(
                unit=unit, kind=Movement.Kind.EXPIRE, to_status=UnitStatus.EXPIRED, to_location=unit.location,
                actor=actor, idempotency_key=f"{hospital.pk}:expire:{unit.pk}",
                document=(EXPIRY_LOCK_DOCUMENT, alert_ids[f"unit:{unit.pk}"]), occurred_at=now,
                note=f"expired on {unit.expiry}: locked",
            )
    return ExpiryLockResult(len(to_lock), alerts)


def _expired_specs(hospital: Hospital, today: datetime.date) -> list[AlertSpec]:
    specs = []
    units = Unit.objects.filter(hospital=hospital).filter(
        Q(status=UnitStatus.EXPIRED) | Q(status__in=HELD, expiry__lt=today)
    )
    for unit in units.values("pk", "serial", "lot", "expiry", "status", "product_id", "product__name", "location_id"):
        specs.append(AlertSpec(
            hospital.pk, f"unit:{unit['pk']}", Severity.CRITICAL,
            f"{unit['product__name']} SN {unit['serial']} expired on {unit['expiry']} and is locked: "
            f"return it to the supplier or scrap it",
            {"expiry": unit["expiry"].isoformat() if unit["expiry"] else None, "serial": unit["serial"],
             "lot": unit["lot"], "status": unit["status"]},
            {"unit_id": unit["pk"], "product_id": unit["product_id"], "location_id": unit["location_id"]},
        ))
    lots = LotBalance.objects.filter(hospital=hospital, quantity__gt=0, expiry__lt=today)
    for lot in lots.values("pk", "lot", "expiry", "quantity", "product_id", "product__name", "location_id"):
        specs.append(AlertSpec(
            hospital.pk, f"lot:{lot['pk']}", Severity.CRITICAL,
            f"{lot['product__name']} lot {lot['lot']} ({lot['quantity']}) expired on {lot['expiry']} and is locked",
            {"expiry": lot["expiry"].isoformat(), "lot": lot["lot"], "quantity": lot["quantity"]},
            {"product_id": lot["product_id"], "location_id": lot["location_id"]},
        ))
    return specs


# --- certificates ---------------------------------------------------------------------------------


def scan_certificates(
    *, today: datetime.date | None = None, warn_days: int | None = None, now: datetime.datetime | None = None
) -> ScanResult:
    """CERTIFICATE_EXPIRING (within `warn_days`) and CERTIFICATE_EXPIRED alerts, for every hospital
    the certificate concerns.

    Certificates are shared by the hospitals of an instance. A supplier's certificate concerns the
    hospitals with an active supply agreement with it; a registration certificate, the hospitals with
    an active product registered under it; another manufacturer's certificate, the hospitals with an
    active product of that manufacturer. A licence renewed in time (a later one of the same holder
    and kind, in force from the day after at the latest) raises nothing.
    """
    today = today or timezone.localdate()
    warn_days = certificate_warn_days() if warn_days is None else warn_days
    candidates = list(Certificate.objects.filter(valid_to__lte=today + datetime.timedelta(days=warn_days)).values(
        "pk", "kind", "number", "valid_to", "supplier_id", "manufacturer_id", "supplier__name", "manufacturer__name",
    ))
    renewed = _renewed(candidates)
    candidates = [c for c in candidates if c["pk"] not in renewed]
    supplier_ids = {c["supplier_id"] for c in candidates if c["supplier_id"]}
    by_supplier: dict[int, set[int]] = {}
    for hospital_id, supplier_id in SupplyAgreement.objects.filter(
        is_active=True, valid_to__gte=today, supplier_id__in=supplier_ids
    ).values_list("hospital_id", "supplier_id").distinct():
        by_supplier.setdefault(supplier_id, set()).add(hospital_id)
    registrations = {c["pk"] for c in candidates if c["kind"] == Certificate.Kind.REGISTRATION}
    manufacturer_ids = {c["manufacturer_id"] for c in candidates if c["manufacturer_id"]}
    by_registration: dict[int, dict[int, list[int]]] = {}
    by_manufacturer: dict[int, set[int]] = {}
    for pk, hospital_id, certificate_id, manufacturer_id in Product.objects.filter(is_active=True).filter(
        Q(registration_certificate_id__in=registrations) | Q(manufacturer_id__in=manufacturer_ids)
    ).values_list("pk", "hospital_id", "registration_certificate_id", "manufacturer_id").order_by("pk"):
        if certificate_id in registrations:
            by_registration.setdefault(certificate_id, {}).setdefault(hospital_id, []).append(pk)
        by_manufacturer.setdefault(manufacturer_id, set()).add(hospital_id)

    expiring, expired = [], []
    for certificate in candidates:
        if certificate["kind"] == Certificate.Kind.REGISTRATION:
            concerned = by_registration.get(certificate["pk"], {})
        elif certificate["supplier_id"]:
            concerned = {hospital_id: [] for hospital_id in by_supplier.get(certificate["supplier_id"], ())}
        else:
            concerned = {hospital_id: [] for hospital_id in by_manufacturer.get(certificate["manufacturer_id"], ())}
        for hospital_id, products in concerned.items():
            spec = _certificate_spec(certificate, hospital_id, products, today)
            (expired if certificate["valid_to"] < today else expiring).append(spec)
    scope = Q()  # every hospital: a certificate that concerns a hospital no longer is resolved there too
    return (
        sync_alerts(kind=Kind.CERTIFICATE_EXPIRING, specs=expiring, scope=scope, now=now)
        + sync_alerts(kind=Kind.CERTIFICATE_EXPIRED, specs=expired, scope=scope, now=now)
    )


def _renewed(candidates: list[dict]) -> set[int]:
    """Candidates replaced in time by a later licence of the same holder and kind (one query)."""
    renewable = [c for c in candidates if c["kind"] in RENEWED_KINDS]
    if not renewable:
        return set()
    later = list(Certificate.objects.filter(
        kind__in={c["kind"] for c in renewable},
        valid_to__gt=min(c["valid_to"] for c in renewable),
    ).filter(
        Q(supplier_id__in={c["supplier_id"] for c in renewable if c["supplier_id"]})
        | Q(manufacturer_id__in={c["manufacturer_id"] for c in renewable if c["manufacturer_id"]})
    ).values("kind", "supplier_id", "manufacturer_id", "valid_from", "valid_to"))
    return {
        c["pk"] for c in renewable
        if any(
            (n["kind"], n["supplier_id"], n["manufacturer_id"]) == (c["kind"], c["supplier_id"], c["manufacturer_id"])
            and n["valid_to"] > c["valid_to"] and n["valid_from"] <= c["valid_to"] + datetime.timedelta(days=1)
            for n in later
        )
    }


def _certificate_spec(certificate: dict, hospital_id: int, products: list[int], today: datetime.date) -> AlertSpec:
    label = Certificate.Kind(certificate["kind"]).label
    holder = certificate["supplier__name"] or certificate["manufacturer__name"]
    days_left = (certificate["valid_to"] - today).days
    if days_left < 0:
        severity = Severity.CRITICAL
        message = (f"{label} {certificate['number']} of {holder} expired on {certificate['valid_to']}: "
                   f"its deliveries are refused at acceptance")
    else:
        severity = Severity.WARNING
        message = f"{label} {certificate['number']} of {holder} expires on {certificate['valid_to']}: {days_left} days left"
    return AlertSpec(
        hospital_id, f"certificate:{certificate['pk']}", severity, message,
        {"kind": certificate["kind"], "number": certificate["number"], "holder": holder,
         "supplier": certificate["supplier_id"], "manufacturer": certificate["manufacturer_id"],
         "valid_to": certificate["valid_to"].isoformat(), "days_left": days_left, "products": products},
        {"certificate_id": certificate["pk"], "product_id": products[0] if products else None},
    )


# --- cabinets and devices -------------------------------------------------------------------------


def scan_overdue_takes(*, hospital: Hospital, now: datetime.datetime | None = None) -> ScanResult:
    """RETURN_OVERDUE (定时回库预警) for each unit taken and neither used nor put back by its deadline;
    CRITICAL once it is overdue by a second deadline. Resolved when the unit is used or put back."""
    now = now or timezone.now()
    overdue = overdue_takes(hospital, now)
    taken_by = {}
    for unit_id, username, device_code in Movement.objects.filter(
        unit_id__in=[unit.pk for unit in overdue], kind=Movement.Kind.CABINET_TAKE
    ).order_by("unit_id", "pk").values_list("unit_id", "actor_user__username", "actor_device__code"):
        taken_by[unit_id] = username or device_code  # the latest take wins
    specs = []
    for unit in overdue:
        hours = deadline_hours(unit)
        late = now - unit.status_since - datetime.timedelta(hours=hours)
        severity = Severity.CRITICAL if late > datetime.timedelta(hours=hours) else Severity.WARNING
        specs.append(AlertSpec(
            hospital.pk, f"unit:{unit.pk}", severity,
            f"{unit.product.name} SN {unit.serial} taken at {timezone.localtime(unit.status_since):%Y-%m-%d %H:%M} "
            f"by {taken_by.get(unit.pk) or '?'} is neither used nor returned after {hours} h",
            {"taken_at": unit.status_since.isoformat(), "deadline_hours": hours, "taken_by": taken_by.get(unit.pk),
             "overdue_minutes": int(late.total_seconds() // 60), "serial": unit.serial},
            {"unit_id": unit.pk, "product_id": unit.product_id, "location_id": unit.location_id},
        ))
    return sync_alerts(kind=Kind.RETURN_OVERDUE, specs=specs, scope=Q(hospital=hospital), now=now)


def scan_devices(*, hospital: Hospital, now: datetime.datetime | None = None) -> ScanResult:
    """DEVICE_OFFLINE for each active device silent longer than its `offline_after_seconds` (or never
    seen). Resolved when it is heard from again or deactivated. Also resolves the DEVICE_CLOCK_SKEW
    alerts of devices whose clock is right again (`clock_skew_cleared`)."""
    now = now or timezone.now()
    specs = []
    for device in Device.objects.filter(hospital=hospital, is_active=True).values(
        "pk", "code", "name", "kind", "last_seen", "offline_after_seconds", "location_id"
    ):
        last_seen = device["last_seen"]
        if last_seen is not None and now - last_seen <= datetime.timedelta(seconds=device["offline_after_seconds"]):
            continue
        since = f"since {timezone.localtime(last_seen):%Y-%m-%d %H:%M}" if last_seen else "never seen"
        specs.append(AlertSpec(
            hospital.pk, f"device:{device['pk']}", Severity.WARNING,
            f"Device {device['code']} {device['name']} is offline ({since})",
            {"code": device["code"], "kind": device["kind"], "last_seen": last_seen.isoformat() if last_seen else None,
             "offline_after_seconds": device["offline_after_seconds"]},
            {"device_id": device["pk"], "location_id": device["location_id"]},
        ))
    offline = sync_alerts(kind=Kind.DEVICE_OFFLINE, specs=specs, scope=Q(hospital=hospital), now=now)
    return offline + ScanResult(resolved=clock_skew_cleared(hospital=hospital, now=now))


def report_device_clock(*, device: Device, problem: str, details: dict | None = None) -> None:
    """DEVICE_CLOCK_SKEW while a device sends times that are not believed (`problem` says why);
    resolved by `scan_devices` once its latest event's time is right (not here: ingest stays lean)."""
    subject = f"device:{device.pk}"
    raise_alert(
        hospital=device.hospital, kind=Kind.DEVICE_CLOCK_SKEW, subject_key=subject, severity=Severity.WARNING,
        message=f"Device {device.code} {device.name}: {problem}; set its clock (NTP)",
        details={"code": device.code, "problem": problem, **(details or {})}, device=device,
        location_id=device.location_id,
    )


def clock_skew_cleared(*, hospital: Hospital, now: datetime.datetime | None = None) -> int:
    """Resolve the open DEVICE_CLOCK_SKEW alerts whose device has since sent an event (the latest it
    sent) with a believable time; returns how many. One query per open alert, which are few."""
    latest = DeviceEvent.objects.filter(device=OuterRef("device_id")).order_by("-received_at", "-id")
    alerts = Alert.objects.filter(hospital=hospital, kind=Kind.DEVICE_CLOCK_SKEW).exclude(status=Status.RESOLVED)
    cleared = [
        alert["pk"] for alert in alerts.annotate(
            received=Subquery(latest.values("received_at")[:1]),
            told=Subquery(latest.annotate(told=readable("occurred_at")).values("told")[:1]),
        ).values("pk", "last_seen_at", "received", "told")
        if alert["received"] and alert["told"] and alert["received"] > alert["last_seen_at"]
        and alert["told"] - alert["received"] <= max_clock_ahead()
    ]
    return _resolve_automatically(cleared, now or timezone.now())


def report_cabinet_read(*, session: CabinetSession) -> None:
    """CABINET_READ_SUSPECT while the cabinet's latest close read was held as suspect (a reader
    fault is likelier than a nurse emptying the cabinet); resolved once a read is applied."""
    subject = f"cabinet:{session.cabinet_id}"
    hospital = session.cabinet.hospital
    if session.status != CabinetSession.Status.SUSPECT:
        auto_resolve(hospital=hospital, kind=Kind.CABINET_READ_SUSPECT, subject_keys=[subject])
        return
    check = session.read_check
    raise_alert(
        hospital=hospital, kind=Kind.CABINET_READ_SUSPECT, subject_key=subject, severity=Severity.CRITICAL,
        message=(f"Cabinet {session.cabinet.name} read {check.get('seen_expected')} of the {check.get('expected')} "
                 f"tagged units it should hold: reader fault? Nothing was taken; the cabinet is asked to read again"),
        details={"session": session.pk, **check}, location_id=session.cabinet_id, device_id=session.device_id,
    )


def report_stale_close(*, session: CabinetSession) -> None:
    """CABINET_STALE_CLOSE when a door close older than the cabinet's last applied one arrives: it
    was recorded and not applied, so what it saw needs a person's look (one alert per cabinet)."""
    raise_alert(
        hospital=session.cabinet.hospital, kind=Kind.CABINET_STALE_CLOSE, subject_key=f"cabinet:{session.cabinet_id}",
        severity=Severity.WARNING,
        message=(f"Cabinet {session.cabinet.name}: a door close of {timezone.localtime(session.closed_at):%Y-%m-%d %H:%M} "
                 f"arrived after a later one and was not applied"),
        details={"session": session.pk, "closed_at": session.closed_at.isoformat(), "tags_seen": session.tags_seen},
        location_id=session.cabinet_id, device_id=session.device_id,
    )


def scan_cabinet_tags(
    *, hospital: Hospital, since: datetime.datetime | None = None, now: datetime.datetime | None = None
) -> ScanResult:
    """UNKNOWN_TAG and MISPLACED_TAG for the tags each cabinet's latest applied door close reported.

    Only cabinets whose latest close is at or after `since` are looked at (all when None); for
    those, an alert of a tag their latest close no longer reports is resolved.
    """
    latest = CabinetSession.objects.filter(cabinet=OuterRef("cabinet"), status__in=APPLIED).order_by(
        "-closed_at", "-id"
    ).values("pk")[:1]
    sessions = CabinetSession.objects.filter(
        cabinet__hospital=hospital, status__in=APPLIED, pk=Subquery(latest)
    )
    if since is not None:
        sessions = sessions.filter(closed_at__gte=since)
    unknown, misplaced, cabinets = [], [], []
    for session in sessions.values("pk", "cabinet_id", "cabinet__name", "closed_at", "unknown_tags", "misplaced"):
        cabinets.append(session["cabinet_id"])
        where = {"session": session["pk"], "seen_at": session["closed_at"].isoformat()}
        for epc in session["unknown_tags"]:
            unknown.append(_unknown_tag(hospital, session, epc, where))
        for item in session["misplaced"]:
            if item.get("hospital") != hospital.pk:
                # Recorded before door closes kept other hospitals' units out: shown as an unknown tag,
                # nothing of that unit in the alert.
                unknown.append(_unknown_tag(hospital, session, item["epc"], where))
                continue
            misplaced.append(AlertSpec(
                hospital.pk, f"tag:{item['epc']}", Severity.WARNING,
                f"Cabinet {session['cabinet__name']} sees tag {item['epc']} of a unit that belongs elsewhere",
                {**item, **where}, {"location_id": session["cabinet_id"], "unit_id": item.get("unit")},
            ))
    scope = Q(hospital=hospital, location_id__in=cabinets)
    return (
        sync_alerts(kind=Kind.UNKNOWN_TAG, specs=unknown, scope=scope, now=now)
        + sync_alerts(kind=Kind.MISPLACED_TAG, specs=misplaced, scope=scope, now=now)
    )


def _unknown_tag(hospital: Hospital, session: dict, epc: str, where: dict) -> AlertSpec:
    return AlertSpec(
        hospital.pk, f"tag:{epc}", Severity.WARNING,
        f"Cabinet {session['cabinet__name']} sees tag {epc}, bound to no unit", {"epc": epc, **where},
        {"location_id": session["cabinet_id"]},
    )


# --- stock levels and the HIS ---------------------------------------------------------------------


def scan_par_levels(
    *, hospital: Hospital, today: datetime.date | None = None, now: datetime.datetime | None = None
) -> ScanResult:
    """BELOW_PAR for each par level (基数) of an active location and product whose on-hand quantity is
    under its minimum: units IN_STOCK/IN_CABINET there plus lot balances there, expired stock not
    counted. CRITICAL when nothing is left. One aggregate query."""
    today = today or timezone.localdate()
    usable = Q(expiry__isnull=True) | Q(expiry__gte=today)
    units = Unit.objects.filter(
        usable, location_id=OuterRef("location_id"), product_id=OuterRef("product_id"), status__in=ON_HAND
    ).order_by().values("product_id").annotate(n=Count("pk")).values("n")
    lots = LotBalance.objects.filter(
        usable, location_id=OuterRef("location_id"), product_id=OuterRef("product_id")
    ).order_by().values("product_id").annotate(n=Sum("quantity")).values("n")
    levels = ParLevel.objects.filter(
        location__hospital=hospital, location__is_active=True, product__is_active=True
    ).annotate(
        on_hand=Coalesce(Subquery(units, output_field=IntegerField()), 0)
        + Coalesce(Subquery(lots, output_field=IntegerField()), 0)
    ).filter(on_hand__lt=F("minimum"))
    specs = []
    for level in levels.values(
        "pk", "location_id", "product_id", "minimum", "target", "on_hand", "location__name", "product__name"
    ):
        wanted = (level["target"] or level["minimum"]) - level["on_hand"]
        specs.append(AlertSpec(
            hospital.pk, f"par:{level['location_id']}:{level['product_id']}",
            Severity.CRITICAL if level["on_hand"] == 0 else Severity.WARNING,
            f"{level['location__name']} holds {level['on_hand']} of {level['product__name']}, "
            f"below its par level {level['minimum']}: replenish {wanted}",
            {"on_hand": level["on_hand"], "minimum": level["minimum"], "target": level["target"],
             "replenish": wanted, "par_level": level["pk"]},
            {"location_id": level["location_id"], "product_id": level["product_id"]},
        ))
    return sync_alerts(kind=Kind.BELOW_PAR, specs=specs, scope=Q(hospital=hospital), now=now)


HIS_SUBJECT = "his-outbox"


def scan_his_deliveries(
    *, hospital: Hospital, now: datetime.datetime | None = None, threshold_minutes: int | None = None
) -> ScanResult:
    """One HIS_DELIVERY_FAILING alert per hospital while charges have been failing to reach the HIS for
    longer than the threshold (FAILED or GAVE_UP), with their count and the oldest; CRITICAL when
    any has been given up (it needs a resend by hand). Resolved when none is failing that long."""
    now = now or timezone.now()
    minutes = his_failing_alert_minutes() if threshold_minutes is None else threshold_minutes
    failing = failing_deliveries(hospital, datetime.timedelta(minutes=minutes), now=now)
    totals = failing.aggregate(
        count=Count("pk"), gave_up=Count("pk", filter=Q(status=ChargeDelivery.Status.GAVE_UP)),
        since=Min("first_failed_at"), attempts=Max("attempts"),
    )
    specs = []
    if totals["count"]:
        oldest = failing.values("charge_id", "last_error").first()
        specs.append(AlertSpec(
            hospital.pk, HIS_SUBJECT, Severity.CRITICAL if totals["gave_up"] else Severity.WARNING,
            f"{totals['count']} charges have not reached the HIS for over {minutes} min "
            f"(failing since {timezone.localtime(totals['since']):%Y-%m-%d %H:%M}; {totals['gave_up']} given up)",
            {"count": totals["count"], "gave_up": totals["gave_up"], "since": totals["since"].isoformat(),
             "max_attempts": totals["attempts"], "oldest_charge": oldest["charge_id"],
             "last_error": oldest["last_error"][:500], "charges": list(failing.values_list("charge_id", flat=True)[:50])},
        ))
    return sync_alerts(kind=Kind.HIS_DELIVERY_FAILING, specs=specs, scope=Q(hospital=hospital), now=now)


MQTT_BRIDGE_SUBJECT = "mqtt-bridge"


def scan_mqtt_bridge(*, now: datetime.datetime | None = None, down_after_seconds: int | None = None) -> ScanResult:
    """MQTT_BRIDGE_DOWN (CRITICAL), one per hospital that has active MQTT cabinets, while no bridge
    has written a heartbeat while connected to the broker within the threshold: their events wait
    at the broker (or are lost once its queue is full) and nothing of them reaches the stock.
    Resolved when a connected bridge beats again, or the hospital has no MQTT cabinet left."""
    now = now or timezone.now()
    seconds = down_after_seconds if down_after_seconds is not None else settings.SPD_MQTT_BRIDGE_DOWN_AFTER_SECONDS
    alive = BridgeHeartbeat.objects.filter(connected=True, beat_at__gte=now - datetime.timedelta(seconds=seconds))
    specs = []
    if not alive.exists():
        last = BridgeHeartbeat.objects.order_by("-beat_at").values("client_id", "beat_at", "connected").first()
        since = f"last heartbeat {timezone.localtime(last['beat_at']):%Y-%m-%d %H:%M}" if last else "never started"
        hospitals = (
            Device.objects.filter(kind=Device.Kind.CABINET_MQTT, is_active=True)
            .values("hospital_id").annotate(cabinets=Count("pk")).order_by("hospital_id")
        )
        for row in hospitals:
            specs.append(AlertSpec(
                row["hospital_id"], MQTT_BRIDGE_SUBJECT, Severity.CRITICAL,
                f"The MQTT cabinet bridge is down ({since}): events of {row['cabinets']} cabinets are not processed",
                {"cabinets": row["cabinets"], "down_after_seconds": seconds,
                 "last_heartbeat": last and {**last, "beat_at": last["beat_at"].isoformat()}},
            ))
    return sync_alerts(kind=Kind.MQTT_BRIDGE_DOWN, specs=specs, scope=Q(), now=now)
