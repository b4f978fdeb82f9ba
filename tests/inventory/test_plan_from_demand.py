"""Purchase plans from demand: open replenishment suggestions and requisition shortfalls become a plan
grouped per supplier, one line per product rounded up to the purchase unit under the agreement chosen
(a VBP product's VBP agreement first); needs that cannot be planned are listed with their reason; each
source is planned once, even by two operators at the same moment (PostgreSQL)."""
import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import (
    PackagingUnit,
    ParLevel,
    PlanDemandSource,
    PurchasePlan,
    ReplenishmentSuggestion,
    Requisition,
    RequisitionLine,
    Suspension,
    VbpContract,
)
from inventory.services.purchasing import plan_from_demand
from tests import factories
from tests.concurrency import run_together
from tests.conftest import api_client_for, stock_units
from tests.factories import TODAY

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def suggest(location, product, quantity):
    level = ParLevel.objects.create(location=location, product=product, minimum=quantity, target=quantity)
    return ReplenishmentSuggestion.objects.create(
        hospital=location.hospital, location=location, product=product, par_level=level, minimum=quantity,
        target=quantity, on_hand=0, in_transit=0, on_order=0, quantity=quantity,
    )


def approved_requisition(location, user, *lines, number="SL-1", decided=None):
    requisition = Requisition.objects.create(
        hospital=location.hospital, department=location.department, location=location, number=number,
        status=Requisition.Status.APPROVED, created_by=user, decided_at=decided or timezone.now(), decided_by=user,
        submitted_at=timezone.now(), submitted_by=user,
    )
    return [RequisitionLine.objects.create(requisition=requisition, product=product, requested_quantity=quantity,
                                           approved_quantity=quantity) for product, quantity in lines]


@pytest.fixture
def operator_actor(operator):
    return Actor(user=operator)


def test_suggestions_and_shortfalls_become_one_line_per_product_in_whole_boxes(
    hospital, operator_actor, operator, keeper, cath_lab_store, cabinet, warehouse, supplier, product, lot_product
):
    PackagingUnit.objects.create(product=lot_product, name="盒", factor=10, is_purchase_unit=True)
    stock_units(Actor(user=keeper), supplier, warehouse, product, ["W1", "W2"])  # the warehouse covers 2
    first = suggest(cath_lab_store, lot_product, 23)
    second = suggest(cabinet, lot_product, 5)
    [early] = approved_requisition(cath_lab_store, operator, (product, 3), number="SL-1",
                                   decided=timezone.now() - datetime.timedelta(hours=2))
    [late] = approved_requisition(cath_lab_store, operator, (product, 4), number="SL-2")

    plan = plan_from_demand(actor=operator_actor, hospital=hospital, suggestions=[first, second],
                            requisition_lines=[early, late])

    lines = {line.product: line for line in plan.lines.all()}
    assert lines[lot_product].quantity == 30  # 23 + 5 = 28 → three boxes of 10
    assert lines[product].quantity == 5  # 7 still to pick, 2 in the warehouse: SL-1 short 1, SL-2 short 4
    assert {line.agreement.supplier for line in lines.values()} == {supplier}
    assert sorted(PlanDemandSource.objects.filter(plan=plan).values_list("quantity", flat=True)) == [1, 4, 5, 23]
    assert set(ReplenishmentSuggestion.objects.values_list("status", flat=True)) == {"PURCHASE_PLANNED"}
    assert plan.unplanned == []

    with pytest.raises(Refused) as refused:
        plan_from_demand(actor=operator_actor, hospital=hospital, suggestions=[first], requisition_lines=[late])
    assert [p.code for p in refused.value.problems] == [
        "DEMAND_NOTHING_PLANNED", "DEMAND_ALREADY_PLANNED", "DEMAND_ALREADY_PLANNED"]
    assert PurchasePlan.objects.count() == 1


