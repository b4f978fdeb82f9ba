"""The department count page (科室盘点即消耗): count what is left in any packaging unit, review what
would be expensed (nothing changes), confirm once."""
import datetime
from decimal import Decimal

import pytest

from inventory.models import LotBalance, Movement, PackagingUnit
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.stock import LotQuantity, transfer_stock
from tests import factories
from tests.factories import TODAY
from tests.web.test_pages import client_for, text

pytestmark = pytest.mark.django_db

URL = "/expensing/count/"


@pytest.fixture
def gauze(hospital, supplier, warehouse, keeper_actor, cath_lab_store):
    """Gauze (片; 包 = 10 片): 34 片 in the cath lab's store, which expenses at a count."""
    cath_lab_store.department.expense_at_count = True
    cath_lab_store.department.save()
    product = factories.SupplyAgreementFactory(
        product__hospital=hospital, product__tracking="LOT", product__is_high_value=False, product__name="医用纱布",
        product__his_charge_code="", product__unit_of_measure="片", product__expensed_on_issue=True,
        unit_price=Decimal("1.20"), supplier=supplier,
    ).product
    PackagingUnit.objects.create(product=product, name="包", factor=10, is_purchase_unit=True)
    note = receive_delivery_note(actor=keeper_actor, hospital=hospital, supplier=supplier, number="DN-GZ",
                                 receiving_location=warehouse, idempotency_key="rcv-gz",
                                 lines=[LineInput(Decimal("12.00"), product=product, lot="G1",
                                                  expiry=TODAY + datetime.timedelta(days=700), quantity=5, unit="包")])
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-gz")
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, idempotency_key="to-cath",
                   lots=[LotQuantity(product, "G1", 34, warehouse)])
    return LotBalance.objects.get(product=product, location=cath_lab_store)


@pytest.fixture
def cath_nurse(hospital, cath_lab_store):
    nurse = factories.UserFactory(username="nurse-cath", hospital=hospital, roles=["nurse"])
    nurse.departments.add(cath_lab_store.department)
    return nurse


def expensed():
    return list(Movement.objects.filter(kind=Movement.Kind.DEPARTMENT_EXPENSE).values_list("quantity", flat=True))


def test_a_nurse_counts_in_packs_reviews_and_confirms_once(cath_nurse, gauze, cath_lab_store):
    client = client_for(cath_nurse)
    page = client.get(URL, {"location": cath_lab_store.pk})
    assert page.status_code == 200
    body = text(page)
    assert 'data-row="' in body and "3 包 4 片" in body
    key = page.context["key"]
    form = {"location": cath_lab_store.pk, "idempotency_key": key, f"left-{gauze.pk}": "1.5", f"unit-{gauze.pk}": "包"}

    review = client.post(URL, form)
    assert review.status_code == 200 and review.context["review"]
    assert 'data-field="used">19</strong>' in text(review) and "1 包 9 片" in text(review)
    gauze.refresh_from_db()
    assert gauze.quantity == 34 and expensed() == []  # the review changed nothing

    done = client.post(URL, {**form, "step": "confirm"})
    assert done.status_code == 302
    again = client.post(URL, {**form, "step": "confirm"})  # a double submit: the same key
    assert again.status_code == 302
    gauze.refresh_from_db()
    assert gauze.quantity == 15 and expensed() == [19]


def test_a_count_that_is_not_whole_base_units_or_above_the_books_is_refused(keeper, gauze, cath_lab_store):
    client = client_for(keeper)
    key = client.get(URL, {"location": cath_lab_store.pk}).context["key"]
    form = {"location": cath_lab_store.pk, "idempotency_key": key}
    fraction = client.post(URL, {**form, f"left-{gauze.pk}": "0.55", f"unit-{gauze.pk}": "包"})
    assert fraction.status_code == 400 and f"left-{gauze.pk}" in str(fraction.context["problems"])
    above = client.post(URL, {**form, f"left-{gauze.pk}": "4", f"unit-{gauze.pk}": "包", "step": "confirm"})
    assert above.status_code == 409
    unknown = client.post(URL, {**form, f"left-{gauze.pk}": "1", f"unit-{gauze.pk}": "箱"})
    assert unknown.status_code == 400
    gauze.refresh_from_db()
    assert gauze.quantity == 34 and expensed() == []


def test_an_empty_count_expenses_nothing_and_a_nurse_of_another_department_cannot_count(
    hospital, keeper, gauze, cath_lab_store
):
    client = client_for(keeper)
    key = client.get(URL, {"location": cath_lab_store.pk}).context["key"]
    review = client.post(URL, {"location": cath_lab_store.pk, "idempotency_key": key})
    assert 'data-note="nothing-used"' in text(review)
    stranger = factories.UserFactory(username="nurse-icu", hospital=hospital, roles=["nurse"])
    stranger.departments.add(factories.DepartmentFactory(hospital=hospital, code="ICU", name="重症医学科"))
    other = client_for(stranger)
    assert other.get(URL, {"location": cath_lab_store.pk}).status_code == 404
    assert other.post(URL, {"location": cath_lab_store.pk, "idempotency_key": key, "step": "confirm",
                            f"left-{gauze.pk}": "0"}).status_code == 404
    assert expensed() == []
    assert client_for(factories.UserFactory(username="aud", hospital=hospital, roles=["auditor"])).get(URL) \
        .status_code == 403
