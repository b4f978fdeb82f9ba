"""Smart cabinets (智能柜): door sessions, the tag-set comparison on close, takes and put-backs.

On door close the cabinet reports every tag it sees. Compared, set-based, with what the ledger
says is in the cabinet: units no longer seen are TAKEN by whoever opened the door; units taken
earlier and seen again are put back (IN_CABINET); tags of units that belong elsewhere, or of no
unit, are recorded on the session and never absorbed into stock. An expired unit is never taken
(by close or by scan): one missing at close is locked as EXPIRED by the cabinet device instead.

Order of events: sessions are matched by the device's `occurred_at`, not by arrival. A close older
than the cabinet's last applied close is recorded as STALE and not applied (the newer close
already describes the cabinet); a close with no open is applied without a user (attributed to the
cabinet device); a second open supersedes a session still open.
"""
import datetime
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import CabinetSession, Hospital, Location, Movement, StockOrder, Unit, UnitStatus, User
from inventory.services.idempotency import run_once
from inventory.services.labelling import normalise_epc
from inventory.services.ledger import expiry_lock_problem, move_unit, move_units, transition_problem

APPLIED = (CabinetSession.Status.CLOSED, CabinetSession.Status.CLOSED_WITHOUT_OPEN)


def open_session(
    *, device: object, cabinet: Location, occurred_at: datetime.datetime, user_ref: str = "", badge: str = "",
    event: object = None,
) -> CabinetSession:
    """Start a session for whoever opened the door (by username or badge). An unknown person is
    recorded (badge kept) and their takes are attributed to the cabinet device."""
    user = _person(cabinet.hospital, user_ref, badge)
    with transaction.atomic():
        Location.objects.select_for_update().get(pk=cabinet.pk)  # one session change per cabinet at a time
        if _last_applied_close(cabinet, after=occurred_at):
            status = CabinetSession.Status.STALE
        else:
            status = CabinetSession.Status.OPEN
            CabinetSession.objects.filter(
                cabinet=cabinet, status=CabinetSession.Status.OPEN, opened_at__lte=occurred_at
            ).update(status=CabinetSession.Status.ABANDONED)
        return CabinetSession.objects.create(
            cabinet=cabinet, device=device, user=user, badge=badge or "", status=status, opened_at=occurred_at,
            open_event=event,
        )


def close_session(
    *, device: object, cabinet: Location, occurred_at: datetime.datetime, epcs: list[str], event: object = None
) -> CabinetSession:
    """Apply the cabinet's full tag inventory at door close: takes, put-backs, unknown and misplaced tags."""
    seen = _normalised(epcs)
    with transaction.atomic():
        Location.objects.select_for_update().get(pk=cabinet.pk)
        session = (
            CabinetSession.objects.filter(
                cabinet=cabinet, status=CabinetSession.Status.OPEN, opened_at__lte=occurred_at
            ).order_by("-opened_at", "-id").first()
        )
        if session is None:
            session = CabinetSession(cabinet=cabinet, device=device, status=CabinetSession.Status.CLOSED_WITHOUT_OPEN)
        else:
            session.status = CabinetSession.Status.CLOSED
        session.closed_at, session.close_event, session.tags_seen = occurred_at, event, len(seen)
        if _last_applied_close(cabinet, after=occurred_at):
            session.status = CabinetSession.Status.STALE
            session.save()
            return session
        session.save()
        diff = compare_with_contents(cabinet, seen)
        actor = Actor(user=session.user) if session.user else Actor(device=device)
        document = (Movement.DocumentType.CABINET_SESSION, session.pk)
        today = timezone.localdate(occurred_at)
        expired = [unit for unit in diff.taken if expiry_lock_problem(unit, today)]
        taken = [unit for unit in diff.taken if unit not in expired]
        # Past its expiry date a unit is locked: missing at close, it is recorded as expired, never as taken.
        move_units(units=expired, kind=Movement.Kind.EXPIRE, to_status=UnitStatus.EXPIRED, to_location=cabinet,
                   actor=Actor(device=device), document=document, occurred_at=occurred_at,
                   idempotency_keys=[f"cabinet-session:{session.pk}:expire:{unit.pk}" for unit in expired],
                   note="expired unit not seen at door close: locked, not taken")
        move_units(units=taken, kind=Movement.Kind.CABINET_TAKE, to_status=UnitStatus.TAKEN, to_location=cabinet,
                   actor=actor, document=document, occurred_at=occurred_at,
                   idempotency_keys=[f"cabinet-session:{session.pk}:take:{unit.pk}" for unit in taken])
        move_units(units=diff.returned, kind=Movement.Kind.CABINET_RETURN, to_status=UnitStatus.IN_CABINET,
                   to_location=cabinet, actor=actor, document=document, occurred_at=occurred_at,
                   idempotency_keys=[f"cabinet-session:{session.pk}:return:{unit.pk}" for unit in diff.returned])
        session.taken = [_unit_summary(unit) for unit in taken]
        session.returned = [_unit_summary(unit) for unit in diff.returned]
        session.unknown_tags = diff.unknown
        session.misplaced = diff.misplaced
        session.save(update_fields=["taken", "returned", "unknown_tags", "misplaced"])
        return session


@dataclass
class CabinetDiff:
    taken: list[Unit]
    returned: list[Unit]
    unknown: list[str]
    misplaced: list[dict]


