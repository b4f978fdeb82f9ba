import datetime
from decimal import Decimal

import pytest

from inventory.actors import Actor
from inventory.models import Charge, ChargeDelivery, Consumption, LotBalance, Movement, Unit
from inventory.services.labelling import bind_tag
from inventory.services.stock import transfer_stock
from tests import factories
from tests.conftest import api_client_for, stock_units
from tests.factories import TODAY, gs1_udi

pytestmark = pytest.mark.django_db


@pytest.fixture
def nurse_api(nurse):
    return api_client_for(nurse)


@pytest.fixture
def unit_in_store(keeper_actor, supplier, warehouse, product, cath_lab_store):
    unit = stock_units(keeper_actor, supplier, warehouse, product, ["U1"])[0]
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store, units=[unit],
                   idempotency_key="to-store")
    unit.refresh_from_db()
    return unit


def consume(client, department, key="use-1", **body):
    payload = {"encounter": "ZY20261123001", "department": department.pk, "idempotency_key": key,
               "surgery_id": "OP-77", "surgery_name": "PCI", "doctor": "D0042", **body}
    return client.post("/api/v1/consumptions/", payload, format="json")


def test_use_by_scan_creates_the_consumption_charge_and_outbox_row(nurse_api, department, unit_in_store, product):
    response = consume(nurse_api, department, udi=gs1_udi(product.udi_di, serial="U1"))
    assert response.status_code == 201, response.data
    charge = response.data["charges"][0]
    assert (charge["kind"], charge["quantity"], Decimal(charge["unit_price"])) == ("CHARGE", 1, unit_in_store.unit_cost)
    assert (charge["his_charge_code"], charge["nhsa_code"]) == (product.his_charge_code, product.nhsa_code)
    assert charge["delivery_status"] == "PENDING"
    assert charge["is_zero_cost"] is False
    unit_in_store.refresh_from_db()
    assert (unit_in_store.status, unit_in_store.location) == ("CONSUMED", None)
    consumption = Consumption.objects.get()
    assert (consumption.encounter, consumption.surgery_id, consumption.doctor) == ("ZY20261123001", "OP-77", "D0042")


def test_same_key_replays_and_a_second_use_is_409_naming_the_first(nurse_api, department, unit_in_store):
    first = consume(nurse_api, department, unit=unit_in_store.pk)
    again = consume(nurse_api, department, unit=unit_in_store.pk)
    assert again.data["id"] == first.data["id"]
    second = consume(nurse_api, department, key="use-2", unit=unit_in_store.pk, encounter="ZY2")
    assert (second.status_code, second.data["code"]) == (409, "ALREADY_CONSUMED")
    assert "ZY20261123001" in second.data["detail"]
    assert (Consumption.objects.count(), Charge.objects.count()) == (1, 1)


def test_use_by_rfid_tag(nurse_api, department, unit_in_store, keeper_actor):
    bind_tag(unit=unit_in_store, epc="E28011606000020A0B0C0D0E", actor=keeper_actor)
    response = consume(nurse_api, department, epc="e28011606000020a0b0c0d0e")
    assert response.status_code == 201, response.data


