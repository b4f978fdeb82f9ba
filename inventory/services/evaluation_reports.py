"""The report of a finalised supplier evaluation run (供应商评价报告): ranking, every indicator's
value per supplier, the weights, and each supplier's trend over the hospital's earlier runs.

Written at finalisation as CSV, XLSX and PDF with the SHA-256 of each, as the reconciliation and
stocktake reports are: rendered from the run alone (byte for byte the same when rendered again) and
the PDF names the CSV by its hash, so a printed copy can be tied to the data.
"""
import csv
import hashlib
import io

from django.core.files.base import ContentFile
from django.utils import timezone
from openpyxl import Workbook
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from inventory.models import EvaluationRun
from inventory.selectors.evaluation import run_matrix, supplier_trends
from inventory.services.reports import _font
from inventory.spreadsheets import csv_cell, reproducible_xlsx, xlsx_cell

SCORING = {"LINEAR": "线性加权", "TOPSIS": "TOPSIS"}
WEIGHTING = {"EXPERT": "专家赋权", "ENTROPY": "熵权法", "AHP": "层次分析法（AHP）"}
DIRECTION = {"BENEFIT": "越大越好", "COST": "越小越好"}


def report_tables(run: EvaluationRun) -> dict[str, tuple[list[str], list[list]]]:
    """The report's three tables (header, rows): ranking with every indicator, weights, trend."""
    indicators, rows = run_matrix(run)
    weights = dict(run.weights.values_list("indicator_id", "weight"))
    ranking_header = ["名次", "供应商", "得分"] + [f"{indicator.code} {indicator.name}" for indicator in indicators]
    ranking = [
        [row.participant.rank, row.participant.supplier.name, row.participant.score]
        + [cell.value.value if cell.value else None for cell in row.cells]
        for row in rows
    ]
    weight_rows = [
        [indicator.parent.name if indicator.parent_id else "", f"{indicator.code} {indicator.name}",
         indicator.get_source_display(), DIRECTION[indicator.direction], weights.get(indicator.pk)]
        for indicator in indicators
    ]
    runs, trends = supplier_trends(hospital_id=run.hospital_id, supplier_ids=[row.participant.supplier_id for row in rows],
                                   until=run.period_end)
    runs = [earlier for earlier in runs if earlier.period_end < run.period_end or earlier.pk == run.pk]
    trend_header = ["供应商"] + [f"{earlier.name}（{earlier.period_end:%Y-%m-%d}）" for earlier in runs]
    trend_rows = []
    for row in rows:
        points = {point.run.pk: point for point in trends.get(row.participant.supplier_id, [])}
        trend_rows.append([row.participant.supplier.name] + [
            f"{points[earlier.pk].score} (#{points[earlier.pk].rank}/{points[earlier.pk].of})"
            if earlier.pk in points else "" for earlier in runs])
    return {
        "ranking": (ranking_header, ranking),
        "weights": (["一级指标", "指标", "来源", "方向", "权重"], weight_rows),
        "trend": (trend_header, trend_rows),
    }


def render_reports(run: EvaluationRun) -> dict[str, bytes]:
    tables = report_tables(run)
    data = render_csv(tables)
    return {"csv": data, "xlsx": render_xlsx(run, tables),
            "pdf": render_pdf(run, tables, csv_sha256=hashlib.sha256(data).hexdigest())}


def store_reports(run: EvaluationRun) -> EvaluationRun:
    """Write the run's three report files, with the SHA-256 of each."""
    for report_format, data in render_reports(run).items():
        getattr(run, f"report_{report_format}").save(f"evaluation-{run.pk}.{report_format}", ContentFile(data),
                                                      save=False)
        setattr(run, f"{report_format}_sha256", hashlib.sha256(data).hexdigest())
    run.save(update_fields=["report_csv", "report_xlsx", "report_pdf", "csv_sha256", "xlsx_sha256", "pdf_sha256"])
    return run


