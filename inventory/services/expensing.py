"""Department expensing (科室领用即消耗): non-chargeable items are a cost of the department, not a bill.

Gauze, gloves, swabs have no HIS charge code (`Product.expensed_on_issue`, which the database
allows only for lot-tracked products without a charge code): no patient is ever billed for them,
so they never pass through `consumption` and never create a Charge. They leave stock as a
DEPARTMENT_EXPENSE movement from a store of the department, at the cost of the layers drawn (its
`LotMovementLayer` rows), which the 科室耗材成本 report sums (`selectors.expensing`):

- on arrival (the default): a transfer (or a dispatch's receipt) that brings them into a store,
  cabinet or operating room of a clinical department or operating theatre expenses exactly what it
  brought, with the layers it brought, in the same transaction (`expense_arrival`);
- at a count (`Department.expense_at_count`, 二级库管理): they stay in the department's stores
  until a periodic count (`expense_department_stock`) expenses what is no longer there.

Either way the reconciliation counts the quantity as issued (its `expensed` column), not as used
without a bill. Lock order as everywhere: lot balances by primary key.
"""
import datetime
from dataclasses import dataclass

from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import Department, Location, LotBalance, Movement, Product, StockOrder
from inventory.selectors.scope import departments_of
from inventory.services.idempotency import run_once
from inventory.services.ledger import LayerDraw, move_lot

# Where a department keeps stock it uses itself; the kinds of departments that use it.
EXPENSING_LOCATION_KINDS = (Location.Kind.DEPARTMENT_STORE, Location.Kind.SMART_CABINET, Location.Kind.OPERATING_ROOM)
EXPENSING_DEPARTMENT_KINDS = (Department.Kind.CLINICAL, Department.Kind.OPERATING_THEATRE)


def is_department_store(location: Location) -> bool:
    """A store, cabinet or operating room of a clinical department or operating theatre."""
    department = location.department
    return (
        location.kind in EXPENSING_LOCATION_KINDS and department is not None
        and department.kind in EXPENSING_DEPARTMENT_KINDS
    )


def expenses_on_arrival(location: Location) -> bool:
    """Whether items expensed on issue are expensed as they arrive here (not at a later count)."""
    return is_department_store(location) and not location.department.expense_at_count


def expense_arrival(*, actor: Actor, movement: Movement) -> Movement | None:
    """Expense what `movement` (a lot moved into a location, already written) brought, when its product
    is expensed on issue and the location expenses on arrival; else do nothing and return None.

    Called inside the caller's transaction, right after the movement, with the destination balance
    locked by the caller (as `services.stock` does): the expense takes exactly the cost layers the
    movement brought, so the department is charged what those items cost, whatever else the store holds.
    """
    product, location = movement.product, movement.to_location
    if not product.expensed_on_issue or movement.unit_id is not None or location is None:
        return None
    if not expenses_on_arrival(location):
        return None
    balance = LotBalance.objects.select_for_update().get(product=product, lot=movement.lot, location=location)
    layers = [LayerDraw(row.receipt_id, row.quantity, row.unit_cost, row.is_gift) for row in movement.layers.all()]
    return move_lot(
        product=product, lot=movement.lot, quantity=movement.quantity, source=balance, to_location=None,
        kind=Movement.Kind.DEPARTMENT_EXPENSE, actor=actor, idempotency_key=f"{movement.idempotency_key}:expense",
        document=(movement.document_type, movement.document_id), occurred_at=movement.occurred_at, layers=layers,
        note="expensed to the department on arrival",
    )


@dataclass(frozen=True)
class CountedLot:
    """What a department count found left of one lot (in base units)."""

    product: Product
    lot: str
    quantity: int