@pytest.mark.parametrize(
    ("arrange", "code", "status"),
    [
        ("expired", "UNIT_EXPIRED_LOCKED", 409),
        ("quarantine", "UNIT_QUARANTINED", 409),
        ("other_department", "UNIT_NOT_IN_DEPARTMENT", 409),
        ("in_warehouse", "UNIT_NOT_IN_DEPARTMENT", 409),
        ("scrapped", "ILLEGAL_TRANSITION", 409),
        ("no_charge_code", "NO_CHARGE_CODE", 409),
    ],
)
def test_unusable_units_are_refused_and_nothing_is_written(
    api, department, unit_in_store, hospital, warehouse, keeper_actor, arrange, code, status
):
    if arrange == "expired":
        Unit.objects.filter(pk=unit_in_store.pk).update(expiry=TODAY - datetime.timedelta(days=1))
    elif arrange == "quarantine":
        quarantine = factories.LocationFactory(hospital=hospital, department=department, kind="QUARANTINE")
        Unit.objects.filter(pk=unit_in_store.pk).update(location=quarantine)
    elif arrange == "other_department":
        department = factories.DepartmentFactory(hospital=hospital)
    elif arrange == "in_warehouse":
        transfer_stock(actor=keeper_actor, hospital=hospital, to_location=warehouse, units=[unit_in_store],
                       idempotency_key="back")
    elif arrange == "scrapped":
        from inventory.services.stock import scrap

        scrap(actor=keeper_actor, hospital=hospital, units=[unit_in_store], reason_code="DAMAGED", idempotency_key="s")
    elif arrange == "no_charge_code":
        unit_in_store.product.his_charge_code = ""
        unit_in_store.product.save()
    movements = Movement.objects.count()
    response = consume(api, department, unit=unit_in_store.pk)
    assert (response.status_code, response.data["code"]) == (status, code), response.data
    assert Movement.objects.count() == movements
    assert not Consumption.objects.exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"encounter": "11010519491231002X"}, "LOOKS_LIKE_PERSONAL_ID"),
        ({"doctor": "110105194912310021"}, "LOOKS_LIKE_PERSONAL_ID"),
        ({"surgery_id": "110105194912310021"}, "LOOKS_LIKE_PERSONAL_ID"),
        ({"surgery_name": "PCI 患者身份证110105199003071239"}, "LOOKS_LIKE_PERSONAL_ID"),
        ({"surgery_name": "冠脉支架植入术 (11010519491231002x)"}, "LOOKS_LIKE_PERSONAL_ID"),
        ({"doctor": "D-11010519491231002X"}, "LOOKS_LIKE_PERSONAL_ID"),
        ({"encounter": "张三"}, "INVALID_ENCOUNTER"),
    ],
)
def test_patient_identity_is_never_stored(nurse_api, department, unit_in_store, body, code):
    response = consume(nurse_api, department, unit=unit_in_store.pk, **body)
    assert (response.status_code, response.data["code"]) == (400, code)
    assert not Consumption.objects.exists()


def test_every_clinical_field_holding_an_identity_number_is_named(nurse_api, department, unit_in_store):
    identity = "110105199003071239"
    response = consume(nurse_api, department, unit=unit_in_store.pk, encounter=identity, doctor=identity,
                       surgery_id=identity, surgery_name=f"术式 {identity}", HTTP_ACCEPT_LANGUAGE="en")
    details = [problem["detail"] for problem in response.json()["problems"]]
    for field in ("encounter", "doctor", "surgery_id", "surgery_name"):
        assert any(detail.startswith(field) for detail in details), details


def test_a_refund_reason_holding_an_identity_number_is_refused(nurse_api, department, unit_in_store):
    used = consume(nurse_api, department, unit=unit_in_store.pk).json()
    refund = nurse_api.post(f"/api/v1/consumptions/{used['id']}/refund/",
                            {"reason_code": "110105199003071239", "idempotency_key": "r"}, format="json")
    assert (refund.status_code, refund.json()["code"]) == (400, "LOOKS_LIKE_PERSONAL_ID")
    assert Consumption.objects.get(pk=used["id"]).refunded_at is None


def test_long_codes_that_are_not_identity_numbers_are_kept(nurse_api, department, unit_in_store):
    """An order number of 18 digits inside text, whose check digit is not an identity number's, is fine."""
    response = consume(nurse_api, department, unit=unit_in_store.pk, surgery_name="PCI 医嘱 110105199003071230",
                       encounter="ZY2026112300000000000001")
    assert response.status_code == 201, response.json()


def test_a_nurse_uses_only_for_her_departments(nurse_api, unit_in_store, hospital):
    other = factories.DepartmentFactory(hospital=hospital)
    response = consume(nurse_api, other, unit=unit_in_store.pk)
    assert (response.status_code, response.data["code"]) == (403, "NOT_YOUR_DEPARTMENT")


