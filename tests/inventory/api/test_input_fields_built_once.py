"""Input serializers whose fields are built once per class (FieldsBuiltOnce): each request binds its
own copies, so nothing of one request — its caller, its hospital, its errors — reaches another, and
a scoped id is looked up as DRF's deep-copied fields look it up."""
import threading
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers

from inventory.api.alliance import AllianceTransferInputSerializer
from inventory.api.clinical import ConsumptionInputSerializer
from inventory.api.fields import FieldsBuiltOnce, ScopedPrimaryKeyRelatedField
from inventory.models import Consumption, Department
from inventory.services.stock import transfer_stock
from tests import factories
from tests.conftest import api_client_for, stock_units

pytestmark = pytest.mark.django_db


class DepartmentOnce(FieldsBuiltOnce):
    department = ScopedPrimaryKeyRelatedField(queryset=Department.objects.all())
    note = serializers.CharField(max_length=5, required=False)


class DepartmentAsDrfBuildsIt(serializers.Serializer):
    department = ScopedPrimaryKeyRelatedField(queryset=Department.objects.all())
    note = serializers.CharField(max_length=5, required=False)


def _asked(serializer_class, user, data):
    serializer = serializer_class(data=data, context={"request": SimpleNamespace(user=user)})
    valid = serializer.is_valid()
    return valid, dict(serializer.validated_data) if valid else serializer.errors


def _lookups(captured):
    return [query["sql"] for query in captured if "inventory_department" in query["sql"]]


@pytest.fixture
def other_department(other_hospital):
    return factories.DepartmentFactory(hospital=other_hospital, code="ORTHO", name="骨科")


@pytest.fixture
def other_nurse(other_hospital, other_department):
    user = factories.UserFactory(username="nurse2", hospital=other_hospital, roles=["nurse"])
    user.departments.add(other_department)
    return user


def test_each_instance_binds_its_own_copies_and_the_class_keeps_them_unbound(nurse):
    first = ConsumptionInputSerializer(data={}, context={"request": SimpleNamespace(user=nurse)})
    second = ConsumptionInputSerializer(data={}, context={"request": SimpleNamespace(user=None)})
    for name, field in first.fields.items():
        other = second.fields[name]
        assert field is not other and field.parent is first and other.parent is second
        assert field.validators is not other.validators and field.error_messages is not other.error_messages
    assert first.fields["department"].context["request"].user == nurse
    assert second.fields["department"].context["request"].user is None
    built = ConsumptionInputSerializer._fields_built_once
    assert all(field.parent is None and field.field_name is None for field in built.values())
    assert set(built) == set(ConsumptionInputSerializer._declared_fields)


def test_a_serializer_with_nested_or_many_fields_builds_them_as_drf_does(nurse):
    serializer = AllianceTransferInputSerializer(data={}, context={"request": SimpleNamespace(user=nurse)})
    assert serializer.fields["units"].child_relation.parent is serializer.fields["units"]
    assert AllianceTransferInputSerializer._fields_built_once is False


def test_a_subclass_builds_its_own_fields():
    class WithMore(DepartmentOnce):
        more = serializers.IntegerField(required=False)

    assert set(WithMore(data={}).fields) == {"department", "note", "more"}
    assert set(DepartmentOnce(data={}).fields) == {"department", "note"}
    assert WithMore._fields_built_once is not DepartmentOnce._fields_built_once


@pytest.mark.parametrize("value", ["own", "other", "missing", "as_text", "as_float", "huge", "negative", "word", True,
                                   None, "", [1], {"id": 1}])
def test_a_scoped_id_is_found_refused_or_not_found_as_drf_s_own_field_does_it(
        nurse, department, other_department, value):
    alliance_admin = factories.UserFactory(username="root", hospital=None, is_superuser=True, roles=["admin"])
    homeless = factories.UserFactory(username="nobody", hospital=None, roles=["nurse"])
    data = {"own": department.pk, "other": other_department.pk, "missing": other_department.pk + 1000,
            "as_text": str(department.pk), "as_float": float(department.pk), "huge": 2**70, "negative": -3,
            "word": "cath"}.get(value, value) if isinstance(value, str) and value else value
    for user in (nurse, alliance_admin, homeless):
        with CaptureQueriesContext(connection) as once:
            asked_once = _asked(DepartmentOnce, user, {"department": data, "note": "n"})
        with CaptureQueriesContext(connection) as drf:
            asked_drf = _asked(DepartmentAsDrfBuildsIt, user, {"department": data, "note": "n"})
        assert asked_once == asked_drf, (user, value)
        assert _lookups(once) == _lookups(drf), (user, value)
    lookups = DepartmentOnce._fields_built_once["department"]._lookups[1]
    if connection.vendor == "postgresql" and value == "own":
        assert lookups.rows_for(None) is not None  # the nurse's lookup came from the compiled statement


