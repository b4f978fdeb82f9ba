"""Receiving (验收) pages at volume, through Django's test client: an acceptance cannot skip a unit
nobody scanned, the review before the decision, drafts kept in the database for the hospital, the
tally and per-product summary after each scan, and the printable acceptance record (验收单)."""
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from devices.models import Device
from inventory.actors import Actor
from inventory.models import AcceptanceRecord, DeliveryNote, ReceivingDraft, Unit
from inventory.services.receiving import LineInput, receive_delivery_note
from tests import factories
from tests.factories import gs1_udi
from tests.pdf_text import shown_strings
from tests.web.test_operations_pages import JSON, client_for, draft_scan, form_key, note_scan, start_delivery, text

pytestmark = pytest.mark.django_db
PRICE = Decimal("1200.00")


def two_unit_note(world, number="DN-V1", serials=("V1", "V2"), extra=()):
    lines = [LineInput(PRICE, udi=gs1_udi(world.product.udi_di, serial=s, lot="LV")) for s in serials]
    return receive_delivery_note(actor=Actor(user=world.keeper), hospital=world.warehouse.hospital,
                                 supplier=world.supplier, number=number, receiving_location=world.warehouse,
                                 lines=[*lines, *extra], idempotency_key=f"rcv-{number}")


def code(world, serial):
    return gs1_udi(world.product.udi_di, serial=serial, lot="LV")


def decide(client, note, **data):
    key = form_key(client.get(reverse("web:receiving-review", args=[note.pk])))
    return client.post(reverse("web:receiving-accept", args=[note.pk]), {"idempotency_key": key, **data})


# --- an acceptance cannot skip a box -----------------------------------------------------------------


def test_a_scan_verifies_its_line_and_answers_the_tally_the_feed_and_the_summary(world):
    note = two_unit_note(world)
    keeper = client_for(world.keeper)
    answer = note_scan(keeper, note, code(world, "V2")).json()
    assert answer["ok"] is True and answer["line_no"] == 2
    assert answer["tally"] == {"lines": 2, "scanned": 1, "accept": 1, "reject": 0, "unverified": 1}
    assert 'data-feed-line="2"' in answer["feed"] and "SN V2" in answer["feed"]
    assert 'data-key="2"' in answer["row"] and "check-mark" in answer["row"]
    assert 'data-unverified>1<' in answer["summary"]
    line = note.lines.get(line_no=2)
    assert line.scanned_by == world.keeper and line.scanned_at is not None

    page = text(keeper.get(reverse("web:receiving-note", args=[note.pk])))
    assert 'data-tally-count="unverified">1<' in page and 'data-feed-line="2"' in page


def test_finishing_with_an_unscanned_unit_leaves_it_open_and_says_so(world):
    note = two_unit_note(world)
    keeper = client_for(world.keeper)
    note_scan(keeper, note, code(world, "V1"))

    review = text(keeper.get(reverse("web:receiving-review", args=[note.pk])))
    unverified = review[review.index('data-review="unverified"'):review.index('data-review="accept"')]
    assert 'data-line="2"' in unverified and 'data-line="1"' not in unverified
    assert 'value="1" data-accept-unscanned' not in review  # a keeper cannot accept it without a scan

    done = decide(keeper, note)
    assert done.status_code == 302
    note.refresh_from_db()
    assert note.status == DeliveryNote.Status.PARTLY_ACCEPTED
    assert list(Unit.objects.filter(serial__in=["V1", "V2"]).values_list("serial", flat=True)) == ["V1"]
    page = text(keeper.get(done["Location"]))
    assert "验收 DN-V1：1 行通过，0 行拒收；1 件未扫码的耗材仍待验收。" in page
    assert 'data-verdict="unverified"' in page and "部分验收" in page

    # Later the unit is found and scanned: the rest of the note is finished.
    note_scan(keeper, note, code(world, "V2"))
    decide(keeper, note)
    note.refresh_from_db()
    assert note.status == DeliveryNote.Status.ACCEPTED
    assert Unit.objects.filter(serial__in=["V1", "V2"]).count() == 2


def test_finishing_when_nothing_was_scanned_is_refused_on_the_review_page(world):
    note = two_unit_note(world)
    refused = decide(client_for(world.keeper), note)
    assert refused.status_code == 409
    assert "未作任何验收：送货单 DN-V1 的第 1, 2 行未扫码核对" in text(refused)
    assert not AcceptanceRecord.objects.filter(line__note=note).exists()


