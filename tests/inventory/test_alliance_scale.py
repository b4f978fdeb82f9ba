"""Catalog scale: a 12,000-entry alliance catalog adopted by members stays type-ahead fast — the
product suggestions (/products/suggest/) are answered from the trigram indexes, never by reading the
whole product table, in a fixed number of queries; adopting the whole catalog is a few statements."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inventory.actors import Actor
from inventory.models import AllianceEntry, Product
from inventory.services.alliance_catalog import adopt_entries
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
ENTRIES = 12_000
KINDS = ["输液器", "留置针", "导尿管", "吸痰管", "缝合线", "冠脉支架", "球囊导管", "骨科螺钉", "人工关节", "止血夹"]


@pytest.fixture
def alliance_catalog(hospital, other_hospital):
    manufacturer = factories.ManufacturerFactory()
    AllianceEntry.objects.bulk_create(
        AllianceEntry(
            alliance=hospital.alliance, keeper=hospital, code=f"AL{n:06d}", name=f"{KINDS[n % 10]}{n}号",
            udi_di=f"0697{n:010d}", manufacturer=manufacturer, tracking="LOT", category=KINDS[n % 10],
        )
        for n in range(ENTRIES)
    )
    entries = list(AllianceEntry.objects.filter(alliance=hospital.alliance).order_by("code"))
    counts = []
    for member in (hospital, other_hospital):
        admin = factories.UserFactory(hospital=member, roles=["admin"])
        with CaptureQueriesContext(connection) as adoption:
            adopt_entries(actor=Actor(user=admin), hospital=member, entries=entries)
        counts.append(len(adoption))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE inventory_product")
    return counts


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def test_adoption_and_product_suggestions_at_alliance_scale(alliance_catalog, hospital, client):
    # Adopting 12,000 entries: products in batches of 1,000, not a statement per entry.
    assert all(count < 40 for count in alliance_catalog), alliance_catalog
    assert Product.objects.filter(alliance_entry__isnull=False).count() == 2 * ENTRIES
    client.force_login(factories.UserFactory(hospital=hospital, roles=["warehouse"]))

    # A name fragment, a code prefix, a UDI-DI prefix: each answered through an index, never a scan.
    for typed, expected in (("输液器1230号", "AL001230"), ("al00123", "AL001230"), ("06970000001230", "AL001230")):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("web:product-suggestions"), {"q": typed})

        assert response.status_code == 200
        assert expected in [row["code"] for row in response.json()["products"]], (typed, response.json())
        [lookup] = [query["sql"] for query in queries if 'FROM "inventory_product"' in query["sql"]]
        plan = _plan(lookup)
        # Index-driven; which index the planner takes (trigram, prefix or the hospital's) follows the
        # statistics of the moment, so the test does not name it.
        assert "Seq Scan on inventory_product" not in plan, plan
        assert "Index Scan" in plan, plan
        assert len(queries) <= 6, [query["sql"] for query in queries]  # not one per product
