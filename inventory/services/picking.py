"""Picking with FEFO (拣货), dispatch (配送) and department receipt (科室验收).

    create_pick_list → confirm_pick_scan (each unit or lot) → dispatch_pick_list → receive_delivery

A pick list's lines hold their FEFO proposal as reservations (`services/reservations.py`): two pick
lists never propose the same unit or more of a lot than is free. The picker confirms by scanning.
A scan of other stock than the proposed one is accepted when it is at the source, movable, not
expired, not reserved by anyone else, and FEFO-acceptable: **it expires no later than the proposed
stock it replaces** (the line's not-yet-picked proposal, latest expiry first); when nothing
proposed is left to replace (the proposal was short), when no free stock at the source expires
earlier. The replaced reservation is given up, the scanned stock reserved, and the pick recorded
with what was proposed (`PickedItem.deviates`).

Dispatch moves what was picked, per receiving location, into the department's IN_TRANSIT location
with one TRANSFER stock order (the delivery slip's document); what was not picked stays open on the
requisition. Receipt moves what the department accepts into its store (another TRANSFER), and what
arrived short or damaged back to the warehouse or out by a SCRAP with the reason. A department in
zero-stock mode (零库存) receives on dispatch, in the same transaction: both legs are in the ledger.

Requisition lines follow through `services/requisitions.record_fulfilments` (picked at each scan,
dispatched at dispatch, received and discrepancy at receipt). Lock order: pick list or delivery
row, then units, then lot balances (by id), then requisitions — the order the requisitions
service expects. Every refusal changes nothing.
"""
import datetime
import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import (
    Delivery,
    DeliveryItem,
    Department,
    Hospital,
    Location,
    LotBalance,
    Movement,
    PickedItem,
    PickList,
    PickListLine,
    Product,
    Requisition,
    RequisitionLine,
    Role,
    StockReservation,
    TrackingMode,
    Unit,
    User,
)
from inventory.selectors.fefo import PICKABLE_UNIT_STATUSES, fefo_acceptable, propose_fefo
from inventory.selectors.scope import departments_of
from inventory.selectors.units import resolve_scan
from inventory.services import requisitions as requisition_service
from inventory.services.idempotency import run_once
from inventory.services.ledger import expiry_lock_problem, recall_lock_problem, refuse_if_recalled, transfer_numbers
from inventory.services.reservations import lock_for_reserving, release_reservations, reserve_fefo
from inventory.services.stock import LotQuantity, scrap, transfer_stock

HOLDER = StockReservation.Holder.PICK_LIST_LINE
PICKING_ROLES = (Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR)
# Where a pick list may pick from: stores that hold stock for others (not quarantine, not in transit).
SOURCE_KINDS = (Location.Kind.CENTRAL_WAREHOUSE, Location.Kind.DEPARTMENT_STORE)
REASON_LIMIT = 200


# --- who may ---------------------------------------------------------------------------------------


def may_pick(user: User) -> bool:
    return user.has_role(*PICKING_ROLES)


def may_receive_for(user: User, department: Department) -> bool:
    """A nurse receives for her own departments; the warehouse, SPD operators and administrators
    for any department of their hospital (e.g. for a department without a nurse on the system)."""
    if department.hospital_id != user.hospital_id:
        return False
    if user.has_role(*PICKING_ROLES):
        return True
    if not user.has_role(Role.NURSE):
        return False
    allowed = departments_of(user)
    return allowed is None or department.pk in allowed


def _require(allowed: bool, action: str) -> None:
    if not allowed:
        raise Refused(Refusal.NOT_ALLOWED, action=action)


# --- the in-transit location of a department ------------------------------------------------------


def in_transit_location(department: Department) -> Location:
    """The department's IN_TRANSIT location (在途), created the first time stock is sent to it."""
    location, _created = Location.objects.get_or_create(
        hospital_id=department.hospital_id, code=f"{department.code}-TRANSIT"[:32],
        defaults={"department": department, "kind": Location.Kind.IN_TRANSIT, "name": f"{department.name}（在途）"},
    )
    return location


# --- creating a pick list -------------------------------------------------------------------------


