"""Par levels and replenishment (主动配送): the suggestion formula, proposed par levels, who/when."""
import datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory.errors import Refused
from inventory.jobs import run_job
from inventory.models import (
    LotBalance,
    Movement,
    PackagingUnit,
    ParLevel,
    ParLevelChange,
    ParLevelProposal,
    ReplenishmentSuggestion,
    Requisition,
)
from inventory.services import alerts, replenishment
from inventory.services import requisitions as req
from inventory.services.units_of_measure import round_up_to_unit
from tests import factories


@pytest.fixture
def nurse(hospital, cath_lab_store):
    user = factories.UserFactory(username="nurse1", hospital=hospital, roles=["nurse"])
    user.departments.add(cath_lab_store.department)
    return user


def hold(location, product, quantity, *, lot="L1", expiry=None):
    """Stock on hand for a read test (the ledger paths are tested where they are written)."""
    return LotBalance.objects.create(
        hospital=location.hospital, product=product, location=location, lot=lot, quantity=quantity,
        expiry=expiry or timezone.localdate() + datetime.timedelta(days=365), unit_cost=Decimal("3.50"),
    )


def suggestion(location, product):
    return ReplenishmentSuggestion.objects.get(location=location, product=product, status="OPEN")


def test_suggestion_is_target_less_on_hand_in_transit_and_open_requisitions(
    hospital, cath_lab_store, lot_product, keeper, nurse
):
    level = replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=20,
                                         target=50)
    hold(cath_lab_store, lot_product, 10)
    hold(cath_lab_store, lot_product, 5, lot="OLD", expiry=timezone.localdate() - datetime.timedelta(days=1))
    on_the_way = req.create_requisition(
        user=nurse, department=cath_lab_store.department, lines=[req.RequestedLine(lot_product, 8)], submit=True,
    )
    req.record_fulfilment(line=on_the_way.lines.get(), picked=8, dispatched=8)
    req.create_requisition(
        user=nurse, department=cath_lab_store.department, lines=[req.RequestedLine(lot_product, 12)], submit=True,
    )
    req.create_requisition(  # a draft is not an open requisition
        user=nurse, department=cath_lab_store.department, lines=[req.RequestedLine(lot_product, 99)],
    )
    assert replenishment.compute_suggestions(hospital=hospital) == 1
    found = suggestion(cath_lab_store, lot_product)
    assert (found.on_hand, found.in_transit, found.on_order, found.target, found.quantity) == (10, 8, 12, 50, 20)
    assert found.par_level == level


def test_stock_elsewhere_in_the_hospital_does_not_count_as_on_hand(hospital, warehouse, cath_lab_store, cabinet,
                                                                  lot_product, keeper):
    replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=20, target=50)
    replenishment.save_par_level(user=keeper, location=cabinet, product=lot_product, minimum=5, target=30)
    hold(cath_lab_store, lot_product, 10)
    hold(cabinet, lot_product, 4)
    hold(warehouse, lot_product, 100)  # the central warehouse's: not at either location
    assert replenishment.compute_suggestions(hospital=hospital) == 2
    assert (suggestion(cath_lab_store, lot_product).on_hand, suggestion(cabinet, lot_product).on_hand) == (10, 4)


def test_nothing_is_suggested_when_stock_and_flows_reach_the_target(hospital, cath_lab_store, lot_product, keeper):
    replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=5, target=10)
    hold(cath_lab_store, lot_product, 10)
    assert replenishment.compute_suggestions(hospital=hospital) == 0


def test_recompute_replaces_open_suggestions_and_keeps_decided_ones(hospital, cath_lab_store, cabinet, lot_product, keeper):
    replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=5)
    replenishment.save_par_level(user=keeper, location=cabinet, product=lot_product, minimum=3, target=4)
    replenishment.compute_suggestions(hospital=hospital)
    replenishment.dismiss_suggestion(suggestion=suggestion(cabinet, lot_product), user=keeper)
    assert replenishment.compute_suggestions(hospital=hospital) == 2
    assert ReplenishmentSuggestion.objects.filter(status="DISMISSED").count() == 1
    assert ReplenishmentSuggestion.objects.filter(status="OPEN").count() == 2
    assert suggestion(cath_lab_store, lot_product).quantity == 5  # no target: up to the minimum


