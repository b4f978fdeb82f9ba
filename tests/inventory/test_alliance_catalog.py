"""The county alliance catalog (医共体统一目录): the lead hospital keeps entries and the alliance's
agreements; members adopt entries under their own codes; a change of an entry or of an alliance
price flows to every linked member product, dated and with its history (PostgreSQL triggers)."""
import datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import (
    Alert,
    AllianceEntry,
    AlliancePriceChange,
    PriceChange,
    Product,
    ProductChange,
    SupplyAgreement,
)
from inventory.services.alliance_catalog import (
    add_agreement,
    adopt_entries,
    change_alliance_price,
    create_entry,
    update_entry,
)
from inventory.services.receiving import agreed_price
from tests import factories
from tests.conftest import api_client_for
from tests.factories import TODAY, gtin

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
API = "/api/v1"
TOMORROW = TODAY + datetime.timedelta(days=1)


def codes(refused) -> list[str]:
    return [problem.code for problem in refused.value.problems]


@pytest.fixture
def steward(hospital):
    """An SPD operator of the lead hospital: one of the alliance's stewards."""
    return factories.UserFactory(username="lead-operator", hospital=hospital, roles=["spd_operator"])


@pytest.fixture
def member_admin(other_hospital):
    return factories.UserFactory(username="member-admin", hospital=other_hospital, roles=["admin"])


@pytest.fixture
def third_hospital(db):
    return factories.HospitalFactory(code="H003", name="县妇保院")


@pytest.fixture
def third_admin(third_hospital):
    return factories.UserFactory(username="third-admin", hospital=third_hospital, roles=["admin"])


@pytest.fixture
def entry(steward, supplier):
    made = create_entry(
        actor=Actor(user=steward), code="AL-0001", name="一次性使用输液器", udi_di=gtin(900001),
        manufacturer=factories.ManufacturerFactory(), tracking="LOT", specification="20滴/ml", category="输注类",
        nhsa_code="C1401000000000000001", unit_of_measure="支",
    )
    add_agreement(actor=Actor(user=steward), entry=made, supplier=supplier, unit_price=Decimal("3.50"),
                  valid_from=TODAY - datetime.timedelta(days=10), valid_to=TODAY + datetime.timedelta(days=355),
                  vbp_contract="VBP-ZJ-2025-01")
    return made


def test_a_member_adopts_an_entry_under_its_own_codes_with_the_alliance_price(entry, member_admin, other_hospital,
                                                                              supplier):
    result = adopt_entries(actor=Actor(user=member_admin), hospital=other_hospital, entries=[entry],
                           codes={entry.pk: {"internal_code": "ZY-SYQ-01", "his_charge_code": "310000001"}})

    assert (result.adopted, result.linked, result.already, result.agreements) == (1, 0, 0, 1)
    product = Product.objects.get(hospital=other_hospital, alliance_entry=entry)
    assert (product.internal_code, product.his_charge_code) == ("ZY-SYQ-01", "310000001")
    assert (product.name, product.specification, product.category, product.nhsa_code, product.udi_di) == (
        entry.name, entry.specification, entry.category, entry.nhsa_code, entry.udi_di)
    assert (product.unit_of_measure, product.tracking) == ("支", "LOT")
    # Acceptance in the member checks deliveries against the alliance's price.
    assert agreed_price(hospital=other_hospital, supplier=supplier, product=product) == Decimal("3.50")
    member_agreement = SupplyAgreement.objects.get(product=product)
    assert (member_agreement.vbp_contract, member_agreement.alliance_agreement) == ("VBP-ZJ-2025-01",
                                                                                    entry.agreements.get())

    again = adopt_entries(actor=Actor(user=member_admin), hospital=other_hospital, entries=[entry])
    assert (again.adopted, again.already, again.agreements) == (0, 1, 0)


def test_a_members_existing_product_of_the_same_di_is_linked_keeping_its_codes(entry, member_admin, other_hospital):
    own = factories.ProductFactory(hospital=other_hospital, udi_di=entry.udi_di, internal_code="OLD-7",
                                   his_charge_code="HIS-OLD-7", name="输液器（旧名）", tracking="LOT")

    result = adopt_entries(actor=Actor(user=member_admin), hospital=other_hospital, entries=[entry])

    own.refresh_from_db()
    assert (result.adopted, result.linked) == (0, 1)
    assert (own.alliance_entry, own.internal_code, own.his_charge_code, own.name) == (
        entry, "OLD-7", "HIS-OLD-7", entry.name)


