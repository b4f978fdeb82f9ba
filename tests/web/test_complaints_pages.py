"""The complaints page: recording a complaint, upholding it, the suspension shown and lifted with a reason."""
import pytest

from inventory.models import Complaint, Suspension
from tests.factories import TODAY
from tests.web.test_operations_pages import client_for, text

pytestmark = pytest.mark.django_db


def test_record_decide_suspend_and_lift_on_the_page(keeper, operator, supplier):
    keeper_client = client_for(keeper)
    form = {"supplier": supplier.pk, "received_on": str(TODAY), "complainant": "心内科", "subject": "包装破损",
            "evidence": "外包装破损"}
    for _ in range(4):
        response = keeper_client.post("/purchasing/complaints/", form)
        assert response.status_code == 302
    page = text(keeper_client.get("/purchasing/complaints/"))
    assert page.count('data-outcome="PENDING"') == 4 and 'data-form="decide"' not in page  # a keeper does not decide

    boss = client_for(operator, "zh-hans")
    for complaint in Complaint.objects.all():
        boss.post(f"/purchasing/complaints/{complaint.pk}/decide/", {"outcome": "UPHELD", "reason": "属实"})
    suspension = Suspension.objects.get()
    page = text(boss.get("/purchasing/complaints/"))
    assert f'data-suspension="{suspension.pk}" data-active' in page and 'data-form="lift"' in page

    refused = text(boss.post(f"/purchasing/suspensions/{suspension.pk}/lift/", {"reason": " "}, follow=True))
    assert "解除暂停需要填写原因" in refused
    assert keeper_client.post(f"/purchasing/suspensions/{suspension.pk}/lift/", {"reason": "x"}).status_code == 403
    boss.post(f"/purchasing/suspensions/{suspension.pk}/lift/", {"reason": "整改完成"})
    suspension.refresh_from_db()
    assert (suspension.is_active, suspension.lift_reason, suspension.lifted_by) == (False, "整改完成", operator)


def test_refusals_on_the_form_and_nurses_kept_out(keeper, hospital):
    response = client_for(keeper).post("/purchasing/complaints/", {
        "received_on": str(TODAY), "complainant": "a", "subject": "b", "evidence": "c"})
    assert response.status_code == 200 and 'data-code="COMPLAINT_SUBJECT_MISSING"' in text(response)
    from tests import factories

    nurse = factories.UserFactory(username="nurse", hospital=hospital, roles=["nurse"])
    assert client_for(nurse).get("/purchasing/complaints/").status_code == 403
