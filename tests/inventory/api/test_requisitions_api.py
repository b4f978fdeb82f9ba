"""Requisitions, par levels and replenishment over the API: scoping, bad input (400 with the field),
illegal state changes (409, nothing changed) and idempotency."""
import pytest

from inventory.models import PackagingUnit, ParLevel, ParLevelProposal, Requisition
from inventory.services import replenishment
from tests import factories
from tests.conftest import api_client_for
from tests.factories import gs1_udi

API = "/api/v1"


@pytest.fixture
def icu(hospital):
    icu = factories.DepartmentFactory(hospital=hospital, code="ICU", name="重症医学科")
    factories.LocationFactory(hospital=hospital, department=icu, code="ICU-S", name="ICU 二级库", kind="DEPARTMENT_STORE")
    return icu


@pytest.fixture
def theirs(other_hospital):
    department = factories.DepartmentFactory(hospital=other_hospital, code="X", name="外院科室")
    factories.LocationFactory(hospital=other_hospital, department=department, code="X-S", kind="DEPARTMENT_STORE")
    user = factories.UserFactory(username="their-keeper", hospital=other_hospital, roles=["warehouse"])
    return department, user


def create(client, department, lines, *, key="req-1", **extra):
    body = {"department": department.pk, "lines": lines, "idempotency_key": key, **extra}
    return client.post(f"{API}/requisitions/", body, format="json")


def problem_fields(response):
    return [problem.get("field") for problem in response.json()["problems"]]


def test_a_nurse_creates_and_submits_an_urgent_requisition_by_scan_and_by_id(nurse, department, product, lot_product):
    client = api_client_for(nurse)
    response = create(client, department, [
        {"code": gs1_udi(product.udi_di, serial="S1"), "quantity": 2},
        {"product": lot_product.pk, "quantity": 30, "note": "换药用"},
    ], urgency="URGENT", note="抢救", submit=True)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["urgency"], body["department"]) == ("APPROVED", "URGENT", department.pk)
    assert [(line["product"], line["requested_quantity"], line["approved_quantity"]) for line in body["lines"]] == [
        (product.pk, 2, 2), (lot_product.pk, 30, 30)]


def test_the_same_key_replays_the_first_creation_and_another_body_is_409(nurse, department, lot_product):
    client = api_client_for(nurse)
    first = create(client, department, [{"product": lot_product.pk, "quantity": 3}])
    again = create(client, department, [{"product": lot_product.pk, "quantity": 3}])
    assert again.json()["id"] == first.json()["id"]
    assert Requisition.objects.count() == 1
    other = create(client, department, [{"product": lot_product.pk, "quantity": 4}])
    assert (other.status_code, other.json()["code"]) == (409, "IDEMPOTENCY_CONFLICT")


@pytest.mark.parametrize("quantity", [0, -2, 1.5, "2.5", "x", None])
def test_zero_negative_and_fractional_quantities_are_400_naming_the_field(nurse, department, lot_product, quantity):
    response = create(api_client_for(nurse), department, [
        {"product": lot_product.pk, "quantity": 1}, {"product": lot_product.pk, "quantity": quantity}])
    assert response.status_code == 400
    assert "lines[1].quantity" in problem_fields(response)
    assert not Requisition.objects.exists()


def test_a_unit_the_product_does_not_have_is_400_naming_the_unit(nurse, department, lot_product):
    response = create(api_client_for(nurse), department, [{"product": lot_product.pk, "quantity": 1, "unit": "吨"}])
    assert response.status_code == 400
    assert problem_fields(response) == ["lines[0].unit"]
    assert not Requisition.objects.exists()


def test_a_quantity_in_a_packaging_unit_is_kept_in_base_units_with_what_was_entered(nurse, department, lot_product):
    PackagingUnit.objects.create(product=lot_product, name="盒", factor=10, is_purchase_unit=True)
    response = create(api_client_for(nurse), department, [{"product": lot_product.pk, "quantity": 3, "unit": "盒"}])
    [line] = response.json()["lines"]
    assert (line["requested_quantity"], line["entered_quantity"], line["entered_unit"]) == (30, 3, "盒")


def test_an_unknown_scanned_code_is_400_naming_the_code(nurse, department):
    response = create(api_client_for(nurse), department, [{"code": "NOPE-123", "quantity": 1}])
    assert response.status_code == 400
    assert "lines[0].code" in problem_fields(response)


