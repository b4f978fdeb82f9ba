"""The consumable review as a report: its table, the monthly trend and the 耗占比 per department and
month, exported as CSV, XLSX or a PDF with the charts drawn in it — made by a background job
(`export_review`), since a review over years reads every use of those years.

The PDF draws the same chart geometry the page's SVG uses (`inventory.web.charts.line_chart`) with
reportlab graphics, in the CID font STSong-Light as the other PDFs (no font file needed).
"""
import datetime
import io
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _

from inventory.models import BackgroundJob, Hospital
from inventory.selectors import review as selectors
from inventory.services.background import JobResult, Progress, scratch_file
from inventory.spreadsheets import WRITERS

RATIO_LINES = 6  # departments drawn on the 耗占比 chart (by cost; the table lists them all)
TREND_LINES = 5


def dimension_labels() -> dict[str, str]:
    return {
        "department": _("Department"), "clinical_team": _("Clinical team (诊疗组)"), "doctor": _("Doctor"),
        "procedure": _("Procedure / surgery"), "product": _("Product"), "product_class": _("Product class"),
        "supplier": _("Supplier"),
    }


@dataclass(frozen=True)
class ReviewReport:
    hospital: Hospital
    dimension: str
    period: selectors.Period
    high_value_only: bool
    rows: list[selectors.ReviewRow]
    trend: selectors.Trend
    ratio: list[selectors.RatioRow]


def build_review_report(
    *, hospital: Hospital, dimension: str, period: selectors.Period, high_value_only: bool = False,
    progress: Progress | None = None,
) -> ReviewReport:
    """The review's three parts, reporting progress (in %) after each."""
    step = progress or (lambda percent: None)
    rows = selectors.review(hospital=hospital, dimension=dimension, period=period, high_value_only=high_value_only)
    step(30)
    trend = selectors.monthly_trend(hospital=hospital, dimension=dimension, period=period,
                                    high_value_only=high_value_only, top=TREND_LINES)
    step(60)
    ratio = selectors.consumable_ratio(hospital=hospital, first_month=period.start, last_month=period.end)
    step(80)
    return ReviewReport(hospital, dimension, period, high_value_only, rows, trend, ratio)


def review_header(dimension: str) -> list[str]:
    return [dimension_labels()[dimension], _("Quantity"), _("Uses"), _("Amount"), _("Previous period"),
            _("Period-on-period %"), _("A year before"), _("Year-on-year %")]


def review_table(rows: list[selectors.ReviewRow]) -> list[list]:
    return [[row.label, row.quantity, row.uses, row.amount, row.previous_amount, row.period_growth,
             row.year_ago_amount, row.year_growth] for row in rows]


def trend_header(trend: selectors.Trend) -> list[str]:
    return [_("Month"), trend.total.label, *(line.label for line in trend.lines)]


def trend_table(trend: selectors.Trend) -> list[list]:
    return [[f"{month:%Y-%m}", trend.total.amounts[n], *(line.amounts[n] for line in trend.lines)]
            for n, month in enumerate(trend.months)]


def ratio_header() -> list[str]:
    return [_("Department"), _("Month"), _("Consumable cost"), _("Medical revenue"), _("Cost per 100 yuan (耗占比 %)"),
            _("Red line %"), _("Over the red line")]


def ratio_table(ratio: list[selectors.RatioRow]) -> list[list]:
    return [[row.department, f"{row.month:%Y-%m}", row.cost, row.revenue, row.percent, row.red_line,
             _("yes") if row.over_red_line else ""] for row in ratio]


def ratio_series(ratio: list[selectors.RatioRow], months: list[datetime.date]) -> list[tuple[str, list]]:
    """耗占比 % per month of the RATIO_LINES departments with the highest cost (None: no revenue)."""
    cost: dict[str, Decimal] = {}
    cells: dict[tuple[str, datetime.date], Decimal | None] = {}
    for row in ratio:
        cost[row.department] = cost.get(row.department, Decimal(0)) + row.cost
        cells[(row.department, row.month)] = row.percent
    shown = sorted(cost, key=lambda name: (-cost[name], name))[:RATIO_LINES]
    return [(name, [cells.get((name, month)) for month in months]) for name in shown]


def trend_series(trend: selectors.Trend) -> list[tuple[str, list]]:
    return [(trend.total.label, trend.total.amounts), *((line.label, line.amounts) for line in trend.lines)]


# --- files ------------------------------------------------------------------------------------------

def write_table_file(report: ReviewReport, file_format: str, path) -> None:
    """CSV or XLSX: the review table, then the trend and the 耗占比 tables below it, each with its header."""
    blank: list = []
    rows = [*review_table(report.rows), blank, trend_header(report.trend), *trend_table(report.trend), blank,
            ratio_header(), *ratio_table(report.ratio)]
    WRITERS[file_format](path, review_header(report.dimension), rows)


