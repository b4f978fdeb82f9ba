"""The alliance dashboard: stock, near-expiry and use per member against figures computed by hand,
the transfer suggestions (near-expiry stock in one member that others use), VBP progress per member
and for the alliance — over real receipts and uses in three member hospitals."""
import datetime
import itertools
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory.actors import Actor
from inventory.models import Movement, Product, VbpAllocation, VbpContract
from inventory.selectors.alliance import alliance_dashboard
from inventory.services.alliance_catalog import add_agreement, adopt_entries, create_entry
from inventory.services.consumption import ClinicalContext, consume_lot
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from tests import factories
from tests.conftest import api_client_for, stock_units
from tests.factories import TODAY, gtin

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
_keys = itertools.count()
PRICE = Decimal("3.50")


def receive(actor, supplier, location, product, lot, expiry, quantity):
    number = f"DN-{next(_keys)}"
    note = receive_delivery_note(
        actor=actor, hospital=location.hospital, supplier=supplier, number=number, receiving_location=location,
        lines=[LineInput(PRICE, product=product, lot=lot, expiry=expiry, quantity=quantity)],
        idempotency_key=f"rcv-{number}",
    )
    accept_delivery_note(actor=actor, note=note, idempotency_key=f"acc-{number}")


def used(product, quantity, *, actor, days_ago=5, kind=Movement.Kind.CONSUME):
    """Use recorded in the ledger as the bedside records it (no stock behind it: only use counts here)."""
    Movement.objects.create(
        hospital=product.hospital, kind=kind, product=product, lot="HIST", quantity=quantity, actor_user=actor,
        occurred_at=timezone.now() - datetime.timedelta(days=days_ago), document_type=Movement.DocumentType.CONSUMPTION,
        reason_code="REFUND" if kind == Movement.Kind.UNCONSUME else "",
        document_id=1, idempotency_key=f"alliance-use-{next(_keys)}",
    )


@pytest.fixture
def alliance(hospital, other_hospital, supplier, product, warehouse):
    """Three members (A lead, B, C) sharing one lot-tracked entry at 3.50 (A's stent is its own)."""
    third = factories.HospitalFactory(code="H003", name="县妇保院")
    lead_operator = factories.UserFactory(hospital=hospital, roles=["spd_operator"])
    manufacturer = factories.ManufacturerFactory()
    entry = create_entry(
        actor=Actor(user=lead_operator), code="AL-SYQ", name="一次性使用输液器", udi_di=gtin(930001),
        manufacturer=manufacturer, tracking="LOT", category="输注类", unit_of_measure="支",
        registration_certificate=factories.CertificateFactory(manufacturer=manufacturer),
    )
    add_agreement(actor=Actor(user=lead_operator), entry=entry, supplier=supplier, unit_price=PRICE,
                  valid_from=TODAY - datetime.timedelta(days=30), valid_to=TODAY + datetime.timedelta(days=365))
    admins, products = {}, {}
    for member in (hospital, other_hospital, third):
        admins[member.code] = factories.UserFactory(hospital=member, roles=["admin", "warehouse"])
        adopt_entries(actor=Actor(user=admins[member.code]), hospital=member, entries=[entry],
                      codes={entry.pk: {"internal_code": f"{member.code}-SYQ", "his_charge_code": "310100001"}})
        products[member.code] = Product.objects.get(hospital=member, alliance_entry=entry)
    Product.objects.filter(alliance_entry=entry).update(min_shelf_life_days=10)  # a short-dated lot is accepted
    return entry, third, admins, products


@pytest.fixture
def figures(alliance, hospital, other_hospital, supplier, product, warehouse, keeper):
    """A: two stents (1200.00 each, a year and more to go), lot N (30, expires in 20 days) and lot F (10,
    in 400 days). B: 7 received into a ward store, 2 used on a patient; 88 more used earlier.
    C: nothing held; 45 used, 5 of them refunded, plus 40 more (net 80)."""
    entry, third, admins, products = alliance
    stock_units(Actor(user=keeper), supplier, warehouse, product, ["S1", "S2"])
    a_actor = Actor(user=admins["H001"])
    receive(a_actor, supplier, warehouse, products["H001"], "N", TODAY + datetime.timedelta(days=20), 30)
    receive(a_actor, supplier, warehouse, products["H001"], "F", TODAY + datetime.timedelta(days=400), 10)
    ward = factories.DepartmentFactory(hospital=other_hospital, code="NK", name="内科")
    store = factories.LocationFactory(hospital=other_hospital, department=ward, code="NK-STORE", name="内科二级库",
                                      kind="DEPARTMENT_STORE")
    b_actor = Actor(user=admins["H002"])
    receive(b_actor, supplier, store, products["H002"], "B1", TODAY + datetime.timedelta(days=200), 7)
    consume_lot(actor=b_actor, hospital=other_hospital, product=products["H002"], lot="B1", quantity=2,
                location=store, idempotency_key="b-use",
                context=ClinicalContext(encounter="ZY20250001", department=ward))
    used(products["H002"], 88, actor=admins["H002"])
    used(products["H003"], 45, actor=admins["H003"])
    used(products["H003"], 5, actor=admins["H003"], kind=Movement.Kind.UNCONSUME)
    used(products["H003"], 40, actor=admins["H003"], days_ago=30)
    used(products["H003"], 500, actor=admins["H003"], days_ago=200)  # outside the use window
    return alliance


@pytest.fixture
def alliance_auditor(hospital):
    return factories.UserFactory(username="alliance-auditor", hospital=hospital, roles=["alliance_auditor"])