@pytest.mark.postgres
def test_the_computation_is_a_fixed_number_of_queries(hospital, cath_lab_store, cabinet, keeper):
    for n in range(30):
        product = factories.ProductFactory(hospital=hospital, tracking="LOT", is_high_value=False)
        replenishment.save_par_level(user=keeper, location=cath_lab_store, product=product, minimum=n + 1)
        replenishment.save_par_level(user=keeper, location=cabinet, product=product, minimum=2)
    with CaptureQueriesContext(connection) as queries:
        assert replenishment.compute_suggestions(hospital=hospital) == 60
    assert len(queries) <= 5


def test_requisitioned_suggestions_become_an_approved_replenishment_requisition_and_count_as_on_order(
    hospital, cath_lab_store, lot_product, keeper
):
    replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=6)
    replenishment.compute_suggestions(hospital=hospital)
    [requisition] = replenishment.requisition_suggestions(
        suggestions=[suggestion(cath_lab_store, lot_product)], user=keeper
    )
    assert (requisition.status, requisition.source) == (Requisition.Status.APPROVED, Requisition.Source.REPLENISHMENT)
    assert requisition.lines.get().approved_quantity == 6
    assert replenishment.compute_suggestions(hospital=hospital) == 0
    with pytest.raises(Refused) as refused:
        replenishment.requisition_suggestions(
            suggestions=ReplenishmentSuggestion.objects.filter(status="REQUISITIONED"), user=keeper
        )
    assert refused.value.status == 409


@pytest.mark.parametrize(
    ("levels", "field"),
    [((5, 4, None), "target"), ((5, 8, 6), "maximum"), ((5, None, 4), "maximum"), ((-1, None, None), "minimum"),
     ((1.5, None, None), "minimum"), (("x", None, None), "minimum")],
)
def test_par_levels_need_minimum_within_target_within_maximum(cath_lab_store, lot_product, keeper, levels, field):
    minimum, target, maximum = levels
    with pytest.raises(Refused) as refused:
        replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=minimum,
                                     target=target, maximum=maximum)
    assert refused.value.status == 400
    assert refused.value.problems[0].params["field"] == field
    assert not ParLevel.objects.exists()


@pytest.mark.postgres
def test_par_level_changes_record_who_and_when_and_keep_the_history(cath_lab_store, lot_product, keeper, operator):
    level = replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=2)
    level = replenishment.save_par_level(user=operator, location=cath_lab_store, product=lot_product, minimum=4,
                                         target=8, maximum=10, par_level=level)
    level.refresh_from_db()
    assert (level.minimum, level.target, level.maximum, level.updated_by) == (4, 8, 10, operator)
    assert list(ParLevelChange.objects.filter(pgh_obj=level).order_by("pgh_id").values_list("minimum", flat=True)) == [2, 4]


def test_the_below_par_alert_still_reads_the_extended_par_level(hospital, cath_lab_store, lot_product, keeper):
    replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=5, target=9,
                                 maximum=12)
    hold(cath_lab_store, lot_product, 2)
    assert alerts.scan_par_levels(hospital=hospital).raised == 1


def plant_use(location, product, user, per_day: list[int]):
    """CONSUME movements out of `location`, one day each, most recent day last (ending yesterday)."""
    today = timezone.localtime().replace(hour=10, minute=0, second=0, microsecond=0)
    for back, quantity in enumerate(reversed(per_day), start=1):
        if quantity:
            Movement.objects.create(
                hospital=location.hospital, kind=Movement.Kind.CONSUME, product=product, lot="L1", quantity=quantity,
                from_location=location, actor_user=user, occurred_at=today - datetime.timedelta(days=back),
                document_type=Movement.DocumentType.CONSUMPTION, document_id=back,
                idempotency_key=f"use-{location.pk}-{product.pk}-{back}",
            )


def test_p95_is_the_nearest_rank_over_every_day_including_days_without_use():
    assert replenishment.p95([], 28) == 0
    assert replenishment.p95([10] * 20, 20) == 10
    assert replenishment.p95(list(range(1, 21)), 20) == 19


