"""Written complaints (书面投诉) about a supplier or product, and the suspensions they lead to.

- `record_complaint`: a complaint with its evidence (text, and optionally a PDF/PNG/JPEG scan).
- `decide_complaint`: UPHELD or DISMISSED with a reason, once. Upholding counts the upheld
  complaints about the same supplier (and the same product) received within
  `SPD_COMPLAINT_PERIOD_DAYS` and decided after the last lifted suspension: more than
  `SPD_COMPLAINT_SUSPENSION_THRESHOLD` suspend it at the hospital.
- `suspension_problems`: what ordering (`services.purchasing`) and acceptance (`services.receiving`)
  refuse with, 409 SUPPLIER_SUSPENDED / PRODUCT_SUSPENDED naming the suspension.
- `lift_suspension`: an SPD operator (or administrator) lifts it with a reason, kept with who and when.
"""
import datetime
from collections.abc import Iterable
from pathlib import PurePath

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import Complaint, Hospital, Product, Role, Supplier, Suspension

DECIDERS = (Role.ADMIN, Role.SPD_OPERATOR)  # who decides complaints and lifts suspensions
RECORDERS = (Role.ADMIN, Role.SPD_OPERATOR, Role.WAREHOUSE)


def _require(user, roles: tuple[Role, ...], action: str) -> None:
    if not user.has_role(*roles):
        raise Refused(Refusal.NOT_ALLOWED, action=action)


def record_complaint(
    *, actor: Actor, hospital: Hospital, received_on: datetime.date, complainant: str, subject: str,
    evidence: str, supplier: Supplier | None = None, product: Product | None = None,
    evidence_file: UploadedFile | None = None,
) -> Complaint:
    """Record a written complaint (PENDING until decided)."""
    _require(actor.user, RECORDERS, _("record a complaint"))
    problems = []
    if supplier is None and product is None:
        problems.append(Problem(Refusal.COMPLAINT_SUBJECT_MISSING))
    if product is not None and product.hospital_id != hospital.pk:
        problems.append(Problem(Refusal.NOT_FOUND, {"what": "product"}))
    for name, value in (("complainant", complainant), ("subject", subject), ("evidence", evidence)):
        if not value.strip():
            problems.append(Problem(Refusal.INVALID_REQUEST, {"detail": name, "field": name}))
    if evidence_file is not None:
        from inventory.services.portal import _is_pdf_or_image  # portal → receiving → here: import late

        if evidence_file.size is not None and evidence_file.size > settings.SPD_CERTIFICATE_MAX_BYTES:
            problems.append(Problem(Refusal.FILE_TOO_LARGE, {"limit": settings.SPD_CERTIFICATE_MAX_BYTES}))
        elif not _is_pdf_or_image(evidence_file):
            problems.append(Problem(Refusal.CERTIFICATE_FILE_TYPE, {"name": PurePath(evidence_file.name or "?").name}))
    if problems:
        raise Refused(problems)
    with transaction.atomic():
        complaint = Complaint(
            hospital=hospital, supplier=supplier, product=product, received_on=received_on,
            complainant=complainant.strip(), subject=subject.strip(), evidence=evidence.strip(),
            recorded_by=actor.user,
        )
        if evidence_file is not None:
            complaint.evidence_file.save(PurePath(evidence_file.name).name, evidence_file, save=False)
        complaint.save()
    return complaint


