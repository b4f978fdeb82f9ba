"""A station's GS substitute must never be a character of UDI data, and scans keep their bytes."""
import pytest
from django.core.exceptions import ValidationError

from devices.identification import gs_substitute_problem, parse_udi
from devices.models import Device
from tests.conftest import api_client_for
from tests.devices.test_ingest import device_client, event, make_device, post
from tests.devices.test_serial_scanner import HIBC_SPACE_CHECK
from tests.factories import gs1_udi


@pytest.mark.parametrize("substitute", ["-", ".", "/", "+", "$", "%", " ", "0", "7", "A", "z", "#", "]", "\t", "\r",
                                        "<GS>", "|-", "\x1d", ""])
def test_characters_of_gs1_or_hibc_data_are_refused_as_substitute(substitute):
    assert gs_substitute_problem(substitute)


@pytest.mark.parametrize("substitute", ["|", "~", "^", "@", "{", "}", "[", "\\", "`", "§", "||"])
def test_characters_outside_the_data_sets_are_accepted(substitute):
    assert gs_substitute_problem(substitute) is None
    code = gs1_udi("09501234567891", serial="S-1.2/3", lot="L+4%5").replace("\x1d", substitute)
    assert parse_udi(code, separator=substitute).serial == "S-1.2/3"


def test_the_problem_names_the_offending_characters():
    assert "'-'" in gs_substitute_problem("-") and "GS1 or HIBC" in gs_substitute_problem("-")


@pytest.mark.django_db
def test_registry_refuses_a_data_character_as_substitute_with_a_clear_message(hospital, operator):
    client = api_client_for(operator)
    refused = client.post("/api/v1/devices/", {
        "code": "ST-1", "name": "站", "kind": "WEDGE_SCANNER", "config": {"gs_substitute": "-"},
    }, format="json")
    assert refused.status_code == 400
    assert refused.data["code"] == "INVALID_REQUEST"
    assert "GS1 or HIBC" in refused.data["detail"]
    assert not Device.objects.exists()
    accepted = client.post("/api/v1/devices/", {
        "code": "ST-1", "name": "站", "kind": "WEDGE_SCANNER", "config": {"gs_substitute": "~"},
    }, format="json")
    assert accepted.status_code == 201, accepted.data


@pytest.mark.django_db
def test_model_validation_refuses_an_unsafe_substitute(hospital):
    device = Device(hospital=hospital, code="ST-2", name="x", kind=Device.Kind.WEDGE_SCANNER,
                    config={"gs_substitute": "."})
    with pytest.raises(ValidationError, match="GS1 or HIBC"):
        device.full_clean(exclude=["token_hash"])


@pytest.mark.django_db
def test_scan_resolution_refuses_an_unsafe_separator(api):
    response = api.post("/api/v1/scans/resolve/", {"code": "0109501234567891", "separator": "/"}, format="json")
    assert response.status_code == 400
    assert response.data["problems"][0]["field"] == "separator"


@pytest.mark.django_db
def test_a_scan_from_a_device_with_an_unsafe_stored_substitute_is_refused_not_misread(hospital):
    device, token = make_device(hospital, code="OLD-STATION")
    Device.objects.filter(pk=device.pk).update(config={"gs_substitute": "1"})  # stored before it was checked
    response = post(device_client(token), event("s1", kind="scan", payload={"code": gs1_udi("09501234567891", serial="S1")}))
    assert response.status_code == 201
    assert (response.data["status"], response.data["error_code"]) == ("REFUSED", "GS_SUBSTITUTE_UNSAFE")
    batch = post(device_client(token), [event("s2", kind="scan", payload={"code": "x"}),
                                        event("s3", kind="scan", payload={"code": "y"})])
    assert [e["error_code"] for e in batch.data["events"]] == ["GS_SUBSTITUTE_UNSAFE"] * 2


@pytest.mark.django_db
def test_delivery_note_keeps_a_udi_ending_in_a_space_check_character(api, supplier, warehouse, agreement):
    from tests import factories

    factories.ProductFactory(hospital=warehouse.hospital, udi_di="A99912341")
    body = {"supplier": supplier.pk, "number": "DN-HIBC", "receiving_location": warehouse.pk,
            "lines": [{"udi": HIBC_SPACE_CHECK, "unit_price": "1200.00"}]}
    response = api.post("/api/v1/delivery-notes/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-hibc")
    assert response.status_code == 201, response.data
    line = response.data["lines"][0]
    assert line["raw_udi"] == HIBC_SPACE_CHECK
    assert line["serial"] == "S0"