def compare_with_contents(cabinet: Location, seen: set[str]) -> CabinetDiff:
    """Set-based: one locking query for the cabinet's expected contents (their tags and statuses
    only), one reading the units that changed, one for the other tags seen.

    An EXPIRED unit still in the cabinet is expected there (not misplaced) but is never taken or put back.
    """
    expected = list(
        Unit.objects.select_for_update().filter(
            location=cabinet, status__in=[UnitStatus.IN_CABINET, UnitStatus.TAKEN, UnitStatus.EXPIRED],
            epc__isnull=False,
        ).order_by("pk").values_list("pk", "epc", "status")
    )
    taken_ids = [pk for pk, epc, status in expected if status == UnitStatus.IN_CABINET and epc not in seen]
    returned_ids = [pk for pk, epc, status in expected if status == UnitStatus.TAKEN and epc in seen]
    changed = Unit.objects.in_bulk(taken_ids + returned_ids) if taken_ids or returned_ids else {}  # locked above
    taken, returned = [changed[pk] for pk in taken_ids], [changed[pk] for pk in returned_ids]
    others = seen - {epc for _, epc, _ in expected}
    misplaced = [
        {"epc": epc, "unit": pk, "status": status, "location": location_id, "hospital": hospital_id}
        for epc, pk, status, location_id, hospital_id in Unit.objects.filter(epc__in=others).values_list(
            "epc", "pk", "status", "location_id", "hospital_id"
        )
    ]
    known = {item["epc"] for item in misplaced}
    return CabinetDiff(taken, returned, sorted(others - known), sorted(misplaced, key=lambda item: item["epc"]))


def take_by_scan(*, actor: Actor, hospital: Hospital, units: list[Unit], idempotency_key: str) -> StockOrder:
    """Take units out of a store without RFID by scanning them (same movement as a cabinet take)."""
    return _scan_order(actor, hospital, units, idempotency_key, StockOrder.Kind.TAKE)


def put_back_by_scan(*, actor: Actor, hospital: Hospital, units: list[Unit], idempotency_key: str) -> StockOrder:
    """Put taken units back where they were taken from, by scanning them."""
    return _scan_order(actor, hospital, units, idempotency_key, StockOrder.Kind.PUT_BACK)


def overdue_takes(hospital: Hospital, now: datetime.datetime | None = None) -> list[Unit]:
    """Units TAKEN and neither used nor put back within their deadline (product's, else location's)."""
    now = now or timezone.now()
    taken = Unit.objects.filter(hospital=hospital, status=UnitStatus.TAKEN).select_related("product", "location")
    return [
        unit for unit in taken.order_by("status_since")
        if unit.status_since + datetime.timedelta(hours=deadline_hours(unit)) < now
    ]


def deadline_hours(unit: Unit) -> int:
    if unit.product.return_deadline_hours is not None:
        return unit.product.return_deadline_hours
    return unit.location.return_deadline_hours if unit.location else 24


def _scan_order(actor: Actor, hospital: Hospital, units: list[Unit], key: str, kind: str) -> StockOrder:
    if not units:
        raise Refused(Refusal.NOTHING_SCANNED)
    if any(unit.hospital_id != hospital.pk for unit in units):
        raise Refused(Refusal.NOT_FOUND, what="unit")
    take = kind == StockOrder.Kind.TAKE
    movement_kind = Movement.Kind.CABINET_TAKE if take else Movement.Kind.CABINET_RETURN

    def perform() -> StockOrder:
        locked = list(Unit.objects.select_for_update(of=("self",)).select_related("location").filter(
            pk__in=[unit.pk for unit in units]).order_by("pk"))
        problems = []
        for unit in locked:
            if problem := _scan_problem(unit, take):
                problems.append(problem)
        if problems:
            raise Refused(problems)
        order = StockOrder.objects.create(hospital=hospital, kind=kind, created_by=actor.user,
                                          created_by_device=actor.device)
        for unit in locked:
            move_unit(unit=unit, kind=movement_kind, to_status=UnitStatus.TAKEN if take else _put_back_status(unit),
                      to_location=unit.location, actor=actor, idempotency_key=f"{hospital.pk}:{key}:{unit.pk}",
                      document=(Movement.DocumentType.STOCK_ORDER, order.pk), occurred_at=order.occurred_at)
        return order

    order, _ = run_once(hospital=hospital, key=key, operation=f"scan_{kind.lower()}",
                        payload=sorted(unit.pk for unit in units), perform=perform)
    return order


def _scan_problem(unit: Unit, take: bool) -> Problem | None:
    """Why this unit cannot be taken (or put back) by scan, or None."""
    if take:
        return expiry_lock_problem(unit) or transition_problem(unit, UnitStatus.TAKEN)
    if unit.status != UnitStatus.TAKEN:
        return Problem(Refusal.ILLEGAL_TRANSITION, {
            "unit": unit.serial, "current": unit.get_status_display(), "target": _put_back_status(unit).label,
        }, unit.pk)
    return transition_problem(unit, _put_back_status(unit))


def _put_back_status(unit: Unit) -> UnitStatus:
    return UnitStatus(unit.location.holds_units_as) if unit.location else UnitStatus.IN_STOCK


def _person(hospital: Hospital, user_ref: str, badge: str) -> User | None:
    if not user_ref and not badge:
        return None
    query = Q(username=user_ref) if user_ref else Q(badge=badge)
    return User.objects.filter(query, hospital=hospital, is_active=True).first()


def _last_applied_close(cabinet: Location, *, after: datetime.datetime) -> bool:
    return CabinetSession.objects.filter(cabinet=cabinet, status__in=APPLIED, closed_at__gt=after).exists()


def _normalised(epcs: list[str]) -> set[str]:
    seen = set()
    for epc in epcs:
        try:
            seen.add(normalise_epc(epc))
        except Refused:
            seen.add(str(epc).strip().upper())  # an unreadable tag is reported as unknown, not dropped
    return seen


def _unit_summary(unit: Unit) -> dict:
    return {"unit": unit.pk, "epc": unit.epc, "serial": unit.serial, "product": unit.product_id}