def test_stock_near_expiry_and_use_per_member_are_the_hand_computed_figures(figures, alliance_auditor):
    dashboard = alliance_dashboard(alliance_auditor, expiry_days=90, use_days=90)

    rows = {member.hospital.code: member for member in dashboard.members}
    a, b, c = rows["H001"], rows["H002"], rows["H003"]
    assert (a.units, a.lot_quantity, a.value) == (2, 40, Decimal("2540.00"))  # 2 × 1200 + 40 × 3.50
    assert (a.near_expiry_quantity, a.near_expiry_value, a.expired_quantity) == (30, Decimal("105.00"), 0)
    assert (b.units, b.lot_quantity, b.value, b.near_expiry_quantity) == (0, 5, Decimal("17.50"), 0)
    assert (b.used_quantity, b.used_amount) == (90, Decimal("7.00"))  # 2 used on a patient at 3.50, 88 earlier
    assert (c.units, c.lot_quantity, c.value, c.used_quantity, c.used_amount) == (0, 0, Decimal("0.00"), 80,
                                                                                  Decimal("0.00"))
    assert dashboard.totals["value"] == Decimal("2557.50") and dashboard.totals["used_quantity"] == 90 + 80


def test_near_expiry_stock_is_suggested_to_the_members_that_use_it(figures, alliance_auditor):
    dashboard = alliance_dashboard(alliance_auditor, expiry_days=90, use_days=90)

    # Lot N of A (30, 20 days left). B: 90 used in 90 days → 20 before expiry, less the 5 it holds = 15.
    # C: 80 used → 17 before expiry (80 × 20 ÷ 90, rounded down), holds none = 17. Most need first.
    suggested = [(s.from_hospital.code, s.lot, s.to_hospital.code, s.quantity, s.receiver_use, s.receiver_stock)
                 for s in dashboard.suggestions]
    assert suggested == [("H001", "N", "H003", 17, 80, 0), ("H001", "N", "H002", 13, 90, 5)]
    assert sum(s.quantity for s in dashboard.suggestions) == 30  # never more than the lot has


def test_the_windows_decide_what_is_near_expiry_and_whose_use_counts(figures, alliance_auditor):
    assert alliance_dashboard(alliance_auditor, expiry_days=10).suggestions == []  # lot N is 20 days out
    # Over the last 2 days only B's 2 uses on a patient count: 2 × 20 ÷ 2 = 20 before expiry, less 5 held.
    dashboard = alliance_dashboard(alliance_auditor, expiry_days=90, use_days=2)
    assert [(s.to_hospital.code, s.quantity, s.receiver_use) for s in dashboard.suggestions] == [("H002", 15, 2)]


def test_vbp_progress_per_member_and_for_the_alliance(figures, alliance_auditor, hospital, other_hospital):
    entry, third, _, products = figures
    contract = VbpContract.objects.create(
        number="VBP-SYQ", name="输液器集采", owner_hospital=hospital, ratio=Decimal("0.800"),
        start_date=TODAY - datetime.timedelta(days=60), period=VbpContract.Period.ONE_YEAR,
    )
    contract.products.set(products.values())
    VbpAllocation.objects.create(contract=contract, hospital=other_hospital, reported_demand=1000)
    VbpAllocation.objects.create(contract=contract, hospital=third, reported_demand=500)

    (progress,) = alliance_dashboard(alliance_auditor).vbp

    assert [(row.hospital.code if row.hospital else None, row.agreed, row.used) for row in progress] == [
        ("H002", 800, 90), ("H003", 400, 80), (None, 1200, 170)]


def test_the_dashboard_is_for_alliance_staff_and_shows_every_member(figures, alliance_auditor, operator, client):
    response = api_client_for(alliance_auditor).get("/api/v1/alliance/dashboard/", {"expiry_days": "90"})
    assert response.status_code == 200
    body = response.json()
    assert [row["hospital"] for row in body["members"]] == sorted(row["hospital"] for row in body["members"])
    assert len(body["members"]) == 3 and len(body["suggestions"]) == 2
    assert api_client_for(operator).get("/api/v1/alliance/dashboard/").status_code == 403
    bad = api_client_for(alliance_auditor).get("/api/v1/alliance/dashboard/", {"use_days": "0"})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"

    client.force_login(alliance_auditor)
    page = client.get(reverse("web:alliance-dashboard")).content.decode()
    assert 'data-member="H003"' in page and 'data-suggestion="AL-SYQ:H001:H003"' in page
    client.force_login(operator)
    assert client.get(reverse("web:alliance-dashboard")).status_code == 403


def test_the_dashboard_lists_transfers_between_members_with_emergencies_and_what_is_in_transit(
    figures, alliance_auditor, hospital, warehouse, client,
):
    from inventory.services.transfers import TransferLot, create_transfer

    entry, third, admins, products = figures
    destination = factories.LocationFactory(hospital=third, code="CW", name="妇保中心库")
    sender = factories.UserFactory(username="alliance-op", hospital=hospital, roles=["alliance_operator"])
    create_transfer(user=sender, source_location=warehouse, to_hospital=third, destination=destination,
                    kind="EMERGENCY", reason="抢救用", lots=[TransferLot(products["H001"], "N", 5)],
                    idempotency_key="dash-flow")
    client.force_login(alliance_auditor)
    page = client.get(reverse("web:alliance-dashboard")).content.decode()
    assert page.count('data-table="alliance-flows"') == 1 and "<section" not in page.split("</title>", 1)[0]
    row = page.split(f'data-flow="{hospital.pk}:{third.pk}"', 1)[1].split("</tr>", 1)[0]
    cells = [cell.split(">", 1)[1].split("<", 1)[0] for cell in row.split('<td class="num"')[1:]]
    assert cells[:2] == ["1", "1"]  # one transfer, an emergency allocation, created in the window
