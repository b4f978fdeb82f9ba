"""Complaints and suspensions: more than three upheld written complaints within the period suspend a
supplier or product from new orders and acceptance (409 naming the suspension) until an SPD
operator lifts it with a reason."""
import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import Complaint, Suspension, Unit
from inventory.services.complaints import decide_complaint, lift_suspension, record_complaint
from inventory.services.purchasing import (
    DemandLine,
    OrderLineInput,
    create_plan,
    create_purchase_order,
    order_plan,
    plan_from_demand,
)
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from tests import factories
from tests.conftest import scan_every_line
from tests.factories import TODAY, gs1_udi

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def codes(refused: pytest.ExceptionInfo) -> list[str]:
    return [problem.code for problem in refused.value.problems]


def complain(actor, *, supplier=None, product=None, received_on=None, upheld=True, decider=None, hospital=None):
    hospital = hospital or (product.hospital if product else actor.user.hospital)
    complaint = record_complaint(
        actor=actor, hospital=hospital, supplier=supplier, product=product,
        received_on=received_on or timezone.localdate(), complainant="心内科 王护士长", subject="包装破损",
        evidence="到货时外包装破损，无菌屏障受损。",
    )
    if upheld is not None:
        complaint = decide_complaint(
            actor=decider or actor, complaint=complaint, outcome="UPHELD" if upheld else "DISMISSED",
            reason="核实属实" if upheld else "不属实",
        )
    return complaint


def order(actor, supplier, product):
    return create_purchase_order(
        actor=actor, hospital=product.hospital, supplier=supplier, promised_date=TODAY,
        lines=[OrderLineInput(product=product, quantity=1, platform_reference="YG-1")],
    )


@pytest.fixture
def operator_actor(operator):
    return Actor(user=operator)


def test_the_fourth_upheld_complaint_suspends_the_supplier_from_ordering(operator_actor, supplier, product):
    for _ in range(3):
        complain(operator_actor, supplier=supplier)
    complain(operator_actor, supplier=supplier, upheld=False)  # dismissed ones do not count
    complain(operator_actor, supplier=supplier, upheld=None)  # nor pending ones
    assert not Suspension.objects.exists()
    order(operator_actor, supplier, product)  # three upheld: still orderable

    fourth = complain(operator_actor, supplier=supplier)

    suspension = Suspension.objects.get()
    assert (suspension.supplier, suspension.product, suspension.is_active) == (supplier, None, True)
    assert suspension.complaints.count() == 4 and fourth in suspension.complaints.all()
    with pytest.raises(Refused) as refused:
        order(operator_actor, supplier, product)
    assert codes(refused) == ["SUPPLIER_SUSPENDED"] and refused.value.status == 409
    assert supplier.name in refused.value.detail and "4" in refused.value.detail


def test_complaints_outside_the_period_do_not_count(operator_actor, supplier, settings):
    settings.SPD_COMPLAINT_PERIOD_DAYS = 30
    old = timezone.localdate() - datetime.timedelta(days=31)
    complain(operator_actor, supplier=supplier, received_on=old)
    for _ in range(3):
        complain(operator_actor, supplier=supplier)
    assert not Suspension.objects.exists()
    complain(operator_actor, supplier=supplier)
    assert Suspension.objects.get().complaints.count() == 4


def test_a_suspended_product_is_refused_in_a_plan_and_at_acceptance(operator_actor, supplier, product, warehouse):
    note = receive_delivery_note(
        actor=operator_actor, hospital=warehouse.hospital, supplier=supplier, number="DN-1", receiving_location=warehouse,
        lines=[LineInput(product.agreements.get().unit_price, udi=gs1_udi(product.udi_di, serial="S1"))],
        idempotency_key="rcv-1",
    )
    scan_every_line(operator_actor, note)
    for _ in range(4):
        complain(operator_actor, product=product)
    assert Suspension.objects.get().product == product

    with pytest.raises(Refused) as refused:
        accept_delivery_note(actor=operator_actor, note=note, idempotency_key="acc-1")
    assert codes(refused) == ["PRODUCT_SUSPENDED"] and refused.value.status == 409
    assert not Unit.objects.filter(serial="S1").exists()  # refusals change nothing
    with pytest.raises(Refused) as refused:  # planned from demand: listed as not plannable, with the reason
        plan_from_demand(actor=operator_actor, hospital=product.hospital, lines=[DemandLine(product, 2)])
    assert codes(refused) == ["DEMAND_NOTHING_PLANNED", "PRODUCT_SUSPENDED"]
    plan = create_plan(actor=operator_actor, hospital=product.hospital,
                       lines=[OrderLineInput(product=product, quantity=2, platform_reference="YG-1")])
    with pytest.raises(Refused) as refused:
        order_plan(actor=operator_actor, plan=plan, promised_date=TODAY)
    assert codes(refused) == ["PRODUCT_SUSPENDED"]
    other = factories.SupplyAgreementFactory(product__hospital=product.hospital, supplier=supplier).product
    order(operator_actor, supplier, other)  # the supplier itself is not suspended

    suspension = lift_suspension(actor=operator_actor, suspension=Suspension.objects.get(), reason="厂家已整改")

    assert (suspension.is_active, suspension.lifted_by, suspension.lift_reason) == (False, operator_actor.user, "厂家已整改")
    accepted = accept_delivery_note(actor=operator_actor, note=note, idempotency_key="acc-1")
    assert accepted.status == "ACCEPTED" and Unit.objects.filter(serial="S1").exists()
    order(operator_actor, supplier, product)


