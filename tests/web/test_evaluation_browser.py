"""Supplier evaluation in a real browser (Debian's chromium, live server on PostgreSQL): an SPD
operator starts a run, is told what is missing, enters the scores (one out of range is refused),
finalises and sees the ranking, the trend chart and the report files; the supplier's own user then
sees its rank and values only, in the portal. Nothing is asked of the internet."""
from urllib.parse import urlparse

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inventory.actors import Actor
from inventory.models import EvaluationRun
from inventory.services.evaluation import IndicatorInput, create_indicator_set
from tests import factories
from tests.web.conftest import login, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_operator_enters_scores_and_finalises_and_the_supplier_sees_its_own_place(page, world, live_server):
    indicator_set = create_indicator_set(actor=Actor(user=world.operator), hospital=world.warehouse.hospital,
                                         name="季度评价指标", indicators=[
        IndicatorInput("S", "服务评分"), IndicatorInput("Q", "质量评分", score_max=10),
        IndicatorInput("R", "投诉", source="UPHELD_COMPLAINTS"),
    ])
    ours, rival = world.supplier, world.other_supplier
    factories.UserFactory(username="vendor", hospital=None, supplier=ours, roles=["supplier"])
    today = timezone.localdate()
    own = urlparse(live_server.url).netloc
    outside: list[str] = []

    def guard(route) -> None:
        if urlparse(route.request.url).netloc not in ("", own) and route.request.url.startswith("http"):
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.context.route("**/*", guard)
    login(page, world.operator.username)
    page.goto("/purchasing/evaluation/")
    page.select_option("#run-set", str(indicator_set.pk))
    page.fill("#run-name", "2026 第四季度")
    page.fill("#run-start", f"{today.replace(day=1):%Y-%m-%d}")
    page.fill("#run-end", f"{today:%Y-%m-%d}")
    page.select_option("#run-suppliers", [str(ours.pk), str(rival.pk)])
    page.locator('[data-action="start-run"]').click()

    expect(page.locator("[data-status]")).to_have_attribute("data-status", "DRAFT")
    expect(page.locator('[data-list="missing"] li')).to_have_count(4)  # 2 suppliers × 2 entered indicators
    page.locator('[data-action="finalise"]').click()
    expect(page.locator('.problems [data-code="EVALUATION_VALUE_MISSING"]').first).to_be_visible()

    service, quality = (indicator_set.indicators.get(code=code).pk for code in ("S", "Q"))
    page.fill(f"#score-{ours.pk}-{service}", "92")
    page.fill(f"#score-{ours.pk}-{quality}", "11")  # out of 0–10
    page.fill(f"#score-{rival.pk}-{service}", "70")
    page.fill(f"#score-{rival.pk}-{quality}", "6")
    page.locator('[data-action="save-scores"]').click()
    expect(page.locator('.problems [data-code="EVALUATION_SCORE_OUT_OF_RANGE"]')).to_contain_text("0")
    expect(page.locator('[data-list="missing"] li')).to_have_count(4)  # nothing was kept
    page.fill(f"#score-{ours.pk}-{service}", "92")
    page.fill(f"#score-{ours.pk}-{quality}", "9")
    page.fill(f"#score-{rival.pk}-{service}", "70")
    page.fill(f"#score-{rival.pk}-{quality}", "6")
    page.locator('[data-action="save-scores"]').click()
    expect(page.locator('[data-list="missing"]')).to_have_count(0)
    page.locator('[data-action="finalise"]').click()

    expect(page.locator("[data-status]")).to_have_attribute("data-status", "FINALISED")
    expect(page.locator(f'[data-supplier="{ours.name}"] [data-rank]')).to_have_text("1")
    expect(page.locator(f'[data-supplier="{rival.name}"] [data-rank]')).to_have_text("2")
    expect(page.locator('[data-chart="evaluation-trend"] circle')).to_have_count(2)
    expect(page.locator('[data-list="reports"] a')).to_have_count(3)
    expect(page.locator('[data-action="save-scores"]')).to_have_count(0)  # finalised: no more entry
    screenshot(page, "evaluation-run-finalised")
    run = EvaluationRun.objects.get()
    assert (run.status, run.finalised_by) == ("FINALISED", world.operator)
    with page.expect_download() as download:
        page.locator('[data-report="csv"]').click()
    assert download.value.suggested_filename == f"evaluation-{run.pk}.csv"

    page.context.clear_cookies()
    login(page, "vendor")
    page.goto("/portal/evaluations/")
    expect(page.locator("[data-entry] [data-rank]")).to_contain_text("1")
    expect(page.locator('[data-table="own-values"] tbody tr')).to_have_count(3)
    assert rival.name not in page.content()
    assert page.goto(f"/purchasing/evaluation/runs/{run.pk}/").status == 403
    assert outside == []