def render_csv(tables: dict[str, tuple[list[str], list[list]]]) -> bytes:
    """The ranking table, then the weights and the trend after a blank line each."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for number, (header, rows) in enumerate(tables.values()):
        if number:
            writer.writerow([])
        writer.writerow(header)
        for row in rows:
            writer.writerow([csv_cell(value) for value in row])
    return ("\ufeff" + buffer.getvalue()).encode()


def render_xlsx(run: EvaluationRun, tables: dict[str, tuple[list[str], list[list]]]) -> bytes:
    workbook = Workbook(write_only=True)
    workbook.properties.title = f"供应商评价报告 #{run.pk}"
    for title, (header, rows) in zip(["排名", "权重", "趋势"], tables.values(), strict=True):
        sheet = workbook.create_sheet(title=title)
        sheet.append(header)
        for row in rows:
            sheet.append([xlsx_cell(value) for value in row])
    return reproducible_xlsx(workbook, run.finalised_at or run.created_at)


def _escape(value: object) -> str:
    return ("" if value is None else str(value)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_pdf(run: EvaluationRun, tables: dict[str, tuple[list[str], list[list]]], *, csv_sha256: str) -> bytes:
    font = _font()
    styles = {
        "title": ParagraphStyle("title", fontName=font, fontSize=15, leading=19, spaceAfter=6),
        "heading": ParagraphStyle("heading", fontName=font, fontSize=11, leading=14, spaceBefore=6, spaceAfter=3),
        "cell": ParagraphStyle("cell", fontName=font, fontSize=7, leading=9, wordWrap="CJK"),
        "note": ParagraphStyle("note", fontName=font, fontSize=9, leading=12, wordWrap="CJK", spaceBefore=4),
    }
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=landscape(A4), invariant=1, leftMargin=8 * mm, rightMargin=8 * mm,
                                 topMargin=10 * mm, bottomMargin=10 * mm, title=f"供应商评价报告 #{run.pk}",
                                 author="SPD", creator="SPD")
    width = landscape(A4)[0] - 16 * mm

    def table(header: list[str], rows: list[list]) -> Table:
        body = [[Paragraph(_escape(value), styles["cell"]) for value in header]]
        body += [[Paragraph(_escape(value), styles["cell"]) for value in row] for row in rows] or [
            [Paragraph("—", styles["cell"])] * len(header)]
        result = Table(body, colWidths=[width / len(header)] * len(header), repeatRows=1)
        result.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.3, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]))
        return result

    finalised = timezone.localtime(run.finalised_at).strftime("%Y-%m-%d %H:%M") if run.finalised_at else "—"
    cr = f"，CR = {run.ahp_cr}" if run.ahp_cr is not None else ""
    story = [
        Paragraph(_escape(f"供应商评价报告 · {run.hospital.name} · {run.name}"), styles["title"]),
        Paragraph(_escape(
            f"评价期 {run.period_start:%Y-%m-%d} 至 {run.period_end:%Y-%m-%d}；指标体系 {run.indicator_set}；"
            f"赋权 {WEIGHTING[run.weighting]}{cr}；评分 {SCORING[run.scoring]}；"
            f"定稿 {finalised}（{run.finalised_by.username if run.finalised_by else '—'}）"), styles["note"]),
        Paragraph("排名与各指标值", styles["heading"]), table(*tables["ranking"]),
        Paragraph("指标权重", styles["heading"]), table(*tables["weights"]),
        Paragraph("得分趋势（得分，名次/参评数）", styles["heading"]), table(*tables["trend"]),
        Paragraph(f"本报告数据见 CSV 文件，其 SHA-256 为 {csv_sha256}。", styles["note"]),
        Spacer(1, 8 * mm),
        Paragraph("评价人：____________　　审核人：____________", styles["note"]),
    ]
    document.build(story)
    return buffer.getvalue()
