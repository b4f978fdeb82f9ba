"""Central plans from members' demand (集中采购计划): two members' suggestions and requisition
shortfalls become central order lines of the lead hospital, rounded up to its purchase unit, with
each member's share; a product without an agreement is listed as not planned and stays open; each
source is planned once — by the centre or by the member itself, and by two operators at once
(PostgreSQL)."""
import pytest

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import (
    AllianceEntry,
    CentralOrder,
    CentralOrderAllocation,
    PackagingUnit,
    PlanDemandSource,
    Product,
    ReplenishmentSuggestion,
)
from inventory.selectors.central_demand import members_open_demand
from inventory.selectors.purchase_demand import open_suggestions, requisition_shortfalls
from inventory.services.central_planning import place_central_plan, propose_central_plan, split_by_need
from inventory.services.purchasing import PlanLineOrdering, plan_from_demand
from tests import factories
from tests.concurrency import run_together
from tests.factories import TODAY
from tests.inventory.test_plan_from_demand import approved_requisition, suggest

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


class Member:
    """A member hospital: its stores, its SPD operator and its products linked to the alliance entries."""

    def __init__(self, code: str, alliance: str, entries: dict):
        self.hospital = factories.HospitalFactory(code=code, name=f"{code}卫生院", alliance=alliance)
        self.warehouse = factories.LocationFactory(hospital=self.hospital, code="CW", name=f"{code}中心库")
        department = factories.DepartmentFactory(hospital=self.hospital, code="WARD", name="内科")
        self.ward = factories.LocationFactory(hospital=self.hospital, department=department, code="WARD-STORE",
                                              kind="DEPARTMENT_STORE", name=f"{code}内科二级库")
        self.operator = factories.UserFactory(username=f"op-{code}", hospital=self.hospital, roles=["spd_operator"])
        self.keeper = factories.UserFactory(username=f"keeper-{code}", hospital=self.hospital, roles=["warehouse"])
        self.products = {
            lead_product.pk: factories.ProductFactory(
                hospital=self.hospital, udi_di=lead_product.udi_di, name=lead_product.name,
                internal_code=f"{code}-{lead_product.internal_code}", tracking=lead_product.tracking,
                is_high_value=lead_product.is_high_value, alliance_entry=entry)
            for lead_product, entry in entries.items()
        }


def link_to_alliance(product: Product, code: str) -> AllianceEntry:
    entry = AllianceEntry.objects.create(
        alliance=product.hospital.alliance, keeper=product.hospital, code=code, name=product.name,
        udi_di=product.udi_di, manufacturer=product.manufacturer, tracking=product.tracking)
    Product.objects.filter(pk=product.pk).update(alliance_entry=entry)
    product.refresh_from_db()
    return entry


@pytest.fixture
def centre(hospital):
    return factories.UserFactory(username="centre-op", hospital=hospital, roles=["spd_operator"])


@pytest.fixture
def no_agreement_product(hospital):
    return factories.ProductFactory(hospital=hospital, name="无协议耗材", tracking="LOT", is_high_value=False)


@pytest.fixture
def members(hospital, warehouse, product, lot_product, no_agreement_product):
    """Two members adopting three entries of the lead's catalog; the lead buys the infusion set in
    boxes of 10."""
    entries = {p: link_to_alliance(p, f"AL-{index}")
               for index, p in enumerate([product, lot_product, no_agreement_product])}
    PackagingUnit.objects.create(product=lot_product, name="盒", factor=10, is_purchase_unit=True)
    return Member("M1", hospital.alliance, entries), Member("M2", hospital.alliance, entries)


@pytest.fixture
def demand(members, product, lot_product, no_agreement_product):
    """M1: a shortfall of 3 infusion sets (nothing in its warehouse) and a suggestion of 4; M2: a
    suggestion of 5 infusion sets, a shortfall of 2 stents, a suggestion of 2 of the product without
    an agreement."""
    m1, m2 = members
    [m1_short] = approved_requisition(m1.ward, m1.operator, (m1.products[lot_product.pk], 3), number="M1-SL-1")
    m1_suggestion = suggest(m1.ward, m1.products[lot_product.pk], 4)
    m2_suggestion = suggest(m2.ward, m2.products[lot_product.pk], 5)
    [m2_short] = approved_requisition(m2.ward, m2.operator, (m2.products[product.pk], 2), number="M2-SL-1")
    m2_unplannable = suggest(m2.ward, m2.products[no_agreement_product.pk], 2)
    return {"suggestions": [m1_suggestion, m2_suggestion, m2_unplannable], "requisition_lines": [m1_short, m2_short]}


