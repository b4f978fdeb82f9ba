"""The dashboard's bar charts and the trend line charts (inventory/web/charts.py) lay out their
frame — size, margins, axis labels, the y scale — in one place; the SVG they render is the one they
rendered before, byte for byte (tests/web/chart_svg/, written from the charts as they were)."""
from decimal import Decimal
from pathlib import Path

import pytest
from django.template.loader import render_to_string
from django.utils import translation

from inventory.web.charts import BarInput, bar_chart, line_chart

STORED = Path(__file__).parent / "chart_svg"
MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-07"]

SAMPLES = {
    "bar": ("web/_bar_chart.html", lambda: bar_chart([
        BarInput(f"W{n}", Decimal(amount), f"第{n}周: ¥{amount}", href=f"/stock/?week={n}" if n % 2 else "")
        for n, amount in enumerate(["1200.50", "0", "35999.99", "8100", "12.34", "27000"], start=1)
    ], every=2)),
    "bar-one-empty": ("web/_bar_chart.html", lambda: bar_chart([BarInput("#1", Decimal(0), "#1: 0")])),
    "bar-small-amounts": ("web/_bar_chart.html", lambda: bar_chart([
        BarInput(f"#{n}", Decimal(value), f"#{n}: {value}%", colour="#d9730d")
        for n, value in enumerate(["99.5", "87.25", "100", "93.1"], start=1)
    ])),
    "line": ("web/_line_chart.html", lambda: line_chart(MONTHS, [
        ("全部", [Decimal(v) if v else None for v in ["52000", "61000.5", "", "58000", "70500", "66000", "71000"]]),
        ("药物洗脱冠脉支架", [Decimal(v) for v in ["12000", "9000", "15000", "0", "18000", "16500", "21000"]]),
        ("一次性使用输液器", [Decimal(v) for v in ["300", "350", "410", "390", "380", "405", "420"]]),
    ])),
    "line-percent-limit": ("web/_line_chart.html", lambda: line_chart(MONTHS[:4], [
        ("心内科", [Decimal("31.5"), Decimal("28.25"), None, Decimal("35")]),
        ("骨科（关节与脊柱外科）", [Decimal("22"), Decimal("24.5"), Decimal("26"), Decimal("25.75")]),
        ("重症医学科", [None, Decimal("12"), Decimal("14.5"), Decimal("13")]),
        ("普外科", [Decimal("18"), Decimal("19"), Decimal("17.5"), Decimal("20")]),
        ("神经外科", [Decimal("27"), Decimal("29"), Decimal("30"), Decimal("28")]),
    ], percent=True, limit=Decimal("30"))),
    "line-legend-in-two-rows": ("web/_line_chart.html", lambda: line_chart(MONTHS[:2], [
        (f"第{n}科室（介入与植入类高值耗材）", [Decimal(n * 1000), Decimal(n * 1500 + 1)]) for n in range(1, 9)
    ])),
    "line-empty": ("web/_line_chart.html", lambda: line_chart([], [])),
}


def rendered(name: str, language: str) -> bytes:
    template, chart = SAMPLES[name]
    with translation.override(language):
        return render_to_string(template, {"chart": chart(), "chart_id": name, "chart_title": name}).encode()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("name", SAMPLES)
def test_each_chart_renders_the_same_svg_as_before_its_frame_was_shared(name, language):
    assert rendered(name, language) == (STORED / f"{name}.{language}.svg").read_bytes()