def test_a_par_level_is_proposed_from_planted_use_and_applied_only_when_accepted(
    hospital, cath_lab_store, lot_product, keeper
):
    level = replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=1, target=2)
    # 4 weeks: 26 days of 3, two busy days of 10 → p95 of 28 days is 10 (rank 27).
    plant_use(cath_lab_store, lot_product, keeper, [3] * 13 + [10] + [3] * 13 + [10])
    assert replenishment.propose_par_levels(hospital=hospital, weeks=4, lead=2, cover=5) == 1
    proposal = ParLevelProposal.objects.get()
    assert (proposal.p95_daily_use, proposal.proposed_minimum, proposal.proposed_target) == (10, 20, 50)
    level.refresh_from_db()
    assert (level.minimum, level.target) == (1, 2)  # never changed silently
    replenishment.accept_proposal(proposal=proposal, user=keeper)
    level.refresh_from_db()
    assert (level.minimum, level.target, level.updated_by) == (20, 50, keeper)
    with pytest.raises(Refused) as refused:
        replenishment.dismiss_proposal(proposal=proposal, user=keeper)
    assert refused.value.status == 409


def test_no_proposal_where_use_gives_the_level_in_force(hospital, cath_lab_store, lot_product, keeper):
    replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=4, target=10)
    plant_use(cath_lab_store, lot_product, keeper, [2] * 14)
    assert replenishment.propose_par_levels(hospital=hospital, weeks=2, lead=2, cover=5) == 0


def test_the_job_computes_suggestions_for_every_hospital(hospital, cath_lab_store, lot_product, keeper):
    replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=3)
    result = run_job("replenishment_suggestions")
    assert result["suggestions"] == 1
    assert suggestion(cath_lab_store, lot_product).quantity == 3


def test_the_suggestion_is_rounded_up_to_whole_purchase_units_as_round_up_to_unit_does(
    hospital, cath_lab_store, cabinet, lot_product, keeper
):
    PackagingUnit.objects.create(product=lot_product, name="盒", factor=10, is_purchase_unit=True)
    PackagingUnit.objects.create(product=lot_product, name="箱", factor=100)
    replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=20, target=43)
    replenishment.save_par_level(user=keeper, location=cabinet, product=lot_product, minimum=5, target=40)
    hold(cath_lab_store, lot_product, 20)
    hold(cabinet, lot_product, 30)
    replenishment.compute_suggestions(hospital=hospital)
    assert suggestion(cath_lab_store, lot_product).quantity == 30 == round_up_to_unit(product=lot_product, base_quantity=23)
    assert suggestion(cabinet, lot_product).quantity == 10 == round_up_to_unit(product=lot_product, base_quantity=10)


# --- the database's rule: a suggestion is its par level's -----------------------------------------