def expense_department_stock(
    *, actor: Actor, location: Location, idempotency_key: str, counted: list[CountedLot] | None = None,
    occurred_at: datetime.datetime | None = None, note: str = "",
) -> StockOrder:
    """Expense to the department what a periodic count says was used of items expensed on issue.

    Without `counted` every such item on hand at `location` is expensed. With it, the count covers
    the products it names: each of their lots is expensed down to the quantity counted (a lot of a
    named product not listed was counted as none left); products not named are not touched. A count
    above the books is refused (COUNT_ABOVE_BOOK: a surplus is a stocktake adjustment, not an
    expense), as is a product not expensed on issue. Returns the DEPARTMENT_EXPENSE stock order (its
    `to_location` is the location counted), with one movement per lot expensed — none when nothing was
    used. Once per idempotency key; a nurse only for her own departments.
    """
    hospital = location.hospital
    _refuse_bad_count(actor, location, counted or [])
    payload = {
        "location": location.pk, "note": note, "occurred_at": occurred_at,
        "counted": None if counted is None else sorted((c.product.pk, c.lot, c.quantity) for c in counted),
    }

    def perform() -> StockOrder:
        balances = LotBalance.objects.select_for_update(of=("self",)).select_related("product", "location").filter(
            location=location, product__expensed_on_issue=True, quantity__gt=0,
        ).order_by("pk")
        if counted is not None:
            balances = balances.filter(product__in={c.product.pk for c in counted})
        balances = list(balances)
        left = {(c.product.pk, c.lot): c.quantity for c in counted or []}
        on_hand = {(b.product_id, b.lot): b.quantity for b in balances}
        problems = [
            Problem(Refusal.COUNT_ABOVE_BOOK, {"product": c.product.internal_code, "lot": c.lot, "counted": c.quantity,
                                               "on_hand": on_hand.get((c.product.pk, c.lot), 0)}, index)
            for index, c in enumerate(counted or []) if c.quantity > on_hand.get((c.product.pk, c.lot), 0)
        ]
        if problems:
            raise Refused(problems)
        at = occurred_at or timezone.now()
        order = StockOrder.objects.create(
            hospital=hospital, kind=StockOrder.Kind.DEPARTMENT_EXPENSE, to_location=location, note=note,
            created_by=actor.user, created_by_device=actor.device, occurred_at=at,
        )
        for balance in balances:
            used = balance.quantity - left.get((balance.product_id, balance.lot), 0)
            if used > 0:
                move_lot(
                    product=balance.product, lot=balance.lot, quantity=used, source=balance, to_location=None,
                    kind=Movement.Kind.DEPARTMENT_EXPENSE, actor=actor, occurred_at=at, note=note,
                    idempotency_key=f"{hospital.pk}:{idempotency_key}:expense:{balance.pk}",
                    document=(Movement.DocumentType.STOCK_ORDER, order.pk),
                )
        return order

    order, _ = run_once(
        hospital=hospital, key=idempotency_key, operation="expense_department_stock", payload=payload, perform=perform
    )
    return order


def _refuse_bad_count(actor: Actor, location: Location, counted: list[CountedLot]) -> None:
    problems = []
    if not is_department_store(location):
        problems.append(Problem(Refusal.NOT_A_DEPARTMENT_STORE, {"location": location}))
    for index, count in enumerate(counted):
        if count.product.hospital_id != location.hospital_id:
            problems.append(Problem(Refusal.NOT_FOUND, {"what": "product"}, index))
        elif not count.product.expensed_on_issue:
            problems.append(Problem(Refusal.NOT_EXPENSED_ON_ISSUE, {"product": count.product.internal_code}, index))
        elif count.quantity < 0:
            problems.append(Problem(Refusal.INVALID_REQUEST,
                                    {"detail": f"counted[{index}].quantity must not be negative"}, index))
    if problems:
        raise Refused(problems)
    user = actor.user
    if user is not None and location.department_id is not None:
        departments = departments_of(user)
        if departments is not None and location.department_id not in departments:
            raise Refused(Refusal.NOT_YOUR_DEPARTMENT, department=location.department)
