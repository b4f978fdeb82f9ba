"""Purchasing (采购): purchase plans, purchase orders per supplier, and what acceptance takes in against them.

Where the rules on ordering are decided (`order_line_problems`):
- a line buys under a supply agreement of the order's supplier for the product, in force today;
- a high-value or VBP product is ordered only through the procurement platform (依码挂网、凭码采购):
  its line carries the platform's order reference, unless an SPD operator (or an administrator)
  records an emergency reason — such lines are flagged in the 网采率 report;
- a product without a 医保 code (national consumables code) is not orderable unless exempted with
  a reason.

Deliveries against an order: a delivery note names its order (`services.receiving`); acceptance
takes in no more than is still outstanding per product (over-delivery is rejected on the line, a
short delivery leaves the order line open) and the order's state follows: OPEN → PARTLY_DELIVERED
→ DELIVERED, or CLOSED by a person with a reason.

Lock order at acceptance: delivery note → purchase order → its lines → unit → lot balance → location.
"""
import datetime
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import (
    DeliveryLine,
    DeliveryNote,
    Hospital,
    PlanDemandSource,
    Product,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchasePlan,
    PurchasePlanLine,
    ReplenishmentSuggestion,
    RequisitionLine,
    Role,
    Supplier,
    SupplyAgreement,
)

# Who may order a high-value or VBP product off the platform, with an emergency reason.
EMERGENCY_DECIDERS = (Role.ADMIN, Role.SPD_OPERATOR)


@dataclass(frozen=True)
class DemandLine:
    """A need to buy: a product and a quantity in base units (entered by hand; suggestions and
    requisition shortfalls are given to `plan_from_demand` as themselves, so they are marked)."""

    product: Product
    quantity: int


@dataclass(frozen=True)
class UnplannedDemand:
    """A selected need that could not be planned, with every reason; its source stays open (the
    suggestion or requisition line, by id, to plan it again)."""

    source: str
    product: Product | None
    quantity: int
    problems: list[Problem]
    suggestion: int | None = None
    requisition_line: int | None = None

    @classmethod
    def of(cls, need: "DemandNeed", problems: list[Problem]) -> "UnplannedDemand":
        return cls(need.description, need.product, need.quantity, problems,
                   need.suggestion.pk if need.suggestion else None,
                   need.requisition_line.pk if need.requisition_line else None)

    def as_dict(self) -> dict:
        return {
            "source": self.source, "product": self.product.pk if self.product else None,
            "product_name": self.product.name if self.product else "", "quantity": self.quantity,
            "problems": [problem.as_dict() for problem in self.problems],
            "suggestion": self.suggestion, "requisition_line": self.requisition_line,
        }


@dataclass(frozen=True)
class DemandNeed:
    """One need to plan: what `hospital` needs of its own `product`, from a selected source (an open
    replenishment suggestion or a requisition line's shortfall) or entered by hand (no source).
    A hospital's own plan (`plan_from_demand`) and the alliance centre's plan from its members'
    demand (`central_planning`) plan the same needs."""

    hospital: Hospital
    product: Product
    quantity: int
    description: str
    suggestion: ReplenishmentSuggestion | None = None
    requisition_line: RequisitionLine | None = None