def test_auditor_cannot_record_use(auditor, department, unit_in_store):
    assert consume(api_client_for(auditor), department, unit=unit_in_store.pk).status_code == 403


def test_gifted_unit_charge_is_flagged_zero_cost(nurse_api, department, unit_in_store):
    Unit.objects.filter(pk=unit_in_store.pk).update(is_gift=True, unit_cost=0)
    charge = consume(nurse_api, department, unit=unit_in_store.pk).data["charges"][0]
    assert (charge["is_zero_cost"], Decimal(charge["amount"])) == (True, Decimal("0"))


def test_consignment_unit_changes_owner_at_use_and_back_at_refund(
    nurse_api, department, unit_in_store
):
    Unit.objects.filter(pk=unit_in_store.pk).update(owner="SUPPLIER")
    used = consume(nurse_api, department, unit=unit_in_store.pk)
    assert used.data["was_consignment"] is True
    kinds = list(Movement.objects.filter(unit=unit_in_store).values_list("kind", "from_owner", "to_owner"))
    assert kinds[-2:] == [("OWNER_CHANGE", "SUPPLIER", "HOSPITAL"), ("CONSUME", "", "")]

    refund = nurse_api.post(f"/api/v1/consumptions/{used.data['id']}/refund/",
                            {"reason_code": "NOT_IMPLANTED", "idempotency_key": "r1"}, format="json")
    assert refund.status_code == 200, refund.data
    unit_in_store.refresh_from_db()
    assert (unit_in_store.owner, unit_in_store.status) == ("SUPPLIER", "IN_STOCK")


def test_refund_reverses_use_with_a_negative_charge_once(nurse_api, department, unit_in_store, cath_lab_store, hospital):
    used = consume(nurse_api, department, unit=unit_in_store.pk).data
    url = f"/api/v1/consumptions/{used['id']}/refund/"
    assert nurse_api.post(url, {"idempotency_key": "r0"}, format="json").status_code == 400
    refunded = nurse_api.post(url, {"reason_code": "WRONG_SIZE", "idempotency_key": "r1"}, format="json")
    assert refunded.status_code == 200
    refund = refunded.data["charges"][1]
    assert (refund["kind"], refund["quantity"], refund["refund_of"]) == ("REFUND", -1, used["charges"][0]["id"])
    assert Decimal(refund["amount"]) == -Decimal(used["charges"][0]["amount"])
    assert ChargeDelivery.objects.count() == 2
    unit_in_store.refresh_from_db()
    assert (unit_in_store.status, unit_in_store.location) == ("IN_STOCK", cath_lab_store)
    assert Movement.objects.filter(kind="UNCONSUME", reason_code="WRONG_SIZE").count() == 1

    twice = nurse_api.post(url, {"reason_code": "WRONG_SIZE", "idempotency_key": "r2"}, format="json")
    assert (twice.status_code, twice.data["code"]) == (409, "ALREADY_REFUNDED")
    reused = consume(nurse_api, department, key="use-again", unit=unit_in_store.pk, encounter="ZY3")
    assert reused.status_code == 201


def test_refund_into_quarantine(nurse_api, department, unit_in_store, hospital):
    quarantine = factories.LocationFactory(hospital=hospital, kind="QUARANTINE", code="QT")
    used = consume(nurse_api, department, unit=unit_in_store.pk).data
    nurse_api.post(f"/api/v1/consumptions/{used['id']}/refund/",
                   {"reason_code": "PACKAGE_OPENED", "to": "quarantine", "idempotency_key": "r"}, format="json")
    unit_in_store.refresh_from_db()
    assert unit_in_store.location == quarantine