def create_pick_list(
    *, user: User, hospital: Hospital, source_location: Location, requisition_lines: list[RequisitionLine],
    idempotency_key: str,
) -> PickList:
    """A pick list at `source_location` for the open part of each requisition line, with its FEFO
    proposal reserved. Lines must be of approved (or picking) requisitions of the hospital, with
    something open, and on no other open pick list. A line the stock cannot fully cover is still
    listed: its proposal is what there is (partial fulfilment). Once per idempotency key."""
    _require(may_pick(user), "create pick lists")
    problems = []
    if not requisition_lines:
        problems.append(Problem(Refusal.PICK_LINES_MISSING))
    if source_location.hospital_id != hospital.pk:
        problems.append(Problem(Refusal.NOT_FOUND, {"what": "location"}))
    elif source_location.is_alliance_transit:
        problems.append(Problem(Refusal.ALLIANCE_TRANSIT_LOCKED, {"item": _("Stock"), "location": source_location}))
    elif source_location.kind not in SOURCE_KINDS or not source_location.is_active:
        problems.append(Problem(Refusal.INVALID_REQUEST, {"detail": "source_location: not a store to pick from"}))
    if problems:
        raise Refused(problems)
    line_ids = sorted({line.pk for line in requisition_lines})
    payload = {"source": source_location.pk, "lines": line_ids}

    def perform() -> PickList:
        lines = list(
            RequisitionLine.objects.select_related("product").filter(pk__in=line_ids, requisition__hospital=hospital)
        )
        if len(lines) != len(line_ids):
            raise Refused(Refusal.NOT_FOUND, what="requisition line")
        # Stock first (units, then lot balances, product by product), then the requisitions.
        products = sorted({line.product for line in lines}, key=lambda p: (p.tracking != TrackingMode.UNIT, p.pk))
        for product in products:
            lock_for_reserving(location=source_location, product=product)
        requisitions = {
            r.pk: r for r in Requisition.objects.select_for_update().select_related("location")
            .filter(pk__in={line.requisition_id for line in lines}).order_by("pk")
        }
        locked = list(RequisitionLine.objects.select_for_update().select_related("product").filter(pk__in=line_ids).order_by("pk"))
        on_lists = dict(
            PickListLine.objects.filter(requisition_line__in=line_ids, is_open=True)
            .values_list("requisition_line_id", "pick_list__number")
        )
        problems = []
        for line in locked:
            requisition = requisitions[line.requisition_id]
            if line.pk in on_lists:
                problems.append(Problem(Refusal.PICK_LINE_ON_ANOTHER_LIST, {"line": line.pk, "pick_list": on_lists[line.pk]}))
            elif requisition.status not in (Requisition.Status.APPROVED, Requisition.Status.PICKING) or line.open_quantity < 1:
                problems.append(Problem(Refusal.PICK_LINE_NOT_OPEN, {
                    "line": line.pk, "requisition": requisition.number, "status": requisition.get_status_display(),
                }))
        if problems:
            raise Refused(problems)
        pick_list = PickList.objects.create(
            hospital=hospital, source_location=source_location, created_by=user, number=uuid.uuid4().hex[:32]
        )
        pick_list.number = f"PL{pick_list.created_at:%Y%m%d}-{pick_list.pk:05d}"
        pick_list.save(update_fields=["number"])
        for line in sorted(locked, key=lambda line: (line.product.tracking != TrackingMode.UNIT, line.product_id, line.pk)):
            pick_line = PickListLine.objects.create(
                pick_list=pick_list, requisition_line=line, product=line.product,
                destination=requisitions[line.requisition_id].location, quantity=line.open_quantity,
            )
            reserve_fefo(
                hospital=hospital, location=source_location, product=line.product, quantity=pick_line.quantity,
                holder=(HOLDER, pick_line.pk),
            )
        return pick_list

    pick_list, _performed = run_once(hospital=hospital, key=idempotency_key, operation="pick_list:create", payload=payload, perform=perform)
    return pick_list


def cancel_pick_list(*, user: User, pick_list: PickList) -> PickList:
    """Give up a pick list nothing has been picked on: its reservations are released and its
    requisition lines may go on another pick list."""
    _require(may_pick(user), "cancel pick lists")
    with transaction.atomic():
        locked = PickList.objects.select_for_update().get(pk=pick_list.pk)
        if locked.status != PickList.Status.OPEN or PickedItem.objects.filter(line__pick_list=locked).exists():
            raise Refused(Refusal.PICK_LIST_STATE, number=locked.number, status=locked.get_status_display(),
                          action=_("cancel"))
        _close_lines(locked)
        locked.status = PickList.Status.CANCELLED
        locked.save(update_fields=["status"])
        return locked


