"""Transfers between member hospitals of a county alliance (医共体调拨): the one path across hospitals.

A transfer is a pair of documents created together: the issue (调出单) in the sending hospital's
books and the receipt (调入单) in the receiving hospital's books. Its life:

    create ─▶ PENDING_APPROVAL ─approve (receiver)─▶ APPROVED ─dispatch (sender)─▶ IN_TRANSIT
           ─▶ APPROVED (emergency allocation 应急调拨, or distribution of a central order: no approval)
    IN_TRANSIT ─scan + receive (receiver)─▶ RECEIVED;  PENDING_APPROVAL ─reject (receiver)─▶ REJECTED
    PENDING_APPROVAL / APPROVED ─cancel (sender)─▶ CANCELLED

Whose books, when (decided here, documented in docs/alliance-transfers.md):

- **Dispatch** is a TRANSFER inside the sender's books, from its store to its alliance in-transit
  location (`ALLIANCE-TRANSIT`). In transit the stock is still the sender's: a monthly close
  snapshots it there, in the sender's books, and the receiver's books do not hold it yet.
- **Receipt** writes, in one transaction at one moment, an ALLIANCE_OUT movement in the sender's
  books (out of in transit) and an ALLIANCE_IN movement in the receiver's (into its store), for
  exactly the units and the cost layers accepted (`ledger.hand_over_unit` / `hand_over_lot`): the
  sender's out = the receiver's in, in quantity and value, in the same period of both.
- What arrives short or damaged never enters the receiver's books: it goes back to the sender's
  store (RETURNED, a TRANSFER) or is written off in the sender's books (WRITTEN_OFF, a SCRAP with
  reason RECEIPT_DISCREPANCY), as a department receipt of a distribution does.

Ordinary moves to another hospital's location stay refused by `services.stock` (NOT_FOUND).
From creation to dispatch the transfer's stock is reserved for its lines (`StockReservation`, holder
ALLIANCE_TRANSFER_LINE): the FEFO proposal and pick scans skip it and the ledger refuses any other
movement of it (`ledger.refuse_if_held`); a rejection or a cancellation releases it, the dispatch
consumes it. From dispatch to receipt it sits at ALLIANCE-TRANSIT, which only the transfer's own
receipt, return or write-off may leave.
Lock order: transfer row, units by id, lot balances by id.
"""
import datetime
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from devices.identification import ParseError, parse_udi
from inventory.actors import Actor
from inventory.alliance import holds_alliance_role
from inventory.errors import Problem, Refusal, Refused
from inventory.models import (
    AllianceTransfer,
    AllianceTransferLine,
    CentralOrder,
    CentralOrderAllocation,
    Hospital,
    Location,
    LotBalance,
    LotMovementLayer,
    Movement,
    Owner,
    Product,
    Role,
    StockReservation,
    Unit,
    UnitStatus,
    User,
)
from inventory.services.expensing import expense_arrival
from inventory.services.idempotency import run_once
from inventory.services.ledger import (
    LayerDraw,
    expiry_lock_problem,
    hand_over_lot,
    hand_over_unit,
    move_lot,
    move_unit,
    recall_lock_problem,
)
from inventory.services.recall import follow_receipt
from inventory.services.reservations import release_reservations
from inventory.services.stock import LotQuantity, transfer_stock
from inventory.validators import personal_id_problems

# Who works a hospital's side of a transfer (sends, approves, receives).
TRANSFER_ROLES = (Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR)
# Who of the lead hospital acts for the alliance (central orders, the regional warehouse, settlement).
LEAD_STEWARD_ROLES = (Role.ADMIN, Role.SPD_OPERATOR)
SOURCE_KINDS = (Location.Kind.CENTRAL_WAREHOUSE, Location.Kind.DEPARTMENT_STORE)
DESTINATION_KINDS = (Location.Kind.CENTRAL_WAREHOUSE, Location.Kind.DEPARTMENT_STORE)
TRANSIT_CODE = Location.ALLIANCE_TRANSIT_CODE
REASON_LIMIT = 200
DOCUMENT = Movement.DocumentType.ALLIANCE_TRANSFER


# --- who may -------------------------------------------------------------------------------------