def needs_from_sources(
    *, hospitals: dict[int, Hospital], suggestions: list[ReplenishmentSuggestion],
    requisition_lines: list[RequisitionLine], shortfalls: dict[int, int],
    described: Callable[[Hospital, str], str] = lambda hospital, text: text,
) -> tuple[list[DemandNeed], list[UnplannedDemand]]:
    """The selected sources (locked by the caller, in primary-key order; of the `hospitals` by id)
    as needs, and those that cannot be planned with their reason: already planned (by a plan of
    their hospital or a central order of the alliance), no longer open, or — a requisition line —
    covered from stock (no shortfall in `shortfalls`, keyed by line). Suggestions come first."""
    from inventory.selectors.purchase_demand import OPEN_FOR_PURCHASE, describe_requisition_line, describe_suggestion

    needs: list[DemandNeed] = []
    unplanned: list[UnplannedDemand] = []
    taken = planned_sources("suggestion", suggestions)
    for suggestion in suggestions:
        hospital = hospitals[suggestion.hospital_id]
        source = described(hospital, describe_suggestion(suggestion))
        if suggestion.pk in taken:
            problem = Problem(Refusal.DEMAND_ALREADY_PLANNED, {"source": source, "plan": taken[suggestion.pk]})
        elif suggestion.status != ReplenishmentSuggestion.Status.OPEN:
            problem = Problem(Refusal.DEMAND_NOT_OPEN, {"source": source, "status": suggestion.get_status_display()})
        else:
            needs.append(DemandNeed(hospital, suggestion.product, suggestion.quantity, source, suggestion=suggestion))
            continue
        unplanned.append(UnplannedDemand(source, suggestion.product, suggestion.quantity, [problem],
                                         suggestion=suggestion.pk))
    taken = planned_sources("requisition_line", requisition_lines)
    for line in requisition_lines:
        hospital = hospitals[line.requisition.hospital_id]
        source = described(hospital, describe_requisition_line(line))
        if line.pk in taken:
            problem = Problem(Refusal.DEMAND_ALREADY_PLANNED, {"source": source, "plan": taken[line.pk]})
        elif line.requisition.status not in OPEN_FOR_PURCHASE:
            problem = Problem(Refusal.DEMAND_NOT_OPEN, {"source": source,
                                                        "status": line.requisition.get_status_display()})
        elif not shortfalls.get(line.pk):
            problem = Problem(Refusal.DEMAND_NOT_SHORT, {"source": source})
        else:
            needs.append(DemandNeed(hospital, line.product, shortfalls[line.pk], source, requisition_line=line))
            continue
        unplanned.append(UnplannedDemand(source, line.product, 0, [problem], requisition_line=line.pk))
    return needs, unplanned


@dataclass(frozen=True)
class OrderLineInput:
    """One line to order. Without `agreement`, the agreement in force today is chosen (the cheapest)."""

    product: Product
    quantity: int
    agreement: SupplyAgreement | None = None
    platform_reference: str = ""
    emergency_reason: str = ""
    nhsa_exemption_reason: str = ""


# --- agreements ---------------------------------------------------------------------------------


def agreements_in_force(*, hospital: Hospital, product: Product, day: datetime.date | None = None):
    """The supply agreements of `product` in force on `day` (today), cheapest first."""
    day = day or timezone.localdate()
    return SupplyAgreement.objects.filter(
        hospital=hospital, product=product, is_active=True, valid_from__lte=day, valid_to__gte=day,
        supplier__is_active=True,
    ).select_related("supplier").order_by("unit_price", "-valid_from", "pk")


def _in_force(agreement: SupplyAgreement, day: datetime.date) -> bool:
    return agreement.is_active and agreement.valid_from <= day <= agreement.valid_to


# --- plans ----------------------------------------------------------------------------------------