def test_lot_tracked_use_takes_quantity_from_the_departments_store(
    nurse_api, department, keeper_actor, supplier, warehouse, lot_product, cath_lab_store
):
    from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
    from inventory.services.stock import LotQuantity

    note = receive_delivery_note(
        actor=keeper_actor, hospital=warehouse.hospital, supplier=supplier, number="L", receiving_location=warehouse,
        lines=[LineInput(Decimal("3.50"), product=lot_product, lot="L9", expiry=TODAY + datetime.timedelta(days=900),
                         quantity=100)], idempotency_key="l",
    )
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="la")
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store,
                   lots=[LotQuantity(lot_product, "L9", 10, warehouse)], idempotency_key="lt")

    used = consume(nurse_api, department, product=lot_product.pk, lot="L9", quantity=4)
    assert used.status_code == 201, used.data
    assert Decimal(used.data["charges"][0]["amount"]) == Decimal("14.00")
    assert LotBalance.objects.get(location=cath_lab_store).quantity == 6
    too_many = consume(nurse_api, department, key="use-2", product=lot_product.pk, lot="L9", quantity=7)
    assert (too_many.status_code, too_many.data["code"]) == (409, "INSUFFICIENT_STOCK")
    refund = nurse_api.post(f"/api/v1/consumptions/{used.data['id']}/refund/",
                            {"reason_code": "UNUSED", "idempotency_key": "lr"}, format="json")
    assert refund.status_code == 200, refund.data
    assert LotBalance.objects.get(location=cath_lab_store).quantity == 10


def test_name_exactly_one_item(nurse_api, department, unit_in_store, lot_product):
    both = consume(nurse_api, department, unit=unit_in_store.pk, product=lot_product.pk, lot="L")
    assert both.status_code == 400
    assert consume(nurse_api, department).status_code == 400


def test_taken_unit_from_a_cabinet_can_be_used(nurse_api, department, unit_in_store, keeper_actor, hospital):
    from inventory.services.cabinets import take_by_scan

    take_by_scan(actor=Actor(user=keeper_actor.user), hospital=hospital, units=[unit_in_store], idempotency_key="t")
    assert consume(nurse_api, department, unit=unit_in_store.pk).status_code == 201


@pytest.mark.parametrize("status", ["CONSUMED", "TAKEN"])
def test_a_used_or_taken_unit_cannot_be_transferred_back_into_stock(api, unit_in_store, warehouse, status):
    Unit.objects.filter(pk=unit_in_store.pk).update(status=status)
    response = api.post("/api/v1/transfers/", {"units": [unit_in_store.pk], "to_location": warehouse.pk,
                                               "idempotency_key": "sneak"}, format="json")
    assert (response.status_code, response.data["code"]) == (409, "ILLEGAL_TRANSITION")
    assert Unit.objects.get(pk=unit_in_store.pk).status == status


# The query budget of POST /consumptions/ for one unit named by its id, with a real token — every
# statement but transaction control (BEGIN/SAVEPOINT/COMMIT): the token with its user, hospital,
# roles and departments; the department; the unit locked with its product, location, billing unit,
# the end of the closed months and the doctor's team; then one statement that writes the use when
# nothing could refuse its movement — the consumption, the movement, the unit, the charge, its outbox
# row and the idempotency record with its outcome, under one read of the closed period, count
# freeze, alliance holds and open recalls. The answer is written from what was written, not read back.
CONSUMPTION_QUERY_BUDGET = 4


def _statements(captured) -> list[str]:
    return [query["sql"] for query in captured if not any(
        word in query["sql"] for word in ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))]


@pytest.mark.postgres
def test_a_use_by_unit_id_costs_at_most_four_queries_with_every_check(nurse, department, unit_in_store):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=nurse).key}")
    with CaptureQueriesContext(connection) as captured:
        response = consume(client, department, unit=unit_in_store.pk)
    assert response.status_code == 201, response.data
    statements = _statements(captured.captured_queries)
    assert len(statements) <= CONSUMPTION_QUERY_BUDGET, "\n".join(statements)
    # Every check still runs: the lock, the closed period, the count freeze and the open recalls.
    assert any("FOR UPDATE OF" in sql and "inventory_unit" in sql for sql in statements)
    checks = next(sql for sql in statements if "inventory_stocktakesession" in sql)
    assert "inventory_closedperiod" in checks and "inventory_recall" in checks
    assert "inventory_stockreservation" in checks and "inventory_location" in checks  # the alliance holds
    for table in ("inventory_consumption", "inventory_movement", "inventory_unit", "inventory_charge",
                  "inventory_chargedelivery", "inventory_idempotencyrecord"):
        assert f'INTO "{table}"' in checks or f'UPDATE "{table}"' in checks, table
    charge = response.data["charges"][0]
    assert (charge["delivery_status"], response.data["other_parts"]) == ("PENDING", [])
    assert response.data == consume(client, department, unit=unit_in_store.pk).data  # the replay reads it back