def can_act_for_alliance(user: User) -> bool:
    """The one permission decision for alliance-wide work: placing and distributing central
    orders, working the regional warehouse, issuing allocation statements, and sending on behalf
    of the alliance. An alliance administrator (superuser with no hospital), or an administrator or
    SPD operator of the alliance's lead hospital (牵头医院), or an alliance SPD operator or alliance
    administrator (联盟SPD运营 / 联盟管理员) of a member. Alliance auditors only read."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "supplier_id", None):
        return False
    if user.is_superuser and getattr(user, "hospital_id", None) is None:
        return True
    hospital = user.hospital
    if hospital is None or not hospital.alliance:
        return False
    if holds_alliance_role(user, Role.ALLIANCE_OPERATOR, Role.ALLIANCE_ADMIN):
        return True
    return hospital.is_lead and user.has_role(*LEAD_STEWARD_ROLES)


def works_for(user: User, hospital: Hospital) -> bool:
    """`user` may work `hospital`'s side of a transfer: its warehouse, SPD operators, administrators
    (or an alliance administrator)."""
    if user.is_superuser and getattr(user, "hospital_id", None) is None:
        return True
    return user.hospital_id == hospital.pk and user.has_role(*TRANSFER_ROLES)


def transfers_visible_to(user: User) -> QuerySet[AllianceTransfer]:
    """The transfers `user` may see: those its hospital sends or receives (all, for an alliance
    administrator); another hospital's transfer is a 404."""
    transfers = AllianceTransfer.objects.select_related("from_hospital", "to_hospital")
    if user.is_superuser and getattr(user, "hospital_id", None) is None:
        return transfers
    if getattr(user, "hospital_id", None) is None or getattr(user, "supplier_id", None):
        return transfers.none()
    return transfers.filter(Q(from_hospital_id=user.hospital_id) | Q(to_hospital_id=user.hospital_id))


def _require(allowed: bool, action: str) -> None:
    if not allowed:
        raise Refused(Refusal.NOT_ALLOWED, action=action)


def _refuse_state(transfer: AllianceTransfer, allowed: tuple[str, ...], action: str) -> None:
    if transfer.status not in allowed:
        raise Refused(Refusal.ALLIANCE_TRANSFER_STATE, number=transfer.issue_number,
                      status=transfer.get_status_display(), action=action)


# --- the catalog and places of the other side ------------------------------------------------------


def receiving_product(product: Product, hospital: Hospital) -> Product | None:
    """The receiving hospital's own catalog entry for `product` (the same UDI-DI, active): each
    member keeps its own internal code, HIS charge code and prices."""
    return Product.objects.filter(hospital=hospital, udi_di=product.udi_di, is_active=True).first()


def alliance_transit_location(hospital: Hospital) -> Location:
    """The hospital's alliance in-transit location (医共体调拨在途), created on first use."""
    location, _created = Location.objects.get_or_create(
        hospital=hospital, code=TRANSIT_CODE,
        defaults={"kind": Location.Kind.IN_TRANSIT, "name": "医共体调拨在途"},
    )
    return location


def alliance_members(hospital: Hospital) -> QuerySet[Hospital]:
    """The other hospitals of `hospital`'s alliance (none when it belongs to none)."""
    if not hospital.alliance:
        return Hospital.objects.none()
    return Hospital.objects.filter(alliance=hospital.alliance).exclude(pk=hospital.pk)


# --- creating ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferLot:
    """A quantity of one lot to send from the transfer's source location."""

    product: Product
    lot: str
    quantity: int
    allocation: CentralOrderAllocation | None = None


