"""The supplier portal: a supplier's user sees its orders across hospitals, builds an advance shipping
notice whose bad lines are refused one by one (the rest kept as a draft), and submits it as the
hospital's delivery note — which the keeper accepts against the order; the loop ends in the
delivery-performance report."""
import datetime
from decimal import Decimal

import pytest

from inventory.actors import Actor
from inventory.models import AdvanceShippingNotice, DeliveryNote, PurchaseOrder
from inventory.selectors.purchasing import delivery_performance
from inventory.services.purchasing import OrderLineInput, create_purchase_order
from inventory.services.receiving import accept_delivery_note
from tests import factories
from tests.conftest import api_client_for, scan_every_line, stock_units
from tests.factories import TODAY, gs1_udi

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
API = "/api/v1/portal"


@pytest.fixture
def supplier_user(supplier):
    return factories.UserFactory(username="vendor", hospital=None, supplier=supplier, roles=["supplier"])


@pytest.fixture
def order(keeper, supplier, product, lot_product, warehouse):
    return create_purchase_order(
        actor=Actor(user=keeper), hospital=product.hospital, supplier=supplier, promised_date=TODAY,
        lines=[OrderLineInput(product=product, quantity=5, platform_reference="YG-1"),
               OrderLineInput(product=lot_product, quantity=100)],
    )


def udi(product, serial):
    return gs1_udi(product.udi_di, serial=serial, lot="L1")


def test_supplier_sees_its_orders_across_hospitals_only(supplier_user, supplier, order, other_hospital):
    other_agreement = factories.SupplyAgreementFactory(product__hospital=other_hospital, supplier=supplier)
    elsewhere = create_purchase_order(
        actor=Actor(user=factories.UserFactory(hospital=other_hospital)), hospital=other_hospital, supplier=supplier,
        promised_date=TODAY, lines=[OrderLineInput(product=other_agreement.product, quantity=1, platform_reference="X")],
    )
    someone_elses = factories.SupplyAgreementFactory(product__hospital=order.hospital)
    create_purchase_order(
        actor=Actor(user=factories.UserFactory(hospital=order.hospital)), hospital=order.hospital,
        supplier=someone_elses.supplier, promised_date=TODAY,
        lines=[OrderLineInput(product=someone_elses.product, quantity=1, platform_reference="Y")],
    )

    listed = api_client_for(supplier_user).get(f"{API}/purchase-orders/").json()

    assert sorted(row["id"] for row in listed["results"]) == sorted([order.pk, elsewhere.pk])
    mine = next(row for row in listed["results"] if row["id"] == order.pk)
    assert [(line["udi_di"], line["outstanding"]) for line in mine["lines"]] == [
        (order.lines.get(line_no=1).product.udi_di, 5), (order.lines.get(line_no=2).product.udi_di, 100)
    ]


