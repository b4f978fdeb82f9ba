"""Units of measure (包装单位): exact conversions between packaging units and the base unit."""
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from inventory.errors import Refused
from inventory.models import PackagingUnit
from inventory.services.units_of_measure import (
    base_unit_price,
    billing_unit,
    describe_quantity,
    in_billing_unit,
    purchase_unit,
    round_up_to_unit,
    to_base_quantity,
)
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def syringe(hospital):
    """支 is the base unit; 盒 = 10 支 is bought, 箱 = 100 支; billed per 支."""
    product = factories.ProductFactory(
        hospital=hospital, name="一次性注射器", unit_of_measure="支", tracking="LOT", is_high_value=False
    )
    PackagingUnit.objects.create(product=product, name="盒", factor=10, is_purchase_unit=True)
    PackagingUnit.objects.create(product=product, name="箱", factor=100)
    return product


@pytest.fixture
def plain(hospital):
    return factories.ProductFactory(hospital=hospital, unit_of_measure="个")


def test_a_product_without_packaging_units_buys_and_bills_in_its_base_unit(plain):
    assert (purchase_unit(plain).name, purchase_unit(plain).factor) == ("个", 1)
    assert (billing_unit(plain).name, billing_unit(plain).factor) == ("个", 1)
    assert to_base_quantity(product=plain, quantity=7) == 7
    assert to_base_quantity(product=plain, quantity=7, unit="个") == 7


def test_a_packaging_unit_converts_to_whole_base_units(syringe):
    assert to_base_quantity(product=syringe, quantity=3, unit="盒") == 30
    assert to_base_quantity(product=syringe, quantity=2, unit="箱") == 200
    assert to_base_quantity(product=syringe, quantity=Decimal("2.5"), unit="盒") == 25
    assert to_base_quantity(product=syringe, quantity=Decimal("0.07"), unit="箱") == 7
    assert to_base_quantity(product=syringe, quantity=4, unit="支") == 4
    assert to_base_quantity(product=syringe, quantity=0, unit="盒") == 0


@pytest.mark.parametrize("quantity,unit", [(Decimal("0.55"), "盒"), (Decimal("1.5"), ""), (Decimal("0.001"), "箱")])
def test_a_quantity_that_is_not_a_whole_base_quantity_is_refused(syringe, quantity, unit):
    with pytest.raises(Refused) as refused:
        to_base_quantity(product=syringe, quantity=quantity, unit=unit, field="lines[0].quantity")
    assert refused.value.code == "QUANTITY_NOT_WHOLE_BASE_UNITS"
    assert refused.value.problems[0].item == "lines[0].quantity"
    assert "lines[0].quantity" in refused.value.detail


def test_an_unknown_unit_is_refused_naming_the_units_there_are(syringe):
    with pytest.raises(Refused) as refused:
        to_base_quantity(product=syringe, quantity=1, unit="瓶")
    assert refused.value.code == "UNKNOWN_PACKAGING_UNIT"
    assert "箱、盒、支" in refused.value.detail


def test_zero_is_refused_only_where_the_caller_says_so(syringe):
    with pytest.raises(Refused) as refused:
        to_base_quantity(product=syringe, quantity=0, unit="盒", allow_zero=False)
    assert refused.value.code == "QUANTITY_NOT_POSITIVE"
    with pytest.raises(Refused) as refused:
        to_base_quantity(product=syringe, quantity=-1, unit="盒")
    assert refused.value.code == "QUANTITY_NOT_POSITIVE"


def test_quantities_are_described_largest_unit_first(syringe, plain):
    assert describe_quantity(product=syringe, base_quantity=234) == "2 箱 3 盒 4 支"
    assert describe_quantity(product=syringe, base_quantity=34) == "3 盒 4 支"
    assert describe_quantity(product=syringe, base_quantity=30) == "3 盒"
    assert describe_quantity(product=syringe, base_quantity=0) == "0 支"
    assert describe_quantity(product=syringe, base_quantity=-12) == "-1 盒 2 支"
    assert describe_quantity(product=plain, base_quantity=5) == "5 个"


def test_rounding_up_hands_out_whole_purchase_units_by_default(syringe, plain):
    assert round_up_to_unit(product=syringe, base_quantity=23) == 30
    assert round_up_to_unit(product=syringe, base_quantity=30) == 30
    assert round_up_to_unit(product=syringe, base_quantity=23, unit="箱") == 100
    assert round_up_to_unit(product=syringe, base_quantity=23, unit="支") == 23
    assert round_up_to_unit(product=syringe, base_quantity=0) == 0
    assert round_up_to_unit(product=plain, base_quantity=23) == 23


def test_a_price_per_packaging_unit_converts_to_whole_cents_per_base_unit_or_is_refused(syringe):
    assert base_unit_price(product=syringe, unit_price=Decimal("35.00"), unit="盒") == Decimal("3.50")
    with pytest.raises(Refused) as refused:
        base_unit_price(product=syringe, unit_price=Decimal("35.05"), unit="盒")
    assert refused.value.code == "PRICE_NOT_WHOLE_CENTS_PER_BASE_UNIT"


def test_billing_in_a_packaging_unit_converts_quantity_and_price_exactly(syringe):
    PackagingUnit.objects.filter(product=syringe, name="盒").update(is_billing_unit=True)
    billed = in_billing_unit(product=syringe, base_quantity=20, base_unit_price=Decimal("3.33"))
    assert (billed.unit, billed.quantity, billed.unit_price, billed.amount) == ("盒", 2, Decimal("33.30"), Decimal("66.60"))
    assert billed.amount == Decimal("3.33") * 20
    with pytest.raises(Refused) as refused:
        in_billing_unit(product=syringe, base_quantity=25, base_unit_price=Decimal("3.33"))
    assert refused.value.code == "NOT_WHOLE_BILLING_UNITS"


def test_billing_in_the_base_unit_is_unchanged(plain):
    billed = in_billing_unit(product=plain, base_quantity=3, base_unit_price=Decimal("1200.00"))
    assert (billed.unit, billed.quantity, billed.unit_price) == ("个", 3, Decimal("1200.00"))


def test_the_database_allows_one_purchase_unit_and_no_factor_below_two(syringe):
    with pytest.raises(IntegrityError), transaction.atomic():
        PackagingUnit.objects.create(product=syringe, name="包", factor=5, is_purchase_unit=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        PackagingUnit.objects.create(product=syringe, name="只", factor=1)


def test_an_expensed_product_cannot_carry_a_charge_code(hospital):
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.ProductFactory(hospital=hospital, tracking="LOT", expensed_on_issue=True, his_charge_code="HIS1")
    factories.ProductFactory(hospital=hospital, tracking="LOT", expensed_on_issue=True, his_charge_code="")