def create_transfer(
    *, user: User, source_location: Location, to_hospital: Hospital, destination: Location, idempotency_key: str,
    units: list[Unit] = (), lots: list[TransferLot] = (), kind: str = AllianceTransfer.Kind.ORDINARY,
    reason: str = "", central_order: CentralOrder | None = None,
    unit_allocations: dict[int, CentralOrderAllocation] | None = None,
) -> AllianceTransfer:
    """Create a transfer's issue and receipt together, naming the stock it will send.

    An ordinary transfer waits for the receiver's approval; an emergency allocation (应急调拨, reason
    required) and a distribution of a central order are approved at once and flagged by their kind.
    The stock must be the sender's own (no consignment), movable, unexpired and not recalled at the
    source, on no other open transfer; the receiver must have each product in its catalog.
    All problems are listed together; nothing is written. Once per idempotency key.
    """
    sender = source_location.hospital
    _require(works_for(user, sender) or (can_act_for_alliance(user) and _same_alliance(user, sender)),
             _("send stock from this hospital"))
    if kind == AllianceTransfer.Kind.DISTRIBUTION and central_order is None:
        raise Refused(Refusal.INVALID_REQUEST, detail="a distribution is made from a central order")
    _refuse_foreign(sender, to_hospital)
    problems = personal_id_problems(note=reason)
    if kind == AllianceTransfer.Kind.EMERGENCY and not reason.strip():
        problems.append(Problem(Refusal.REASON_REQUIRED))
    if len(reason) > 500:
        problems.append(Problem(Refusal.INVALID_REQUEST, {"detail": "reason: at most 500 characters"}))
    if not units and not lots:
        problems.append(Problem(Refusal.NOTHING_SCANNED))
    if source_location.kind not in SOURCE_KINDS or not source_location.is_active:
        problems.append(Problem(Refusal.ALLIANCE_LOCATION_INVALID, {"location": source_location, "role": "发出库位"}))
    if destination.hospital_id != to_hospital.pk:
        raise Refused(Refusal.NOT_FOUND, what="location")
    if destination.kind not in DESTINATION_KINDS or not destination.is_active:
        problems.append(Problem(Refusal.ALLIANCE_LOCATION_INVALID, {"location": destination, "role": "接收库位"}))
    if any(unit.hospital_id != sender.pk for unit in units) or any(
            lot.product.hospital_id != sender.pk for lot in lots):
        raise Refused(Refusal.NOT_FOUND, what="unit")
    if problems:
        raise Refused(problems)
    payload = {
        "source": source_location.pk, "to": to_hospital.pk, "destination": destination.pk, "kind": kind,
        "reason": reason, "units": sorted(unit.pk for unit in units),
        "lots": sorted((lot.product.pk, lot.lot, lot.quantity) for lot in lots),
        "central_order": central_order.pk if central_order else None,
    }

    def perform() -> AllianceTransfer:
        return _create(user=user, sender=sender, source_location=source_location, to_hospital=to_hospital,
                       destination=destination, units=list(units), lots=list(lots), kind=kind, reason=reason.strip(),
                       central_order=central_order, unit_allocations=unit_allocations or {})

    transfer, _performed = run_once(hospital=sender, key=idempotency_key, operation="alliance_transfer:create",
                                    payload=payload, perform=perform)
    return transfer


def _same_alliance(user: User, hospital: Hospital) -> bool:
    if user.hospital_id is None:
        return True
    return bool(hospital.alliance) and hospital.alliance == user.hospital.alliance


def _refuse_foreign(sender: Hospital, receiver: Hospital) -> None:
    """Another alliance's hospital (or the sender itself) is not a member one can send to."""
    if not sender.alliance or receiver.alliance != sender.alliance or receiver.pk == sender.pk:
        raise Refused(Refusal.ALLIANCE_NOT_MEMBER, hospital=receiver)