def test_only_an_operator_accepts_without_scanning_and_must_give_a_reason(world):
    note = two_unit_note(world)
    keeper, operator = client_for(world.keeper), client_for(world.operator)
    refused = decide(keeper, note, accept_unscanned="1", unscanned_reason="标签破损")
    assert refused.status_code == 403 and "只有 SPD 运营人员或管理员可以验收未扫码核对的耗材" in text(refused)
    assert 'value="1" data-accept-unscanned' in text(operator.get(reverse("web:receiving-review", args=[note.pk])))
    no_reason = decide(operator, note, accept_unscanned="1", unscanned_reason=" ")
    assert no_reason.status_code == 400 and "未扫码验收（第 1, 2 行）必须填写原因" in text(no_reason)

    decide(operator, note, accept_unscanned="1", unscanned_reason="标签破损，按纸质送货单核对")
    records = AcceptanceRecord.objects.filter(line__note=note)
    assert {(r.accepted_without_scan, r.without_scan_reason, r.decided_by) for r in records} == {
        (True, "标签破损，按纸质送货单核对", world.operator)}
    page = text(operator.get(reverse("web:receiving-note", args=[note.pk])))
    assert page.count("data-without-scan") == 2 and "标签破损，按纸质送货单核对" in page


def test_the_review_lists_accepted_rejected_and_unverified_lines_with_totals_per_product(world):
    expiry = world.units["SN-A1"].expiry
    note = two_unit_note(world, serials=("V1", "V2", "V3"), extra=[
        LineInput(Decimal("999.00"), udi=gs1_udi(world.product.udi_di, serial="V4", lot="LV")),
        LineInput(Decimal("3.50"), product=world.lot_product, lot="LR-1", expiry=expiry, quantity=30),
    ])
    keeper = client_for(world.keeper)
    note_scan(keeper, note, code(world, "V1"))
    response = keeper.get(reverse("web:receiving-review", args=[note.pk]))
    context = response.context
    assert [row.line.line_no for row in context["will_accept"]] == [1, 5]
    assert [row.line.line_no for row in context["will_reject"]] == [4]
    assert [row.line.line_no for row in context["unverified"]] == [2, 3]
    totals = {(p.code, p.delivered, p.accepted, p.rejected, p.unverified) for p in context["review"].products}
    assert totals == {(world.product.internal_code, 4, 1, 1, 2), (world.lot_product.internal_code, 30, 30, 0, 0)}
    assert context["review"].totals.accepted_amount == PRICE + Decimal("105.00")
    page = text(response)
    assert "¥1,305.00" in page and "与纸质送货单核对" in page
    assert not AcceptanceRecord.objects.filter(line__note=note).exists()  # reviewing decides nothing


# --- drafts in the database --------------------------------------------------------------------------


def test_drafts_are_kept_for_the_hospital_listed_with_who_when_and_lines_and_not_limited_to_five(world):
    keeper, operator = client_for(world.keeper), client_for(world.operator)
    urls = [start_delivery(keeper, world, number=f"DN-D{n}") for n in range(7)]
    draft_scan(keeper, urls[0], gs1_udi(world.product.udi_di, serial="D1"))
    draft_scan(keeper, urls[0], gs1_udi(world.product.udi_di, serial="D2"))
    assert ReceivingDraft.objects.filter(hospital=world.warehouse.hospital).count() == 7

    listing = operator.get(reverse("web:receiving"))
    assert len(listing.context["drafts"]) == 7
    html = text(listing)
    row = re.search(r'<tr data-draft="[0-9a-f]+">\s*<th scope="row"><a class="code" href="[^"]+">DN-D0</a>.*?</tr>',
                    html, re.S).group(0)
    assert world.keeper.username in row and 'data-draft-lines>2<' in row

    resumed = text(operator.get(urls[0]))  # a colleague resumes it
    assert "SN D1" in resumed and "SN D2" in resumed
    assert resumed.index("SN D2") < resumed.index("SN D1")  # the newest scan on top


def test_discarding_a_draft_asks_for_confirmation_first(world):
    keeper = client_for(world.keeper)
    url = start_delivery(keeper, world, number="DN-BYE")
    draft_scan(keeper, url, gs1_udi(world.product.udi_di, serial="B1"))
    confirm = keeper.get(url + "discard/")
    assert confirm.status_code == 200 and 'data-action="confirm-discard"' in text(confirm)
    assert "1 行" in text(confirm) and ReceivingDraft.objects.filter(number="DN-BYE").exists()

    gone = keeper.post(url + "discard/", follow=True)
    assert not ReceivingDraft.objects.filter(number="DN-BYE").exists()
    assert "草稿送货单 DN-BYE 已作废" in text(gone)
    assert keeper.get(url).status_code == 404


