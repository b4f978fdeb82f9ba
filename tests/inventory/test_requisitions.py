"""Requisitions (科室申领): the state machine, explicit partial fulfilment and its refusals."""
import pytest
from django.db import IntegrityError, transaction

from inventory.errors import Refused
from inventory.models import Alert, PackagingUnit, Requisition, RequisitionLine
from inventory.services import requisitions as svc
from inventory.services.requisitions import RequestedLine
from tests import factories

Status = Requisition.Status


@pytest.fixture
def gloves(hospital):
    return factories.ProductFactory(
        hospital=hospital, name="检查手套", tracking="LOT", is_high_value=False, his_charge_code="",
        unit_of_measure="只",
    )


@pytest.fixture
def draft(nurse, department, lot_product, gloves):
    return svc.create_requisition(
        user=nurse, department=department,
        lines=[RequestedLine(lot_product, 10), RequestedLine(gloves, 100)],
    )


def _state(requisition):
    requisition.refresh_from_db()
    return requisition.status, [
        (line.requested_quantity, line.approved_quantity, line.picked_quantity, line.dispatched_quantity,
         line.received_quantity, line.cancelled_quantity)
        for line in requisition.lines.order_by("pk")
    ]


def test_a_nurse_drafts_for_her_department_with_its_store_as_destination(draft, cath_lab_store):
    assert draft.status == Status.DRAFT
    assert draft.location == cath_lab_store
    assert draft.number.startswith("SL")
    assert [line.requested_quantity for line in draft.lines.order_by("pk")] == [10, 100]


def test_the_same_product_twice_is_one_line_added_up(nurse, department, lot_product):
    requisition = svc.create_requisition(
        user=nurse, department=department, lines=[RequestedLine(lot_product, 3), RequestedLine(lot_product, "4")],
    )
    assert list(requisition.lines.values_list("requested_quantity", flat=True)) == [7]


@pytest.mark.parametrize("bad", [0, -1, 1.5, "1.5", "", "abc", True, None])
def test_zero_negative_and_fractional_quantities_are_refused_naming_the_field(nurse, department, lot_product, bad):
    with pytest.raises(Refused) as refused:
        svc.create_requisition(
            user=nurse, department=department, lines=[RequestedLine(lot_product, 2), RequestedLine(lot_product, bad)],
        )
    assert refused.value.status == 400
    assert refused.value.problems[0].params["field"] == "lines[1].quantity"
    assert not Requisition.objects.exists()


def test_a_nurse_cannot_request_for_another_department(nurse, hospital, lot_product):
    other = factories.DepartmentFactory(hospital=hospital, code="ICU", name="ICU")
    factories.LocationFactory(hospital=hospital, department=other, code="ICU-S", kind="DEPARTMENT_STORE")
    with pytest.raises(Refused) as refused:
        svc.create_requisition(user=nurse, department=other, lines=[RequestedLine(lot_product, 1)])
    assert refused.value.code == "NOT_YOUR_DEPARTMENT"


def test_without_an_approval_step_submit_approves_every_line_as_requested(draft, nurse):
    svc.submit_requisition(requisition=draft, user=nurse)
    assert _state(draft) == (Status.APPROVED, [(10, 10, 0, 0, 0, 0), (100, 100, 0, 0, 0, 0)])


def test_with_an_approval_step_the_warehouse_approves_per_line(draft, nurse, keeper, department):
    department.requisitions_need_approval = True
    department.save()
    assert svc.submit_requisition(requisition=draft, user=nurse).status == Status.SUBMITTED
    first, second = draft.lines.order_by("pk")
    svc.approve_requisition(requisition=draft, user=keeper, approved={first.pk: 6})
    assert _state(draft) == (Status.APPROVED, [(10, 6, 0, 0, 0, 0), (100, 100, 0, 0, 0, 0)])


def test_approving_more_than_requested_is_refused_and_changes_nothing(draft, nurse, keeper, department):
    department.requisitions_need_approval = True
    department.save()
    svc.submit_requisition(requisition=draft, user=nurse)
    first, second = draft.lines.order_by("pk")
    with pytest.raises(Refused) as refused:
        svc.approve_requisition(requisition=draft, user=keeper, approved={first.pk: 11, second.pk: 1})
    assert refused.value.code == "REQUISITION_QUANTITY_TOO_LARGE"
    assert refused.value.problems[0].params["field"] == f"approved[{first.pk}]"
    assert _state(draft) == (Status.SUBMITTED, [(10, None, 0, 0, 0, 0), (100, None, 0, 0, 0, 0)])


@pytest.mark.parametrize("action", ["approve", "reject", "submit_twice", "pick_draft"])
def test_illegal_state_changes_are_409_and_change_nothing(draft, nurse, keeper, action):
    if action == "submit_twice":
        svc.submit_requisition(requisition=draft, user=nurse)
    before = _state(draft)
    with pytest.raises(Refused) as refused:
        if action == "approve":
            svc.approve_requisition(requisition=draft, user=keeper)
        elif action == "reject":
            svc.reject_requisition(requisition=draft, user=keeper, reason="no")
        elif action == "submit_twice":
            svc.submit_requisition(requisition=draft, user=nurse)
        else:
            svc.record_fulfilment(line=draft.lines.first(), picked=1)
    assert refused.value.status == 409
    assert refused.value.code == "REQUISITION_STATE"
    assert _state(draft) == before