def shares_of(line) -> dict[str, tuple[int, int]]:
    return {share.member.code: (share.need, share.quantity) for share in line.shares}


def test_the_proposal_rounds_the_members_needs_to_whole_boxes_and_shares_them_by_need(
    hospital, centre, members, demand, supplier, product, lot_product,
):
    proposal = propose_central_plan(user=centre, alliance=hospital.alliance, **demand)

    [order] = proposal.orders
    assert order.supplier == supplier
    lines = {line.product: line for line in order.lines}
    infusion = lines[lot_product]
    # M1 needs 3 + 4 = 7, M2 needs 5: 12 → two boxes, 20. The 8 added are shared 7:5 — M1 4 (rest 8/12),
    # M2 3 (rest 4/12) — and the last one goes to the larger remainder, M1: 7 + 5 = 12, 5 + 3 = 8.
    assert (infusion.need, infusion.quantity) == (12, 20)
    assert shares_of(infusion) == {"M1": (7, 12), "M2": (5, 8)}
    assert infusion.agreement.unit_price == lot_product.agreements.get().unit_price
    stents = lines[product]
    assert (stents.quantity, shares_of(stents), stents.platform_only) == (2, {"M2": (2, 2)}, True)
    [unplanned] = proposal.unplanned
    assert unplanned.source.startswith("M2卫生院 · ")
    assert [problem.code for problem in unplanned.problems] == ["DEMAND_NO_AGREEMENT"]
    # a proposal writes nothing
    assert not PlanDemandSource.objects.exists() and not CentralOrder.objects.exists()
    assert set(ReplenishmentSuggestion.objects.values_list("status", flat=True)) == {"OPEN"}


def test_placing_makes_the_central_order_with_allocations_and_plans_each_source_once(
    hospital, warehouse, centre, members, demand, product, lot_product, no_agreement_product,
):
    m1, m2 = members
    plan = place_central_plan(user=centre, regional_warehouse=warehouse, promised_date=TODAY,
                              orderings={product.pk: PlanLineOrdering("YG-2026-1")}, **demand)

    [central] = plan.placed
    order = central.purchase_order
    assert order.hospital == hospital and central.regional_warehouse == warehouse
    assert {line.product: (line.quantity, line.platform_reference) for line in order.lines.all()} == {
        lot_product: (20, ""), product: (2, "YG-2026-1")}
    allocations = {(a.order_line.product, a.member.code): (a.quantity, a.member_product)
                   for a in CentralOrderAllocation.objects.filter(central_order=central)}
    assert allocations == {
        (lot_product, "M1"): (12, m1.products[lot_product.pk]), (lot_product, "M2"): (8, m2.products[lot_product.pk]),
        (product, "M2"): (2, m2.products[product.pk])}
    sources = {(s.allocation.member.code, s.allocation.order_line.product, s.quantity)
               for s in PlanDemandSource.objects.select_related("allocation__member", "allocation__order_line__product")}
    assert sources == {("M1", lot_product, 3), ("M1", lot_product, 4), ("M2", lot_product, 5), ("M2", product, 2)}
    m1_suggestion, m2_suggestion, m2_unplannable = demand["suggestions"]
    statuses = dict(ReplenishmentSuggestion.objects.values_list("pk", "status"))
    assert statuses == {m1_suggestion.pk: "PURCHASE_PLANNED", m2_suggestion.pk: "PURCHASE_PLANNED",
                        m2_unplannable.pk: "OPEN"}

    # The members no longer see them as open demand; what could not be planned still is.
    assert list(open_suggestions(m1.hospital)) == [] and requisition_shortfalls(m1.hospital) == []
    assert [s.pk for s in open_suggestions(m2.hospital)] == [m2_unplannable.pk]
    assert [(entry.member, [s.pk for s in entry.suggestions], entry.shortfalls)
            for entry in members_open_demand(hospital.alliance)] == [(m2.hospital, [m2_unplannable.pk], [])]
    # ...nor can a member plan them again itself, nor the centre.
    with pytest.raises(Refused) as refused:
        plan_from_demand(actor=Actor(user=m1.operator), hospital=m1.hospital, suggestions=[m1_suggestion])
    assert [p.code for p in refused.value.problems] == ["DEMAND_NOTHING_PLANNED", "DEMAND_ALREADY_PLANNED"]
    assert order.number in refused.value.problems[1].detail
    with pytest.raises(Refused) as refused:
        place_central_plan(user=centre, regional_warehouse=warehouse, promised_date=TODAY,
                           suggestions=[m2_suggestion], requisition_lines=demand["requisition_lines"])
    assert [p.code for p in refused.value.problems] == ["DEMAND_NOTHING_PLANNED"] + ["DEMAND_ALREADY_PLANNED"] * 3
    assert CentralOrder.objects.count() == 1


