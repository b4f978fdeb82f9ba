"""The requisition pages (科室申领), the warehouse's work queue and par levels, through the Django client."""
import pytest
from django.urls import reverse

from inventory.models import Alert, ParLevel, ReplenishmentSuggestion, Requisition
from inventory.services import replenishment
from inventory.services import requisitions as svc
from tests import factories
from tests.factories import gs1_udi
from tests.web.test_pages import client_for, text

pytestmark = pytest.mark.django_db


def start(client, department, *, urgency="ROUTINE", key="web-requisition-1"):
    return client.post(reverse("web:requisition-new"), {
        "department": department.pk, "urgency": urgency, "note": "", "idempotency_key": key})


def test_a_nurse_starts_adds_by_scan_and_by_code_and_submits(world):
    nurse = client_for(world.nurse)
    department = world.cabinet.department
    page = text(nurse.get(reverse("web:requisitions")))
    assert 'data-action="new-requisition"' in page
    created = start(nurse, department, urgency="URGENT")
    requisition = Requisition.objects.get()
    assert created.url == reverse("web:requisition", args=[requisition.pk])
    again = start(nurse, department, urgency="URGENT")  # a double tap: the same form key
    assert again.url == created.url and Requisition.objects.count() == 1

    add = reverse("web:requisition-add-line", args=[requisition.pk])
    scanned = nurse.post(add, {"code": gs1_udi(world.product.udi_di, serial="ANY"), "quantity": 2, "unit": ""},
                         HTTP_ACCEPT="application/json")
    assert scanned.status_code == 200 and scanned.json()["ok"]
    nurse.post(add, {"code": world.lot_product.internal_code, "quantity": 30, "unit": ""})
    assert [(line.product, line.requested_quantity) for line in requisition.lines.order_by("pk")] == [
        (world.product, 2), (world.lot_product, 30)]
    bad = nurse.post(add, {"code": world.lot_product.internal_code, "quantity": "1.5"}, HTTP_ACCEPT="application/json")
    assert bad.status_code == 400 and not bad.json()["ok"]

    detail = text(nurse.get(reverse("web:requisition", args=[requisition.pk])))
    assert 'data-action="submit"' in detail and 'data-action="approve"' not in detail
    key = nurse.get(reverse("web:requisition", args=[requisition.pk])).context["submit_key"]
    nurse.post(reverse("web:requisition-action", args=[requisition.pk, "submit"]), {"idempotency_key": key})
    requisition.refresh_from_db()
    assert requisition.status == Requisition.Status.APPROVED
    assert Alert.objects.filter(kind=Alert.Kind.URGENT_REQUISITION, status="OPEN").count() == 1


def test_the_keeper_sees_urgent_first_and_counts_on_the_dashboard(world):
    department = world.cabinet.department
    routine = svc.create_requisition(user=world.nurse, department=department,
                                     lines=[svc.RequestedLine(world.lot_product, 1)], submit=True)
    urgent = svc.create_requisition(user=world.nurse, department=department,
                                    lines=[svc.RequestedLine(world.lot_product, 1)], urgency="URGENT", submit=True)
    keeper = client_for(world.keeper)
    queue = keeper.get(reverse("web:requisition-queue"))
    assert [r.pk for r in queue.context["queue"]] == [urgent.pk, routine.pk]
    page = text(keeper.get(reverse("web:dashboard")))
    assert 'data-work="requisitions"' in page
    assert keeper.get(reverse("web:dashboard")).context["distribution"].urgent == 1


def test_an_illegal_action_on_the_page_changes_nothing_and_says_why(world):
    requisition = svc.create_requisition(user=world.nurse, department=world.cabinet.department,
                                         lines=[svc.RequestedLine(world.lot_product, 1)], submit=True)
    keeper = client_for(world.keeper)
    response = keeper.post(reverse("web:requisition-action", args=[requisition.pk, "reject"]), {"reason": "no"},
                           follow=True)
    assert "REQUISITION_STATE" in text(response)
    requisition.refresh_from_db()
    assert requisition.status == Requisition.Status.APPROVED


def test_a_nurse_cannot_open_another_departments_requisition_or_the_queue(world):
    icu = factories.DepartmentFactory(hospital=world.cabinet.hospital, code="ICU", name="重症医学科")
    factories.LocationFactory(hospital=world.cabinet.hospital, department=icu, code="ICU-S", kind="DEPARTMENT_STORE")
    theirs = svc.create_requisition(user=world.keeper, department=icu, lines=[svc.RequestedLine(world.lot_product, 1)])
    nurse = client_for(world.nurse)
    assert nurse.get(reverse("web:requisition", args=[theirs.pk])).status_code == 404
    assert nurse.get(reverse("web:requisition-queue")).status_code == 403
    assert theirs.pk not in [r.pk for r in nurse.get(reverse("web:requisitions")).context["requisitions"]]


def test_par_levels_are_edited_on_their_page_with_who_and_when(world):
    keeper = client_for(world.keeper)
    response = keeper.post(reverse("web:par-levels"), {
        "location": world.cabinet.pk, "product": world.lot_product.internal_code, "minimum": 5, "target": 10,
        "maximum": ""})
    assert response.status_code == 302
    level = ParLevel.objects.get()
    assert (level.minimum, level.target, level.updated_by) == (5, 10, world.keeper)
    refused = keeper.post(reverse("web:par-levels"), {
        "location": world.cabinet.pk, "product": world.lot_product.internal_code, "minimum": 5, "target": 3,
        "par_level": level.pk})
    assert refused.status_code == 400 and "PAR_LEVEL_INVALID" in text(refused)
    page = text(keeper.get(reverse("web:par-levels")))
    assert f'data-par-level="{level.pk}"' in page and "keeper" in page
    assert client_for(world.nurse).post(reverse("web:par-levels"), {}).status_code in (200, 403)
    assert ParLevel.objects.get().minimum == 5


def test_suggestions_are_computed_and_requisitioned_from_the_queue(world):
    replenishment.save_par_level(user=world.keeper, location=world.cabinet, product=world.lot_product, minimum=4)
    keeper = client_for(world.keeper)
    keeper.post(reverse("web:replenishment-recompute"))
    suggestion = ReplenishmentSuggestion.objects.get(status="OPEN")
    assert f'data-suggestion="{suggestion.pk}"' in text(keeper.get(reverse("web:requisition-queue")))
    keeper.post(reverse("web:replenishment-requisition"), {"suggestion": [suggestion.pk]})
    suggestion.refresh_from_db()
    assert suggestion.status == "REQUISITIONED"
    assert Requisition.objects.get().source == Requisition.Source.REPLENISHMENT