def test_adoption_is_all_or_nothing_and_names_every_problem(entry, steward, member_admin, other_hospital):
    second = create_entry(actor=Actor(user=steward), code="AL-0002", name="留置针", udi_di=gtin(900002),
                          manufacturer=entry.manufacturer, tracking="LOT")
    factories.ProductFactory(hospital=other_hospital, internal_code="AL-0002")  # the alliance code is taken
    foreign = AllianceEntry.objects.create(alliance="别的医共体", keeper=factories.HospitalFactory(alliance="别的医共体"),
                                           code="X-1", name="别处", udi_di=gtin(900003),
                                           manufacturer=entry.manufacturer, tracking="LOT")

    with pytest.raises(Refused) as refused:
        adopt_entries(actor=Actor(user=member_admin), hospital=other_hospital, entries=[entry, second, foreign])

    assert sorted(codes(refused)) == ["ALLIANCE_ADOPTER_NOT_MEMBER", "ALLIANCE_CODE_TAKEN"]
    assert not Product.objects.filter(hospital=other_hospital, alliance_entry__isnull=False).exists()


def test_only_the_hospitals_catalog_editors_adopt_and_only_stewards_keep_entries(entry, other_hospital, hospital):
    member_keeper = factories.UserFactory(hospital=other_hospital, roles=["warehouse"])
    member_operator = factories.UserFactory(hospital=other_hospital, roles=["spd_operator"])
    lead_admin = factories.UserFactory(hospital=hospital, roles=["admin"])

    with pytest.raises(Refused) as refused:
        adopt_entries(actor=Actor(user=member_keeper), hospital=other_hospital, entries=[entry])
    assert codes(refused) == ["NOT_ALLOWED"]
    with pytest.raises(Refused) as refused:  # not for another hospital
        adopt_entries(actor=Actor(user=lead_admin), hospital=other_hospital, entries=[entry])
    assert codes(refused) == ["NOT_ALLOWED"]
    with pytest.raises(Refused) as refused:
        update_entry(actor=Actor(user=member_operator), entry=entry, changes={"name": "改名"})
    assert codes(refused) == ["ALLIANCE_CATALOG_KEEPERS_ONLY"]
    alliance_operator = factories.UserFactory(hospital=hospital, roles=["alliance_operator"])
    assert update_entry(actor=Actor(user=alliance_operator), entry=entry, changes={"specification": "新规格"}) == 0


def test_a_change_of_the_entry_flows_to_every_member_with_history(entry, steward, member_admin, other_hospital,
                                                                  third_admin, third_hospital):
    adopt_entries(actor=Actor(user=member_admin), hospital=other_hospital, entries=[entry],
                  codes={entry.pk: {"internal_code": "B-1"}})
    adopt_entries(actor=Actor(user=third_admin), hospital=third_hospital, entries=[entry],
                  codes={entry.pk: {"internal_code": "C-1", "his_charge_code": "C-HIS"}})

    changed = update_entry(actor=Actor(user=steward), entry=entry,
                           changes={"name": "一次性使用精密输液器", "specification": "60滴/ml"})

    assert changed == 2
    linked = Product.objects.filter(alliance_entry=entry).order_by("internal_code")
    assert [(p.internal_code, p.his_charge_code, p.name, p.specification) for p in linked] == [
        ("B-1", "", "一次性使用精密输液器", "60滴/ml"), ("C-1", "C-HIS", "一次性使用精密输液器", "60滴/ml")]
    for product in linked:  # the before and after of each member product are in its history
        names = list(ProductChange.objects.filter(pgh_obj=product).order_by("pgh_id").values_list("name", flat=True))
        assert names == ["一次性使用输液器", "一次性使用精密输液器"]
    entry_names = list(entry.history.order_by("pgh_id").values_list("name", flat=True))
    assert entry_names == ["一次性使用输液器", "一次性使用精密输液器"]


def test_the_udi_di_of_an_adopted_entry_is_fixed(entry, steward, member_admin, other_hospital):
    adopt_entries(actor=Actor(user=member_admin), hospital=other_hospital, entries=[entry])
    with pytest.raises(Refused) as refused:
        update_entry(actor=Actor(user=steward), entry=entry, changes={"udi_di": gtin(900099)})
    assert codes(refused) == ["ALLIANCE_DI_FIXED"]