def plan_from_demand(
    *, actor: Actor, hospital: Hospital, lines: list[DemandLine] = (), suggestions: list = (),
    requisition_lines: list = (), nhsa_exemptions: dict[int, str] | None = None, source: str = "", note: str = "",
) -> PurchasePlan:
    """A draft purchase plan from open replenishment suggestions, requisition shortfalls (what the
    central warehouse cannot cover, `selectors.purchase_demand`) and needs entered by hand.

    Guarantees, in one transaction:
    - per product one plan line: the needs added up and rounded up to whole purchase units
      (`units_of_measure.round_up_to_unit`), under the agreement in force today — a VBP product's
      VBP agreement first, else the cheapest — of a supplier not suspended;
    - a need that cannot be planned (already in a plan, no longer open, covered from stock, no
      agreement, supplier or product suspended, no 医保 code and no exemption in `nhsa_exemptions`)
      is listed in `plan.unplanned` with its reasons and its source stays open;
    - each planned suggestion and requisition line is recorded as taken by this plan
      (`PlanDemandSource`, UNIQUE per source) and a suggestion leaves OPEN: two people planning the
      same sources at once plan each one once. The sources are locked by primary key, suggestions
      before requisition lines; the second planner waits, then finds them planned.

    Refused: nothing selected (400); nothing plannable (409, with every reason).
    """
    from inventory.selectors.purchase_demand import requisition_shortfalls
    from inventory.services.units_of_measure import round_up_to_unit

    if not (lines or suggestions or requisition_lines):
        raise Refused(Refusal.DEMAND_NOTHING_SELECTED)
    exemptions = {pk: reason.strip() for pk, reason in (nhsa_exemptions or {}).items() if reason.strip()}
    now = timezone.now()
    with transaction.atomic():
        locked_suggestions = list(
            ReplenishmentSuggestion.objects.select_for_update(of=("self",))
            .filter(hospital=hospital, pk__in=sorted({s.pk for s in suggestions}))
            .select_related("location", "product").order_by("pk")
        )
        locked_lines = list(
            RequisitionLine.objects.select_for_update(of=("self",))
            .filter(requisition__hospital=hospital, pk__in=sorted({line.pk for line in requisition_lines}))
            .select_related("requisition", "product").order_by("pk")
        )
        shortfalls = {short.line.pk: short.shortfall for short in requisition_shortfalls(hospital, unplanned_only=False)}
        needs, unplanned = needs_from_sources(hospitals={hospital.pk: hospital}, suggestions=locked_suggestions,
                                              requisition_lines=locked_lines, shortfalls=shortfalls)
        for line in lines:
            if line.product.hospital_id != hospital.pk or line.quantity < 1:
                raise Refused(Refusal.DELIVERY_LINE_INVALID, line=line.product.pk, reason="foreign_product"
                              if line.product.hospital_id != hospital.pk else "quantity")
            needs.append(DemandNeed(hospital, line.product, line.quantity, line.product.name))

        by_product: dict[int, list[DemandNeed]] = defaultdict(list)
        for need in needs:
            by_product[need.product.pk].append(need)
        planned: list[tuple[Product, int, SupplyAgreement, list[DemandNeed]]] = []
        for group in by_product.values():
            product = group[0].product
            agreement, problems = agreement_for_demand(hospital, product, exemptions, group[0].description)
            if problems:
                unplanned += [UnplannedDemand.of(need, problems) for need in group]
                continue
            quantity = round_up_to_unit(product=product, base_quantity=sum(need.quantity for need in group))
            planned.append((product, quantity, agreement, group))
        if not planned:
            raise Refused([Problem(Refusal.DEMAND_NOTHING_PLANNED)] + [p for u in unplanned for p in u.problems])

        plan = PurchasePlan.objects.create(
            hospital=hospital, source=source, note=note, created_by=actor.user,
            unplanned=[entry.as_dict() for entry in unplanned],
        )
        for line_no, (product, quantity, agreement, group) in enumerate(planned, start=1):
            plan_line = PurchasePlanLine.objects.create(
                plan=plan, line_no=line_no, product=product, quantity=quantity, agreement=agreement,
                nhsa_exemption_reason="" if product.nhsa_code.strip() else exemptions.get(product.pk, ""),
            )
            PlanDemandSource.objects.bulk_create([
                PlanDemandSource(plan=plan, plan_line=plan_line, suggestion=need.suggestion,
                                 requisition_line=need.requisition_line, description=need.description[:200],
                                 quantity=need.quantity)
                for need in group if need.suggestion or need.requisition_line
            ])
        ReplenishmentSuggestion.objects.filter(
            pk__in=[need.suggestion.pk for _, _, _, group in planned for need in group if need.suggestion]
        ).update(status=ReplenishmentSuggestion.Status.PURCHASE_PLANNED, decided_at=now, decided_by=actor.user)
    return plan


def planned_sources(kind: str, sources: list) -> dict[int, str]:
    """Which of `sources` (suggestions or requisition lines, `kind` naming the field) are already
    planned, and where: a purchase plan of their hospital or a central order of the alliance."""
    return {
        getattr(taken, f"{kind}_id"): taken.planned_in
        for taken in PlanDemandSource.objects.filter(**{f"{kind}__in": sources}).select_related(
            "allocation__central_order__purchase_order")
    }