def test_vbp_agreement_is_preferred_and_unplannable_needs_are_listed_with_reasons(
    hospital, operator_actor, cath_lab_store, supplier, product
):
    vbp_supplier = factories.SupplierFactory()
    factories.SupplyAgreementFactory(hospital=hospital, product=product, supplier=vbp_supplier,
                                     unit_price=Decimal("1500.00"), vbp_contract="VBP-2026-01")
    contract = VbpContract.objects.create(number="VBP-2026-01", name="冠脉支架集采", owner_hospital=hospital,
                                          ratio=Decimal("0.7"),
                                         start_date=TODAY, period="ONE_YEAR")
    contract.products.add(product)
    no_agreement = factories.ProductFactory(hospital=hospital, name="无协议耗材")
    no_code = factories.SupplyAgreementFactory(hospital=hospital, product__hospital=hospital,
                                               product__nhsa_code="", product__name="无医保编码耗材").product
    suspended = factories.SupplyAgreementFactory(hospital=hospital, product__hospital=hospital,
                                                 product__name="暂停供货耗材").product
    Suspension.objects.create(hospital=hospital, product=suspended)
    wanted = [suggest(cath_lab_store, p, 2) for p in (product, no_agreement, no_code, suspended)]

    plan = plan_from_demand(actor=operator_actor, hospital=hospital, suggestions=wanted)

    [line] = plan.lines.all()
    assert (line.product, line.agreement.supplier, line.agreement.unit_price) == (product, vbp_supplier, Decimal("1500.00"))
    reasons = {entry["product_name"]: [p["code"] for p in entry["problems"]] for entry in plan.unplanned}
    assert reasons == {"无协议耗材": ["DEMAND_NO_AGREEMENT"], "无医保编码耗材": ["NHSA_CODE_MISSING"],
                       "暂停供货耗材": ["PRODUCT_SUSPENDED"]}
    assert ReplenishmentSuggestion.objects.filter(status="OPEN").count() == 3  # still open for a later plan
    exempted = plan_from_demand(actor=operator_actor, hospital=hospital, suggestions=[wanted[2]],
                                nhsa_exemptions={no_code.pk: "院内自制试剂，医保未赋码"})
    assert exempted.lines.get().nhsa_exemption_reason == "院内自制试剂，医保未赋码"


@pytest.mark.django_db(transaction=True)
def test_two_operators_planning_the_same_suggestions_plan_each_once(
    hospital, operator, cath_lab_store, cabinet, lot_product, product, supplier
):
    suggestions = [suggest(cath_lab_store, lot_product, 10), suggest(cabinet, lot_product, 4),
                   suggest(cath_lab_store, product, 2)]
    other = factories.UserFactory(hospital=hospital, roles=["spd_operator"])
    actors = [Actor(user=operator), Actor(user=other)]

    outcomes = run_together(2, lambda i: plan_from_demand(
        actor=actors[i], hospital=hospital, suggestions=list(reversed(suggestions)) if i else suggestions))

    plans = [outcome for outcome in outcomes if isinstance(outcome, PurchasePlan)]
    refusals = [outcome for outcome in outcomes if isinstance(outcome, Refused)]
    assert len(plans) == 1 and len(refusals) == 1, outcomes
    assert refusals[0].problems[0].code == "DEMAND_NOTHING_PLANNED"
    assert PlanDemandSource.objects.count() == 3
    assert set(PlanDemandSource.objects.values_list("plan_id", flat=True)) == {plans[0].pk}


def test_api_lists_demand_plans_it_and_orders_the_plan_per_supplier(
    hospital, operator, auditor, cath_lab_store, lot_product, product, supplier
):
    wanted = suggest(cath_lab_store, lot_product, 12)
    [line] = approved_requisition(cath_lab_store, operator, (product, 2))
    client = api_client_for(operator)

    demand = client.get("/api/v1/purchasing/demand/").json()
    assert [s["id"] for s in demand["suggestions"]] == [wanted.pk]
    assert [(s["requisition_line"], s["shortfall"]) for s in demand["requisition_shortfalls"]] == [(line.pk, 2)]
    assert api_client_for(auditor).post("/api/v1/purchase-plans/from-demand/", {"suggestions": [wanted.pk]},
                                        format="json").status_code == 403
    foreign = factories.UserFactory(hospital=factories.HospitalFactory(), roles=["spd_operator"])
    assert api_client_for(foreign).post("/api/v1/purchase-plans/from-demand/", {"suggestions": [wanted.pk]},
                                        format="json").status_code == 400
    empty = client.post("/api/v1/purchase-plans/from-demand/", {}, format="json")
    assert (empty.status_code, empty.json()["code"]) == (400, "DEMAND_NOTHING_SELECTED")

    made = client.post("/api/v1/purchase-plans/from-demand/",
                       {"suggestions": [wanted.pk], "requisition_lines": [line.pk]}, format="json")

    assert made.status_code == 201, made.json()
    body = made.json()
    assert sorted((row["product"], row["quantity"], row["supplier"]) for row in body["lines"]) == sorted(
        [(lot_product.pk, 12, supplier.pk), (product.pk, 2, supplier.pk)])
    assert client.get("/api/v1/purchasing/demand/").json() == {"suggestions": [], "requisition_shortfalls": []}
    high_value = next(row["line_no"] for row in body["lines"] if row["product"] == product.pk)
    url = f"/api/v1/purchase-plans/{body['id']}/order/"
    refused = client.post(url, {"promised_date": str(TODAY)}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (400, "PLATFORM_REFERENCE_REQUIRED")
    ordered = client.post(url, {"promised_date": str(TODAY), "lines": [
        {"line_no": high_value, "platform_reference": "YG-88"}]}, format="json")
    assert ordered.status_code == 201, ordered.json()
    [order] = ordered.json()
    assert sorted((line["quantity"], line["platform_reference"]) for line in order["lines"]) == [(2, "YG-88"), (12, "")]
