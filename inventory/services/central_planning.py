"""Central plans from members' demand (集中采购计划): the alliance centre buys what its members need.

The alliance operator picks members' open demand (`selectors.central_demand`: each member's open
replenishment suggestions and requisition shortfalls, computed as plans from demand compute them,
for products linked to the alliance catalog). `propose_central_plan` proposes central order lines
per supplier, with each member's share; `place_central_plan` places them — one central order per
supplier through `central_purchasing.place_central_order`, so every ordering rule applies — and
records each source as planned into its member's share.

Rules, decided here only:
- a member's product is bought as the lead hospital's active product linked to the same alliance
  entry (the centre orders from its own catalog and agreements);
- per lead product, the members' needs are added up and rounded up to whole purchase units (the
  lead's purchase unit), under the agreement `purchasing.agreement_for_demand` chooses at the lead
  hospital today (a VBP product's VBP agreement first, else the cheapest; no suspended supplier;
  a 医保 code or an exemption);
- each member's share is its need plus its part of what rounding added, in proportion to the needs
  (largest remainder; ties to the larger need, then the member created first), so the shares add
  up to the order line;
- a need that cannot be planned is listed with every reason, and its source stays open;
- each source is planned once (`PlanDemandSource`, UNIQUE per suggestion and per requisition line,
  shared with the members' own plans from demand). Sources are locked by primary key, suggestions
  before requisition lines, as `plan_from_demand` locks them: of two operators placing the same
  needs at once, the second waits, then finds them planned.
"""
import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from inventory.errors import Problem, Refusal, Refused
from inventory.models import (
    CentralOrder,
    Hospital,
    Location,
    PlanDemandSource,
    Product,
    ReplenishmentSuggestion,
    RequisitionLine,
    Supplier,
    SupplyAgreement,
    User,
)
from inventory.services.central_purchasing import (
    CentralLineInput,
    lead_hospital,
    place_central_order,
    require_alliance_actor,
)
from inventory.services.purchasing import (
    DemandNeed,
    PlanLineOrdering,
    UnplannedDemand,
    agreement_for_demand,
    needs_from_sources,
)


@dataclass(frozen=True)
class MemberShare:
    member: Hospital
    need: int
    quantity: int  # its need and its part of the rounding
    needs: list[DemandNeed]  # its selected sources (`DemandNeed.hospital` is the member)


@dataclass(frozen=True)
class ProposedLine:
    """One central order line: a product of the lead hospital, its agreement, each member's share."""

    product: Product
    agreement: SupplyAgreement
    quantity: int
    shares: list[MemberShare]

    @property
    def need(self) -> int:
        return sum(share.need for share in self.shares)

    @property
    def platform_only(self) -> bool:
        """Ordered only through the procurement platform (a reference, or an emergency reason)."""
        return self.product.is_high_value or bool(self.agreement.vbp_contract)


@dataclass(frozen=True)
class ProposedOrder:
    supplier: Supplier
    lines: list[ProposedLine]


@dataclass
class CentralPlan:
    """What the centre would order (or has ordered: `placed`) for the selected needs."""

    alliance: str
    lead: Hospital
    orders: list[ProposedOrder]
    unplanned: list[UnplannedDemand]
    placed: list[CentralOrder] = field(default_factory=list)


def propose_central_plan(
    *, user: User, alliance: str, suggestions: list = (), requisition_lines: list = (),
    nhsa_exemptions: dict[int, str] | None = None,
) -> CentralPlan:
    """The central order lines the selected needs (rows or ids of members' suggestions and
    requisition lines) would make, per supplier, with each member's share, and what cannot be
    planned with its reasons. Writes nothing."""
    require_alliance_actor(user, alliance)
    return _plan(alliance, suggestions, requisition_lines, _exemptions(nhsa_exemptions), lock=False)