def agreement_for_demand(
    hospital: Hospital, product: Product, exemptions: dict[int, str], described: str
) -> tuple[SupplyAgreement | None, list[Problem]]:
    """The agreement to plan `product` under, or why it cannot be planned: a VBP product's VBP
    agreement first, else the cheapest in force, skipping suspended suppliers."""
    from inventory.services.complaints import suspension_problems

    problems = suspension_problems(hospital_id=hospital.pk, product_ids=[product.pk])
    if not product.nhsa_code.strip() and not exemptions.get(product.pk):
        problems.append(Problem(Refusal.NHSA_CODE_MISSING, {"line": described, "product": product}))
    if problems:
        return None, problems
    vbp_numbers = set(product.vbp_contracts.values_list("number", flat=True))
    candidates = list(agreements_in_force(hospital=hospital, product=product))  # cheapest first
    if vbp_numbers:  # a product of a VBP contract: the agreement naming that contract first
        candidates.sort(key=lambda agreement: agreement.vbp_contract not in vbp_numbers)
    else:  # otherwise an agreement marked as VBP still comes first
        candidates.sort(key=lambda agreement: not agreement.vbp_contract)
    refused: list[Problem] = []
    for agreement in candidates:
        if suspended := suspension_problems(hospital_id=hospital.pk, supplier_id=agreement.supplier_id):
            refused += suspended
            continue
        return agreement, []
    return None, refused or [Problem(Refusal.DEMAND_NO_AGREEMENT, {"source": described, "product": product})]


def create_plan(
    *, actor: Actor, hospital: Hospital, lines: list[OrderLineInput], source: str = "", note: str = ""
) -> PurchasePlan:
    """A draft purchase plan with these lines (by hand: agreements and platform references may be given)."""
    problems = _plan_shape_problems(hospital, lines)
    if problems:
        raise Refused(problems)
    with transaction.atomic():
        plan = PurchasePlan.objects.create(hospital=hospital, source=source, note=note, created_by=actor.user)
        PurchasePlanLine.objects.bulk_create(
            PurchasePlanLine(
                plan=plan, line_no=line_no, product=line.product, quantity=line.quantity,
                agreement=line.agreement or agreements_in_force(hospital=hospital, product=line.product).first(),
                platform_reference=line.platform_reference.strip(), emergency_reason=line.emergency_reason.strip(),
                nhsa_exemption_reason=line.nhsa_exemption_reason.strip(),
            )
            for line_no, line in enumerate(lines, start=1)
        )
    return plan


def _plan_shape_problems(hospital: Hospital, lines: list[OrderLineInput]) -> list[Problem]:
    if not lines:
        return [Problem(Refusal.ORDER_EMPTY)]
    problems = []
    for line_no, line in enumerate(lines, start=1):
        if line.product.hospital_id != hospital.pk:
            reason = "foreign_product"
        elif line.quantity < 1:
            reason = "quantity"
        elif line.agreement is not None and (
            line.agreement.hospital_id != hospital.pk or line.agreement.product_id != line.product.pk
        ):
            reason = "foreign_agreement"
        else:
            continue
        problems.append(Problem(Refusal.DELIVERY_LINE_INVALID, {"line": line_no, "reason": reason}, line_no))
    return problems


@dataclass(frozen=True)
class PlanLineOrdering:
    """What the orderer adds to a plan line when ordering it: the platform's order reference, or an
    emergency reason for going off the platform (a plan from demand carries neither)."""

    platform_reference: str = ""
    emergency_reason: str = ""


