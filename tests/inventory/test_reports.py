"""The report files of a run, rendered from a ReportContent made here (the reconciliation's own
tests render them from real runs): what each format holds and that its bytes do not vary."""
import datetime
import io
from decimal import Decimal

from openpyxl import load_workbook

from inventory.services.reports import ReportContent, render_xlsx


def content_with(*, findings: list[list] | None = None, inventory: list[list] | None = None) -> ReportContent:
    return ReportContent(
        run_id=7, hospital="H1 第一医院", period="2025-06-01 至 2025-06-01",
        finished_at=datetime.datetime(2025, 6, 3, 2, 30, 15, 123456, tzinfo=datetime.UTC),
        summary=[["入库", 10, Decimal("100.00")], ["使用（不含退费）", 4, Decimal("40.00")],
                 ["HIS 收费", 4, Decimal("40.00")], ["发现", len(findings or []), Decimal("12.50")]],
        kinds=[["账实不符", "INVENTORY_MISMATCH", 1, Decimal("12.50")]],
        findings=findings or [],
        inventory=inventory or [],
        data_sha256="0" * 64,
    )


CRAFTED = ['=HYPERLINK("http://x")', "#N/A", "+1", "-1", "@SUM(A1)"]


def test_xlsx_cells_hold_text_that_looks_like_a_formula_or_an_error_as_text():
    findings = [[1, "账实不符", "P1", name, "", "", "中心库", "", "", Decimal("2"), Decimal("1"), Decimal("12.50"), name]
                for name in CRAFTED]
    inventory = [["L1", "中心库", "P1", name, 1, 2, 0, 0, 1, 0, 0, 0, 0, 0, 2] for name in CRAFTED]

    workbook = load_workbook(io.BytesIO(render_xlsx(content_with(findings=findings, inventory=inventory))))

    for sheet, column in ((workbook["发现"], "D"), (workbook["进销存"], "D")):
        cells = [sheet[f"{column}{row}"] for row in range(2, 2 + len(CRAFTED))]
        assert [(cell.value, cell.data_type) for cell in cells] == [(name, "s") for name in CRAFTED]
    assert workbook["进销存"]["O2"].value == 2 and workbook["进销存"]["O2"].data_type == "n"


def test_xlsx_bytes_are_the_same_for_the_same_content():
    inventory = [["L1", "中心库", f"P{n}", f"耗材{n}", n, 1, 0, 0, 1, 0, 0, 0, 0, 0, n] for n in range(500)]
    content = content_with(inventory=inventory)

    assert render_xlsx(content) == render_xlsx(content)