def _create(
    *, user: User, sender: Hospital, source_location: Location, to_hospital: Hospital, destination: Location,
    units: list[Unit], lots: list[TransferLot], kind: str, reason: str, central_order: CentralOrder | None,
    unit_allocations: dict[int, CentralOrderAllocation],
) -> AllianceTransfer:
    locked_units = list(Unit.objects.select_for_update(of=("self",)).select_related("product", "location")
                        .filter(pk__in=[unit.pk for unit in units]).order_by("pk"))
    balances = {
        (b.product_id, b.lot): b
        for b in LotBalance.objects.select_for_update().select_related("product").filter(
            location=source_location, product_id__in={lot.product.pk for lot in lots},
            lot__in={lot.lot for lot in lots}).order_by("pk")
    }
    problems: list[Problem] = []
    on_open = set(AllianceTransferLine.objects.filter(
        unit_id__in=[unit.pk for unit in locked_units], transfer__status__in=AllianceTransfer.OPEN_STATUSES,
    ).values_list("unit_id", flat=True))
    active = StockReservation.objects.filter(is_active=True)
    reserved_units = set(active.filter(unit_id__in=[unit.pk for unit in locked_units]).values_list("unit_id", flat=True))
    reserved_lots: dict[int, int] = defaultdict(int)
    for balance_id, quantity in active.filter(lot_balance_id__in=[b.pk for b in balances.values()]).values_list(
            "lot_balance_id", "quantity"):
        reserved_lots[balance_id] += quantity
    targets: dict[int, Product | None] = {}

    def target(product: Product) -> Product | None:
        if product.pk not in targets:
            targets[product.pk] = receiving_product(product, to_hospital)
            if targets[product.pk] is None:
                problems.append(Problem(Refusal.ALLIANCE_PRODUCT_NOT_IN_CATALOG,
                                        {"hospital": to_hospital, "product": product}, product.pk))
        return targets[product.pk]

    for unit in locked_units:
        item = f"SN {unit.serial}"
        if unit.location_id != source_location.pk or unit.status != UnitStatus.IN_STOCK:
            problems.append(_not_transferable(item, _("it is not in stock at the source"), unit.pk))
        elif unit.owner != Owner.HOSPITAL:
            problems.append(_not_transferable(item, _("it is consignment stock (寄售)"), unit.pk))
        elif unit.pk in on_open:
            problems.append(_not_transferable(item, _("it is on another open transfer"), unit.pk))
        elif unit.pk in reserved_units:
            problems.append(_not_transferable(item, _("it is reserved for a pick list"), unit.pk))
        elif problem := expiry_lock_problem(unit) or recall_lock_problem(unit):
            problems.append(problem)
        target(unit.product)
    requested: dict[tuple[int, str], int] = defaultdict(int)
    for lot in lots:
        requested[(lot.product.pk, lot.lot)] += lot.quantity
        if lot.quantity < 1:
            problems.append(Problem(Refusal.QUANTITY_INVALID))
    for (product_id, lot_number), quantity in requested.items():
        balance = balances.get((product_id, lot_number))
        item = f"批号 {lot_number}"
        free = balance.quantity - reserved_lots[balance.pk] if balance else 0
        if balance is None or free < quantity:  # what is reserved (other transfers, pick lists) is not available
            problems.append(Problem(Refusal.INSUFFICIENT_STOCK, {
                "lot": lot_number, "location": source_location, "available": max(free, 0), "requested": quantity}))
        elif balance.owner != Owner.HOSPITAL:
            problems.append(_not_transferable(item, _("it is consignment stock (寄售)")))
        elif balance.expiry is not None and balance.expiry < timezone.localdate():
            problems.append(Problem(Refusal.LOT_EXPIRED_LOCKED, {"lot": lot_number, "expiry": balance.expiry}))
    for lot in lots:
        target(lot.product)
    if problems:
        raise Refused(problems)
    now = timezone.now()
    status = (AllianceTransfer.Status.PENDING_APPROVAL if kind == AllianceTransfer.Kind.ORDINARY
              else AllianceTransfer.Status.APPROVED)
    transfer = AllianceTransfer.objects.create(
        alliance=sender.alliance, kind=kind, status=status, from_hospital=sender, to_hospital=to_hospital,
        issue_number=f"new-out-{now.timestamp()}-{user.pk}", receipt_number=f"new-in-{now.timestamp()}-{user.pk}",
        source_location=source_location, destination=destination, central_order=central_order, reason=reason,
        created_by=user, created_at=now,
    )
    day = timezone.localdate(now)
    transfer.issue_number = f"DC{day:%Y%m%d}-{transfer.pk:06d}"
    transfer.receipt_number = f"DR{day:%Y%m%d}-{transfer.pk:06d}"
    transfer.save(update_fields=["issue_number", "receipt_number"])
    lines = [
        AllianceTransferLine(transfer=transfer, product=unit.product, receiving_product=targets[unit.product_id],
                             unit=unit, lot=unit.lot, expiry=unit.expiry, quantity=1, value=unit.unit_cost,
                             allocation=unit_allocations.get(unit.pk))
        for unit in locked_units
    ]
    lines += [
        AllianceTransferLine(transfer=transfer, product=lot.product, receiving_product=targets[lot.product.pk],
                             lot=lot.lot, expiry=balances[(lot.product.pk, lot.lot)].expiry, quantity=lot.quantity,
                             allocation=lot.allocation)
        for lot in lots
    ]
    AllianceTransferLine.objects.bulk_create(lines)
    _reserve(transfer, lines, balances)
    return transfer


def _reserve(transfer: AllianceTransfer, lines: list[AllianceTransferLine],
             balances: dict[tuple[int, str], LotBalance]) -> None:
    """Hold each line's stock for the transfer until its dispatch (the units and balances are locked)."""
    StockReservation.objects.bulk_create(
        StockReservation(
            hospital=transfer.from_hospital, product=line.product, location=transfer.source_location,
            unit=line.unit, lot_balance=None if line.unit_id else balances[(line.product_id, line.lot)],
            lot=line.lot, expiry=line.expiry, quantity=line.quantity,
            holder_type=StockReservation.Holder.ALLIANCE_TRANSFER_LINE, holder_id=line.pk,
        )
        for line in lines
    )


def _release(transfer: AllianceTransfer) -> None:
    """The transfer's reservations end: released (rejected, cancelled) or consumed (dispatched)."""
    release_reservations(holder_type=StockReservation.Holder.ALLIANCE_TRANSFER_LINE,
                         holder_ids=list(transfer.lines.values_list("pk", flat=True)))


def _not_transferable(item: str, reason: str, key: object = None) -> Problem:
    return Problem(Refusal.ALLIANCE_STOCK_NOT_TRANSFERABLE, {"item": item, "reason": reason}, key)


# --- deciding ------------------------------------------------------------------------------------


def approve_transfer(*, user: User, transfer: AllianceTransfer) -> AllianceTransfer:
    """The receiving hospital agrees to take the transfer (调入审批)."""
    return _decide(user=user, transfer=transfer, to=AllianceTransfer.Status.APPROVED, reason="")