def order_plan(
    *, actor: Actor, plan: PurchasePlan, promised_date: datetime.date,
    orderings: dict[int, PlanLineOrdering] | None = None,
) -> list[PurchaseOrder]:
    """Turn a draft plan into purchase orders, one per supplier; every line is checked first, and
    any problem on any line refuses the whole plan (nothing is ordered) with every problem listed.
    `orderings` (by line number) first fills in platform references and emergency reasons, in a
    transaction of their own: they stay on the draft's lines even when ordering is refused, so they
    need not be typed again."""
    if orderings:
        with transaction.atomic():
            locked = PurchasePlan.objects.select_for_update().get(pk=plan.pk)
            if locked.status != PurchasePlan.Status.DRAFT:
                raise Refused(Refusal.PLAN_ALREADY_ORDERED, plan=locked)
            lines = list(locked.lines.filter(line_no__in=list(orderings)))
            for plan_line in lines:
                plan_line.platform_reference = orderings[plan_line.line_no].platform_reference.strip()[:64]
                plan_line.emergency_reason = orderings[plan_line.line_no].emergency_reason.strip()[:500]
            PurchasePlanLine.objects.bulk_update(lines, ["platform_reference", "emergency_reason"])
    with transaction.atomic():
        locked = PurchasePlan.objects.select_for_update().get(pk=plan.pk)
        if locked.status != PurchasePlan.Status.DRAFT:
            raise Refused(Refusal.PLAN_ALREADY_ORDERED, plan=locked)
        plan_lines = list(locked.lines.select_related("product", "agreement__supplier").order_by("line_no"))
        problems = []
        by_supplier: dict[int, list[tuple[int, OrderLineInput]]] = defaultdict(list)
        for plan_line in plan_lines:
            if plan_line.agreement is None:
                problems.append(Problem(
                    Refusal.ORDER_AGREEMENT_INVALID,
                    {"line": plan_line.line_no, "supplier": "—", "product": plan_line.product}, plan_line.line_no,
                ))
                continue
            by_supplier[plan_line.agreement.supplier_id].append((plan_line.line_no, OrderLineInput(
                product=plan_line.product, quantity=plan_line.quantity, agreement=plan_line.agreement,
                platform_reference=plan_line.platform_reference, emergency_reason=plan_line.emergency_reason,
                nhsa_exemption_reason=plan_line.nhsa_exemption_reason,
            )))
        today = timezone.localdate()
        for numbered in by_supplier.values():
            supplier = numbered[0][1].agreement.supplier
            problems += _suspension_problems(locked.hospital, supplier, [line for _, line in numbered])
            for line_no, line in numbered:
                problems += order_line_problems(
                    line, line_no=line_no, actor=actor, hospital=locked.hospital, supplier=supplier, day=today
                )
        if problems:
            raise Refused(problems)
        orders = [
            _create_order(
                actor=actor, hospital=locked.hospital, supplier=numbered[0][1].agreement.supplier,
                lines=[line for _, line in numbered], promised_date=promised_date, plan=locked,
            )
            for numbered in by_supplier.values()
        ]
        locked.status = PurchasePlan.Status.ORDERED
        locked.ordered_at = timezone.now()
        locked.save(update_fields=["status", "ordered_at"])
    return orders


# --- orders ---------------------------------------------------------------------------------------


def _suspension_problems(hospital: Hospital, supplier: Supplier, lines: list[OrderLineInput]) -> list[Problem]:
    """A suspended supplier or product (services.complaints) is not ordered: 409 naming the suspension."""
    from inventory.services.complaints import suspension_problems

    return suspension_problems(hospital_id=hospital.pk, supplier_id=supplier.pk,
                               product_ids=[line.product.pk for line in lines])


def order_line_problems(
    line: OrderLineInput, *, line_no: int, actor: Actor, hospital: Hospital, supplier: Supplier,
    day: datetime.date,
) -> list[Problem]:
    """Every reason this line cannot be ordered from `supplier` (empty: it can). The ordering rules
    are decided here and only here."""
    product = line.product
    problems = []
    if product.hospital_id != hospital.pk or line.quantity < 1:
        reason = "foreign_product" if product.hospital_id != hospital.pk else "quantity"
        return [Problem(Refusal.DELIVERY_LINE_INVALID, {"line": line_no, "reason": reason}, line_no)]
    agreement = line.agreement
    if agreement is None or agreement.supplier_id != supplier.pk or agreement.product_id != product.pk or (
        agreement.hospital_id != hospital.pk or not _in_force(agreement, day)
    ):
        problems.append(Problem(
            Refusal.ORDER_AGREEMENT_INVALID, {"line": line_no, "supplier": supplier, "product": product}, line_no
        ))
    platform_only = product.is_high_value or bool(agreement and agreement.vbp_contract)
    if platform_only and not line.platform_reference.strip():
        if not line.emergency_reason.strip():
            problems.append(Problem(Refusal.PLATFORM_REFERENCE_REQUIRED, {"line": line_no, "product": product}, line_no))
        elif not actor.user.has_role(*EMERGENCY_DECIDERS):
            problems.append(Problem(Refusal.EMERGENCY_NOT_AUTHORISED, {"line": line_no}, line_no))
    if not product.nhsa_code.strip() and not line.nhsa_exemption_reason.strip():
        problems.append(Problem(Refusal.NHSA_CODE_MISSING, {"line": line_no, "product": product}, line_no))
    return problems


