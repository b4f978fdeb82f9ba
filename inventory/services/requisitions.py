"""Department requisitions (科室申领): the state machine and its explicit partial fulfilment.

    DRAFT → SUBMITTED → APPROVED → PICKING → DISPATCHED → RECEIVED
            SUBMITTED → REJECTED (reason);  DRAFT / SUBMITTED / APPROVED → CANCELLED (reason)

A department whose requisitions need no approval (`Department.requisitions_need_approval` off)
goes from DRAFT straight to APPROVED on submit, every line approved as requested.

Every function here changes one requisition inside one transaction, locking the requisition row
first and then its lines (`select_for_update`, by pk). The picking and receipt services call
`record_fulfilment` *after* they have locked and moved the stock (lock order unit → lot balance →
location → requisition), in their own transaction. Anything refused changes nothing: an illegal
state change is 409 (REQUISITION_STATE), a bad quantity 400 naming the field.

Quantities are in the product's base unit; a quantity entered in a packaging unit is converted on
the way in (`base_quantity`).
"""
import datetime
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from inventory.errors import Problem, Refusal, Refused
from inventory.models import Alert, Department, Location, Product, Requisition, RequisitionLine, User
from inventory.selectors.scope import departments_of
from inventory.services import alerts
from inventory.services.units_of_measure import to_base_quantity

Status = Requisition.Status
# Where a requisition may be delivered to.
DESTINATION_KINDS = (Location.Kind.DEPARTMENT_STORE, Location.Kind.SMART_CABINET, Location.Kind.OPERATING_ROOM)
NOTE_LIMIT = 500


@dataclass(frozen=True)
class RequestedLine:
    """One product asked for: `quantity` in `unit` (empty: the base unit)."""

    product: Product
    quantity: object
    unit: str = ""
    note: str = ""


@dataclass(frozen=True)
class Fulfilment:
    """What happened to a line since it was last recorded, as increments in base units."""

    line: RequisitionLine | int
    picked: int = 0
    dispatched: int = 0
    received: int = 0
    discrepancy: int = 0


# --- quantities -----------------------------------------------------------------------------------