def reject_transfer(*, user: User, transfer: AllianceTransfer, reason: str) -> AllianceTransfer:
    """The receiving hospital refuses the transfer, with a reason."""
    if not reason.strip():
        raise Refused(Refusal.REASON_REQUIRED)
    return _decide(user=user, transfer=transfer, to=AllianceTransfer.Status.REJECTED, reason=reason.strip()[:500])


def _decide(*, user: User, transfer: AllianceTransfer, to: str, reason: str) -> AllianceTransfer:
    _require(works_for(user, transfer.to_hospital), _("decide on this transfer"))
    with transaction.atomic():
        locked = AllianceTransfer.objects.select_for_update().get(pk=transfer.pk)
        _refuse_state(locked, (AllianceTransfer.Status.PENDING_APPROVAL,),
                      _("be approved") if to == AllianceTransfer.Status.APPROVED else _("be rejected"))
        locked.status, locked.decided_by, locked.decided_at = to, user, timezone.now()
        locked.decision_reason = reason
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
        if to == AllianceTransfer.Status.REJECTED:
            _release(locked)
        _release_allocations(locked, {line.pk: line.quantity for line in locked.lines.all()})
    return locked


def cancel_transfer(*, user: User, transfer: AllianceTransfer, reason: str) -> AllianceTransfer:
    """The sender withdraws a transfer not yet dispatched, with a reason."""
    _require(works_for(user, transfer.from_hospital) or can_act_for_alliance(user) and _same_alliance(
        user, transfer.from_hospital), _("cancel this transfer"))
    if not reason.strip():
        raise Refused(Refusal.REASON_REQUIRED)
    with transaction.atomic():
        locked = AllianceTransfer.objects.select_for_update().get(pk=transfer.pk)
        _refuse_state(locked, (AllianceTransfer.Status.PENDING_APPROVAL, AllianceTransfer.Status.APPROVED),
                      _("be cancelled"))
        locked.status, locked.decision_reason = AllianceTransfer.Status.CANCELLED, reason.strip()[:500]
        locked.decided_by, locked.decided_at = user, timezone.now()
        locked.save(update_fields=["status", "decision_reason", "decided_by", "decided_at"])
        _release(locked)
        _release_allocations(locked, {line.pk: line.quantity for line in locked.lines.all()})
    return locked


def _release_allocations(transfer: AllianceTransfer, quantities: dict[int, int]) -> None:
    """What a distribution did not deliver (rejected, cancelled, short) is open again on its central order."""
    if transfer.central_order_id is None:
        return
    per_allocation: dict[int, int] = defaultdict(int)
    for line in transfer.lines.filter(pk__in=list(quantities), allocation__isnull=False):
        per_allocation[line.allocation_id] += quantities[line.pk]
    for allocation_id, quantity in sorted(per_allocation.items()):
        if quantity:
            CentralOrderAllocation.objects.filter(pk=allocation_id).update(
                distributed_quantity=F("distributed_quantity") - quantity)


# --- dispatch ------------------------------------------------------------------------------------


def dispatch_transfer(*, user: User, transfer: AllianceTransfer, idempotency_key: str) -> AllianceTransfer:
    """The sender sends the approved transfer: its stock moves, in the sender's books, from the
    source to the sender's alliance in-transit location (one TRANSFER order, every check of a
    transfer applying), and each line records the cost that travels. Once per idempotency key."""
    _require(works_for(user, transfer.from_hospital) or can_act_for_alliance(user) and _same_alliance(
        user, transfer.from_hospital), _("dispatch this transfer"))

    def perform() -> AllianceTransfer:
        locked = AllianceTransfer.objects.select_for_update().select_related("source_location").get(pk=transfer.pk)
        _refuse_state(locked, (AllianceTransfer.Status.APPROVED,), _("be dispatched"))
        lines = list(locked.lines.select_related("product", "unit").order_by("pk"))
        transit = alliance_transit_location(locked.from_hospital)
        _release(locked)  # consumed by the move below (in this transaction: a refused dispatch keeps them)
        order = transfer_stock(
            actor=Actor(user=user), hospital=locked.from_hospital, to_location=transit,
            from_location=locked.source_location, units=[line.unit for line in lines if line.unit_id],
            lots=[LotQuantity(line.product, line.lot, line.quantity, locked.source_location)
                  for line in lines if not line.unit_id],
            idempotency_key=f"alliance:{locked.pk}:dispatch", note=locked.issue_number, alliance_dispatch=True,
        )
        pool = _dispatched_layers(order.pk)
        for line in lines:
            if not line.unit_id:
                drawn, pool[(line.product_id, line.lot)] = _split(pool[(line.product_id, line.lot)], line.quantity)
                line.value = sum((draw.quantity * draw.unit_cost for draw in drawn), Decimal("0.00"))
        AllianceTransferLine.objects.bulk_update(lines, ["value"])
        locked.status, locked.in_transit_location, locked.dispatch_order = (
            AllianceTransfer.Status.IN_TRANSIT, transit, order)
        locked.dispatched_by, locked.dispatched_at = user, order.occurred_at
        locked.save(update_fields=["status", "in_transit_location", "dispatch_order", "dispatched_by",
                                   "dispatched_at"])
        return locked

    dispatched, _performed = run_once(hospital=transfer.from_hospital, key=idempotency_key,
                                      operation="alliance_transfer:dispatch", payload={"transfer": transfer.pk},
                                      perform=perform)
    return dispatched