def _close_lines(pick_list: PickList) -> None:
    line_ids = list(pick_list.lines.filter(is_open=True).values_list("pk", flat=True))
    release_reservations(holder_type=HOLDER, holder_ids=line_ids)
    PickListLine.objects.filter(pk__in=line_ids).update(is_open=False)


# --- confirming by scan ---------------------------------------------------------------------------


def confirm_pick_scan(
    *, user: User, pick_list: PickList, code: str, quantity: object = None, now: datetime.datetime | None = None,
) -> PickedItem:
    """Record the unit or lot quantity the picker scanned on the line of this pick list it belongs to.

    `quantity` is for a lot (default: what the line still has proposed of that lot, else what it
    still needs); a unit is one. Refused with a clear reason: not on this list (PICK_SCAN_NOT_ON_LIST),
    elsewhere (PICK_SCAN_NOT_AT_SOURCE), in quarantine (QUARANTINE_RELEASE_REQUIRED), expired
    (UNIT_EXPIRED_LOCKED, LOT_EXPIRED_LOCKED), not movable (PICK_SCAN_NOT_PICKABLE), reserved by
    someone else (PICK_SCAN_RESERVED), already picked, later-expiring than FEFO allows
    (PICK_SCAN_NOT_FEFO), or more than the line needs or the lot has free."""
    _require(may_pick(user), "pick")
    hospital = pick_list.hospital
    resolution = resolve_scan(hospital, code)
    if resolution.product is None:
        raise Refused([resolution.problem])
    product = resolution.product
    if quantity is not None:
        quantity = _whole(quantity, field="quantity")
    with transaction.atomic():
        locked = PickList.objects.select_for_update().select_related("source_location").get(pk=pick_list.pk)
        if locked.status != PickList.Status.OPEN:
            raise Refused(Refusal.PICK_LIST_STATE, number=locked.number, status=locked.get_status_display(), action=_("pick"))
        lines = [
            line for line in locked.lines.filter(product=product, is_open=True).order_by("pk")
            if line.remaining_quantity > 0
        ]
        if not lines:
            raise Refused(Refusal.PICK_SCAN_NOT_ON_LIST, product=product)
        source = locked.source_location
        lock_for_reserving(location=source, product=product)
        if product.tracking == TrackingMode.UNIT:
            picked = _pick_unit(user, locked, lines, resolution, code)
        else:
            picked = _pick_lot(user, locked, lines, product, resolution.udi, quantity, code)
        picked.line.picked_quantity += picked.quantity
        picked.line.save(update_fields=["picked_quantity"])
        requisition_service.record_fulfilment(
            line=picked.line.requisition_line_id, picked=picked.quantity, user=user, now=now
        )
        return picked