def test_the_field_s_errors_and_values_do_not_follow_it_into_the_next_request(nurse, department):
    refused = DepartmentOnce(data={"department": "cath", "note": "too long"},
                             context={"request": SimpleNamespace(user=nurse)})
    assert not refused.is_valid() and set(refused.errors) == {"department", "note"}
    accepted = DepartmentOnce(data={"department": department.pk}, context={"request": SimpleNamespace(user=nurse)})
    assert accepted.is_valid(), accepted.errors
    assert accepted.validated_data == {"department": department} and not accepted.errors


def test_requests_in_threads_each_see_their_own_caller(nurse, other_nurse):
    """gthread workers: two requests bind and read the same class's fields at the same time."""
    barrier, seen = threading.Barrier(2), {}

    def bind_and_read(user):
        serializer = DepartmentOnce(data={}, context={"request": SimpleNamespace(user=user)})
        field = serializer.fields["department"]
        barrier.wait()  # both bound before either reads
        seen[user.username] = [field.context["request"].user for _ in range(1000)]

    threads = [threading.Thread(target=bind_and_read, args=(user,)) for user in (nurse, other_nurse)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(seen["nurse1"]) == {nurse} and set(seen["nurse2"]) == {other_nurse}


@pytest.fixture
def units_of_two_hospitals(keeper_actor, supplier, warehouse, product, cath_lab_store, other_hospital, other_department):
    own = stock_units(keeper_actor, supplier, warehouse, product, ["A1", "A2"])
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store, units=own,
                   idempotency_key="to-store")
    other_keeper = factories.UserFactory(username="keeper2", hospital=other_hospital, roles=["warehouse"])
    from inventory.actors import Actor

    other_warehouse = factories.LocationFactory(hospital=other_hospital, code="CW2", name="中心库")
    other_store = factories.LocationFactory(hospital=other_hospital, department=other_department, code="ORTHO-STORE",
                                            name="骨科二级库", kind="DEPARTMENT_STORE")
    other_product = factories.SupplyAgreementFactory(product__hospital=other_hospital, supplier=supplier).product
    theirs = stock_units(Actor(user=other_keeper), supplier, other_warehouse, other_product, ["B1"])
    transfer_stock(actor=Actor(user=other_keeper), hospital=other_hospital, to_location=other_store, units=theirs,
                   idempotency_key="to-store")
    return own, theirs


def _problems(response):
    return [(problem["field"], problem["code"]) for problem in response.data["problems"]]


def _use(client, department, unit, key):
    return client.post("/api/v1/consumptions/", {"unit": unit.pk, "department": department.pk, "encounter": f"ZY-{key}",
                                                 "idempotency_key": key}, format="json")


def test_uses_of_two_hospitals_and_a_refused_one_between_each_see_only_their_own(
        nurse, other_nurse, department, other_department, units_of_two_hospitals):
    own, theirs = units_of_two_hospitals
    nurse_api, other_api = api_client_for(nurse), api_client_for(other_nurse)
    assert _use(nurse_api, department, own[0], "a-1").status_code == 201
    refused = _use(other_api, department, theirs[0], "b-refused")  # the first hospital's department
    assert refused.status_code == 400 and _problems(refused) == [("department", "DOES_NOT_EXIST")], refused.data
    used = _use(other_api, other_department, theirs[0], "b-1")
    assert used.status_code == 201, used.data
    assert (used.data["department"], used.data["unit"]) == (other_department.pk, theirs[0].pk)
    malformed = nurse_api.post("/api/v1/consumptions/", {"unit": own[1].pk, "department": "cath",
                                                          "idempotency_key": "a-bad"}, format="json")
    assert malformed.status_code == 400, malformed.data
    assert sorted(_problems(malformed)) == [("department", "INCORRECT_TYPE"), ("encounter", "REQUIRED")], malformed.data
    again = _use(nurse_api, department, own[1], "a-2")
    assert again.status_code == 201, again.data
    assert again.data["department"] == department.pk
    assert sorted(Consumption.objects.values_list("hospital_id", "department_id")) == sorted(
        [(department.hospital_id, department.pk)] * 2 + [(other_department.hospital_id, other_department.pk)])