def test_a_recorded_draft_is_no_longer_listed_and_its_scans_verify_the_lines(world):
    keeper = client_for(world.keeper)
    url = start_delivery(keeper, world, number="DN-REC")
    draft_scan(keeper, url, gs1_udi(world.product.udi_di, serial="RC1"))
    keeper.post(url)
    note = DeliveryNote.objects.get(number="DN-REC")
    assert note.lines.get().scanned_by == world.keeper
    assert not client_for(world.keeper).get(reverse("web:receiving")).context["drafts"]


def test_a_lot_quantity_is_corrected_after_the_scan_and_a_unit_keeps_one(world):
    keeper = client_for(world.keeper)
    url = start_delivery(keeper, world, number="DN-Q")
    draft_scan(keeper, url, gs1_udi(world.product.udi_di, serial="Q1"))
    lot = draft_scan(keeper, url, gs1_udi(world.lot_product.udi_di, lot="LQ-1"), quantity="1").json()
    assert lot["tally"]["accept"] == 2 and 'data-quantity' in lot["row"]

    fixed = keeper.post(url + "quantity/2/", {"quantity": "24"}, headers=JSON).json()
    assert fixed["ok"] is True and 'value="24"' in fixed["row"] and "× 24" in fixed["message"]
    assert ">25<" in fixed["summary"]  # one unit + 24 of the lot delivered
    assert ReceivingDraft.objects.get(number="DN-Q").lines[1]["quantity"] == 24
    unit = keeper.post(url + "quantity/1/", {"quantity": "3"}, headers=JSON)
    assert unit.status_code == 400 and "单件" in unit.json()["problems"][0]["detail"]
    zero = keeper.post(url + "quantity/2/", {"quantity": "0"}, headers=JSON)
    assert zero.status_code == 400


def test_the_receiving_location_is_preselected_from_the_keepers_station(world, hospital, cath_lab_store):
    keeper = client_for(world.keeper)
    form = keeper.get(reverse("web:receiving-new")).context["form"]
    assert form.fields["receiving_location"].initial is None
    station = Device.objects.create(hospital=hospital, code="WS-CATH", name="导管室扫码台", location=cath_lab_store,
                                    kind=Device.Kind.WEDGE_SCANNER)
    keeper.post(reverse("web:station"), {"station": station.pk})
    page = keeper.get(reverse("web:receiving-new"))
    assert page.context["form"].fields["receiving_location"].initial == cath_lab_store.pk
    assert f'<option value="{cath_lab_store.pk}" selected>' in text(page)


# --- the acceptance record ---------------------------------------------------------------------------


def test_the_acceptance_record_prints_hospital_supplier_lines_totals_who_and_signature_lines(world):
    note = two_unit_note(world)
    keeper, operator = client_for(world.keeper), client_for(world.operator)
    note_scan(keeper, note, code(world, "V1"))
    decide(keeper, note)
    response = keeper.get(reverse("web:receiving-record", args=[note.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    shown = "\n".join(shown_strings(response.content))
    for expected in ("县人民医院 医用耗材验收单", world.supplier.name, "DN-V1", "部分验收", "验收通过", "待定（未扫码核对）",
                     f"已扫码 {world.keeper.username}", "合计", "送货人（签字）", "验收人（签字）", "库管复核（签字）"):
        assert expected in shown, expected

    decide(operator, note, accept_unscanned="1", unscanned_reason="标签破损")
    shown = "".join(shown_strings(client_for(world.operator).get(  # "": a long cell wraps onto two lines
        reverse("web:receiving-record", args=[note.pk])).content))
    assert f"免扫码验收（{world.operator.username}）：标签破损" in shown and "验收完成" in shown


def test_another_hospital_cannot_print_or_review_a_note(world, other_hospital):
    note = two_unit_note(world)
    stranger = client_for(factories.UserFactory(username="keeper-y", hospital=other_hospital, roles=["warehouse"]))
    assert stranger.get(reverse("web:receiving-record", args=[note.pk])).status_code == 404
    assert stranger.get(reverse("web:receiving-review", args=[note.pk])).status_code == 404