def test_bad_asn_lines_are_refused_each_with_its_reason_and_the_rest_kept(
    supplier_user, supplier, order, product, lot_product, keeper, warehouse
):
    stock_units(Actor(user=keeper), supplier, warehouse, product, ["IN-STOCK"], lot="L1")
    client = api_client_for(supplier_user)
    lines = [
        {"udi": udi(product, "A1")},
        {"udi": "]d2NOT-A-UDI"},
        {"udi": gs1_udi(factories.gtin(99999), serial="Z1")},
        {"udi": udi(product, "A1")},
        {"udi": udi(product, "IN-STOCK")},
        {"product": lot_product.pk, "lot": "LOT-9", "expiry": str(TODAY + datetime.timedelta(days=400)),
         "quantity": 150},
        {"product": lot_product.pk, "lot": "LOT-9", "expiry": str(TODAY + datetime.timedelta(days=400)),
         "quantity": 60},
    ]

    response = client.post(f"{API}/shipping-notices/", {
        "purchase_order": order.pk, "number": "ASN-1", "lines": lines,
    }, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert [(line["line_no"], line["serial"] or line["lot"]) for line in body["lines"]] == [(1, "A1"), (2, "LOT-9")]
    assert [(line["position"], line["problems"][0]["code"]) for line in body["refused_lines"]] == [
        (2, "UDI_UNPARSEABLE"), (3, "PRODUCT_UNKNOWN"), (4, "ASN_DUPLICATE_SERIAL"), (5, "SERIAL_IN_STOCK"),
        (6, "OVER_DELIVERY"),
    ]
    # The supplier fixes the draft: more units, one removed, then it is submitted.
    fixed = client.post(f"{API}/shipping-notices/{body['id']}/lines/", {
        "lines": [{"udi": udi(product, "A2")}, {"udi": udi(product, "A1")}],
    }, format="json").json()
    assert [line["line_no"] for line in fixed["lines"]] == [1, 2, 3]
    assert [line["problems"][0]["code"] for line in fixed["refused_lines"]] == ["ASN_DUPLICATE_SERIAL"]
    removed = client.delete(f"{API}/shipping-notices/{body['id']}/lines/2/")
    assert [line["line_no"] for line in removed.json()["lines"]] == [1, 3]


def test_order_asn_acceptance_and_delivery_performance_loop(supplier_user, supplier, order, product, keeper):
    client = api_client_for(supplier_user)
    asn = client.post(f"{API}/shipping-notices/", {
        "purchase_order": order.pk, "number": "ASN-7", "lines": [{"udi": udi(product, f"U{n}")} for n in range(3)],
    }, format="json").json()
    submitted = client.post(f"{API}/shipping-notices/{asn['id']}/submit/")
    assert submitted.status_code == 200, submitted.json()
    assert submitted.json()["status"] == "SUBMITTED"
    again = client.post(f"{API}/shipping-notices/{asn['id']}/submit/")
    assert (again.status_code, again.json()["code"]) == (409, "ASN_ALREADY_SUBMITTED")

    note = DeliveryNote.objects.get(pk=submitted.json()["delivery_note"])
    assert (note.number, note.purchase_order, note.status, note.lines.count()) == ("ASN-7", order, "RECEIVED", 3)
    assert note.receiving_location.kind == "CENTRAL_WAREHOUSE"
    assert set(note.lines.values_list("unit_price", flat=True)) == {Decimal("1200.00")}
    keeper_actor = Actor(user=keeper)
    scan_every_line(keeper_actor, note)
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-asn-7")

    order.refresh_from_db()
    assert order.status == PurchaseOrder.Status.PARTLY_DELIVERED
    [performance] = delivery_performance(hospital=order.hospital, start=TODAY, end=TODAY)
    assert (performance.received_quantity, performance.ordered_quantity, performance.on_time_lines) == (3, 105, 0)


def test_another_suppliers_user_finds_nothing_of_it(supplier_user, order, product):
    client = api_client_for(supplier_user)
    asn = client.post(f"{API}/shipping-notices/", {
        "purchase_order": order.pk, "number": "ASN-X", "lines": [{"udi": udi(product, "X1")}],
    }, format="json").json()
    stranger = api_client_for(
        factories.UserFactory(hospital=None, supplier=factories.SupplierFactory(), roles=["supplier"])
    )

    for method, url in [
        ("get", f"{API}/purchase-orders/{order.pk}/"), ("get", f"{API}/shipping-notices/{asn['id']}/"),
        ("post", f"{API}/shipping-notices/{asn['id']}/lines/"), ("delete", f"{API}/shipping-notices/{asn['id']}/lines/1/"),
        ("post", f"{API}/shipping-notices/{asn['id']}/submit/"),
    ]:
        response = getattr(stranger, method)(url, {"lines": [{"udi": udi(product, "X2")}]}, format="json")
        assert response.status_code == 404, (method, url)
    assert stranger.get(f"{API}/purchase-orders/").json()["count"] == 0
    assert stranger.get(f"{API}/shipping-notices/").json()["count"] == 0
    borrowed = stranger.post(f"{API}/shipping-notices/", {
        "purchase_order": order.pk, "number": "ASN-Y", "lines": [{"udi": udi(product, "Y1")}],
    }, format="json")
    assert borrowed.status_code == 400 and "purchase_order" in str(borrowed.json())
    assert AdvanceShippingNotice.objects.count() == 1


def test_a_supplier_user_reaches_nothing_of_the_hospital(supplier_user, keeper, order, product):
    client = api_client_for(supplier_user)
    for url in ["/api/v1/units/", "/api/v1/consumptions/", "/api/v1/supply-agreements/", "/api/v1/delivery-notes/",
                "/api/v1/movements/", "/api/v1/purchase-orders/", "/api/v1/products/", "/api/v1/alerts/",
                f"/api/v1/purchase-orders/{order.pk}/"]:
        assert client.get(url).status_code == 403, url
    # …and hospital staff are not portal users.
    assert api_client_for(keeper).get(f"{API}/purchase-orders/").status_code == 403


def upload(client, name, content, **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    body = {"kind": "DISTRIBUTION_LICENCE", "number": "浙杭药监械经营许20260001", "valid_from": str(TODAY),
            "valid_to": str(TODAY + datetime.timedelta(days=30)), **fields,
            "file": SimpleUploadedFile(name, content)}
    return client.post(f"{API}/certificates/", body, format="multipart")


def test_certificate_upload_is_stored_and_shown_to_the_hospital(supplier_user, keeper, agreement, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client = api_client_for(supplier_user)

    response = upload(client, "licence.pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n", kind="AUTHORISATION")

    assert response.status_code == 201, response.json()
    stored = list(tmp_path.rglob("*licence*.pdf"))
    assert len(stored) == 1 and stored[0].read_bytes().startswith(b"%PDF-1.7")
    seen = api_client_for(keeper).get(f"/api/v1/certificates/{response.json()['id']}/").json()
    assert seen["supplier"] == supplier_user.supplier_id and seen["file"].endswith(".pdf")
    assert [row["number"] for row in client.get(f"{API}/certificates/").json()["results"]].count(
        "浙杭药监械经营许20260001") == 1
    # Expiring in 30 days: the certificate watch alerts it as any other.
    from inventory.models import Alert
    from inventory.services.alerts import scan_certificates

    scan_certificates()
    assert Alert.objects.filter(kind=Alert.Kind.CERTIFICATE_EXPIRING, certificate_id=response.json()["id"]).exists()

    other = api_client_for(factories.UserFactory(hospital=None, supplier=factories.SupplierFactory(),
                                                 roles=["supplier"]))
    assert other.get(f"{API}/certificates/{response.json()['id']}/").status_code == 404


def test_oversized_and_wrong_type_uploads_are_refused(supplier_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.SPD_CERTIFICATE_MAX_BYTES = 1000
    client = api_client_for(supplier_user)

    too_big = upload(client, "big.pdf", b"%PDF-1.7\n" + b"0" * 2000)
    assert (too_big.status_code, too_big.json()["code"]) == (413, "FILE_TOO_LARGE")
    for name, content in [("licence.pdf", b"MZ\x90\x00 not a pdf"), ("licence.exe", b"%PDF-1.7 named .exe"),
                          ("photo.png", b"\xff\xd8\xff a jpeg named png")]:
        wrong = upload(client, name, content, number=name)
        assert (wrong.status_code, wrong.json()["code"]) == (400, "CERTIFICATE_FILE_TYPE"), name
    registration = upload(client, "reg.pdf", b"%PDF-1.4 x", kind="REGISTRATION")
    assert registration.json()["code"] == "CERTIFICATE_KIND_NOT_SUPPLIERS"
    assert not list(tmp_path.rglob("*.*"))