def whole_quantity(value: object, *, field: str, allow_zero: bool = False) -> int:
    """`value` as a whole number ≥ 1 (≥ 0 with `allow_zero`), else 400 naming `field`.

    Fractions are refused, not rounded: 1.5 boxes is not a quantity anyone can pick."""
    if isinstance(value, bool):
        raise Refused(Refusal.REQUISITION_QUANTITY_INVALID, field=field)
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise Refused(Refusal.REQUISITION_QUANTITY_INVALID, field=field)
        value = int(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise Refused(Refusal.REQUISITION_QUANTITY_INVALID, field=field)
        value = int(value)
    if not isinstance(value, int) or value < (0 if allow_zero else 1) or value > 10**9:
        raise Refused(Refusal.REQUISITION_QUANTITY_INVALID, field=field)
    return value


def base_quantity(*, product: Product, quantity: object, unit: str = "", field: str = "quantity") -> int:
    """`quantity` of `unit` of `product` (empty: the base unit) in base units, a whole number ≥ 1;
    else 400 naming `field` (or `unit` for a unit the product does not have)."""
    amount = whole_quantity(quantity, field=field)
    unit_field = field.rsplit(".", 1)[0] + ".unit" if "." in field else "unit"
    result = to_base_quantity(product=product, quantity=amount, unit=(unit or "").strip(), field=field,
                              unit_field=unit_field, allow_zero=False)
    if result > 10**9:
        raise Refused(Refusal.REQUISITION_QUANTITY_INVALID, field=field)
    return result


# --- scope ----------------------------------------------------------------------------------------


def may_request_for(user: User, department: Department) -> bool:
    """Whether `user` may create and submit requisitions for `department`: a nurse for her own
    departments, the warehouse, SPD operators and administrators for any of their hospital."""
    from inventory.models import Role

    if department.hospital_id != user.hospital_id and not user.is_superuser:
        return False
    if user.has_role(Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR):
        return True
    if not user.has_role(Role.NURSE):
        return False
    allowed = departments_of(user)
    return allowed is None or department.pk in allowed


def _require_requester(user: User, department: Department) -> None:
    if not may_request_for(user, department):
        raise Refused(Refusal.NOT_YOUR_DEPARTMENT, department=department.name)


def default_destination(department: Department) -> Location | None:
    """Where a department's requisitions go unless it says otherwise: its first active store, else cabinet."""
    return (
        Location.objects.filter(department=department, is_active=True, kind__in=DESTINATION_KINDS)
        .order_by("kind", "code").first()
    )


def _destination(department: Department, location: Location | None) -> Location:
    location = location or default_destination(department)
    if location is None or location.department_id != department.pk or location.kind not in DESTINATION_KINDS:
        raise Refused(
            Refusal.REQUISITION_LOCATION_INVALID, location=location.name if location else "—",
            department=department.name,
        )
    if not location.is_active:
        raise Refused(Refusal.LOCATION_INACTIVE, location=location.name)
    return location


def _note(value: str, *, field: str = "note", limit: int = NOTE_LIMIT) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise Refused(Refusal.NOTE_TOO_LONG, field=field, limit=limit)
    return value


def _reason(value: str, *, field: str = "reason") -> str:
    value = _note(value, field=field)
    if not value:
        raise Refused(Refusal.REASON_MISSING, field=field)
    return value


def _lock(requisition: Requisition) -> tuple[Requisition, list[RequisitionLine]]:
    locked = Requisition.objects.select_for_update().select_related("department", "location").get(pk=requisition.pk)
    lines = list(locked.lines.select_for_update().select_related("product").order_by("pk"))
    return locked, lines


def _refuse_state(requisition: Requisition, action: str) -> Refused:
    return Refused(
        Refusal.REQUISITION_STATE, requisition=requisition.number, current=requisition.get_status_display(),
        action=action,
    )


def _require_status(requisition: Requisition, allowed: Iterable[str], action: str) -> None:
    if requisition.status not in set(allowed):
        raise _refuse_state(requisition, action)


# --- drafting -------------------------------------------------------------------------------------


def create_requisition(
    *, user: User, department: Department, lines: Iterable[RequestedLine] = (), location: Location | None = None,
    urgency: str = Requisition.Urgency.ROUTINE, note: str = "", submit: bool = False,
    now: datetime.datetime | None = None,
) -> Requisition:
    """A new requisition of `department`, DRAFT (or submitted at once with `submit`).

    Lines naming the same product are added up into one line. Every bad line is reported, by its
    field (`lines[2].quantity`), before anything is written."""
    now = now or timezone.now()
    _require_requester(user, department)
    if urgency not in Requisition.Urgency.values:
        raise Refused(Refusal.CHOICE_UNKNOWN, field="urgency", choices=", ".join(Requisition.Urgency.values),
                      value=urgency)
    note = _note(note)
    destination = _destination(department, location)
    wanted: dict[int, list] = {}
    problems: list[Problem] = []
    for index, line in enumerate(lines):
        try:
            if line.product.hospital_id != department.hospital_id:
                raise Refused(Refusal.NOT_FOUND, what="product")
            amount = base_quantity(product=line.product, quantity=line.quantity, unit=line.unit,
                                   field=f"lines[{index}].quantity")
        except Refused as refused:
            problems.extend(refused.problems)
            continue
        if line.product.pk in wanted:  # the same product twice: one line, in base units
            entry = wanted[line.product.pk]
            entry[1], entry[2], entry[3] = entry[1] + amount, None, ""
        else:
            entered = whole_quantity(line.quantity, field="quantity") if line.unit else None
            wanted[line.product.pk] = [line.product, amount, entered, line.unit, _note(line.note, limit=200)]
    if problems:
        raise Refused(problems)
    with transaction.atomic():
        requisition = Requisition.objects.create(
            hospital_id=department.hospital_id, department=department, location=destination,
            number=f"new-{uuid.uuid4().hex[:24]}", urgency=urgency, note=note, created_by=user,
            created_at=now, updated_at=now,
        )
        requisition.number = f"SL{timezone.localtime(now):%Y%m%d}-{requisition.pk:06d}"
        requisition.save(update_fields=["number"])
        RequisitionLine.objects.bulk_create([
            RequisitionLine(
                requisition=requisition, product=product, requested_quantity=amount,
                entered_quantity=entered or None, entered_unit=unit if entered else "", note=line_note,
            )
            for product, amount, entered, unit, line_note in wanted.values()
        ])
        if submit:
            requisition = submit_requisition(requisition=requisition, user=user, now=now)
    return requisition


def add_line(
    *, requisition: Requisition, user: User, product: Product, quantity: object, unit: str = "", note: str = "",
    now: datetime.datetime | None = None,
) -> RequisitionLine:
    """Add `quantity` of `product` to a DRAFT requisition (onto its line of that product, if any)."""
    amount = base_quantity(product=product, quantity=quantity, unit=unit)
    note = _note(note, limit=200)
    with transaction.atomic():
        locked, lines = _lock(requisition)
        _require_requester(user, locked.department)
        _require_status(locked, [Status.DRAFT], "changed")
        if product.hospital_id != locked.hospital_id:
            raise Refused(Refusal.NOT_FOUND, what="product")
        line = next((line for line in lines if line.product_id == product.pk), None)
        if line is None:
            line = RequisitionLine.objects.create(
                requisition=locked, product=product, requested_quantity=amount, note=note,
                entered_quantity=whole_quantity(quantity, field="quantity") if unit else None, entered_unit=unit or "",
            )
        else:
            line.requested_quantity += amount
            line.entered_quantity, line.entered_unit = None, ""
            line.note = note or line.note
            line.save(update_fields=["requested_quantity", "entered_quantity", "entered_unit", "note"])
        _touch(locked, now)
    return line


def change_line(
    *, line: RequisitionLine, user: User, quantity: object, unit: str = "", now: datetime.datetime | None = None
) -> RequisitionLine:
    """Set a DRAFT line's requested quantity."""
    amount = base_quantity(product=line.product, quantity=quantity, unit=unit)
    with transaction.atomic():
        locked, lines = _lock(line.requisition)
        _require_requester(user, locked.department)
        _require_status(locked, [Status.DRAFT], "changed")
        line = _line_of(lines, line)
        line.requested_quantity = amount
        line.entered_quantity = whole_quantity(quantity, field="quantity") if unit else None
        line.entered_unit = unit or ""
        line.save(update_fields=["requested_quantity", "entered_quantity", "entered_unit"])
        _touch(locked, now)
    return line


def remove_line(*, line: RequisitionLine, user: User, now: datetime.datetime | None = None) -> Requisition:
    """Take a line off a DRAFT requisition."""
    with transaction.atomic():
        locked, lines = _lock(line.requisition)
        _require_requester(user, locked.department)
        _require_status(locked, [Status.DRAFT], "changed")
        _line_of(lines, line).delete()
        _touch(locked, now)
    return locked


def _line_of(lines: list[RequisitionLine], line: RequisitionLine | int) -> RequisitionLine:
    pk = line if isinstance(line, int) else line.pk
    for candidate in lines:
        if candidate.pk == pk:
            return candidate
    raise Refused(Refusal.NOT_FOUND, what="requisition line")


def _touch(requisition: Requisition, now: datetime.datetime | None, fields: Iterable[str] = ()) -> None:
    requisition.updated_at = now or timezone.now()
    requisition.save(update_fields=["updated_at", *fields])


# --- the state machine ----------------------------------------------------------------------------


def submit_requisition(*, requisition: Requisition, user: User, now: datetime.datetime | None = None) -> Requisition:
    """DRAFT → SUBMITTED, or → APPROVED (every line as requested) where the department needs no
    approval. An urgent one raises an URGENT_REQUISITION alert for the warehouse."""
    now = now or timezone.now()
    with transaction.atomic():
        locked, lines = _lock(requisition)
        _require_requester(user, locked.department)
        _require_status(locked, [Status.DRAFT], "submitted")
        if not lines:
            raise Refused(Refusal.REQUISITION_EMPTY, requisition=locked.number)
        locked.submitted_at, locked.submitted_by = now, user
        if locked.department.requisitions_need_approval:
            locked.status = Status.SUBMITTED
        else:
            locked.status = Status.APPROVED
            locked.decided_at = now
            for line in lines:
                line.approved_quantity = line.requested_quantity
            RequisitionLine.objects.bulk_update(lines, ["approved_quantity"])
        _touch(locked, now, ["status", "submitted_at", "submitted_by", "decided_at"])
        if locked.is_urgent:
            _raise_urgent_alert(locked, lines, now)
    return locked


def approve_requisition(
    *, requisition: Requisition, user: User, approved: Mapping[int, object] | None = None,
    now: datetime.datetime | None = None,
) -> Requisition:
    """SUBMITTED → APPROVED. `approved` maps line ids to the quantity approved (0 up to the requested
    quantity, in base units); lines not named are approved as requested. At least one unit must be
    approved — approving nothing is a rejection, which needs a reason."""
    now = now or timezone.now()
    approved = dict(approved or {})
    with transaction.atomic():
        locked, lines = _lock(requisition)
        _require_status(locked, [Status.SUBMITTED], "approved")
        by_pk = {line.pk: line for line in lines}
        problems = [
            Problem(Refusal.NOT_FOUND, {"what": "requisition line", "field": f"approved[{pk}]"})
            for pk in approved if pk not in by_pk
        ]
        for line in lines:
            field = f"approved[{line.pk}]"
            try:
                quantity = whole_quantity(approved.get(line.pk, line.requested_quantity), field=field, allow_zero=True)
            except Refused as refused:
                problems.extend(refused.problems)
                continue
            if quantity > line.requested_quantity:
                problems.append(Problem(Refusal.REQUISITION_QUANTITY_TOO_LARGE, {
                    "field": field, "quantity": quantity, "allowed": line.requested_quantity, "line": line.pk,
                }))
            line.approved_quantity = quantity
        if problems:
            raise Refused(problems)
        if not any(line.approved_quantity for line in lines):
            raise Refused(Refusal.REQUISITION_QUANTITY_INVALID, field="approved")
        RequisitionLine.objects.bulk_update(lines, ["approved_quantity"])
        locked.status, locked.decided_at, locked.decided_by = Status.APPROVED, now, user
        _touch(locked, now, ["status", "decided_at", "decided_by"])
    return locked


def reject_requisition(
    *, requisition: Requisition, user: User, reason: str, now: datetime.datetime | None = None
) -> Requisition:
    """SUBMITTED → REJECTED, with the approver's reason."""
    reason = _reason(reason)
    now = now or timezone.now()
    with transaction.atomic():
        locked, _ = _lock(requisition)
        _require_status(locked, [Status.SUBMITTED], "rejected")
        locked.status, locked.status_reason = Status.REJECTED, reason
        locked.decided_at, locked.decided_by, locked.closed_at, locked.closed_by = now, user, now, user
        _touch(locked, now, ["status", "status_reason", "decided_at", "decided_by", "closed_at", "closed_by"])
        _resolve_urgent_alert(locked, now)
    return locked


def cancel_requisition(
    *, requisition: Requisition, user: User, reason: str, now: datetime.datetime | None = None
) -> Requisition:
    """DRAFT, SUBMITTED or APPROVED (nothing picked yet) → CANCELLED, with a reason; every line's
    open quantity is cancelled with it. Once picking has begun, cancel line remainders instead."""
    reason = _reason(reason)
    now = now or timezone.now()
    with transaction.atomic():
        locked, lines = _lock(requisition)
        _require_requester(user, locked.department)
        _require_status(locked, [Status.DRAFT, Status.SUBMITTED, Status.APPROVED], "cancelled")
        for line in lines:
            if line.open_quantity:
                line.cancelled_quantity += line.open_quantity
                line.cancel_reason = reason
        RequisitionLine.objects.bulk_update(lines, ["cancelled_quantity", "cancel_reason"])
        locked.status, locked.status_reason, locked.closed_at, locked.closed_by = Status.CANCELLED, reason, now, user
        _touch(locked, now, ["status", "status_reason", "closed_at", "closed_by"])
        _resolve_urgent_alert(locked, now)
    return locked


def cancel_line_remainder(
    *, line: RequisitionLine, user: User, reason: str, now: datetime.datetime | None = None
) -> RequisitionLine:
    """Cancel what is still open on a line (neither picked nor cancelled), with a reason: the
    warehouse cannot deliver it, or the department no longer needs it. The requisition then moves
    on if nothing else is open (to DISPATCHED, RECEIVED or — nothing delivered at all — CANCELLED)."""
    reason = _reason(reason)
    now = now or timezone.now()
    with transaction.atomic():
        locked, lines = _lock(line.requisition)
        _require_requester(user, locked.department)
        _require_status(locked, [Status.SUBMITTED, Status.APPROVED, Status.PICKING], "changed")
        line = _line_of(lines, line)
        if not line.open_quantity:
            raise Refused(Refusal.REQUISITION_QUANTITY_TOO_LARGE, field="line", quantity=1, allowed=0, line=line.pk)
        line.cancelled_quantity += line.open_quantity
        line.cancel_reason = reason
        line.save(update_fields=["cancelled_quantity", "cancel_reason"])
        _settle(locked, lines, user, now)
    return line


# --- fulfilment (called by picking, dispatch and receipt) -------------------------------------------


def record_fulfilment(
    *, line: RequisitionLine | int, picked: int = 0, dispatched: int = 0, received: int = 0, discrepancy: int = 0,
    user: User | None = None, now: datetime.datetime | None = None,
) -> RequisitionLine:
    """Add what was picked, dispatched, received (or found short/damaged at receipt) on one line."""
    if isinstance(line, int):
        requisition_id = RequisitionLine.objects.values_list("requisition_id", flat=True).get(pk=line)
    else:
        requisition_id = line.requisition_id
    changed = record_fulfilments(
        requisition=Requisition(pk=requisition_id),
        changes=[Fulfilment(line, picked, dispatched, received, discrepancy)], user=user, now=now,
    )
    return changed[0]


def record_fulfilments(
    *, requisition: Requisition, changes: Iterable[Fulfilment], user: User | None = None,
    now: datetime.datetime | None = None,
) -> list[RequisitionLine]:
    """Add picked / dispatched / received / discrepancy increments to lines of one requisition and
    move the requisition on: APPROVED → PICKING at the first pick; → DISPATCHED once nothing is
    open and everything picked is dispatched; → RECEIVED once all of it is received (or recorded
    short/damaged). Refused (409, nothing changed) if a stage would exceed the one before it:
    picked ≤ approved − cancelled, dispatched ≤ picked, received + discrepancy ≤ dispatched."""
    now = now or timezone.now()
    with transaction.atomic():
        locked, lines = _lock(requisition)
        changes = list(changes)
        # The order of the stages is kept by the quantity limits below (nothing is dispatched
        # before it is picked); a zero-stock department records all three in one call.
        _require_status(locked, [Status.APPROVED, Status.PICKING, Status.DISPATCHED], "fulfilled")
        problems: list[Problem] = []
        touched: list[RequisitionLine] = []
        for index, change in enumerate(changes):
            line = _line_of(lines, change.line)
            steps = {}
            for name in ("picked", "dispatched", "received", "discrepancy"):
                try:
                    steps[name] = whole_quantity(getattr(change, name), field=f"changes[{index}].{name}", allow_zero=True)
                except Refused as refused:
                    problems.extend(refused.problems)
            if len(steps) < 4:
                continue
            limits = (
                ("picked", steps["picked"], line.open_quantity),
                ("dispatched", steps["dispatched"], line.picked_quantity + steps["picked"] - line.dispatched_quantity),
                ("received", steps["received"] + steps["discrepancy"],
                 line.in_transit_quantity + steps["dispatched"]),
            )
            for name, quantity, allowed in limits:
                if quantity > allowed:
                    problems.append(Problem(Refusal.REQUISITION_QUANTITY_TOO_LARGE, {
                        "field": f"changes[{index}].{name}", "quantity": quantity, "allowed": allowed, "line": line.pk,
                    }))
            line.picked_quantity += steps["picked"]
            line.dispatched_quantity += steps["dispatched"]
            line.received_quantity += steps["received"]
            line.discrepancy_quantity += steps["discrepancy"]
            touched.append(line)
        if problems:
            raise Refused(problems)
        RequisitionLine.objects.bulk_update(
            touched, ["picked_quantity", "dispatched_quantity", "received_quantity", "discrepancy_quantity"]
        )
        _settle(locked, lines, user, now)
    return touched


def mark_lines_picked(
    *, quantities: Mapping[RequisitionLine | int, int], user: User | None = None, now: datetime.datetime | None = None
) -> list[RequisitionLine]:
    """Record picked quantities (base units) of lines, which may belong to several requisitions."""
    return _record_by_requisition(quantities, "picked", user, now)


def mark_lines_dispatched(
    *, quantities: Mapping[RequisitionLine | int, int], user: User | None = None, now: datetime.datetime | None = None
) -> list[RequisitionLine]:
    """Record dispatched quantities (base units) of lines, which may belong to several requisitions."""
    return _record_by_requisition(quantities, "dispatched", user, now)


def mark_lines_received(
    *, quantities: Mapping[RequisitionLine | int, int], discrepancies: Mapping[RequisitionLine | int, int] | None = None,
    user: User | None = None, now: datetime.datetime | None = None,
) -> list[RequisitionLine]:
    """Record received quantities, and what arrived short or damaged (`discrepancies`), of lines."""
    changes: dict[int, dict] = {}
    for line, quantity in quantities.items():
        changes.setdefault(_pk(line), {})["received"] = quantity
    for line, quantity in (discrepancies or {}).items():
        changes.setdefault(_pk(line), {})["discrepancy"] = quantity
    return _record(changes, user, now)


def _pk(line: RequisitionLine | int) -> int:
    return line if isinstance(line, int) else line.pk


def _record_by_requisition(
    quantities: Mapping[RequisitionLine | int, int], stage: str, user: User | None, now: datetime.datetime | None
) -> list[RequisitionLine]:
    return _record({_pk(line): {stage: quantity} for line, quantity in quantities.items()}, user, now)


def _record(changes: dict[int, dict], user: User | None, now: datetime.datetime | None) -> list[RequisitionLine]:
    owners = dict(RequisitionLine.objects.filter(pk__in=changes).values_list("pk", "requisition_id"))
    if missing := set(changes) - set(owners):
        raise Refused(Refusal.NOT_FOUND, what="requisition line", field=f"line {min(missing)}")
    touched: list[RequisitionLine] = []
    with transaction.atomic():
        for requisition_id in sorted(set(owners.values())):
            touched += record_fulfilments(
                requisition=Requisition(pk=requisition_id),
                changes=[Fulfilment(pk, **stages) for pk, stages in sorted(changes.items()) if owners[pk] == requisition_id],
                user=user, now=now,
            )
    return touched


def _settle(requisition: Requisition, lines: list[RequisitionLine], user: User | None, now: datetime.datetime) -> None:
    """Move the requisition to the status its lines say it is in (never backwards)."""
    before = requisition.status
    open_quantity = sum(line.open_quantity for line in lines)
    picked = sum(line.picked_quantity for line in lines)
    dispatched = sum(line.dispatched_quantity for line in lines)
    in_transit = sum(line.in_transit_quantity for line in lines)
    if open_quantity == 0 and picked == dispatched:
        if dispatched == 0:
            requisition.status = Status.CANCELLED
            requisition.status_reason = "; ".join(sorted({line.cancel_reason for line in lines if line.cancel_reason}))
        elif in_transit == 0:
            requisition.status = Status.RECEIVED
        else:
            requisition.status = Status.DISPATCHED
    elif picked and before in (Status.APPROVED,):
        requisition.status = Status.PICKING
    if requisition.status == before:
        _touch(requisition, now)
        return
    fields = ["status", "status_reason"]
    if requisition.status in (Status.DISPATCHED, Status.RECEIVED) and requisition.dispatched_at is None:
        requisition.dispatched_at = now
        fields.append("dispatched_at")
    if requisition.status in Requisition.FINAL_STATUSES:
        requisition.closed_at, requisition.closed_by = now, user
        fields += ["closed_at", "closed_by"]
    _touch(requisition, now, fields)
    if requisition.status not in Requisition.OPEN_STATUSES:
        _resolve_urgent_alert(requisition, now)


# --- the urgent alert -----------------------------------------------------------------------------


def urgent_subject(requisition: Requisition) -> str:
    return f"requisition:{requisition.pk}"


def _raise_urgent_alert(requisition: Requisition, lines: list[RequisitionLine], now: datetime.datetime) -> None:
    alerts.raise_alert(
        hospital=requisition.hospital, kind=Alert.Kind.URGENT_REQUISITION, subject_key=urgent_subject(requisition),
        severity=Alert.Severity.CRITICAL,
        message=f"Urgent requisition {requisition.number} from {requisition.department.name}: "
                + ", ".join(f"{line.product.name} × {line.requested_quantity}" for line in lines[:5]),
        details={"requisition": requisition.pk, "number": requisition.number, "lines": len(lines)},
        now=now, location=requisition.location,
    )


def _resolve_urgent_alert(requisition: Requisition, now: datetime.datetime) -> None:
    if requisition.is_urgent:
        alerts.auto_resolve(
            hospital=requisition.hospital, kind=Alert.Kind.URGENT_REQUISITION,
            subject_keys=[urgent_subject(requisition)], now=now,
        )