def test_a_nurse_sees_and_creates_only_her_departments_requisitions(nurse, keeper, department, icu, lot_product):
    mine = create(api_client_for(nurse), department, [{"product": lot_product.pk, "quantity": 1}]).json()
    icu_one = create(api_client_for(keeper), icu, [{"product": lot_product.pk, "quantity": 1}], key="k2").json()
    client = api_client_for(nurse)
    assert [r["id"] for r in client.get(f"{API}/requisitions/").json()["results"]] == [mine["id"]]
    assert client.get(f"{API}/requisitions/{icu_one['id']}/").status_code == 404
    refused = create(client, icu, [{"product": lot_product.pk, "quantity": 1}], key="k3")
    assert (refused.status_code, refused.json()["code"]) == (403, "NOT_YOUR_DEPARTMENT")
    assert {r["id"] for r in api_client_for(keeper).get(f"{API}/requisitions/").json()["results"]} == {
        mine["id"], icu_one["id"]}


def test_an_auditor_reads_the_whole_hospital_and_changes_nothing(nurse, auditor, department, lot_product):
    made = create(api_client_for(nurse), department, [{"product": lot_product.pk, "quantity": 1}]).json()
    client = api_client_for(auditor)
    assert [r["id"] for r in client.get(f"{API}/requisitions/").json()["results"]] == [made["id"]]
    assert client.post(f"{API}/requisitions/{made['id']}/submit/", {"idempotency_key": "s"}, format="json").status_code == 403
    assert client.get(f"{API}/replenishment-suggestions/").status_code == 200


def test_another_hospitals_requisition_is_404_and_its_department_does_not_exist(
    nurse, department, lot_product, theirs
):
    made = create(api_client_for(nurse), department, [{"product": lot_product.pk, "quantity": 1}]).json()
    their_department, their_keeper = theirs
    client = api_client_for(their_keeper)
    assert client.get(f"{API}/requisitions/{made['id']}/").status_code == 404
    assert client.post(f"{API}/requisitions/{made['id']}/cancel/", {"reason": "x"}, format="json").status_code == 404
    assert client.get(f"{API}/requisitions/").json()["results"] == []
    ours = create(api_client_for(nurse), their_department, [{"product": lot_product.pk, "quantity": 1}], key="z")
    assert ours.status_code == 400 and "department" in problem_fields(ours)


def test_approval_with_per_line_quantities_and_state_errors(nurse, keeper, department, lot_product, product):
    department.requisitions_need_approval = True
    department.save()
    made = create(api_client_for(nurse), department, [
        {"product": lot_product.pk, "quantity": 10}, {"product": product.pk, "quantity": 2}]).json()
    url = f"{API}/requisitions/{made['id']}"
    keeper_client, nurse_client = api_client_for(keeper), api_client_for(nurse)
    early = keeper_client.post(f"{url}/approve/", {}, format="json")
    assert (early.status_code, early.json()["code"]) == (409, "REQUISITION_STATE")
    submitted = nurse_client.post(f"{url}/submit/", {}, format="json", HTTP_IDEMPOTENCY_KEY="sub-1")
    assert submitted.json()["status"] == "SUBMITTED"
    assert nurse_client.post(f"{url}/approve/", {}, format="json").status_code == 403
    first, second = made["lines"]
    too_many = keeper_client.post(f"{url}/approve/", {"lines": [{"line": first["id"], "quantity": 11}]}, format="json")
    assert too_many.status_code == 409 and problem_fields(too_many) == [f"approved[{first['id']}]"]
    negative = keeper_client.post(f"{url}/approve/", {"lines": [{"line": first["id"], "quantity": -1}]}, format="json")
    assert negative.status_code == 400 and "lines[0].quantity" in problem_fields(negative)
    approved = keeper_client.post(f"{url}/approve/", {"lines": [{"line": first["id"], "quantity": 6}]}, format="json")
    assert [line["approved_quantity"] for line in approved.json()["lines"]] == [6, 2]
    again = nurse_client.post(f"{url}/submit/", {}, format="json", HTTP_IDEMPOTENCY_KEY="sub-2")
    assert (again.status_code, again.json()["code"]) == (409, "REQUISITION_STATE")
    replay = nurse_client.post(f"{url}/submit/", {}, format="json", HTTP_IDEMPOTENCY_KEY="sub-1")
    assert replay.status_code == 200 and replay.json()["status"] == "APPROVED"
    cancelled = nurse_client.post(f"{url}/lines/{second['id']}/cancel/", {"reason": "不需要了"}, format="json")
    assert cancelled.json()["lines"][1]["cancelled_quantity"] == 2
    no_reason = keeper_client.post(f"{url}/cancel/", {"reason": ""}, format="json")
    assert no_reason.status_code == 400 and "reason" in problem_fields(no_reason)