def _whole(value: object, *, field: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        raise Refused(Refusal.RECEIPT_ITEM_INVALID, field=field,
                      reason=_("a whole number of at least 0") if allow_zero else _("a whole number of at least 1"))
    return value


def _unit_refusal(unit: Unit, source: Location) -> Problem | None:
    if unit.location_id != source.pk:
        if unit.location is not None and unit.location.kind == Location.Kind.QUARANTINE:
            return Problem(Refusal.QUARANTINE_RELEASE_REQUIRED, {"item": unit.serial, "location": unit.location})
        return Problem(Refusal.PICK_SCAN_NOT_AT_SOURCE, {"item": unit.serial, "location": unit.location or "—", "source": source})
    if source.kind == Location.Kind.QUARANTINE:
        return Problem(Refusal.QUARANTINE_RELEASE_REQUIRED, {"item": unit.serial, "location": source})
    if problem := expiry_lock_problem(unit) or recall_lock_problem(unit):
        return problem
    if unit.status not in PICKABLE_UNIT_STATUSES:
        return Problem(Refusal.PICK_SCAN_NOT_PICKABLE, {"item": unit.serial, "status": unit.get_status_display()})
    return None


def _pick_unit(user: User, pick_list: PickList, lines: list[PickListLine], resolution, code: str) -> PickedItem:
    if resolution.unit is None:
        raise Refused([resolution.problem])
    unit = Unit.objects.select_related("location").get(pk=resolution.unit.pk)
    if problem := _unit_refusal(unit, pick_list.source_location):
        raise Refused([problem])
    if PickedItem.objects.filter(unit=unit, line__is_open=True).exists():
        raise Refused(Refusal.PICK_SCAN_ALREADY_PICKED, item=unit.serial)
    held = StockReservation.objects.filter(unit=unit, is_active=True).first()
    by_line = {line.pk: line for line in lines}
    if held is not None and held.holder_type == HOLDER and held.holder_id in by_line:
        return PickedItem.objects.create(
            line=by_line[held.holder_id], unit=unit, lot=unit.lot, expiry=unit.expiry, quantity=1, code=code,
            picked_by=user,
        )
    if held is not None and held.holder_type == StockReservation.Holder.ALLIANCE_TRANSFER_LINE:
        raise Refused(Refusal.ALLIANCE_STOCK_RESERVED, item=f"SN {unit.serial}",
                      number=transfer_numbers({held.holder_id}).get(held.holder_id, "?"))
    if held is not None:
        raise Refused(Refusal.PICK_SCAN_RESERVED, item=unit.serial)
    line = lines[0]
    replaced = _replace_proposal(pick_list, line, _unpicked_proposal(line), unit.expiry, 1, lot=unit.lot)
    StockReservation.objects.create(
        hospital=pick_list.hospital, product=unit.product, location=pick_list.source_location, unit=unit,
        lot=unit.lot, expiry=unit.expiry, quantity=1, holder_type=HOLDER, holder_id=line.pk,
    )
    return PickedItem.objects.create(
        line=line, unit=unit, lot=unit.lot, expiry=unit.expiry, quantity=1, code=code, picked_by=user,
        deviates=True, proposed_lot=replaced[0] if replaced else "", proposed_expiry=replaced[1] if replaced else None,
    )


def _unpicked_proposal(line: PickListLine) -> list[StockReservation]:
    """The line's reservations not yet covered by a pick, latest expiry first (what a deviating
    scan replaces), each with `open` = its quantity not yet picked."""
    picked_units = set(line.picked_items.filter(unit__isnull=False).values_list("unit_id", flat=True))
    picked_lots = dict(
        line.picked_items.filter(lot_balance__isnull=False).values("lot_balance_id")
        .annotate(total=Sum("quantity")).values_list("lot_balance_id", "total")
    )
    open_ones = []
    for reservation in StockReservation.objects.filter(holder_type=HOLDER, holder_id=line.pk, is_active=True):
        if reservation.unit_id is not None:
            reservation.open = 0 if reservation.unit_id in picked_units else 1
        else:
            reservation.open = max(reservation.quantity - picked_lots.get(reservation.lot_balance_id, 0), 0)
        if reservation.open:
            open_ones.append(reservation)
    latest_first = sorted(open_ones, key=lambda r: (r.expiry is not None, r.expiry or datetime.date.min, r.lot, r.pk), reverse=True)
    return latest_first


def _replace_proposal(
    pick_list: PickList, line: PickListLine, proposal: list[StockReservation], expiry: datetime.date | None,
    quantity: int, *, lot: str,
) -> tuple[str, datetime.date | None] | None:
    """Give up `quantity` of `proposal` (the line's unpicked proposal, latest expiry first) for stock
    expiring on `expiry`, if FEFO allows it (see the module docstring); return the first replaced
    (lot, expiry), or None when nothing proposed was left to replace."""
    if not proposal:
        fresh = propose_fefo(
            hospital=pick_list.hospital, location=pick_list.source_location, product=line.product, quantity=1,
            ignoring=[(HOLDER, line.pk)],
        )
        if fresh.picks and not fefo_acceptable(expiry=expiry, proposed_expiry=fresh.picks[0].expiry):
            raise Refused(Refusal.PICK_SCAN_NOT_FEFO, lot=lot, expiry=expiry or "—", proposed_lot=fresh.picks[0].lot,
                          proposed_expiry=fresh.picks[0].expiry or "—")
        return None
    first = proposal[0]
    if not fefo_acceptable(expiry=expiry, proposed_expiry=first.expiry):
        raise Refused(Refusal.PICK_SCAN_NOT_FEFO, lot=lot, expiry=expiry or "—", proposed_lot=first.lot,
                      proposed_expiry=first.expiry or "—")
    missing = quantity
    for reservation in proposal:
        if not missing:
            break
        give_up = min(reservation.open, missing)
        missing -= give_up
        if give_up == reservation.quantity:
            reservation.is_active, reservation.released_at = False, timezone.now()
            reservation.save(update_fields=["is_active", "released_at"])
        else:
            reservation.quantity -= give_up
            reservation.save(update_fields=["quantity"])
    return first.lot, first.expiry


def _pick_lot(
    user: User, pick_list: PickList, lines: list[PickListLine], product: Product, udi, quantity: int | None, code: str,
) -> PickedItem:
    source = pick_list.source_location
    if not udi.lot:
        raise Refused(Refusal.LOT_MISSING)
    balance = LotBalance.objects.filter(product=product, lot=udi.lot, location=source).first()
    if source.kind == Location.Kind.QUARANTINE:
        raise Refused(Refusal.QUARANTINE_RELEASE_REQUIRED, item=f"{product} {udi.lot}", location=source)
    if balance is None or balance.quantity < 1:
        elsewhere = LotBalance.objects.filter(product=product, lot=udi.lot, quantity__gt=0).select_related("location").first()
        if elsewhere is not None and elsewhere.location.kind == Location.Kind.QUARANTINE:
            raise Refused(Refusal.QUARANTINE_RELEASE_REQUIRED, item=f"{product} {udi.lot}", location=elsewhere.location)
        raise Refused(Refusal.PICK_SCAN_NOT_AT_SOURCE, item=f"{product} {udi.lot}",
                      location=elsewhere.location if elsewhere else "—", source=source)
    if balance.expiry is not None and balance.expiry < timezone.localdate():
        raise Refused(Refusal.LOT_EXPIRED_LOCKED, lot=balance.lot, expiry=balance.expiry)
    refuse_if_recalled(Movement.Kind.TRANSFER, None, product_id=product.pk, lot=balance.lot)
    # The line that has this lot proposed, else the first line still to pick.
    proposals = {line.pk: _unpicked_proposal(line) for line in lines}
    line = next((line for line in lines if any(r.lot_balance_id == balance.pk for r in proposals[line.pk])), lines[0])
    proposed_here = sum(r.open for r in proposals[line.pk] if r.lot_balance_id == balance.pk)
    held_by_others = (
        StockReservation.objects.filter(lot_balance=balance, is_active=True)
        .exclude(holder_type=HOLDER, holder_id=line.pk).aggregate(total=Sum("quantity"))["total"] or 0
    )
    held_here = (
        StockReservation.objects.filter(lot_balance=balance, is_active=True, holder_type=HOLDER, holder_id=line.pk)
        .aggregate(total=Sum("quantity"))["total"] or 0
    )
    free = balance.quantity - held_by_others - held_here
    if quantity is None:
        quantity = proposed_here or min(line.remaining_quantity, max(free, 0))
        if quantity < 1:
            raise Refused(Refusal.PICK_SCAN_RESERVED, item=f"{product} {balance.lot}")
    allowed = min(line.remaining_quantity, proposed_here + max(free, 0))
    if quantity > allowed:
        if not proposed_here and free < 1:
            raise Refused(Refusal.PICK_SCAN_RESERVED, item=f"{product} {balance.lot}")
        raise Refused(Refusal.PICK_SCAN_QUANTITY_TOO_LARGE, quantity=quantity, lot=balance.lot, allowed=allowed)
    extra = quantity - min(quantity, proposed_here)
    replaced = None
    if extra:
        # Replace other proposed stock (never this lot's own proposal) by `extra` more of this lot.
        others = [r for r in proposals[line.pk] if r.lot_balance_id != balance.pk]
        replaced = _replace_proposal(pick_list, line, others, balance.expiry, extra, lot=balance.lot)
        mine = StockReservation.objects.filter(
            lot_balance=balance, is_active=True, holder_type=HOLDER, holder_id=line.pk
        ).first()
        if mine is not None:
            mine.quantity += extra
            mine.save(update_fields=["quantity"])
        else:
            StockReservation.objects.create(
                hospital=pick_list.hospital, product=product, location=source, lot_balance=balance, lot=balance.lot,
                expiry=balance.expiry, quantity=extra, holder_type=HOLDER, holder_id=line.pk,
            )
    return PickedItem.objects.create(
        line=line, lot_balance=balance, lot=balance.lot, expiry=balance.expiry, quantity=quantity, code=code,
        picked_by=user, deviates=bool(extra), proposed_lot=replaced[0] if replaced else "",
        proposed_expiry=replaced[1] if replaced else None,
    )


# --- dispatch -------------------------------------------------------------------------------------


def dispatch_pick_list(
    *, user: User, pick_list: PickList, idempotency_key: str, now: datetime.datetime | None = None,
) -> PickList:
    """Send what was picked: one delivery (配送单) per receiving location, its stock moved into the
    department's IN_TRANSIT location by one TRANSFER stock order. What was not picked is released
    and stays open on its requisition line. A zero-stock department receives it at once. Once per
    idempotency key; a pick list is dispatched once (PICK_LIST_STATE otherwise)."""
    _require(may_pick(user), "dispatch")
    hospital = pick_list.hospital
    payload = {"pick_list": pick_list.pk}

    def perform() -> PickList:
        locked = PickList.objects.select_for_update().select_related("source_location").get(pk=pick_list.pk)
        if locked.status != PickList.Status.OPEN:
            raise Refused(Refusal.PICK_LIST_STATE, number=locked.number, status=locked.get_status_display(),
                          action=_("dispatch"))
        items = list(
            PickedItem.objects.filter(line__pick_list=locked, line__is_open=True)
            .select_related("line__destination__department", "line__product", "unit").order_by("pk")
        )
        if not items:
            raise Refused(Refusal.PICK_NOTHING_PICKED, number=locked.number)
        moment = now or timezone.now()
        actor = Actor(user=user)
        by_destination: dict[int, list[PickedItem]] = defaultdict(list)
        for item in items:
            by_destination[item.line.destination_id].append(item)
        deliveries = []
        for destination_id in sorted(by_destination):
            group = by_destination[destination_id]
            destination = group[0].line.destination
            department = destination.department
            transit = in_transit_location(department)
            order = transfer_stock(
                actor=actor, hospital=hospital, to_location=transit, from_location=locked.source_location,
                units=[item.unit for item in group if item.unit_id],
                lots=_lot_quantities(group, locked.source_location),
                idempotency_key=f"{idempotency_key}:dispatch:{destination_id}"[:128],
                note=f"{locked.number} → {destination.name}"[:500],
            )
            delivery = Delivery.objects.create(
                hospital=hospital, number=uuid.uuid4().hex[:32], pick_list=locked, department=department,
                destination=destination, in_transit_location=transit, dispatch_order=order, dispatched_by=user,
                dispatched_at=moment, zero_stock=getattr(department, "zero_stock", False),
            )
            delivery.number = f"DL{moment:%Y%m%d}-{delivery.pk:05d}"
            delivery.save(update_fields=["number"])
            DeliveryItem.objects.bulk_create(_delivery_items(delivery, group))
            deliveries.append(delivery)
        _close_lines(locked)
        locked.status, locked.dispatched_by, locked.dispatched_at = PickList.Status.DISPATCHED, user, moment
        locked.save(update_fields=["status", "dispatched_by", "dispatched_at"])
        dispatched: dict[int, int] = defaultdict(int)
        for item in items:
            dispatched[item.line.requisition_line_id] += item.quantity
        requisition_service.mark_lines_dispatched(quantities=dict(dispatched), user=user, now=moment)
        for delivery in deliveries:
            if delivery.zero_stock:
                _receive(user=user, delivery=delivery, decisions={}, idempotency_key=f"{idempotency_key}:zero:{delivery.pk}",
                         now=moment)
        return locked

    dispatched_list, _performed = run_once(
        hospital=hospital, key=idempotency_key, operation="pick_list:dispatch", payload=payload, perform=perform
    )
    return dispatched_list


def _lot_quantities(items: list[PickedItem], source: Location) -> list[LotQuantity]:
    totals: dict[tuple[int, str], int] = defaultdict(int)
    products = {}
    for item in items:
        if item.lot_balance_id:
            totals[(item.line.product_id, item.lot)] += item.quantity
            products[item.line.product_id] = item.line.product
    return [LotQuantity(products[pid], lot, quantity, source) for (pid, lot), quantity in sorted(totals.items())]


def _delivery_items(delivery: Delivery, items: list[PickedItem]) -> list[DeliveryItem]:
    lots: dict[tuple[int, str], DeliveryItem] = {}
    rows = []
    for item in items:
        if item.unit_id:
            rows.append(DeliveryItem(
                delivery=delivery, pick_list_line=item.line, product=item.line.product, unit=item.unit,
                lot=item.lot, expiry=item.expiry, quantity=1,
            ))
            continue
        key = (item.line_id, item.lot)
        if key in lots:
            lots[key].quantity += item.quantity
        else:
            lots[key] = DeliveryItem(
                delivery=delivery, pick_list_line=item.line, product=item.line.product, lot=item.lot,
                expiry=item.expiry, quantity=item.quantity,
            )
            rows.append(lots[key])
    return rows


# --- department receipt ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemDecision:
    """What the department found for one delivery item: how much it accepts, and for the rest
    whether it was short or damaged, what was done with it, and why."""

    received: object
    discrepancy: str = ""
    action: str = ""
    reason: str = ""


def receive_delivery(
    *, user: User, delivery: Delivery, idempotency_key: str, decisions: dict[int, ItemDecision] | None = None,
    now: datetime.datetime | None = None,
) -> Delivery:
    """The department confirms a delivery: every item is accepted in full unless `decisions` (by
    item id) says otherwise; what is not accepted is short or damaged, and goes back to the pick
    list's source (RETURNED) or is written off (WRITTEN_OFF, a SCRAP movement) with the reason.
    Accepted stock moves from in transit into the delivery's destination (TRANSFER). Once per
    idempotency key; a delivery is received once (DELIVERY_ALREADY_RECEIVED)."""
    _require(may_receive_for(user, delivery.department), "receive for this department")
    decisions = decisions or {}
    items = {item.pk: item for item in delivery.items.all()}
    problems = []
    for item_id, decision in decisions.items():
        problems += _decision_problems(items.get(item_id), item_id, decision)
    if problems:
        raise Refused(problems)
    payload = {
        "delivery": delivery.pk,
        "decisions": sorted((pk, d.received, d.discrepancy, d.action, d.reason) for pk, d in decisions.items()),
    }
    received, _performed = run_once(
        hospital=delivery.hospital, key=idempotency_key, operation="delivery:receive", payload=payload,
        perform=lambda: _receive(user=user, delivery=delivery, decisions=decisions, idempotency_key=idempotency_key,
                                 now=now),
    )
    return received


def _decision_problems(item: DeliveryItem | None, item_id: int, decision: ItemDecision) -> list[Problem]:
    field = f"items[{item_id}]"
    if item is None:
        return [Problem(Refusal.NOT_FOUND, {"what": "delivery item"})]
    received = decision.received
    if isinstance(received, bool) or not isinstance(received, int) or received < 0:
        return [Problem(Refusal.RECEIPT_ITEM_INVALID, {"field": f"{field}.received",
                                                       "reason": _("a whole number of at least 0")})]
    if received > item.quantity:
        return [Problem(Refusal.RECEIPT_ITEM_INVALID, {
            "field": f"{field}.received", "reason": _("at most the %(quantity)s dispatched") % {"quantity": item.quantity},
        })]
    if received == item.quantity:
        return []
    problems = []
    if decision.discrepancy not in DeliveryItem.Discrepancy.values:
        problems.append(Problem(Refusal.RECEIPT_ITEM_INVALID, {"field": f"{field}.discrepancy",
                                                               "reason": _("SHORT or DAMAGED")}))
    if decision.action not in DeliveryItem.Action.values:
        problems.append(Problem(Refusal.RECEIPT_ITEM_INVALID, {"field": f"{field}.action",
                                                               "reason": _("RETURNED or WRITTEN_OFF")}))
    if not decision.reason.strip():
        problems.append(Problem(Refusal.RECEIPT_ITEM_INVALID, {"field": f"{field}.reason", "reason": _("required")}))
    elif len(decision.reason) > REASON_LIMIT:
        problems.append(Problem(Refusal.RECEIPT_ITEM_INVALID, {
            "field": f"{field}.reason", "reason": _("at most %(limit)s characters") % {"limit": REASON_LIMIT},
        }))
    return problems


def _receive(
    *, user: User, delivery: Delivery, decisions: dict[int, ItemDecision], idempotency_key: str,
    now: datetime.datetime | None,
) -> Delivery:
    locked = Delivery.objects.select_for_update().select_related(
        "pick_list__source_location", "destination", "in_transit_location"
    ).get(pk=delivery.pk)
    if locked.status != Delivery.Status.IN_TRANSIT:
        raise Refused(Refusal.DELIVERY_ALREADY_RECEIVED, number=locked.number)
    moment = now or timezone.now()
    actor = Actor(user=user)
    transit = locked.in_transit_location
    buckets: dict[str, tuple[list[Unit], list[LotQuantity]]] = {
        "accept": ([], []), DeliveryItem.Action.RETURNED: ([], []), DeliveryItem.Action.WRITTEN_OFF: ([], []),
    }
    write_off_reasons = set()
    items = list(locked.items.select_related("product", "unit", "pick_list_line").order_by("pk"))
    received: dict[int, int] = defaultdict(int)
    short: dict[int, int] = defaultdict(int)
    for item in items:
        decision = decisions.get(item.pk, ItemDecision(received=item.quantity))
        item.received_quantity = decision.received
        item.discrepancy_quantity = item.quantity - decision.received
        if item.discrepancy_quantity:
            item.discrepancy, item.action, item.reason = decision.discrepancy, decision.action, decision.reason.strip()
            write_off_reasons.add(f"{item.discrepancy}: {item.reason}")
        line_id = item.pick_list_line.requisition_line_id
        received[line_id] += item.received_quantity
        short[line_id] += item.discrepancy_quantity
        for bucket, quantity in (("accept", item.received_quantity), (item.action, item.discrepancy_quantity)):
            if not quantity:
                continue
            units, lots = buckets[bucket]
            if item.unit_id:
                units.append(item.unit)
            else:
                lots.append(LotQuantity(item.product, item.lot, quantity, transit))
    note = f"{locked.number}"
    units, lots = buckets["accept"]
    if units or lots:
        locked.receipt_order = transfer_stock(
            actor=actor, hospital=locked.hospital, to_location=locked.destination, from_location=transit,
            units=units, lots=_merged(lots), idempotency_key=f"{idempotency_key}:receive"[:128], note=note,
        )
    units, lots = buckets[DeliveryItem.Action.RETURNED]
    if units or lots:
        locked.return_order = transfer_stock(
            actor=actor, hospital=locked.hospital, to_location=locked.pick_list.source_location, from_location=transit,
            units=units, lots=_merged(lots), idempotency_key=f"{idempotency_key}:return"[:128],
            note=f"{note} " + "; ".join(sorted(write_off_reasons))[:400],
        )
    units, lots = buckets[DeliveryItem.Action.WRITTEN_OFF]
    if units or lots:
        locked.write_off_order = scrap(
            actor=actor, hospital=locked.hospital, reason_code="RECEIPT_DISCREPANCY", units=units, lots=_merged(lots),
            idempotency_key=f"{idempotency_key}:write-off"[:128], note=f"{note} " + "; ".join(sorted(write_off_reasons))[:400],
        )
    DeliveryItem.objects.bulk_update(items, ["received_quantity", "discrepancy_quantity", "discrepancy", "action", "reason"])
    locked.status, locked.received_by, locked.received_at = Delivery.Status.RECEIVED, user, moment
    locked.save(update_fields=["status", "received_by", "received_at", "receipt_order", "return_order", "write_off_order"])
    requisition_service.mark_lines_received(
        quantities={pk: q for pk, q in received.items() if q},
        discrepancies={pk: q for pk, q in short.items() if q}, user=user, now=moment,
    )
    return locked


def _merged(lots: list[LotQuantity]) -> list[LotQuantity]:
    totals: dict[tuple[int, str], int] = defaultdict(int)
    products = {}
    for lot in lots:
        totals[(lot.product.pk, lot.lot)] += lot.quantity
        products[lot.product.pk] = lot.product
    source = lots[0].from_location if lots else None
    return [LotQuantity(products[pid], lot, q, source) for (pid, lot), q in sorted(totals.items())]