def test_a_refused_order_places_nothing_and_leaves_every_source_open(hospital, warehouse, centre, members, demand):
    with pytest.raises(Refused) as refused:
        place_central_plan(user=centre, regional_warehouse=warehouse, promised_date=TODAY, **demand)

    assert [p.code for p in refused.value.problems] == ["PLATFORM_REFERENCE_REQUIRED"]  # the stent line
    assert not CentralOrder.objects.exists() and not PlanDemandSource.objects.exists()
    assert set(ReplenishmentSuggestion.objects.values_list("status", flat=True)) == {"OPEN"}


def test_a_members_staff_and_another_alliance_cannot_plan_centrally(
    hospital, warehouse, centre, members, demand, lot_product,
):
    m1, _m2 = members
    for user in (m1.operator, m1.keeper):
        with pytest.raises(Refused) as refused:
            propose_central_plan(user=user, alliance=hospital.alliance, **demand)
        assert refused.value.code == "NOT_ALLOWED"
    stranger = factories.HospitalFactory(code="X1", alliance="别县医共体")
    foreign = suggest(factories.LocationFactory(hospital=stranger, kind="DEPARTMENT_STORE"),
                      factories.ProductFactory(hospital=stranger), 3)
    with pytest.raises(Refused) as refused:
        propose_central_plan(user=centre, alliance=hospital.alliance, suggestions=[foreign])
    assert refused.value.code == "NOT_FOUND"
    unlinked = factories.ProductFactory(hospital=m1.hospital, name="未入联盟目录")
    proposal = propose_central_plan(user=centre, alliance=hospital.alliance,
                                    suggestions=[suggest(m1.ward, unlinked, 1), demand["suggestions"][0]])
    assert [p.code for entry in proposal.unplanned for p in entry.problems] == ["CENTRAL_PLAN_NOT_IN_ALLIANCE_CATALOG"]


def test_shares_add_up_to_the_order_line_whatever_the_rounding():
    a, b, c = (factories.HospitalFactory.build(pk=pk) for pk in (1, 2, 3))
    assert split_by_need({a: 7, b: 5}, 20) == {a: 12, b: 8}
    assert split_by_need({a: 1, b: 1, c: 1}, 10) == {a: 4, b: 3, c: 3}  # equal needs: the first member
    assert split_by_need({a: 3, b: 9}, 12) == {a: 3, b: 9}  # nothing to round


@pytest.mark.django_db(transaction=True)
def test_two_operators_placing_the_same_needs_at_once_place_them_once(
    hospital, warehouse, members, demand, product,
):
    operators = [factories.UserFactory(username=f"centre-{i}", hospital=hospital, roles=["spd_operator"])
                 for i in range(2)]

    outcomes = run_together(2, lambda i: place_central_plan(
        user=operators[i], regional_warehouse=warehouse, promised_date=TODAY,
        suggestions=list(reversed(demand["suggestions"])) if i else demand["suggestions"],
        requisition_lines=demand["requisition_lines"], orderings={product.pk: PlanLineOrdering(f"YG-{i}")}))

    placed = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
    refusals = [outcome for outcome in outcomes if isinstance(outcome, Refused)]
    assert len(placed) == 1 and len(refusals) == 1, outcomes
    assert refusals[0].problems[0].code == "DEMAND_NOTHING_PLANNED"
    assert CentralOrder.objects.count() == 1
    assert PlanDemandSource.objects.count() == 4
    assert set(PlanDemandSource.objects.values_list("allocation__central_order", flat=True)) == {
        placed[0].placed[0].pk}