def test_a_unit_id_not_of_the_callers_hospital_is_a_400_naming_the_field_and_nothing_is_written(nurse_api, department, unit_in_store):
    response = consume(nurse_api, department, unit=unit_in_store.pk + 1000)
    assert response.status_code == 400 and "unit" in str(response.data), response.data
    assert not Consumption.objects.exists()
    assert Unit.objects.get(pk=unit_in_store.pk).status == "IN_STOCK"


def _use_rows(consumption_pk: int) -> dict:
    """What a unit's use wrote, ids and moments relative to the use (so two uses compare equal)."""
    from django.forms.models import model_to_dict

    from inventory.models import IdempotencyRecord

    consumption = Consumption.objects.get(pk=consumption_pk)
    used_at, unit = consumption.occurred_at, consumption.unit
    movements = [model_to_dict(movement, exclude=["id", "recorded_at"])
                 for movement in Movement.objects.filter(document_type="CONSUMPTION", document_id=consumption_pk).order_by("pk")]
    for movement in movements:
        assert movement.pop("occurred_at") == used_at and movement.pop("unit") == unit.pk
        assert movement.pop("document_id") == consumption_pk
        movement["idempotency_key"] = movement["idempotency_key"].replace(f":consume:{consumption_pk}", ":consume:<use>")
    charge = consumption.charges.get()
    record = IdempotencyRecord.objects.get(operation="consume_unit", result_id=consumption_pk)
    assert (record.result_model, record.key) == ("inventory.Consumption", consumption.encounter)
    assert unit.status_since == used_at
    return {
        "consumption": model_to_dict(consumption, exclude=["id", "unit", "encounter", "occurred_at", "recorded_at"]),
        "movements": movements,
        "unit": (unit.status, unit.location_id, unit.owner),
        "charge": model_to_dict(charge, exclude=["id", "consumption", "encounter", "created_at"]),
        "delivery": model_to_dict(charge.delivery, exclude=["id", "charge", "next_attempt_at"]),
    }


@pytest.mark.postgres
@pytest.mark.parametrize("consignment", [False, True])
def test_a_use_written_in_one_statement_writes_what_the_ledger_functions_write(
    monkeypatch, nurse, keeper_actor, supplier, warehouse, product, cath_lab_store, department, consignment
):
    from inventory.actors import Actor
    from inventory.services import consumption as service

    units = stock_units(keeper_actor, supplier, warehouse, product, ["S1", "S2"])
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store, units=units,
                   idempotency_key="to-store")
    if consignment:
        Unit.objects.filter(pk__in=[unit.pk for unit in units]).update(owner="SUPPLIER")

    def use(unit, encounter):
        context = service.ClinicalContext(encounter=encounter, department=department, surgery_id="OP-1", doctor="D1")
        return service.consume_unit(actor=Actor(user=nurse), hospital=warehouse.hospital,
                                    unit=Unit.objects.get(pk=unit.pk), context=context, idempotency_key=encounter)

    at_once = use(units[0], "ZY1")
    monkeypatch.setattr(service, "_write_use_at_once", lambda *args, **kwargs: None)
    one_by_one = use(units[1], "ZY2")
    assert _use_rows(at_once.pk) == _use_rows(one_by_one.pk)
    assert len(_use_rows(at_once.pk)["movements"]) == (2 if consignment else 1)
    assert [charge.pk for charge in at_once.charges.all()] == [at_once.charges.get().pk]
