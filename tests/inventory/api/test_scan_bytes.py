"""Every API field that takes a scanned code keeps its bytes: a HIBC label's check character may be a
space (1 label in 43), and a trimmed code fails its check (issue 11, "Keep the bytes of a scan")."""
import pytest
from django.http import QueryDict

from devices.identification import parse_udi
from inventory.api.cabinets import ScanUnitsSerializer
from inventory.api.clinical import ConsumptionInputSerializer
from inventory.api.receiving import DeliveryLineInputSerializer, DeliveryScanInputSerializer
from inventory.api.stock import StockOrderInputSerializer, UnitFilter
from inventory.models import Unit

HIBC_SPACE_CHECK = "+A99912341/$$+3281231S0 "


def test_the_label_is_only_valid_whole():
    assert parse_udi(HIBC_SPACE_CHECK).serial == "S0"


@pytest.mark.parametrize(("serializer", "field"), [
    (DeliveryScanInputSerializer, "udi"), (DeliveryLineInputSerializer, "udi"), (ConsumptionInputSerializer, "udi"),
])
def test_a_single_code_field_keeps_a_trailing_space(serializer, field):
    assert serializer().fields[field].run_validation(HIBC_SPACE_CHECK) == HIBC_SPACE_CHECK


@pytest.mark.parametrize("serializer", [ScanUnitsSerializer, StockOrderInputSerializer])
def test_a_list_of_codes_keeps_each_ones_trailing_space(serializer):
    assert serializer().fields["udis"].run_validation([HIBC_SPACE_CHECK]) == [HIBC_SPACE_CHECK]


@pytest.mark.django_db
def test_the_unit_filter_by_udi_keeps_it_too():
    unit_filter = UnitFilter(QueryDict(f"udi={HIBC_SPACE_CHECK.replace('+', '%2B').replace('$', '%24')}"),
                             queryset=Unit.objects.none())
    assert unit_filter.is_valid()
    assert unit_filter.form.cleaned_data["udi"] == HIBC_SPACE_CHECK