def test_draft_lines_are_added_changed_and_removed_then_locked_after_submit(nurse, department, lot_product, product):
    client = api_client_for(nurse)
    made = create(client, department, []).json()
    url = f"{API}/requisitions/{made['id']}"
    added = client.post(f"{url}/lines/", {"code": product.internal_code, "quantity": 1}, format="json")
    assert added.status_code == 201
    client.post(f"{url}/lines/", {"product": lot_product.pk, "quantity": 4}, format="json")
    line = added.json()["lines"][0]["id"]
    assert client.patch(f"{url}/lines/{line}/", {"quantity": 3}, format="json").json()["lines"][0]["requested_quantity"] == 3
    body = client.delete(f"{url}/lines/{line}/").json()
    assert [item["product"] for item in body["lines"]] == [lot_product.pk]
    client.post(f"{url}/submit/", {"idempotency_key": "s1"}, format="json")
    late = client.post(f"{url}/lines/", {"product": product.pk, "quantity": 1}, format="json")
    assert (late.status_code, late.json()["code"]) == (409, "REQUISITION_STATE")
    assert client.delete(f"{url}/lines/999999/").status_code == 404


def test_par_levels_are_written_by_the_warehouse_with_who_and_when(keeper, nurse, cath_lab_store, lot_product):
    client = api_client_for(keeper)
    body = {"location": cath_lab_store.pk, "product": lot_product.pk, "minimum": 5, "target": 10, "maximum": 20}
    created = client.post(f"{API}/par-levels/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["updated_by_username"] == "keeper"
    twice = client.post(f"{API}/par-levels/", body, format="json")
    assert (twice.status_code, twice.json()["code"]) == (409, "PAR_LEVEL_EXISTS")
    bad = client.patch(f"{API}/par-levels/{created.json()['id']}/", {"target": 30}, format="json")
    assert bad.status_code == 400 and problem_fields(bad) == ["maximum"]
    assert api_client_for(nurse).get(f"{API}/par-levels/").json()["count"] == 1
    assert api_client_for(nurse).post(f"{API}/par-levels/", body, format="json").status_code == 403
    fine = client.patch(f"{API}/par-levels/{created.json()['id']}/", {"target": 15}, format="json")
    assert fine.json()["target"] == 15
    assert ParLevel.objects.get().target == 15


def test_suggestions_are_recomputed_requisitioned_and_proposals_accepted(keeper, hospital, cath_lab_store, lot_product):
    level = replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=4, target=9)
    client = api_client_for(keeper)
    assert client.post(f"{API}/replenishment-suggestions/recompute/").json()["suggestions"] == 1
    [suggestion] = client.get(f"{API}/replenishment-suggestions/", {"status": "OPEN"}).json()["results"]
    assert suggestion["quantity"] == 9
    made = client.post(f"{API}/replenishment-suggestions/requisition/", {"suggestions": [suggestion["id"]]},
                       format="json")
    assert made.status_code == 201
    assert made.json()[0]["source"] == "REPLENISHMENT" and made.json()[0]["lines"][0]["approved_quantity"] == 9
    again = client.post(f"{API}/replenishment-suggestions/{suggestion['id']}/dismiss/")
    assert (again.status_code, again.json()["code"]) == (409, "SUGGESTION_DECIDED")
    proposal = ParLevelProposal.objects.create(
        hospital=hospital, par_level=level, current_minimum=4, current_target=9, proposed_minimum=6,
        proposed_target=14, p95_daily_use=3, weeks=8, lead_days=2, cover_days=5,
    )
    accepted = client.post(f"{API}/par-level-proposals/{proposal.pk}/accept/")
    assert accepted.json()["status"] == "ACCEPTED"
    level.refresh_from_db()
    assert (level.minimum, level.target) == (6, 14)


def test_nurses_do_not_read_the_replenishment_books(nurse):
    assert api_client_for(nurse).get(f"{API}/replenishment-suggestions/").status_code == 403
    assert api_client_for(nurse).get(f"{API}/par-level-proposals/").status_code == 403


def test_the_queue_lists_urgent_first_then_oldest(keeper, nurse, department, lot_product):
    client = api_client_for(nurse)
    routine = create(client, department, [{"product": lot_product.pk, "quantity": 1}], key="a", submit=True).json()
    urgent = create(client, department, [{"product": lot_product.pk, "quantity": 1}], key="b", submit=True,
                    urgency="URGENT").json()
    create(client, department, [{"product": lot_product.pk, "quantity": 1}], key="c")  # a draft: not queued
    queue = api_client_for(keeper).get(f"{API}/requisitions/", {"queue": "true"}).json()["results"]
    assert [r["id"] for r in queue] == [urgent["id"], routine["id"]]
