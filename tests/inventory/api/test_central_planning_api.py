"""The central plan API: the centre lists members' demand, gets a proposal and places it once; a member
hospital's own staff are refused (403: it is the alliance's work, as the central orders are); a source
of another alliance is 404; the schema describes it."""
import pytest

from inventory.models import CentralOrder, PlanDemandSource
from tests import factories
from tests.conftest import api_client_for
from tests.factories import TODAY
from tests.inventory.test_central_planning import (  # noqa: F401 (fixtures)
    centre,
    demand,
    members,
    no_agreement_product,
)
from tests.inventory.test_plan_from_demand import suggest

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def selection(chosen: dict) -> dict:
    return {"suggestions": [s.pk for s in chosen["suggestions"]],
            "requisition_lines": [line.pk for line in chosen["requisition_lines"]]}


def test_the_centre_lists_members_demand_gets_a_proposal_and_places_it_once(
    centre, members, demand, warehouse, product, lot_product,  # noqa: F811
):
    m1, m2 = members
    client = api_client_for(centre)

    listed = client.get("/api/v1/central-plans/demand/")
    assert listed.status_code == 200, listed.json()
    by_member = {row["member_name"]: row for row in listed.json()}
    assert sorted(s["quantity"] for s in by_member["M1卫生院"]["suggestions"]) == [4]
    assert [(r["requisition_line"], r["shortfall"]) for r in by_member["M1卫生院"]["requisition_shortfalls"]] == [
        (demand["requisition_lines"][0].pk, 3)]
    assert len(by_member["M2卫生院"]["suggestions"]) == 2

    proposal = client.post("/api/v1/central-plans/proposal/", selection(demand), format="json")
    assert proposal.status_code == 200, proposal.json()
    [order] = proposal.json()["orders"]
    lines = {line["product"]: line for line in order["lines"]}
    assert (lines[lot_product.pk]["need"], lines[lot_product.pk]["quantity"]) == (12, 20)
    assert {s["member_name"]: (s["need"], s["quantity"]) for s in lines[lot_product.pk]["shares"]} == {
        "M1卫生院": (7, 12), "M2卫生院": (5, 8)}
    assert [p["code"] for u in proposal.json()["unplanned"] for p in u["problems"]] == ["DEMAND_NO_AGREEMENT"]
    assert proposal.json()["central_orders"] == [] and not CentralOrder.objects.exists()

    body = {**selection(demand), "regional_warehouse": warehouse.pk, "promised_date": str(TODAY),
            "lines": [{"product": product.pk, "platform_reference": "YG-9"}]}
    placed = client.post("/api/v1/central-plans/", body, format="json")
    assert placed.status_code == 201, placed.json()
    [central] = placed.json()["central_orders"]
    assert sorted((a["member_name"], a["product"], a["quantity"]) for a in central["allocations"]) == sorted([
        ("M1卫生院", lot_product.pk, 12), ("M2卫生院", lot_product.pk, 8), ("M2卫生院", product.pk, 2)])
    assert client.get("/api/v1/central-orders/").json()["results"][0]["id"] == central["id"]

    again = client.post("/api/v1/central-plans/", body, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "DEMAND_NOTHING_PLANNED")
    assert CentralOrder.objects.count() == 1 and PlanDemandSource.objects.count() == 4


def test_a_member_hospitals_own_staff_are_refused(members, demand, warehouse):  # noqa: F811
    m1, _m2 = members
    nurse = factories.UserFactory(username="m1-nurse", hospital=m1.hospital, roles=["nurse"])
    for user in (m1.keeper, m1.operator, nurse):
        client = api_client_for(user)
        assert client.get("/api/v1/central-plans/demand/").status_code == 403, user
        assert client.post("/api/v1/central-plans/proposal/", selection(demand), format="json").status_code == 403
        placed = client.post("/api/v1/central-plans/", {**selection(demand), "regional_warehouse": warehouse.pk,
                                                         "promised_date": str(TODAY)}, format="json")
        assert placed.status_code == 403, placed.json()
    assert not CentralOrder.objects.exists() and not PlanDemandSource.objects.exists()


def test_a_source_of_another_alliance_is_not_found(centre, members, demand):  # noqa: F811
    stranger = factories.HospitalFactory(code="X1", alliance="别县医共体")
    foreign = suggest(factories.LocationFactory(hospital=stranger, kind="DEPARTMENT_STORE"),
                      factories.ProductFactory(hospital=stranger), 3)
    answer = api_client_for(centre).post("/api/v1/central-plans/proposal/", {"suggestions": [foreign.pk]},
                                         format="json")
    assert (answer.status_code, answer.json()["code"]) == (404, "NOT_FOUND")
    empty = api_client_for(centre).post("/api/v1/central-plans/proposal/", {}, format="json")
    assert (empty.status_code, empty.json()["code"]) == (400, "DEMAND_NOTHING_SELECTED")


def test_the_schema_describes_the_central_plan_endpoints(centre):  # noqa: F811
    schema = api_client_for(centre).get("/api/schema/?format=json").json()
    assert {"/api/v1/central-plans/", "/api/v1/central-plans/proposal/", "/api/v1/central-plans/demand/"} <= set(
        schema["paths"])
    assert "CentralPlan" in schema["components"]["schemas"]