def place_central_plan(
    *, user: User, regional_warehouse: Location, promised_date: datetime.date, suggestions: list = (),
    requisition_lines: list = (), orderings: dict[int, PlanLineOrdering] | None = None,
    nhsa_exemptions: dict[int, str] | None = None, note: str = "",
) -> CentralPlan:
    """Place the proposal for the selected needs: one central order per supplier (to be received at
    `regional_warehouse`), each member's share an allocation, each planned source recorded against
    its allocation and a planned suggestion no longer open. `orderings` and `nhsa_exemptions` are
    keyed by the lead hospital's product. In one transaction: any order refused refuses them all,
    every problem listed; nothing plannable is 409 DEMAND_NOTHING_PLANNED with every reason."""
    alliance = regional_warehouse.hospital.alliance
    require_alliance_actor(user, alliance)
    exemptions = _exemptions(nhsa_exemptions)
    orderings = orderings or {}
    with transaction.atomic():
        plan = _plan(alliance, suggestions, requisition_lines, exemptions, lock=True)
        problems: list[Problem] = []
        for proposed in plan.orders:
            lines = [CentralLineInput(
                line.product, {share.member: share.quantity for share in line.shares}, agreement=line.agreement,
                platform_reference=orderings.get(line.product.pk, PlanLineOrdering()).platform_reference,
                emergency_reason=orderings.get(line.product.pk, PlanLineOrdering()).emergency_reason,
                nhsa_exemption_reason=exemptions.get(line.product.pk, ""),
            ) for line in proposed.lines]
            try:
                with transaction.atomic():
                    central = place_central_order(user=user, supplier=proposed.supplier,
                                                  regional_warehouse=regional_warehouse, lines=lines,
                                                  promised_date=promised_date, note=note)
            except Refused as refused:
                problems += refused.problems
                continue
            _record_sources(central, proposed)
            plan.placed.append(central)
        if problems:
            raise Refused(problems)
        ReplenishmentSuggestion.objects.filter(pk__in=[
            need.suggestion.pk for proposed in plan.orders for line in proposed.lines for share in line.shares
            for need in share.needs if need.suggestion
        ]).update(status=ReplenishmentSuggestion.Status.PURCHASE_PLANNED, decided_at=timezone.now(), decided_by=user)
    return plan