def create_purchase_order(
    *, actor: Actor, hospital: Hospital, supplier: Supplier, lines: list[OrderLineInput],
    promised_date: datetime.date,
) -> PurchaseOrder:
    """A purchase order to `supplier` with these lines, each checked by `order_line_problems`; any
    problem refuses the order with every problem listed. A line without an agreement gets this
    supplier's agreement in force today."""
    if not lines:
        raise Refused(Refusal.ORDER_EMPTY)
    today = timezone.localdate()
    lines = [
        line if line.agreement is not None else OrderLineInput(
            product=line.product, quantity=line.quantity,
            agreement=agreements_in_force(hospital=hospital, product=line.product, day=today)
            .filter(supplier=supplier).first(),
            platform_reference=line.platform_reference, emergency_reason=line.emergency_reason,
            nhsa_exemption_reason=line.nhsa_exemption_reason,
        )
        for line in lines
    ]
    problems = _suspension_problems(hospital, supplier, lines) + [
        problem
        for line_no, line in enumerate(lines, start=1)
        for problem in order_line_problems(
            line, line_no=line_no, actor=actor, hospital=hospital, supplier=supplier, day=today
        )
    ]
    if problems:
        raise Refused(problems)
    with transaction.atomic():
        return _create_order(
            actor=actor, hospital=hospital, supplier=supplier, lines=lines, promised_date=promised_date
        )


def _create_order(
    *, actor: Actor, hospital: Hospital, supplier: Supplier, lines: list[OrderLineInput],
    promised_date: datetime.date, plan: PurchasePlan | None = None,
) -> PurchaseOrder:
    now = timezone.now()
    order = PurchaseOrder.objects.create(
        hospital=hospital, supplier=supplier, plan=plan, promised_date=promised_date, created_by=actor.user,
        ordered_at=now, number=f"PO-new-{now.timestamp()}",
    )
    order.number = f"PO{timezone.localdate(now):%Y%m%d}-{order.pk:06d}"
    order.save(update_fields=["number"])
    PurchaseOrderLine.objects.bulk_create(
        PurchaseOrderLine(
            order=order, line_no=line_no, product=line.product, agreement=line.agreement, quantity=line.quantity,
            unit_price=line.agreement.unit_price, platform_reference=line.platform_reference.strip(),
            emergency_reason="" if line.platform_reference.strip() else line.emergency_reason.strip(),
            emergency_by=actor.user if line.emergency_reason.strip() and not line.platform_reference.strip() else None,
            nhsa_exemption_reason="" if line.product.nhsa_code.strip() else line.nhsa_exemption_reason.strip(),
        )
        for line_no, line in enumerate(lines, start=1)
    )
    return order


def close_purchase_order(*, actor: Actor, order: PurchaseOrder, reason: str) -> PurchaseOrder:
    """Close an order that will not be delivered in full (or at all): with a reason, by whom and when.
    Nothing more is accepted against it afterwards."""
    reason = reason.strip()
    if not reason:
        raise Refused(Refusal.CLOSE_REASON_MISSING)
    with transaction.atomic():
        locked = PurchaseOrder.objects.select_for_update().get(pk=order.pk)
        if not locked.is_open_for_delivery:
            raise Refused(Refusal.ORDER_NOT_OPEN, number=locked.number, status=locked.get_status_display())
        locked.status = PurchaseOrder.Status.CLOSED
        locked.closed_reason = reason
        locked.closed_by = actor.user
        locked.closed_at = timezone.now()
        locked.save(update_fields=["status", "closed_reason", "closed_by", "closed_at"])
    return locked


# --- deliveries against an order ------------------------------------------------------------------


def delivery_order_problems(*, hospital: Hospital, supplier: Supplier, order: PurchaseOrder | None) -> list[Problem]:
    """Why a delivery note of `supplier` may not name `order` (empty: it may, or it names none)."""
    if order is None:
        return []
    if order.hospital_id != hospital.pk:
        return [Problem(Refusal.NOT_FOUND, {"what": "purchase order"})]
    if order.supplier_id != supplier.pk:
        return [Problem(Refusal.ORDER_SUPPLIER_MISMATCH, {"number": order.number})]
    if not order.is_open_for_delivery:
        return [Problem(Refusal.ORDER_NOT_OPEN, {"number": order.number, "status": order.get_status_display()})]
    return []