def decide_complaint(*, actor: Actor, complaint: Complaint, outcome: str, reason: str) -> Complaint:
    """Uphold or dismiss a pending complaint; upholding may suspend its supplier and/or product."""
    _require(actor.user, DECIDERS, _("decide a complaint"))
    reason = reason.strip()
    if outcome not in (Complaint.Outcome.UPHELD, Complaint.Outcome.DISMISSED):
        raise Refused(Refusal.INVALID_REQUEST, detail="outcome", field="outcome")
    if not reason:
        raise Refused(Refusal.COMPLAINT_REASON_MISSING, field="reason")
    with transaction.atomic():
        locked = Complaint.objects.select_for_update().get(pk=complaint.pk)
        if locked.outcome != Complaint.Outcome.PENDING:
            raise Refused(Refusal.COMPLAINT_ALREADY_DECIDED, outcome=locked.get_outcome_display())
        locked.outcome = outcome
        locked.outcome_reason = reason
        locked.decided_by = actor.user
        locked.decided_at = timezone.now()
        locked.save(update_fields=["outcome", "outcome_reason", "decided_by", "decided_at"])
        if outcome == Complaint.Outcome.UPHELD:
            if locked.supplier_id is not None:
                _suspend_if_due(locked.hospital_id, Q(supplier_id=locked.supplier_id), supplier_id=locked.supplier_id)
            if locked.product_id is not None:
                _suspend_if_due(locked.hospital_id, Q(product_id=locked.product_id), product_id=locked.product_id)
    return locked


def _suspend_if_due(hospital_id: int, about: Q, **subject: int) -> Suspension | None:
    suspensions = Suspension.objects.filter(hospital_id=hospital_id, **subject)
    if suspensions.filter(lifted_at=None).exists():
        return None
    upheld = Complaint.objects.filter(
        about, hospital_id=hospital_id, outcome=Complaint.Outcome.UPHELD,
        received_on__gte=timezone.localdate() - datetime.timedelta(days=settings.SPD_COMPLAINT_PERIOD_DAYS),
    )
    last_lift = suspensions.exclude(lifted_at=None).order_by("-lifted_at").values_list("lifted_at", flat=True).first()
    if last_lift is not None:
        upheld = upheld.filter(decided_at__gt=last_lift)  # complaints already answered by a lifted suspension
    upheld = list(upheld)
    if len(upheld) <= settings.SPD_COMPLAINT_SUSPENSION_THRESHOLD:
        return None
    suspension = Suspension.objects.create(hospital_id=hospital_id, **subject)
    suspension.complaints.set(upheld)
    return suspension


def lift_suspension(*, actor: Actor, suspension: Suspension, reason: str) -> Suspension:
    """An SPD operator (or administrator) lifts a suspension with a reason (kept with who and when)."""
    _require(actor.user, DECIDERS, _("lift a suspension"))
    reason = reason.strip()
    if not reason:
        raise Refused(Refusal.SUSPENSION_LIFT_REASON_MISSING, field="reason")
    with transaction.atomic():
        locked = Suspension.objects.select_for_update().get(pk=suspension.pk)
        if locked.lifted_at is not None:
            raise Refused(Refusal.SUSPENSION_ALREADY_LIFTED, date=timezone.localdate(locked.lifted_at))
        locked.lifted_at = timezone.now()
        locked.lifted_by = actor.user
        locked.lift_reason = reason
        locked.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
    return locked


def active_suspensions(*, hospital_id: int, supplier_id: int | None = None, product_ids: Iterable[int] = ()):
    """The suspensions in force at the hospital of this supplier or any of these products."""
    about = Q(product_id__in=list(product_ids))
    if supplier_id is not None:
        about |= Q(supplier_id=supplier_id)
    return (Suspension.objects.filter(about, hospital_id=hospital_id, lifted_at=None)
            .select_related("supplier", "product").order_by("pk"))


def suspension_problems(*, hospital_id: int, supplier_id: int | None = None, product_ids: Iterable[int] = ()) -> list[Problem]:
    """Why nothing may be ordered or accepted here: one 409 problem per suspension in force."""
    problems = []
    for suspension in active_suspensions(hospital_id=hospital_id, supplier_id=supplier_id, product_ids=product_ids):
        since = timezone.localdate(suspension.started_at)
        count = suspension.complaints.count()
        if suspension.supplier_id is not None:
            problems.append(Problem(Refusal.SUPPLIER_SUSPENDED,
                                    {"supplier": suspension.supplier, "since": since, "count": count}))
        else:
            problems.append(Problem(Refusal.PRODUCT_SUSPENDED,
                                    {"product": suspension.product, "since": since, "count": count}))
    return problems