def test_reject_and_cancel_need_a_reason(draft, nurse, keeper, department):
    with pytest.raises(Refused) as refused:
        svc.cancel_requisition(requisition=draft, user=nurse, reason="  ")
    assert refused.value.code == "REASON_MISSING"
    svc.cancel_requisition(requisition=draft, user=nurse, reason="开错了")
    draft.refresh_from_db()
    assert (draft.status, draft.status_reason) == (Status.CANCELLED, "开错了")
    assert all(line.cancel_reason == "开错了" for line in draft.lines.all())


def test_partial_fulfilment_keeps_each_stage_and_the_remainder_is_cancelled_with_a_reason(draft, nurse, keeper):
    svc.submit_requisition(requisition=draft, user=nurse)
    first, second = draft.lines.order_by("pk")
    svc.mark_lines_picked(quantities={first: 6, second: 100}, user=keeper)
    assert _state(draft)[0] == Status.PICKING
    svc.mark_lines_dispatched(quantities={first: 6, second: 100}, user=keeper)
    # 4 of the first line are still open: not dispatched as a whole yet
    assert _state(draft) == (Status.PICKING, [(10, 10, 6, 6, 0, 0), (100, 100, 100, 100, 0, 0)])
    svc.cancel_line_remainder(line=first, user=keeper, reason="库存不足")
    assert _state(draft) == (Status.DISPATCHED, [(10, 10, 6, 6, 0, 4), (100, 100, 100, 100, 0, 0)])
    svc.mark_lines_received(quantities={first: 6, second: 98}, discrepancies={second: 2}, user=nurse)
    status, lines = _state(draft)
    assert status == Status.RECEIVED
    assert lines == [(10, 10, 6, 6, 6, 4), (100, 100, 100, 100, 98, 0)]
    assert draft.lines.order_by("pk").last().discrepancy_quantity == 2


def test_a_stage_never_exceeds_the_one_before_it(draft, nurse):
    svc.submit_requisition(requisition=draft, user=nurse)
    line = draft.lines.order_by("pk").first()
    with pytest.raises(Refused) as refused:
        svc.record_fulfilment(line=line, picked=11)
    assert refused.value.code == "REQUISITION_QUANTITY_TOO_LARGE"
    svc.record_fulfilment(line=line, picked=5)
    with pytest.raises(Refused):
        svc.record_fulfilment(line=line, dispatched=6)
    with pytest.raises(Refused):
        svc.record_fulfilment(line=line, dispatched=2, received=3)
    assert _state(draft)[1][0] == (10, 10, 5, 0, 0, 0)


def test_zero_stock_records_pick_dispatch_and_receipt_in_one_call(draft, nurse):
    svc.submit_requisition(requisition=draft, user=nurse)
    first, second = draft.lines.order_by("pk")
    svc.record_fulfilments(requisition=draft, changes=[
        svc.Fulfilment(first, picked=10, dispatched=10, received=10),
        svc.Fulfilment(second, picked=100, dispatched=100, received=100),
    ])
    assert _state(draft)[0] == Status.RECEIVED


def test_cancelling_every_remainder_before_anything_is_picked_cancels_the_requisition(draft, nurse, keeper):
    svc.submit_requisition(requisition=draft, user=nurse)
    for line in draft.lines.all():
        svc.cancel_line_remainder(line=line, user=keeper, reason="停产")
    draft.refresh_from_db()
    assert (draft.status, draft.status_reason) == (Status.CANCELLED, "停产")


def test_once_picking_began_the_requisition_cannot_be_cancelled_whole(draft, nurse, keeper):
    svc.submit_requisition(requisition=draft, user=nurse)
    svc.record_fulfilment(line=draft.lines.first(), picked=1)
    with pytest.raises(Refused) as refused:
        svc.cancel_requisition(requisition=draft, user=nurse, reason="不要了")
    assert refused.value.code == "REQUISITION_STATE"


def test_an_urgent_requisition_raises_an_alert_resolved_at_dispatch(nurse, department, lot_product, keeper):
    requisition = svc.create_requisition(
        user=nurse, department=department, lines=[RequestedLine(lot_product, 2)],
        urgency=Requisition.Urgency.URGENT, submit=True,
    )
    alert = Alert.objects.get(kind=Alert.Kind.URGENT_REQUISITION)
    assert (alert.status, alert.severity, alert.subject_key) == ("OPEN", "CRITICAL", f"requisition:{requisition.pk}")
    line = requisition.lines.get()
    svc.record_fulfilment(line=line, picked=2, dispatched=2)
    alert.refresh_from_db()
    assert alert.status == "RESOLVED"


def test_the_database_refuses_a_dispatch_beyond_the_pick(draft):
    line = draft.lines.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        RequisitionLine.objects.filter(pk=line.pk).update(dispatched_quantity=1)


def test_a_quantity_in_a_packaging_unit_becomes_base_units_and_an_unknown_unit_is_refused(nurse, department, gloves):
    PackagingUnit.objects.create(product=gloves, name="盒", factor=100)
    requisition = svc.create_requisition(user=nurse, department=department, lines=[RequestedLine(gloves, 2, "盒")])
    line = requisition.lines.get()
    assert (line.requested_quantity, line.entered_quantity, line.entered_unit) == (200, 2, "盒")
    with pytest.raises(Refused) as refused:
        svc.add_line(requisition=requisition, user=nurse, product=gloves, quantity=1, unit="箱")
    assert (refused.value.status, refused.value.problems[0].params["field"]) == (400, "unit")