def _dispatched_layers(order_id: int) -> dict[tuple[int, str], list[LayerDraw]]:
    """The cost layers the dispatch order moved per lot, oldest first (lines of one lot take them in
    line order, as the dispatch drew them)."""
    layers: dict[tuple[int, str], list[LayerDraw]] = defaultdict(list)
    rows = LotMovementLayer.objects.filter(
        movement__document_type=Movement.DocumentType.STOCK_ORDER, movement__document_id=order_id,
        movement__unit__isnull=True,
    ).values_list("movement__product_id", "movement__lot", "receipt_id", "quantity", "unit_cost", "is_gift")
    for product_id, lot, receipt_id, quantity, unit_cost, is_gift in rows.order_by(
            F("receipt_id").asc(nulls_first=True)):
        layers[(product_id, lot)].append(LayerDraw(receipt_id, quantity, unit_cost, is_gift))
    return layers


def _split(draws: list[LayerDraw], quantity: int) -> tuple[list[LayerDraw], list[LayerDraw]]:
    """`quantity` of `draws` (oldest first) and the rest."""
    taken, rest, left = [], [], quantity
    for draw in draws:
        take = min(left, draw.quantity)
        if take:
            taken.append(LayerDraw(draw.receipt_id, take, draw.unit_cost, draw.is_gift))
        if draw.quantity - take:
            rest.append(LayerDraw(draw.receipt_id, draw.quantity - take, draw.unit_cost, draw.is_gift))
        left -= take
    return taken, rest


# --- receipt -------------------------------------------------------------------------------------


def scan_transfer_item(*, user: User, transfer: AllianceTransfer, code: str, quantity: int | None = None
                       ) -> AllianceTransferLine:
    """The receiver counts what arrived by scanning: a unit's UDI counts its line; a lot label counts
    `quantity` (default: what of that lot is not yet counted). Conditional update: a unit scanned
    twice is counted once (ALLIANCE_SCAN_COMPLETE the second time)."""
    _require(works_for(user, transfer.to_hospital), _("receive this transfer"))
    transfer = AllianceTransfer.objects.get(pk=transfer.pk)
    _refuse_state(transfer, (AllianceTransfer.Status.IN_TRANSIT,), _("be counted"))
    try:
        parsed = parse_udi(code.strip())
    except ParseError as error:
        raise Refused(Refusal.UDI_UNPARSEABLE, reason=str(error)) from None
    if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1):
        raise Refused(Refusal.QUANTITY_INVALID)
    lines = transfer.lines.select_related("unit", "product")
    if parsed.serial:
        candidates = list(lines.filter(unit__di=parsed.di, unit__serial=parsed.serial))
    else:
        candidates = list(lines.filter(unit__isnull=True, product__udi_di=parsed.di, lot=parsed.lot))
    if not candidates:
        raise Refused(Refusal.ALLIANCE_SCAN_NOT_ON_TRANSFER, number=transfer.receipt_number)
    for line in candidates:
        count = 1 if line.unit_id else (quantity or line.quantity - line.scanned_quantity)
        if count < 1:
            continue
        counted = AllianceTransferLine.objects.filter(
            pk=line.pk, scanned_quantity__lte=line.quantity - count).update(
            scanned_quantity=F("scanned_quantity") + count)
        if counted:
            line.refresh_from_db(fields=["scanned_quantity"])
            return line
    item = f"SN {parsed.serial}" if parsed.serial else f"批号 {parsed.lot}"
    raise Refused(Refusal.ALLIANCE_SCAN_COMPLETE, item=item, number=transfer.receipt_number)


@dataclass(frozen=True)
class LineDecision:
    """What the receiver accepts of one line; the rest is SHORT or DAMAGED and RETURNED or WRITTEN_OFF."""

    received: int | None = None  # None: what was counted by scan
    discrepancy: str = ""
    action: str = ""
    reason: str = ""


