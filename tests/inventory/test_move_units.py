"""`move_units` writes its movements in one INSERT … SELECT FROM unnest(…) on PostgreSQL: the rows
are those `move_unit` writes one by one, and the ledger's triggers run on each of them."""
import datetime

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.models import ClosedPeriod, Movement, Unit, UnitStatus
from inventory.services.ledger import _insert_unit_movements, move_unit, move_units
from tests.conftest import stock_units

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

COLUMNS = ("hospital_id", "kind", "product_id", "lot", "quantity", "from_location_id", "to_location_id",
           "from_status", "to_status", "from_owner", "to_owner", "actor_user_id", "actor_device_id", "occurred_at",
           "reason_code", "note", "document_type", "document_id")


@pytest.fixture
def units(keeper_actor, supplier, warehouse, product):
    return stock_units(keeper_actor, supplier, warehouse, product, ["MU1", "MU2", "MU3"], lot="L7")


@pytest.fixture
def closed_through(units, operator):
    """The hospital's books closed through yesterday (a ClosedPeriod ending then)."""
    end = timezone.now() - datetime.timedelta(days=1)
    ClosedPeriod.objects.create(hospital=units[0].hospital, month=end.date().replace(day=1),
                                starts_at=end - datetime.timedelta(days=30), ends_at=end, closed_by=operator)
    return end


def test_many_units_moved_at_once_get_the_rows_one_unit_moved_alone_gets(units, keeper, cath_lab_store):
    actor, moment = Actor(user=keeper), timezone.now() - datetime.timedelta(minutes=5)
    locked = list(Unit.objects.select_for_update().filter(pk__in=[u.pk for u in units]).order_by("pk"))
    with transaction.atomic():
        alone = move_unit(unit=locked[0], kind=Movement.Kind.TRANSFER, to_status=UnitStatus.IN_STOCK,
                          to_location=cath_lab_store, actor=actor, idempotency_key="alone", document=("STOCK_ORDER", 7),
                          occurred_at=moment, note="to the cath lab")
        ids = move_units(units=locked[1:], kind=Movement.Kind.TRANSFER, to_status=UnitStatus.IN_STOCK,
                         to_location=cath_lab_store, actor=actor, idempotency_keys=["many-1", "many-2"],
                         document=("STOCK_ORDER", 7), occurred_at=moment, note="to the cath lab")

    written = list(Movement.objects.filter(pk__in=ids).order_by("pk"))
    assert [m.idempotency_key for m in written] == ["many-1", "many-2"]
    assert [m.unit_id for m in written] == [u.pk for u in locked[1:]]
    expected = {column: getattr(Movement.objects.get(pk=alone.pk), column) for column in COLUMNS}
    assert expected["from_status"] == UnitStatus.IN_STOCK and expected["from_location_id"] != cath_lab_store.pk
    for movement in written:
        assert {column: getattr(movement, column) for column in COLUMNS} == expected
        assert abs(movement.recorded_at - timezone.now()) < datetime.timedelta(minutes=1)
    for unit in Unit.objects.filter(pk__in=[u.pk for u in units]):
        assert (unit.location_id, unit.status) == (cath_lab_store.pk, UnitStatus.IN_STOCK)


def test_the_closed_month_trigger_runs_on_every_row_of_the_one_insert(units, keeper, closed_through, cath_lab_store):
    count = Movement.objects.count()
    # Past the service's own check (refuse_closed_period): the database refuses the rows itself.
    with pytest.raises((IntegrityError, InternalError)) as error, transaction.atomic():
        _insert_unit_movements(
            units, ["t-1", "t-2", "t-3"], kind=Movement.Kind.TRANSFER, to_location_id=cath_lab_store.pk,
            to_status=UnitStatus.IN_STOCK, occurred_at=closed_through - datetime.timedelta(hours=1), reason_code="",
            note="", document=("STOCK_ORDER", 1), actor_user_id=keeper.pk, actor_device_id=None,
        )
    assert "PERIOD_CLOSED" in str(error.value)
    assert Movement.objects.count() == count


def _statements(queries) -> list[str]:
    return [query["sql"] for query in queries if not query["sql"].upper().startswith(("SAVEPOINT", "RELEASE"))]


def test_the_checks_are_asked_by_the_insert_itself(units, keeper, cath_lab_store):
    locked = list(Unit.objects.select_for_update().filter(pk__in=[u.pk for u in units]).order_by("pk"))
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        move_units(units=locked, kind=Movement.Kind.TRANSFER, to_status=UnitStatus.IN_STOCK, to_location=cath_lab_store,
                   actor=Actor(user=keeper), idempotency_keys=["c-1", "c-2", "c-3"], document=("STOCK_ORDER", 3),
                   occurred_at=timezone.now())
    written = _statements(queries.captured_queries)
    assert len(written) == 2, written  # the movements (with the checks) and the units
    assert "NOT EXISTS" in written[0] and "inventory_closedperiod" in written[0]


def test_a_batch_a_check_refuses_is_refused_in_its_words_and_writes_nothing(
    units, keeper, closed_through, cath_lab_store
):
    count = Movement.objects.count()
    locked = list(Unit.objects.select_for_update().filter(pk__in=[u.pk for u in units]).order_by("pk"))
    with pytest.raises(Refused) as refused, transaction.atomic():
        move_units(units=locked, kind=Movement.Kind.TRANSFER, to_status=UnitStatus.IN_STOCK, to_location=cath_lab_store,
                   actor=Actor(user=keeper), idempotency_keys=["r-1", "r-2", "r-3"], document=("STOCK_ORDER", 4),
                   occurred_at=closed_through - datetime.timedelta(hours=1))
    assert refused.value.refusal == Refusal.PERIOD_CLOSED
    assert Movement.objects.count() == count
    assert {unit.location_id for unit in Unit.objects.filter(pk__in=[u.pk for u in units])} == {units[0].location_id}