def test_a_member_cannot_rename_an_adopted_product_but_keeps_its_own_codes(entry, member_admin, other_hospital):
    adopt_entries(actor=Actor(user=member_admin), hospital=other_hospital, entries=[entry])
    product = Product.objects.get(hospital=other_hospital, alliance_entry=entry)
    client = api_client_for(member_admin)

    renamed = client.patch(f"{API}/products/{product.pk}/", {"name": "自己起的名字"}, format="json")
    recoded = client.patch(f"{API}/products/{product.pk}/", {"his_charge_code": "NEW-HIS"}, format="json")

    assert renamed.status_code == 409 and renamed.json()["code"] == "ALLIANCE_FIELD_KEPT_BY_ALLIANCE"
    assert recoded.status_code == 200 and recoded.json()["alliance_entry"] == entry.pk
    product.refresh_from_db()
    assert (product.name, product.his_charge_code) == (entry.name, "NEW-HIS")


def test_an_alliance_price_change_is_a_dated_change_in_every_member(entry, steward, member_admin, other_hospital,
                                                                    third_admin, third_hospital, supplier):
    adopt_entries(actor=Actor(user=member_admin), hospital=other_hospital, entries=[entry])
    adopt_entries(actor=Actor(user=third_admin), hospital=third_hospital, entries=[entry])
    alliance_agreement = entry.agreements.get()

    change = change_alliance_price(
        actor=Actor(user=steward), agreement=alliance_agreement, new_price=Decimal("3.20"), effective_from=TOMORROW,
        reason="省联盟集采续约降价", approved_by=steward,
    )

    alliance_agreement.refresh_from_db()
    assert (change.members_changed, alliance_agreement.valid_to, change.agreement.unit_price) == (2, TODAY,
                                                                                                  Decimal("3.20"))
    member_changes = PriceChange.objects.filter(reason="省联盟集采续约降价").order_by("hospital__code")
    assert [(c.hospital, c.old_price, c.new_price, c.effective_from, c.approved_by) for c in member_changes] == [
        (other_hospital, Decimal("3.50"), Decimal("3.20"), TOMORROW, steward),
        (third_hospital, Decimal("3.50"), Decimal("3.20"), TOMORROW, steward),
    ]
    for c in member_changes:
        assert c.agreement.alliance_agreement == change.agreement and c.previous.valid_to == TODAY
        product = c.product
        assert agreed_price(hospital=c.hospital, supplier=supplier, product=product) == Decimal("3.50")  # today
    assert Alert.objects.filter(kind=Alert.Kind.PRICE_CHANGED, hospital__in=[other_hospital, third_hospital]).count() == 2
    # A member adopting after the change gets the price in force from tomorrow only.
    late = factories.HospitalFactory(code="H004")
    late_admin = factories.UserFactory(hospital=late, roles=["admin"])
    adopt_entries(actor=Actor(user=late_admin), hospital=late, entries=[entry])
    assert sorted(SupplyAgreement.objects.filter(hospital=late).values_list("unit_price", flat=True)) == [
        Decimal("3.20"), Decimal("3.50")]


def test_an_alliance_price_change_follows_the_price_change_rules(entry, steward, member_admin):
    with pytest.raises(Refused) as refused:
        change_alliance_price(actor=Actor(user=steward), agreement=entry.agreements.get(), new_price=Decimal("3.50"),
                              effective_from=TODAY - datetime.timedelta(days=1), reason=" ", approved_by=member_admin)
    assert sorted(codes(refused)) == ["ALLIANCE_APPROVER_INVALID", "PRICE_CHANGE_DATE_INVALID",
                                      "PRICE_CHANGE_REASON_MISSING", "PRICE_UNCHANGED"]
    assert not AlliancePriceChange.objects.exists()


def test_a_new_alliance_agreement_reaches_the_members_that_adopted(entry, steward, member_admin, other_hospital):
    adopt_entries(actor=Actor(user=member_admin), hospital=other_hospital, entries=[entry])
    second_supplier = factories.SupplierFactory()
    add_agreement(actor=Actor(user=steward), entry=entry, supplier=second_supplier, unit_price=Decimal("3.40"),
                  valid_from=TODAY, valid_to=TODAY + datetime.timedelta(days=100))
    product = Product.objects.get(hospital=other_hospital, alliance_entry=entry)
    assert agreed_price(hospital=other_hospital, supplier=second_supplier, product=product) == Decimal("3.40")