def receive_transfer(
    *, user: User, transfer: AllianceTransfer, idempotency_key: str, decisions: dict[int, LineDecision] | None = None,
    now: datetime.datetime | None = None,
) -> AllianceTransfer:
    """The receiving hospital takes the transfer into its books. Each line is received as counted
    by scan unless a decision says less (never more than counted); what is not received needs a
    discrepancy, an action and a reason. In one transaction: the sender's ALLIANCE_OUT and the
    receiver's ALLIANCE_IN for what is received, at its cost; the rest back to the sender's store
    or written off in the sender's books. A transfer is received once
    (ALLIANCE_TRANSFER_ALREADY_RECEIVED, also under concurrent requests); once per idempotency key."""
    _require(works_for(user, transfer.to_hospital), _("receive this transfer"))
    decisions = decisions or {}
    lines = {line.pk: line for line in transfer.lines.all()}
    problems = [Problem(Refusal.NOT_FOUND, {"what": "line"}) for pk in decisions if pk not in lines]
    for pk, line in lines.items():
        problems += _decision_problems(line, decisions.get(pk, LineDecision()))
    if problems:
        raise Refused(problems)
    payload = {"transfer": transfer.pk, "decisions": sorted(
        (pk, d.received, d.discrepancy, d.action, d.reason) for pk, d in decisions.items())}
    received, _performed = run_once(
        hospital=transfer.to_hospital, key=idempotency_key, operation="alliance_transfer:receive", payload=payload,
        perform=lambda: _receive(user=user, transfer=transfer, decisions=decisions, now=now),
    )
    return received


def _decision_problems(line: AllianceTransferLine, decision: LineDecision) -> list[Problem]:
    field = f"items[{line.pk}]"
    received = line.scanned_quantity if decision.received is None else decision.received
    if isinstance(received, bool) or not isinstance(received, int) or received < 0:
        return [_line_problem(f"{field}.received", _("a whole number of at least 0"))]
    if received > line.scanned_quantity:
        return [_line_problem(f"{field}.received", _("at most the %(count)s counted by scan")
                              % {"count": line.scanned_quantity})]
    if received == line.quantity:
        return []
    problems = []
    if decision.discrepancy not in AllianceTransferLine.Discrepancy.values:
        problems.append(_line_problem(f"{field}.discrepancy", _("SHORT or DAMAGED")))
    if decision.action not in AllianceTransferLine.Action.values:
        problems.append(_line_problem(f"{field}.action", _("RETURNED or WRITTEN_OFF")))
    if not decision.reason.strip():
        problems.append(_line_problem(f"{field}.reason", _("required")))
    elif len(decision.reason) > REASON_LIMIT:
        problems.append(_line_problem(f"{field}.reason", _("at most %(limit)s characters") % {"limit": REASON_LIMIT}))
    return problems


def _line_problem(field: str, reason: str) -> Problem:
    return Problem(Refusal.ALLIANCE_RECEIPT_LINE_INVALID, {"field": field, "reason": reason})