@dataclass
class OrderBook:
    """What an order still expects, per product, while one delivery note is decided line by line."""

    order: PurchaseOrder
    lines: list[PurchaseOrderLine]
    taken: dict[int, int] = field(default_factory=dict)  # order line pk → quantity counted by this note
    kept: dict[int, int] = field(default_factory=dict)  # order line pk → quantity accepted now

    @classmethod
    def lock(cls, order_id: int) -> "OrderBook":
        """The order and its lines, locked (after the delivery note, before any stock)."""
        order = PurchaseOrder.objects.select_for_update().get(pk=order_id)
        lines = list(
            PurchaseOrderLine.objects.select_for_update().filter(order=order).select_related("product")
            .order_by("line_no")
        )
        return cls(order, lines)

    @classmethod
    def read(cls, order_id: int) -> "OrderBook":
        """The same without locks, for previews."""
        order = PurchaseOrder.objects.get(pk=order_id)
        return cls(order, list(order.lines.select_related("product").order_by("line_no")))

    def outstanding(self, product_id: int) -> int:
        return sum(
            line.quantity - line.delivered_quantity - self.taken.get(line.pk, 0)
            for line in self.lines if line.product_id == product_id
        )

    def problems(self, line: DeliveryLine) -> list[Problem]:
        """Why this delivery line cannot be taken in against the order (empty: it can)."""
        order = self.order
        if not order.is_open_for_delivery:
            return [Problem(Refusal.ORDER_NOT_OPEN, {"number": order.number, "status": order.get_status_display()})]
        if not any(order_line.product_id == line.product_id for order_line in self.lines):
            return [Problem(Refusal.PRODUCT_NOT_ON_ORDER, {"product": line.product, "number": order.number})]
        outstanding = self.outstanding(line.product_id)
        if line.quantity > outstanding:
            return [Problem(Refusal.OVER_DELIVERY, {
                "number": order.number, "outstanding": outstanding, "product": line.product, "quantity": line.quantity,
            })]
        return []

    def take(self, line: DeliveryLine, *, keep: bool) -> None:
        """Count a delivery line against the order's lines of its product, first line first: for the
        lines after it (`taken`), and, when it is accepted now (`keep`), for `save`. A unit line left
        open for its scan is counted for the later lines but not kept."""
        remaining = line.quantity
        for order_line in self.lines:
            if order_line.product_id != line.product_id or remaining == 0:
                continue
            free = order_line.quantity - order_line.delivered_quantity - self.taken.get(order_line.pk, 0)
            share = min(free, remaining)
            if share > 0:
                self.taken[order_line.pk] = self.taken.get(order_line.pk, 0) + share
                if keep:
                    self.kept[order_line.pk] = self.kept.get(order_line.pk, 0) + share
                remaining -= share

    def save(self) -> PurchaseOrder:
        """Write what was taken in and move the order's state along (in the acceptance's transaction)."""
        for pk, quantity in self.kept.items():
            PurchaseOrderLine.objects.filter(pk=pk).update(delivered_quantity=F("delivered_quantity") + quantity)
        if not self.kept:
            return self.order
        lines = PurchaseOrderLine.objects.filter(order=self.order)
        if not lines.filter(delivered_quantity__lt=F("quantity")).exists():
            status = PurchaseOrder.Status.DELIVERED
        else:
            status = PurchaseOrder.Status.PARTLY_DELIVERED
        PurchaseOrder.objects.filter(pk=self.order.pk).update(status=status)
        self.order.status = status
        return self.order


def order_for_note(note: DeliveryNote, *, lock: bool) -> OrderBook | None:
    if note.purchase_order_id is None:
        return None
    return OrderBook.lock(note.purchase_order_id) if lock else OrderBook.read(note.purchase_order_id)


def order_value(order: PurchaseOrder) -> Decimal:
    return sum((line.value for line in order.lines.all()), Decimal("0"))