def render_review_pdf(report: ReviewReport) -> bytes:
    """The review on landscape A4: facts, the trend chart and its table, the review table, the 耗占比
    chart and its table."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from inventory.services.documents_pdf import _font
    from inventory.web.charts import line_chart

    font = _font()
    cell_style = ParagraphStyle("cell", fontName=font, fontSize=7, leading=9, wordWrap="CJK")
    heading = ParagraphStyle("heading", fontName=font, fontSize=11, leading=15, spaceBefore=6, spaceAfter=3)

    def text(value: object) -> str:
        return "" if value is None else str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def table(header: list, rows: list[list]) -> Table:
        width = 277 / max(len(header), 1)
        block = Table([[Paragraph(text(h), cell_style) for h in header]]
                      + [[Paragraph(text(v), cell_style) for v in row] for row in rows],
                      colWidths=[width * mm] * len(header), repeatRows=1)
        block.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, "#888888"), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                   ("BACKGROUND", (0, 0), (-1, 0), "#e8e8e8")]))
        return block

    months = [f"{month:%Y-%m}" for month in report.trend.months]
    trend_chart = line_chart(months, trend_series(report.trend))
    ratio_chart = line_chart(months, ratio_series(report.ratio, report.trend.months), percent=True)
    title = _("Consumable review")
    buffer = io.BytesIO()
    pdf = SimpleDocTemplate(buffer, pagesize=landscape(A4), invariant=1, leftMargin=10 * mm, rightMargin=10 * mm,
                            topMargin=10 * mm, bottomMargin=12 * mm, title=title, author="SPD", creator="SPD")
    facts = [
        (_("Hospital"), report.hospital.name),
        (_("Period"), f"{report.period.start:%Y-%m-%d} – {report.period.end:%Y-%m-%d}"),
        (_("Review by"), dimension_labels()[report.dimension]),
        (_("High-value only"), _("yes") if report.high_value_only else _("no")),
        (_("Made at"), f"{timezone.localtime():%Y-%m-%d %H:%M}"),
    ]
    story = [
        Paragraph(text(title), ParagraphStyle("title", fontName=font, fontSize=15, leading=19)), Spacer(1, 3 * mm),
        table(["", ""], [list(fact) for fact in facts]),
        Paragraph(text(_("Cost per month")), heading), chart_drawing(trend_chart, font),
        table(trend_header(report.trend), trend_table(report.trend)),
        Paragraph(text(_("Cost by %(by)s") % {"by": dimension_labels()[report.dimension]}), heading),
        table(review_header(report.dimension), review_table(report.rows)),
        Paragraph(text(_("Consumable cost ratio (耗占比) per department and month")), heading),
        chart_drawing(ratio_chart, font),
        table(ratio_header(), ratio_table(report.ratio)),
    ]
    pdf.build(story)
    return buffer.getvalue()


def chart_drawing(chart, font: str, *, scale: float = 0.9):
    """A reportlab Drawing of a `line_chart` layout: the SVG's coordinates with y flipped (PDF y grows up)."""
    from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, Rect, String
    from reportlab.lib import colors

    height = chart.height

    def y(value: float) -> float:
        return height - value

    drawing = Drawing(chart.width * scale, chart.height * scale)
    drawing.scale(scale, scale)
    grey, ink = colors.HexColor("#d8dee6"), colors.HexColor("#1d2733")
    for tick in chart.y_ticks:
        drawing.add(Line(chart.left, y(tick.at), chart.right, y(tick.at), strokeColor=grey, strokeWidth=0.5))
        drawing.add(String(chart.label_x, y(tick.at) - 3, tick.label, fontName=font, fontSize=8, textAnchor="end"))
    for tick in chart.x_ticks:
        drawing.add(String(tick.at, y(chart.label_y) - 2, tick.label, fontName=font, fontSize=8, textAnchor="middle"))
    if chart.limit_y is not None:
        drawing.add(Line(chart.left, y(chart.limit_y), chart.right, y(chart.limit_y),
                         strokeColor=colors.HexColor("#b42318"), strokeDashArray=[4, 3]))
    for line in chart.series:
        colour = colors.HexColor(line.colour)
        drawing.add(Rect(line.legend_x, y(line.legend_y) - 2, 14, 4, fillColor=colour, strokeColor=None))
        drawing.add(String(line.legend_text_x, y(line.legend_y) - 3, line.label, fontName=font, fontSize=8))
        if len(line.points) > 1:
            drawing.add(PolyLine([coordinate for point in line.points for coordinate in (point.x, y(point.y))],
                                 strokeColor=colour, strokeWidth=1.5))
        for point in line.points:
            drawing.add(Circle(point.x, y(point.y), 2, fillColor=colour, strokeColor=None))
    drawing.add(Line(chart.left, y(chart.bottom), chart.right, y(chart.bottom), strokeColor=ink, strokeWidth=0.8))
    return drawing


# --- the background job -------------------------------------------------------------------------------

FORMATS = ("csv", "xlsx", "pdf")


def export_review(job: BackgroundJob, progress: Progress) -> JobResult:
    """The review asked for on the page (`params`: dimension, start, end, high_value, format) as a
    file: CSV/XLSX tables or the PDF with its charts."""
    params = job.params
    period = selectors.Period(datetime.date.fromisoformat(params["start"]), datetime.date.fromisoformat(params["end"]))
    dimension = params["dimension"] if params.get("dimension") in selectors.DIMENSIONS else "department"
    file_format = params["format"]
    report = build_review_report(hospital=job.hospital, dimension=dimension, period=period,
                                 high_value_only=bool(params.get("high_value")), progress=progress)
    path = scratch_file(f".{file_format}")
    if file_format == "pdf":
        path.write_bytes(render_review_pdf(report))
    else:
        write_table_file(report, file_format, path)
    progress(95)
    name = f"review-{dimension}-{period.start:%Y%m%d}-{period.end:%Y%m%d}.{file_format}"
    return JobResult(file_name=name, path=path, result={"rows": len(report.rows)})