def test_after_a_lift_only_later_complaints_count(operator_actor, supplier):
    for _ in range(4):
        complain(operator_actor, supplier=supplier)
    lift_suspension(actor=operator_actor, suspension=Suspension.objects.get(), reason="约谈后整改")
    complain(operator_actor, supplier=supplier)
    assert not Suspension.objects.filter(lifted_at=None).exists()
    for _ in range(3):
        complain(operator_actor, supplier=supplier)
    assert Suspension.objects.filter(lifted_at=None).get().complaints.count() == 4


def test_a_suspension_is_per_hospital(operator_actor, supplier, other_hospital):
    for _ in range(4):
        complain(operator_actor, supplier=supplier)
    other_operator = factories.UserFactory(username="op2", hospital=other_hospital, roles=["spd_operator"])
    product = factories.SupplyAgreementFactory(product__hospital=other_hospital, supplier=supplier).product
    order(Actor(user=other_operator), supplier, product)


def test_who_may_do_what_and_the_state_checks(operator_actor, keeper_actor, supplier):
    complaint = complain(keeper_actor, supplier=supplier, upheld=None)  # a keeper records
    with pytest.raises(Refused) as refused:
        decide_complaint(actor=keeper_actor, complaint=complaint, outcome="UPHELD", reason="x")
    assert codes(refused) == ["NOT_ALLOWED"] and refused.value.status == 403
    with pytest.raises(Refused) as refused:
        decide_complaint(actor=operator_actor, complaint=complaint, outcome="UPHELD", reason=" ")
    assert codes(refused) == ["COMPLAINT_REASON_MISSING"]
    decide_complaint(actor=operator_actor, complaint=complaint, outcome="DISMISSED", reason="不属实")
    with pytest.raises(Refused) as refused:
        decide_complaint(actor=operator_actor, complaint=complaint, outcome="UPHELD", reason="改判")
    assert codes(refused) == ["COMPLAINT_ALREADY_DECIDED"] and refused.value.status == 409
    complaint.refresh_from_db()
    assert (complaint.outcome, complaint.decided_by, complaint.outcome_reason) == ("DISMISSED", operator_actor.user, "不属实")

    for _ in range(4):
        complain(operator_actor, supplier=supplier)
    suspension = Suspension.objects.get()
    with pytest.raises(Refused) as refused:
        lift_suspension(actor=keeper_actor, suspension=suspension, reason="x")
    assert codes(refused) == ["NOT_ALLOWED"]
    with pytest.raises(Refused) as refused:
        lift_suspension(actor=operator_actor, suspension=suspension, reason="")
    assert codes(refused) == ["SUSPENSION_LIFT_REASON_MISSING"]
    lift_suspension(actor=operator_actor, suspension=suspension, reason="整改完成")
    with pytest.raises(Refused) as refused:
        lift_suspension(actor=operator_actor, suspension=suspension, reason="again")
    assert codes(refused) == ["SUSPENSION_ALREADY_LIFTED"]


def test_a_complaint_needs_a_subject_and_a_real_evidence_file(operator_actor, hospital, supplier, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    base = {"actor": operator_actor, "hospital": hospital, "received_on": TODAY, "complainant": "a", "subject": "b",
            "evidence": "c"}
    with pytest.raises(Refused) as refused:
        record_complaint(**base)
    assert codes(refused) == ["COMPLAINT_SUBJECT_MISSING"]
    with pytest.raises(Refused) as refused:
        record_complaint(**base, supplier=supplier, evidence_file=SimpleUploadedFile("x.pdf", b"not a pdf"))
    assert codes(refused) == ["CERTIFICATE_FILE_TYPE"]
    complaint = record_complaint(**base, supplier=supplier,
                                 evidence_file=SimpleUploadedFile("scan.pdf", b"%PDF-1.4 evidence"))
    assert complaint.evidence_file.name.startswith("complaints/") and complaint.outcome == Complaint.Outcome.PENDING
