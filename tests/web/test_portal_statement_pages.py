"""Pages of consignment statements in the portal and of purchase plans from demand, through Django's
test client: the supplier sees, disputes and downloads a statement (no encounter on the page); another
supplier's user gets 404; the operator ticks suggestions and shortfalls and sees the plan per supplier
with what was not planned and why, then orders it."""
import pytest

from inventory.actors import Actor
from inventory.models import PlanDemandSource, PurchaseOrder, PurchasePlan, SupplierSettlement
from inventory.services.settlements import confirm_settlement
from tests import factories
from tests.inventory.test_plan_from_demand import approved_requisition, suggest
from tests.inventory.test_settlements import Clinic, consignment_product, draft, may
from tests.web.test_operations_pages import client_for, text

pytestmark = pytest.mark.django_db


@pytest.fixture
def statement(hospital, supplier, operator):
    Clinic(hospital).use_unit(consignment_product(hospital, supplier, name="冠脉球囊"), supplier, may(6),
                              encounter="ZY-HIDDEN-9")
    return confirm_settlement(settlement=draft(hospital, supplier, Actor(user=operator)), actor=Actor(user=operator))


def test_supplier_disputes_a_statement_on_its_page_and_downloads_it(statement, supplier):
    vendor = factories.UserFactory(hospital=None, supplier=supplier, roles=["supplier"])
    client = client_for(vendor, "zh-hans")
    home = text(client.get("/portal/"))
    assert f'data-statement="{statement.pk}"' in home
    page = client.get(f"/portal/statements/{statement.pk}/")
    assert page.status_code == 200 and "冠脉球囊" in text(page) and "ZY-HIDDEN-9" not in text(page)

    empty = client.post(f"/portal/statements/{statement.pk}/answer/", {"answer": "dispute", "reason": ""})
    assert "请填写原因" in text(client.get(empty.url))
    client.post(f"/portal/statements/{statement.pk}/answer/", {"answer": "dispute", "reason": "数量不符"})

    assert SupplierSettlement.objects.get(pk=statement.pk).stage == "DISPUTED"
    shown = text(client.get(f"/portal/statements/{statement.pk}/"))
    assert 'data-event="DISPUTED"' in shown and "数量不符" in shown and 'data-action="confirm-statement"' not in shown
    pdf = client.get(f"/portal/statements/{statement.pk}/download/pdf/")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert client.get(f"/portal/statements/{statement.pk}/download/doc/").status_code == 404
    stranger = client_for(factories.UserFactory(hospital=None, supplier=factories.SupplierFactory(), roles=["supplier"]))
    for url in (f"/portal/statements/{statement.pk}/", f"/portal/statements/{statement.pk}/download/csv/"):
        assert stranger.get(url).status_code == 404, url
    assert stranger.post(f"/portal/statements/{statement.pk}/answer/", {"answer": "confirm"}).status_code == 404


def test_operator_plans_from_demand_sees_the_plan_per_supplier_and_orders_it(
    hospital, operator, auditor, cath_lab_store, lot_product, supplier
):
    wanted = suggest(cath_lab_store, lot_product, 12)
    no_agreement = suggest(cath_lab_store, factories.ProductFactory(hospital=hospital, name="无协议耗材"), 3)
    [line] = approved_requisition(cath_lab_store, operator, (lot_product, 5))
    client = client_for(operator, "zh-hans")
    assert client_for(auditor).get("/purchasing/plans/new/").status_code == 403
    listed = text(client.get("/purchasing/plans/new/"))
    assert f'data-suggestion="{wanted.pk}"' in listed and f'data-requisition-line="{line.pk}"' in listed

    made = client.post("/purchasing/plans/new/", {"suggestion": [wanted.pk, no_agreement.pk],
                                                  "requisition_line": [line.pk]})

    shown = text(client.get(made.url))
    assert f'data-plan-supplier="{supplier.name}"' in shown
    assert f'data-plan-line="{lot_product.internal_code}" data-quantity="17"' in shown
    assert 'data-code="DEMAND_NO_AGREEMENT"' in shown and "无协议耗材" in shown
    assert 'name="platform_reference-1"' in shown
    ordered = client.post(f"{made.url}order/", {"promised_date": "2030-01-15", "platform_reference-1": "YG-PAGE"})
    order_line = PurchaseOrder.objects.get(supplier=supplier).lines.get()
    assert (order_line.quantity, order_line.platform_reference) == (17, "YG-PAGE")
    assert 'data-plan-status="ORDERED"' in text(client.get(ordered.url))


def test_a_product_without_a_nhsa_code_is_planned_once_the_page_is_given_an_exemption_reason(
    hospital, operator, cath_lab_store, lot_product, supplier
):
    no_code = factories.SupplyAgreementFactory(hospital=hospital, supplier=supplier, product__hospital=hospital,
                                               product__nhsa_code="", product__name="无医保编码耗材").product
    alone = suggest(cath_lab_store, no_code, 4)
    client = client_for(operator, "zh-hans")

    # Nothing plannable: the page again, the tick kept, a reason field for the product, no plan.
    refused = client.post("/purchasing/plans/new/", {"suggestion": [alone.pk], "note": "第一次"})
    page = text(refused)
    assert refused.status_code == 400 and 'data-code="NHSA_CODE_MISSING"' in page
    assert f'value="{alone.pk}" id="suggestion-{alone.pk}" aria-label="无医保编码耗材" checked' in page
    assert page.count(f'name="nhsa_exemption-{no_code.pk}"') == 1 and 'data-action="propose-again"' in page
    assert not PurchasePlan.objects.exists()

    made = client.post("/purchasing/plans/new/", {"suggestion": [alone.pk], "note": "第一次",
                                                  f"nhsa_exemption-{no_code.pk}": "  院内自制试剂  "})
    shown = text(client.get(made.url))
    assert 'data-nhsa-exemption="1"' in shown and "院内自制试剂" in shown and 'data-form="plan-again"' not in shown
    client.post(f"{made.url}order/", {"promised_date": "2030-01-15", "platform_reference-1": "YG-EX-1"})
    line = PurchaseOrder.objects.get().lines.get()
    assert (line.product, line.quantity, line.nhsa_exemption_reason) == (no_code, 4, "院内自制试剂")

    # Planned with another product: the plan lists it as not planned and offers to plan it again.
    ward = factories.LocationFactory(hospital=hospital, code="WARD-7", name="七病区", kind="DEPARTMENT_STORE")
    left = suggest(ward, no_code, 2)
    planned = client.post("/purchasing/plans/new/", {"suggestion": [suggest(cath_lab_store, lot_product, 3).pk, left.pk]})
    shown = text(client.get(planned.url))
    assert 'data-code="NHSA_CODE_MISSING"' in shown and 'data-form="plan-again"' in shown
    assert f'<input type="hidden" name="suggestion" value="{left.pk}">' in shown
    again = client.post("/purchasing/plans/new/", {"suggestion": [left.pk], f"nhsa_exemption-{no_code.pk}": "过渡期"})
    plan = PurchasePlan.objects.get(pk=again.url.rstrip("/").rsplit("/", 1)[1])
    assert [(line.product, line.quantity, line.nhsa_exemption_reason) for line in plan.lines.all()] == [
        (no_code, 2, "过渡期")]
    assert PlanDemandSource.objects.get(suggestion=left).plan == plan

    # Planned since: the first plan still lists why it was not planned, and no longer offers to plan it.
    shown = text(client.get(planned.url))
    assert 'data-code="NHSA_CODE_MISSING"' in shown and 'data-form="plan-again"' not in shown
