"""Requisitions under concurrency on PostgreSQL: a state change happens once, picks never exceed the line."""
import pytest

from inventory.errors import Refused
from inventory.models import Requisition
from inventory.services import requisitions as svc
from tests import factories
from tests.concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def approved(hospital, cath_lab_store, lot_product):
    nurse = factories.UserFactory(username="nurse-c", hospital=hospital, roles=["nurse"])
    nurse.departments.add(cath_lab_store.department)
    requisition = svc.create_requisition(user=nurse, department=cath_lab_store.department,
                                         lines=[svc.RequestedLine(lot_product, 10)])
    return nurse, requisition


def test_two_submits_at_once_submit_once_and_the_other_is_refused(approved):
    nurse, requisition = approved
    outcomes = run_together(2, lambda _: svc.submit_requisition(requisition=requisition, user=nurse))
    refused = [outcome for outcome in outcomes if isinstance(outcome, Refused)]
    assert len(refused) == 1 and refused[0].code == "REQUISITION_STATE"
    assert Requisition.objects.get(pk=requisition.pk).status == Requisition.Status.APPROVED


def test_two_pickers_at_once_never_pick_more_than_the_line_allows(approved):
    nurse, requisition = approved
    svc.submit_requisition(requisition=requisition, user=nurse)
    line = requisition.lines.get()
    outcomes = run_together(3, lambda _: svc.record_fulfilment(line=line.pk, picked=4))
    assert sum(not isinstance(outcome, Exception) for outcome in outcomes) == 2
    assert all(outcome.code == "REQUISITION_QUANTITY_TOO_LARGE" for outcome in outcomes if isinstance(outcome, Refused))
    line.refresh_from_db()
    assert line.picked_quantity == 8
