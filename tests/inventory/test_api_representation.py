"""The planned serializer output (inventory.api.representation) is DRF's document, value for value."""
import pytest
from rest_framework import serializers

from inventory.api.clinical import ChargeSerializer, ConsumptionSerializer
from inventory.api.stock import UnitSerializer
from inventory.models import Charge, ChargeDelivery, Consumption, Unit
from inventory.selectors.units import units_for_list
from inventory.services.consumption import ClinicalContext, consume_unit, refund_consumption
from inventory.services.stock import transfer_stock
from tests.conftest import stock_units

pytestmark = pytest.mark.django_db


def drf(serializer_class, instance) -> dict:
    """What DRF's own `Serializer.to_representation` answers for `instance`."""
    return serializers.Serializer.to_representation(serializer_class(), instance)


@pytest.fixture
def used_and_refunded(keeper_actor, supplier, warehouse, product, cath_lab_store, department, hospital):
    """Two units: one used and refunded (a charge and its refund, each with an outbox row), one used."""
    units = stock_units(keeper_actor, supplier, warehouse, product, ["R1", "R2"])
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=units, idempotency_key="in")
    context = ClinicalContext(encounter="ZY1", department=department, surgery_id="OP-1", surgery_name="PCI",
                              doctor="D1", occurred_at=None, clinical_team=None)
    uses = [consume_unit(actor=keeper_actor, hospital=hospital, unit=unit, context=context,
                         idempotency_key=f"use-{unit.pk}") for unit in units]
    refund_consumption(actor=keeper_actor, consumption=uses[0], reason_code="WRONG", to_quarantine=False,
                       idempotency_key="refund-1")
    ChargeDelivery.objects.filter(charge__consumption=uses[1]).update(his_reference="HIS-9", attempts=2,
                                                                        last_error="timeout")
    return uses


def test_a_unit_page_is_drfs_document_with_and_without_a_location(used_and_refunded, product, supplier, warehouse,
                                                                   keeper_actor):
    stock_units(keeper_actor, supplier, warehouse, product, ["S1"], lot="L7")
    Unit.objects.filter(serial="R2").update(expiry=None, production_date=None, epc="E200ABCD")
    page = list(units_for_list(Unit.objects.all()).order_by("pk"))
    assert {unit.location_id is None for unit in page} == {True, False}  # a used unit has no location
    serializer = UnitSerializer(page, many=True)
    assert serializer.data == [drf(UnitSerializer, unit) for unit in page]
    planned = {field.field_name for field, read, _ in serializer.child._representation_plan if read is not None}
    assert {"id", "product", "product_name", "location", "location_name", "unit_cost", "created_at"} <= planned


def test_a_use_with_its_charges_is_drfs_document(used_and_refunded):
    for use in Consumption.objects.prefetch_related("charges__delivery", "other_parts"):
        answer = ConsumptionSerializer(use).data
        expected = drf(ConsumptionSerializer, use)
        expected["charges"] = [drf(ChargeSerializer, charge) for charge in use.charges.all()]
        assert answer == expected
    refund = Charge.objects.get(refund_of__isnull=False)
    assert ChargeSerializer(refund).data["refund_of"] == refund.refund_of_id


def test_a_charge_without_its_outbox_row_answers_nulls_as_drf_does(used_and_refunded):
    charge = Charge.objects.select_related("delivery").first()
    del charge._state.fields_cache["delivery"]
    ChargeDelivery.objects.filter(charge=charge).delete()
    answer = ChargeSerializer(charge).data
    assert answer == drf(ChargeSerializer, Charge.objects.get(pk=charge.pk))
    assert (answer["delivery_status"], answer["his_reference"]) == (None, None)
