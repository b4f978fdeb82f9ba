"""The stocktake pages with Django's test client: list, start, count by scan, lot count, recount,
approval and history; scoping by hospital and role."""
import pytest
from django.urls import reverse

from inventory.models import Movement, PackagingUnit, StocktakeSession
from inventory.services import stocktake
from tests import factories
from tests.factories import gs1_udi

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def signed_in(client, user):
    client.force_login(user)
    return client


def test_a_keeper_starts_a_count_scans_a_unit_and_a_lot_label_in_boxes(client, world):
    PackagingUnit.objects.create(product=world.lot_product, name="盒", factor=5)
    signed_in(client, world.keeper)
    assert client.get("/stocktakes/").status_code == 200
    response = client.post("/stocktakes/start/", {"locations": [world.warehouse.pk], "blind": "on"})
    session = StocktakeSession.objects.get()
    assert response.url == f"/stocktakes/{session.pk}/"
    page = client.get(response.url).content.decode()
    assert 'data-field="expected">—' in page, "blind while counting"
    unit = world.units["SN-A1"]
    answer = client.post(f"/stocktakes/{session.pk}/scan/", {"location": world.warehouse.pk, "code": unit.udi_raw},
                         follow=True)
    assert "SN-A1" in answer.content.decode() and session.lines.get(unit=unit).counted_quantity == 1
    label = gs1_udi(world.lot_product.udi_di, lot="L-2026")
    client.post(f"/stocktakes/{session.pk}/scan/", {"location": world.warehouse.pk, "code": label, "quantity": "4",
                                                  "packaging_unit": "盒"})
    assert session.lines.get(lot="L-2026").counted_quantity == 20
    refused = client.post(f"/stocktakes/{session.pk}/scan/", {"location": world.warehouse.pk, "code": "garbage"},
                          follow=True)
    assert 'data-code="problem UDI_UNPARSEABLE"' in refused.content.decode()
    assert client.get(f"/stocktakes/{session.pk}/sheet/{world.warehouse.pk}.pdf").status_code == 200


def test_an_auditor_reads_but_cannot_count(client, world):
    session = stocktake.start_count(user=world.keeper, hospital=world.warehouse.hospital, locations=[world.warehouse])
    signed_in(client, world.auditor)
    page = client.get(f"/stocktakes/{session.pk}/").content.decode()
    assert 'data-form="scan"' not in page
    assert client.post(f"/stocktakes/{session.pk}/action/", {"action": "submit"}).status_code == 403


def test_another_hospitals_session_does_not_exist_here(client, world, other_hospital):
    session = stocktake.start_count(user=world.keeper, hospital=world.warehouse.hospital, locations=[world.warehouse])
    stranger = factories.UserFactory(hospital=other_hospital, roles=["admin"])
    signed_in(client, stranger)
    assert client.get(f"/stocktakes/{session.pk}/").status_code == 404
    assert client.get(f"/stocktakes/locations/{world.warehouse.pk}/").status_code == 404


def test_the_whole_cycle_through_the_pages_ends_in_the_history_chart(client, world, settings):
    settings.SPD_STOCKTAKE_RECOUNT_QUANTITY = 50
    settings.SPD_STOCKTAKE_RECOUNT_VALUE = "1000000"
    session = stocktake.start_count(user=world.keeper, hospital=world.warehouse.hospital, locations=[world.warehouse])
    signed_in(client, world.keeper)
    client.post(f"/stocktakes/{session.pk}/lot/", {"location": world.warehouse.pk, "product": world.lot_product.pk,
                                                 "lot": "L-2026", "quantity": "18"})
    client.post(f"/stocktakes/{session.pk}/action/", {"action": "submit"})
    signed_in(client, world.operator)
    detail = client.get(f"/stocktakes/{session.pk}/").content.decode()
    key = detail.split('name="idempotency_key" value="')[1].split('"')[0]
    line = session.lines.get(lot="L-2026")
    client.post(f"/stocktakes/{session.pk}/action/", {"action": "approve", "idempotency_key": key,
                                                    f"reason-{line.pk}": "DAMAGED"})
    session.refresh_from_db()
    assert session.status == "APPROVED"
    assert Movement.objects.get(document_type="STOCKTAKE", product=world.lot_product).reason_code == "DAMAGED"
    history = client.get(reverse("web:stocktake-history", args=[world.warehouse.pk])).content.decode()
    assert 'data-chart="accuracy"' in history and f'data-session="{session.pk}"' in history
    report = client.get(f"/stocktakes/{session.pk}/report.csv")
    assert report["X-Content-SHA256"] == session.csv_sha256