def test_bulk_adoption_by_class_through_the_api(entry, steward, member_admin, other_hospital):
    for n in range(3):
        create_entry(actor=Actor(user=steward), code=f"AL-GZ-{n}", name=f"骨科螺钉{n}", udi_di=gtin(910000 + n),
                     manufacturer=entry.manufacturer, tracking="UNIT", category="骨科", is_high_value=True)
    client = api_client_for(member_admin)

    response = client.post(f"{API}/alliance/adoptions/", {"category": "骨科"}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json() == {"adopted": 3, "linked": 0, "already": 0, "agreements": 0}
    assert set(Product.objects.filter(hospital=other_hospital).values_list("internal_code", flat=True)) == {
        "AL-GZ-0", "AL-GZ-1", "AL-GZ-2"}
    listed = client.get(f"{API}/alliance/entries/", {"category": "骨科", "adopted": "true"}).json()
    assert listed["count"] == 3 and all(row["adopted_here"] for row in listed["results"])
    assert listed["results"][0]["member_count"] is None  # a member does not see who else adopted
    nothing = client.post(f"{API}/alliance/adoptions/", {}, format="json")
    assert nothing.status_code == 400 and nothing.json()["code"] == "ALLIANCE_NOTHING_CHOSEN"


def test_stewards_keep_entries_and_prices_through_the_api(steward, supplier, member_admin, other_hospital):
    client = api_client_for(steward)
    manufacturer = factories.ManufacturerFactory()
    created = client.post(f"{API}/alliance/entries/", {
        "code": "AL-9", "name": "中心静脉导管", "udi_di": gtin(920000), "manufacturer": manufacturer.pk,
        "tracking": "UNIT", "category": "导管",
    }, format="json")
    assert created.status_code == 201, created.json()
    entry_id = created.json()["id"]
    agreement = client.post(f"{API}/alliance/entries/{entry_id}/agreements/", {
        "supplier": supplier.pk, "unit_price": "88.00", "valid_from": str(TODAY), "valid_to": str(TODAY + datetime.timedelta(days=30)),
    }, format="json")
    assert agreement.status_code == 201, agreement.json()
    api_client_for(member_admin).post(f"{API}/alliance/adoptions/", {"entries": [entry_id]}, format="json")

    patched = client.patch(f"{API}/alliance/entries/{entry_id}/", {"name": "中心静脉导管套件"}, format="json")
    changed = client.post(f"{API}/alliance/agreements/{agreement.json()['id']}/price-change/", {
        "new_price": "80.00", "effective_from": str(TOMORROW), "reason": "谈判降价", "approved_by": steward.pk,
    }, format="json")

    assert patched.status_code == 200 and patched.json()["members_changed"] == 1
    assert [m["internal_code"] for m in patched.json()["members"]] == ["AL-9"]
    assert changed.status_code == 201 and changed.json()["members_changed"] == 1
    duplicate = client.post(f"{API}/alliance/entries/", {
        "code": "AL-9", "name": "重复", "udi_di": gtin(920001), "manufacturer": manufacturer.pk, "tracking": "UNIT",
    }, format="json")
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "ALLIANCE_ENTRY_EXISTS"
    refused = api_client_for(member_admin).patch(f"{API}/alliance/entries/{entry_id}/", {"name": "x"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "ALLIANCE_CATALOG_KEEPERS_ONLY"


def test_the_catalog_page_adopts_the_entries_ticked(entry, member_admin, other_hospital, client):
    client.force_login(member_admin)
    page = client.get(reverse("web:alliance-catalog"), {"category": "输注类"})
    assert page.status_code == 200 and 'data-entry="AL-0001"' in page.content.decode()

    adopted = client.post(reverse("web:alliance-catalog") + "?category=输注类", {"entry": [str(entry.pk)]})

    assert adopted.status_code == 302
    assert Product.objects.filter(hospital=other_hospital, alliance_entry=entry).exists()
    shown = client.get(reverse("web:alliance-entry", args=[entry.pk])).content.decode()
    assert 'data-member="H002"' in shown and "3.50" in shown