def _receive(*, user: User, transfer: AllianceTransfer, decisions: dict[int, LineDecision],
             now: datetime.datetime | None) -> AllianceTransfer:
    locked = AllianceTransfer.objects.select_for_update(of=("self",)).select_related(
        "source_location", "destination", "in_transit_location", "from_hospital", "to_hospital").get(pk=transfer.pk)
    if locked.status == AllianceTransfer.Status.RECEIVED:
        raise Refused(Refusal.ALLIANCE_TRANSFER_ALREADY_RECEIVED, number=locked.receipt_number)
    _refuse_state(locked, (AllianceTransfer.Status.IN_TRANSIT,), _("be received"))
    moment = now or timezone.now()
    actor, document = Actor(user=user), (DOCUMENT, locked.pk)
    lines = list(locked.lines.select_related("product", "receiving_product").order_by("pk"))
    units = {unit.pk: unit for unit in Unit.objects.select_for_update(of=("self",)).select_related("location").filter(
        pk__in=[line.unit_id for line in lines if line.unit_id]).order_by("pk")}
    transit = locked.in_transit_location
    balances = {
        (b.product_id, b.lot): b for b in LotBalance.objects.select_for_update().select_related("product", "location")
        .filter(location=transit, product_id__in={line.product_id for line in lines if not line.unit_id},
                lot__in={line.lot for line in lines if not line.unit_id}).order_by("pk")
    }
    layers = _dispatched_layers(locked.dispatch_order_id)
    short: dict[int, int] = {}
    for line in lines:
        decision = decisions.get(line.pk, LineDecision())
        received = line.scanned_quantity if decision.received is None else decision.received
        line.received_quantity, line.discrepancy_quantity = received, line.quantity - received
        if line.discrepancy_quantity:
            line.discrepancy, line.action = decision.discrepancy, decision.action
            line.discrepancy_reason = decision.reason.strip()
            short[line.pk] = line.discrepancy_quantity
        key = f"alliance:{locked.pk}:line:{line.pk}"
        if line.unit_id:
            unit = units[line.unit_id]
            if received:
                hand_over_unit(unit=unit, to_product=line.receiving_product, to_location=locked.destination,
                               actor=actor, idempotency_key=key, document=document, occurred_at=moment)
            else:
                _settle_discrepancy_unit(unit, line, locked, actor, key, document, moment)
            continue
        balance = balances[(line.product_id, line.lot)]
        drawn, layers[(line.product_id, line.lot)] = _split(layers[(line.product_id, line.lot)], line.quantity)
        accepted, rest = _split(drawn, received)
        if received:
            _out, arrivals = hand_over_lot(
                source=balance, quantity=received, layers=accepted, to_product=line.receiving_product,
                to_location=locked.destination, actor=actor, idempotency_key=key, document=document,
                occurred_at=moment)
            for arrival in arrivals:
                expense_arrival(actor=actor, movement=arrival)  # 科室领用即消耗 at a department store
        if rest:
            _settle_discrepancy_lot(balance, line, rest, locked, actor, key, document, moment)
    AllianceTransferLine.objects.bulk_update(
        lines, ["received_quantity", "discrepancy_quantity", "discrepancy", "action", "discrepancy_reason"])
    locked.status, locked.received_by, locked.received_at = AllianceTransfer.Status.RECEIVED, user, moment
    locked.save(update_fields=["status", "received_by", "received_at"])
    _release_allocations(locked, short)
    follow_receipt(locked)  # stock a recall of the sender covers arrives under the receiver's part of it
    return locked


def _settle_discrepancy_unit(unit: Unit, line: AllianceTransferLine, transfer: AllianceTransfer, actor: Actor,
                             key: str, document: tuple[str, int], moment: datetime.datetime) -> None:
    """A unit that did not arrive whole stays in the sender's books: back to its store, or scrapped."""
    note = f"{transfer.issue_number} {line.discrepancy}: {line.discrepancy_reason}"[:500]
    if line.action == AllianceTransferLine.Action.RETURNED:
        move_unit(unit=unit, kind=Movement.Kind.TRANSFER, to_status=transfer.source_location.holds_units_as,
                  to_location=transfer.source_location, actor=actor, idempotency_key=f"{key}:return",
                  document=document, occurred_at=moment, note=note)
    else:
        move_unit(unit=unit, kind=Movement.Kind.SCRAP, to_status=UnitStatus.SCRAPPED, to_location=None, actor=actor,
                  idempotency_key=f"{key}:write-off", document=document, occurred_at=moment,
                  reason_code="RECEIPT_DISCREPANCY", note=note)


def _settle_discrepancy_lot(balance: LotBalance, line: AllianceTransferLine, rest: list[LayerDraw],
                            transfer: AllianceTransfer, actor: Actor, key: str, document: tuple[str, int],
                            moment: datetime.datetime) -> None:
    note = f"{transfer.issue_number} {line.discrepancy}: {line.discrepancy_reason}"[:500]
    quantity = sum(draw.quantity for draw in rest)
    returned = line.action == AllianceTransferLine.Action.RETURNED
    if returned:
        LotBalance.objects.get_or_create(
            product=balance.product, lot=balance.lot, location=transfer.source_location,
            defaults={"hospital_id": balance.hospital_id, "expiry": balance.expiry, "owner": balance.owner,
                      "unit_cost": rest[0].unit_cost, "quantity": 0})
    move_lot(product=balance.product, lot=balance.lot, quantity=quantity, source=balance,
             to_location=transfer.source_location if returned else None,
             kind=Movement.Kind.TRANSFER if returned else Movement.Kind.SCRAP, actor=actor,
             idempotency_key=f"{key}:{'return' if returned else 'write-off'}", document=document, layers=rest,
             occurred_at=moment, reason_code="" if returned else "RECEIPT_DISCREPANCY", note=note)


# --- reads for lists, the dashboard and the statement ---------------------------------------------


def side_of(user: User, transfer: AllianceTransfer) -> str:
    """"issue" when `user`'s hospital sends the transfer, "receipt" when it receives it ("both" for
    an alliance administrator): what of the transfer the user is shown."""
    if user.hospital_id == transfer.from_hospital_id:
        return "issue"
    if user.hospital_id == transfer.to_hospital_id:
        return "receipt"
    return "both"
