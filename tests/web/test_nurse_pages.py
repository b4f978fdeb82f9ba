"""A nurse's pages on a phone or tablet: the use page starts from the patient (wristband or encounter
number, then the items, then the next patient), its rows carry their column names for the card layout,
the camera button and its decoder are served by the app, and a nurse's home leads to her work."""
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from inventory.models import Consumption
from tests import factories
from tests.web.conftest import ENCOUNTER
from tests.web.test_operations_pages import bedside_page, context_of, in_department, use_scan  # noqa: F401
from tests.web.test_pages import client_for, text

pytestmark = pytest.mark.django_db

DECODER = "web/vendor/zxing-library-0.23.0.min.js"


# --- the patient first -----------------------------------------------------------------------------


def test_without_a_patient_the_page_asks_for_the_wristband_first(world):
    page = text(client_for(world.nurse).get(reverse("web:bedside")))
    assert 'data-step="patient"' in page and 'data-step="items"' not in page
    field = re.search(r'<input id="id_encounter"[^>]*>', page).group(0)
    assert "autofocus" in field and "data-scan-field" in field
    assert re.search(r'<form method="get" class="scan-form big context-form" data-context-form data-scan-primary>', page)
    assert "扫描腕带或输入就诊号" in page
    assert 'id="use-scan"' not in page  # no item is scanned before the patient is known


def test_a_scanned_wristband_sets_the_patient_and_next_patient_clears_it(world):
    nurse = client_for(world.nurse)
    department = world.cabinet.department
    response = nurse.get(reverse("web:bedside"), {"encounter": "  ]C0ZY20261206007 ", "department": department.pk})
    context = response.context["context"]
    assert (context.encounter, context.department) == ("ZY20261206007", department)
    page = text(response)
    assert 'data-step="items"' in page and 'data-encounter="ZY20261206007"' in page
    assert re.search(r'<input id="use-scan"[^>]*autofocus', page)
    next_patient = re.search(r'<a class="button" data-action="next-patient" href="([^"]+)">下一位患者</a>', page)
    assert next_patient.group(1) == f"/use/?department={department.pk}"

    cleared = nurse.get(next_patient.group(1))
    assert cleared.context["context"] is None and 'data-step="patient"' in text(cleared)
    assert cleared.context["form"].initial["department"] == department


def test_next_patient_keeps_the_department_the_nurse_was_recording_for(world):
    icu = factories.DepartmentFactory(hospital=world.cabinet.hospital, code="ICU", name="重症监护室")
    world.nurse.departments.add(icu)
    nurse = client_for(world.nurse)
    assert nurse.get(reverse("web:bedside"), {"department": icu.pk}).context["form"].initial["department"] == icu
    stranger = factories.DepartmentFactory(hospital=world.cabinet.hospital, code="ORTH", name="骨科")
    not_hers = nurse.get(reverse("web:bedside"), {"department": stranger.pk}).context["form"].initial["department"]
    assert not_hers in {world.cabinet.department, icu}


@pytest.mark.parametrize(("scanned", "code", "wording"), [
    ("330102199001011234", "LOOKS_LIKE_PERSONAL_ID", "这像是身份证号，系统不保存："),
    ("ZY 2026/1", "INVALID_ENCOUNTER", "这不是就诊号"),
])
def test_a_wristband_that_is_not_an_encounter_is_refused_before_any_item(world, scanned, code, wording):
    response = client_for(world.nurse).get(reverse("web:bedside"),
                                            {"encounter": scanned, "department": world.cabinet.department.pk})
    assert response.context["context"] is None
    assert [error.code for error in response.context["form"].errors.as_data()["encounter"]] == [code]
    page = text(response)
    assert wording in page and 'data-step="patient"' in page and 'id="use-scan"' not in page


def test_an_item_posted_with_an_identity_number_keeps_the_services_refusal_code(world, in_department):  # noqa: F811
    named = use_scan(client_for(world.nurse), world, "whatever", "web-use-1", encounter="330102199001011234")
    assert named.status_code == 400 and named.json()["problems"][0]["code"] == "LOOKS_LIKE_PERSONAL_ID"
    assert not Consumption.objects.filter(encounter="330102199001011234").exists()


# --- cards on a phone, and the camera ---------------------------------------------------------------


def test_every_cell_of_a_use_says_its_column_for_the_card_layout(world):
    page = text(client_for(world.nurse).get(reverse("web:bedside")))
    assert re.search(r'<table class="lines cards-narrow" data-table="uses">', page)
    row = re.search(r'<tr data-key="use-\d+".*?</tr>', page, re.S).group(0)
    assert re.search(r'<td data-label="金额" data-cell="amount" class="num">¥1,200.00</td>', row)
    assert 'data-label="收费与 HIS 状态" data-cell="charges"' in row and 'data-his-status="FAILED"' in row
    assert 'data-action="refund"' in row and ENCOUNTER in row


def test_the_use_page_offers_the_camera_with_the_decoder_served_by_the_app(world):
    page = text(bedside_page(client_for(world.nurse), world))
    assert 'data-camera-scan="use-scan" hidden' in page  # shown by camera-scan.js when a camera can be used
    assert f'data-decoder="/static/{DECODER}"' in page and "/static/web/camera-scan.js" in page
    decoder = finders.find(DECODER)
    assert decoder and "MultiFormatReader" in Path(decoder).read_text(encoding="utf-8")
    licence = Path(finders.find("web/vendor/zxing-library-LICENSE.txt")).read_text(encoding="utf-8")
    assert "Apache License" in licence


def test_the_cabinet_page_has_cards_on_a_phone(world):
    page = text(client_for(world.nurse).get(reverse("web:cabinet", args=[world.cabinet.pk])))
    assert '<table class="lines cards-narrow" data-table="contents">' in page
    assert '<table class="lines cards-narrow" data-table="sessions">' in page


# --- a nurse's home ----------------------------------------------------------------------------------


def test_a_nurses_home_leads_to_use_on_a_patient_and_her_cabinet_not_to_stock_values(world):
    response = client_for(world.nurse).get(reverse("web:dashboard"))
    assert "figures" not in response.context
    page = text(response)
    department = world.cabinet.department
    assert f'data-link="use" href="/use/?department={department.pk}"' in page
    assert f'data-link="cabinet" data-cabinet="{world.cabinet.pk}" href="/cabinets/{world.cabinet.pk}/"' in page
    assert "使用登记" in page and "今日已登记 1 次使用" in page
    assert "库存金额" not in page


def test_a_nurse_who_also_keeps_the_stock_keeps_the_dashboard(world):
    world.nurse.groups.add(*world.keeper.groups.filter(name="warehouse"))
    response = client_for(world.nurse).get(reverse("web:dashboard"))
    assert "figures" in response.context


def test_the_nurses_home_in_english(world):
    page = text(client_for(world.nurse, "en").get(reverse("web:dashboard")))
    assert "Use on a patient" in page and "1 use recorded today" in page
