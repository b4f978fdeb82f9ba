"""The report files of a run, rendered from a ReportContent made here (the reconciliation's own
tests render them from real runs): what each format holds and that its bytes do not vary."""
import datetime
import hashlib
import io
from decimal import Decimal

from openpyxl import load_workbook

from inventory.services import reports
from inventory.services.reports import ReportContent, render_pdf, render_reports, render_xlsx
from tests.pdf_text import rows_through, shown_strings


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


def test_the_pdf_shows_the_stock_table_summed_per_location_with_a_grand_total_not_its_rows():
    inventory = [
        ["L1", "中心库", "P1", "冠脉支架", 5, 2, 0, 1, 3, 1, 0, 0, 0, 0, 0, 0, 4],
        ["L1", "中心库", "P2", "导丝", 1, 0, 4, 0, 2, 0, 1, 0, -1, 0, 0, 0, 1],
        ["L2", "导管室", "P1", "纱布", 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1],
    ]

    strings = shown_strings(render_pdf(content_with(inventory=inventory), csv_sha256="c" * 64))

    assert rows_through(strings, reports.LOCATION_TOTALS_HEADER, "合计") == [
        ["L1", "中心库", "2", "6", "2", "4", "1", "5", "1", "1", "0", "-1", "0", "0", "0", "5"],
        ["L2", "导管室", "1", "0", "0", "3", "0", "0", "0", "0", "0", "0", "0", "2", "0", "1"],
        ["合计", "", "3", "6", "2", "7", "1", "5", "1", "1", "0", "-1", "0", "2", "0", "6"],
    ]
    assert "进销存明细共 3 行，见本次对账的 CSV / XLSX 报告，CSV 文件 SHA-256：" + "c" * 64 in "".join(strings)
    assert "导丝" not in strings


def test_an_empty_stock_table_is_a_grand_total_of_zeros_and_no_rows():
    strings = shown_strings(render_pdf(content_with(), csv_sha256="c" * 64))

    assert rows_through(strings, reports.LOCATION_TOTALS_HEADER, "合计") == [["合计", "", *["0"] * 14]]
    assert "进销存明细共 0 行" in "".join(strings)


def test_the_pdf_names_the_csv_rendered_with_it_and_prints_the_data_hash():
    inventory = [["L1", "中心库", f"P{n}", f"耗材{n}", n, 1, 0, 0, 1, 0, 0, 0, 0, 0, n] for n in range(50)]

    files = render_reports(content_with(inventory=inventory))

    text = "".join(shown_strings(files["pdf"]))
    assert f"CSV 文件 SHA-256：{hashlib.sha256(files['csv']).hexdigest()}" in text
    assert "进销存明细共 50 行" in text and "0" * 64 in text
