"""Who lists which device events over the API: a nurse the events of her departments' devices (as on
the cabinet pages), the hospital-wide roles all of their hospital's, nobody another hospital's."""
import pytest
from django.utils import timezone

from devices.models import Device, DeviceEvent
from tests import factories
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/devices/events/"


def department_with_cabinet(hospital, code: str) -> tuple:
    department = factories.DepartmentFactory(hospital=hospital, code=code, name=f"{code}科")
    cabinet = factories.LocationFactory(hospital=hospital, department=department, code=f"{code}-CAB",
                                        name=f"{code}智能柜", kind="SMART_CABINET")
    device = Device.objects.create(hospital=hospital, code=f"{code}-DEV", name=f"{code}柜",
                                   kind=Device.Kind.CABINET_HTTP, location=cabinet)
    event = DeviceEvent.objects.create(device=device, event_id=f"{code}-1", kind="heartbeat",
                                       occurred_at=timezone.now(), body_sha256="0" * 64)
    return department, device, event


@pytest.fixture
def world(hospital, other_hospital, warehouse):
    cardiology, _, cardiology_event = department_with_cabinet(hospital, "CARD")
    _, _, surgery_event = department_with_cabinet(hospital, "SURG")
    scanner = Device.objects.create(hospital=hospital, code="CW-SCAN", name="中心库扫码枪",
                                    kind=Device.Kind.SERIAL_SCANNER, location=warehouse)
    warehouse_event = DeviceEvent.objects.create(device=scanner, event_id="cw-1", kind="heartbeat",
                                                 occurred_at=timezone.now(), body_sha256="0" * 64)
    _, their_device, their_event = department_with_cabinet(other_hospital, "THEIRS")
    nurse = factories.UserFactory(username="card-nurse", hospital=hospital, roles=["nurse"])
    nurse.departments.add(cardiology)
    return {
        "nurse": nurse, "cardiology": cardiology_event, "surgery": surgery_event, "warehouse": warehouse_event,
        "their_device": their_device, "theirs": their_event,
    }


def listed(user, **query) -> set[int]:
    response = api_client_for(user).get(EVENTS, query)
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_a_nurse_lists_the_events_of_her_departments_devices_only(world):
    assert listed(world["nurse"]) == {world["cardiology"].pk}
    assert listed(world["nurse"], device=world["surgery"].device_id) == set()


def test_an_auditor_and_a_keeper_list_every_event_of_their_hospital(world, auditor, keeper):
    everything = {world[name].pk for name in ("cardiology", "surgery", "warehouse")}
    assert listed(auditor) == everything
    assert listed(keeper) == everything


def test_another_hospitals_events_are_listed_to_nobody_and_its_device_filters_as_a_missing_one(world, keeper):
    assert world["theirs"].pk not in listed(world["nurse"]) | listed(keeper)
    assert listed(keeper, device=world["their_device"].pk) == set()
    assert api_client_for(keeper).get(EVENTS, {"device": world["their_device"].pk}).content == (
        api_client_for(keeper).get(EVENTS, {"device": 987654321}).content
    )


def test_a_nurse_with_no_department_lists_no_event(world, hospital):
    drifter = factories.UserFactory(username="drifter", hospital=hospital, roles=["nurse"])
    assert listed(drifter) == set()