@pytest.fixture
def checked_at_once(db):
    """Deferred foreign keys are checked at commit, which a test never reaches: check them at once."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def open_suggestion_of(level, **changes):
    fields = {"hospital": level.location.hospital, "location": level.location, "product": level.product,
              "par_level_id": level.pk, "minimum": 1, "target": 2, "on_hand": 0, "in_transit": 0, "on_order": 0,
              "quantity": 2, **changes}
    return ReplenishmentSuggestion.objects.create(**fields)


@pytest.mark.postgres
@pytest.mark.parametrize("wrong", ["location", "product"])
def test_the_database_refuses_a_suggestion_whose_location_or_product_is_not_its_par_levels(
    hospital, cath_lab_store, cabinet, lot_product, product, keeper, checked_at_once, wrong
):
    level = replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=2)
    replenishment.save_par_level(user=keeper, location=cabinet, product=product, minimum=2)  # both pairs have a level
    other = {"location": cabinet, "product": product}[wrong]
    with pytest.raises(IntegrityError, match="suggestion_of_its_par_level"), transaction.atomic():
        open_suggestion_of(level, **{wrong: other})


@pytest.mark.postgres
def test_the_database_refuses_a_suggestion_whose_par_level_does_not_exist(
    hospital, cath_lab_store, lot_product, keeper, checked_at_once
):
    level = replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=2)
    with pytest.raises(IntegrityError, match="suggestion_of_its_par_level"), transaction.atomic():
        open_suggestion_of(level, par_level_id=level.pk + 1000)


@pytest.mark.postgres
def test_deleting_a_par_level_deletes_its_suggestions_open_and_decided(
    hospital, cath_lab_store, cabinet, lot_product, keeper, checked_at_once
):
    level = replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=5)
    replenishment.save_par_level(user=keeper, location=cabinet, product=lot_product, minimum=3)
    replenishment.compute_suggestions(hospital=hospital)
    replenishment.dismiss_suggestion(suggestion=suggestion(cath_lab_store, lot_product), user=keeper)
    replenishment.compute_suggestions(hospital=hospital)
    replenishment.delete_par_level(par_level=level, user=keeper)
    assert list(ReplenishmentSuggestion.objects.values_list("location", "status")) == [(cabinet.pk, "OPEN")]


@pytest.mark.postgres
def test_a_par_level_moved_to_another_location_drops_its_open_suggestions_and_takes_its_decided_ones(
    hospital, cath_lab_store, cabinet, lot_product, keeper, checked_at_once
):
    level = replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=5)
    replenishment.compute_suggestions(hospital=hospital)
    replenishment.dismiss_suggestion(suggestion=suggestion(cath_lab_store, lot_product), user=keeper)
    replenishment.compute_suggestions(hospital=hospital)
    replenishment.save_par_level(user=keeper, location=cabinet, product=lot_product, minimum=5, par_level=level)
    assert list(ReplenishmentSuggestion.objects.values_list("location", "status")) == [(cabinet.pk, "DISMISSED")]
    assert replenishment.compute_suggestions(hospital=hospital) == 1


# --- the Django admin goes through the service ----------------------------------------------------


@pytest.fixture
def admin_client(client, hospital):
    client.force_login(factories.UserFactory(username="root", hospital=hospital, is_superuser=True, is_staff=True,
                                             roles=[]))
    return client


def test_a_par_level_added_in_the_admin_is_checked_and_saved_by_the_service(admin_client, cath_lab_store, lot_product):
    refused = admin_client.post("/admin/inventory/parlevel/add/", {
        "location": cath_lab_store.pk, "product": lot_product.pk, "minimum": 10, "target": 5})
    assert refused.status_code == 200
    assert "10 / 5 / —" in refused.content.decode() and not ParLevel.objects.exists()

    added = admin_client.post("/admin/inventory/parlevel/add/", {
        "location": cath_lab_store.pk, "product": lot_product.pk, "minimum": 5, "target": 10})
    assert added.status_code == 302
    level = ParLevel.objects.get()
    assert (level.minimum, level.target, level.updated_by.username) == (5, 10, "root")


def test_a_par_level_in_the_admin_keeps_its_place_and_product(
    admin_client, hospital, cath_lab_store, cabinet, lot_product, keeper
):
    level = replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=5)
    replenishment.compute_suggestions(hospital=hospital)

    response = admin_client.post(f"/admin/inventory/parlevel/{level.pk}/change/", {
        "location": cabinet.pk, "product": lot_product.pk, "minimum": 7})

    assert response.status_code == 302
    level.refresh_from_db()
    assert (level.location_id, level.minimum, level.updated_by.username) == (cath_lab_store.pk, 7, "root")
    assert list(ReplenishmentSuggestion.objects.values_list("location", "status")) == [(cath_lab_store.pk, "OPEN")]


def test_a_par_level_changed_in_the_admin_against_the_rules_is_refused_and_unchanged(
    admin_client, cath_lab_store, lot_product, keeper
):
    level = replenishment.save_par_level(user=keeper, location=cath_lab_store, product=lot_product, minimum=5,
                                         target=10)

    response = admin_client.post(f"/admin/inventory/parlevel/{level.pk}/change/", {
        "minimum": 5, "target": 10, "maximum": 8})

    assert response.status_code == 200
    assert "5 / 10 / 8" in response.content.decode()
    level.refresh_from_db()
    assert (level.maximum, level.updated_by) == (None, keeper)