def split_by_need(needs: dict[Hospital, int], total: int) -> dict[Hospital, int]:
    """Each member's share of `total` (at least the sum of the needs): its need plus its part of the
    rest in proportion to its need — largest remainder, ties to the larger need, then the smaller id."""
    need_sum = sum(needs.values())
    extra = total - need_sum
    shares = {member: need + extra * need // need_sum for member, need in needs.items()}
    left = total - sum(shares.values())
    by_remainder = sorted(needs, key=lambda member: (-(extra * needs[member] % need_sum), -needs[member], member.pk))
    for member in by_remainder[:left]:
        shares[member] += 1
    return shares


def _exemptions(nhsa_exemptions: dict[int, str] | None) -> dict[int, str]:
    return {pk: reason.strip() for pk, reason in (nhsa_exemptions or {}).items() if reason.strip()}


def _plan(alliance: str, suggestions: list, requisition_lines: list, exemptions: dict[int, str], *,
          lock: bool) -> CentralPlan:
    from inventory.selectors.purchase_demand import requisition_shortfalls
    from inventory.services.units_of_measure import round_up_to_unit

    if not (suggestions or requisition_lines):
        raise Refused(Refusal.DEMAND_NOTHING_SELECTED)
    lead = lead_hospital(alliance)
    if lead is None:
        raise Refused(Refusal.NOT_FOUND, what="lead hospital")
    members = {member.pk: member for member in Hospital.objects.filter(alliance=alliance).exclude(pk=lead.pk)}
    chosen_suggestions = _locked(ReplenishmentSuggestion.objects.select_related("location", "product"),
                                 _pks(suggestions), lock, "replenishment suggestion")
    if any(suggestion.hospital_id not in members for suggestion in chosen_suggestions):
        raise Refused(Refusal.NOT_FOUND, what="replenishment suggestion")
    chosen_lines = _locked(RequisitionLine.objects.select_related("requisition", "product"),
                           _pks(requisition_lines), lock, "requisition line")
    if any(line.requisition.hospital_id not in members for line in chosen_lines):
        raise Refused(Refusal.NOT_FOUND, what="requisition line")
    shortfalls = {
        short.line.pk: short.shortfall
        for hospital_id in sorted({line.requisition.hospital_id for line in chosen_lines})
        for short in requisition_shortfalls(members[hospital_id], unplanned_only=False)
    }
    needs, unplanned = needs_from_sources(
        hospitals=members, suggestions=chosen_suggestions, requisition_lines=chosen_lines, shortfalls=shortfalls,
        described=lambda member, text: f"{member.name} · {text}",
    )

    lead_products = {}
    for product in Product.objects.filter(
        hospital=lead, is_active=True, alliance_entry_id__in={need.product.alliance_entry_id for need in needs},
    ).order_by("-pk"):
        lead_products[product.alliance_entry_id] = product  # the first created wins
    by_product: dict[Product, list[DemandNeed]] = defaultdict(list)
    for need in needs:
        if need.product.alliance_entry_id is None:
            problem = Problem(Refusal.CENTRAL_PLAN_NOT_IN_ALLIANCE_CATALOG,
                              {"source": need.description, "product": need.product, "hospital": need.hospital})
        elif need.product.alliance_entry_id not in lead_products:
            problem = Problem(Refusal.ALLIANCE_PRODUCT_NOT_IN_CATALOG, {"hospital": lead, "product": need.product})
        else:
            by_product[lead_products[need.product.alliance_entry_id]].append(need)
            continue
        unplanned.append(UnplannedDemand.of(need, [problem]))

    by_supplier: dict[Supplier, list[ProposedLine]] = defaultdict(list)
    for product, group in sorted(by_product.items(), key=lambda item: (item[0].name, item[0].pk)):
        agreement, problems = agreement_for_demand(lead, product, exemptions, group[0].description)
        if problems:
            unplanned += [UnplannedDemand.of(need, problems) for need in group]
            continue
        per_member: dict[Hospital, list[DemandNeed]] = defaultdict(list)
        for need in group:
            per_member[need.hospital].append(need)
        member_needs = {member: sum(need.quantity for need in own) for member, own in per_member.items()}
        quantity = round_up_to_unit(product=product, base_quantity=sum(member_needs.values()))
        shares = split_by_need(member_needs, quantity)
        by_supplier[agreement.supplier].append(ProposedLine(product, agreement, quantity, [
            MemberShare(member, member_needs[member], shares[member], per_member[member])
            for member in sorted(per_member, key=lambda member: (member.name, member.pk))
        ]))
    if not by_supplier:
        raise Refused([Problem(Refusal.DEMAND_NOTHING_PLANNED)] + [p for entry in unplanned for p in entry.problems])
    orders = [ProposedOrder(supplier, lines)
              for supplier, lines in sorted(by_supplier.items(), key=lambda item: (item[0].name, item[0].pk))]
    return CentralPlan(alliance, lead, orders, unplanned)


def _pks(items: list) -> list[int]:
    """Sources given as rows or as ids."""
    return sorted({getattr(item, "pk", item) for item in items})


def _locked(queryset, pks: list[int], lock: bool, what: str) -> list:
    """The rows `pks` in primary-key order, locked when placing; a missing one is NOT_FOUND."""
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    rows = list(queryset.filter(pk__in=pks).order_by("pk"))
    if len(rows) != len(pks):
        raise Refused(Refusal.NOT_FOUND, what=what)
    return rows


def _record_sources(central: CentralOrder, proposed: ProposedOrder) -> None:
    """Each planned source, against its member's allocation on its order line (UNIQUE per source)."""
    allocations = {(allocation.order_line.product_id, allocation.member_id): allocation
                   for allocation in central.allocations.select_related("order_line")}
    PlanDemandSource.objects.bulk_create([
        PlanDemandSource(allocation=allocations[(line.product.pk, share.member.pk)], suggestion=need.suggestion,
                         requisition_line=need.requisition_line, description=need.description[:200],
                         quantity=need.quantity)
        for line in proposed.lines for share in line.shares for need in share.needs
    ])
