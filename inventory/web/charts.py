"""The chart of use against billing, laid out for an inline SVG (templates/web/reconciliation/_chart.html).

Drawn on the server: no JavaScript, no chart library, nothing fetched from elsewhere. This module
computes the geometry (scales, ticks, bars or lines, legend) in the SVG's own coordinates; the
template writes the elements, so that every word on the chart goes through the translations.

Up to BARS_UP_TO days are drawn as two bars a day (used beside billed: a day billed short shows a
shorter second bar); longer ranges (a year) in weekly bins, counted back from the last day, so that
a year is 53 pairs of bars rather than a comb. One spike must not flatten the rest: when the
largest amount is more than CLIP_RATIO times the next, the scale stops a little above the next one
and the spike's bar is drawn to the edge, marked and labelled with its amount (`clipped`). The days
of the run are shaded when the chart shows days before them.

Below it, `difference_chart` draws used − billed per day (or week): up is used and not billed
(漏收), down billed and not used (虚记, 多记) — the discrepancy itself, where the first chart shows
two near-equal bars. `findings_chart` draws the run's findings by type as horizontal bars.
"""
import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from decimal import Decimal

from django.utils.translation import get_language

from inventory.selectors.charts import DayAmounts

WIDTH, HEIGHT = 960, 340
LEFT, RIGHT, TOP, BOTTOM = 80, 16, 42, 46  # margins: the legend above, amounts on the left, dates below
FONT_SIZE = 15
LEGEND_Y = 12
SWATCH = 14
BARS_UP_TO = 62
WEEK = 7
CLIP_RATIO = 4  # a bar this many times the next largest is clipped, so that it does not flatten the others
CLIP_FROM = 5  # ...when at least this many bars are not empty (with fewer there is nothing to flatten)
CLIP_HEADROOM = 1.5  # the clipped scale reaches this far above the next largest
MAX_DATE_LABELS = 10
Y_STEPS = 4
# Written into the SVG (not only the stylesheet), so that the picture keeps its colours when it is
# copied or saved: blue and orange are told apart also without colour vision.
COLOURS = {"used": "#0b6e8a", "billed": "#d9730d", "band": "#fff3d6", "short": "#b42318", "over": "#6941c6",
           "finding": "#b42318"}


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: datetime.date
    value: Decimal
    clipped: bool = False  # drawn to the edge of a clipped scale: its amount is written beside it
    label_before: bool = False  # write that amount before the bar (it is in the right half of the chart)

    @property
    def label_y(self) -> float:
        """Where a clipped bar's amount is written: beside its far end."""
        return round(self.y + 12 if self.value >= 0 else self.y + self.height - 6, 1)

    @property
    def break_marks(self) -> str:
        """Two slanted white strokes across a clipped bar near its far end (an SVG path): the bar is
        longer than drawn."""
        y = self.y + 8 if self.value >= 0 else self.y + self.height - 12
        return (f"M{self.x} {round(y + 4, 1)} l{self.width} -4 "
                f"M{self.x} {round(y + 9, 1)} l{self.width} -4")


@dataclass(frozen=True)
class Series:
    key: str  # "used" or "billed"
    label: str
    colour: str
    bars: list[Bar]


@dataclass(frozen=True)
class LegendItem:
    key: str  # "used", "billed" or "band"
    label: str
    colour: str
    x: float  # of the swatch
    text_x: float


@dataclass(frozen=True)
class DayRow:
    day: datetime.date  # the first day of a weekly bin
    used: Decimal
    billed: Decimal
    in_band: bool
    last: datetime.date | None = None  # the last day of a weekly bin (None: one day)

    @property
    def difference(self) -> Decimal:
        return self.used - self.billed


@dataclass(frozen=True)
class Plot:
    """Every chart's picture: its size and font, and the edges of the plot within its margins."""

    width: int
    height: int
    font_size: int
    left: float
    right: float
    top: float
    bottom: float


@dataclass(frozen=True)
class Chart(Plot):
    middle: float
    plot_height: float
    zero: float  # y of the 0 line
    label_x: float  # right edge of the amounts
    tick_end: float  # lower end of a date's tick mark
    date_y: float  # baseline of the dates
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    series: list[Series]  # used, then billed
    band: tuple[float, float] | None  # x and width of the shaded run period
    band_colour: str
    legend: list[LegendItem]
    legend_y: float
    swatch: int
    days: list[DayRow]
    empty: bool  # nothing used or billed in the whole range
    bin_days: int = 1  # 1: a bar per day; WEEK: a bar per week
    clipped_at: float | None = None  # the clipped scale's top, when a spike was clipped

    @property
    def used(self) -> Series:
        return self.series[0]

    @property
    def billed(self) -> Series:
        return self.series[1]

    @property
    def first_day(self) -> datetime.date:
        return self.days[0].day

    @property
    def last_day(self) -> datetime.date:
        return self.days[-1].last or self.days[-1].day

    @property
    def clipped_bars(self) -> list[Bar]:
        return [bar for series in self.series for bar in series.bars if bar.clipped]

    @property
    def used_total(self) -> Decimal:
        return sum((row.used for row in self.days), Decimal("0.00"))

    @property
    def billed_total(self) -> Decimal:
        return sum((row.billed for row in self.days), Decimal("0.00"))

    @property
    def difference_total(self) -> Decimal:
        return self.used_total - self.billed_total


def use_and_billing_chart(
    days: Sequence[DayAmounts], *, labels: tuple[str, str, str],
    shaded: tuple[datetime.date, datetime.date] | None = None,
) -> Chart:
    """Lay out `days` (consecutive, oldest first, at least one): by day, or by week beyond
    BARS_UP_TO days. `labels` name the used and billed series and the shaded days in the legend;
    `shaded` is the (first, last) day of the run."""
    rows = binned(days)
    count = len(rows)
    left, right, top, bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    slot = (right - left) / count
    values = [amount for row in rows for amount in (row.used, row.billed)]
    low, high, step, cap = _clipped_scale(values)
    y_of = _y_scale(low, high, top, bottom)

    def centre(index: int) -> float:
        return left + (index + 0.5) * slot

    zero = y_of(0)
    bar_width, gap = slot * 0.38, slot * 0.04

    def series(key: str, label: str, offset: float) -> Series:
        bars = []
        for index, row in enumerate(rows):
            value = getattr(row, key)
            y = y_of(_clip(value, low, high))
            bars.append(Bar(round(centre(index) + offset, 1), min(y, zero), round(bar_width, 1),
                            round(abs(zero - y), 1), row.day, value, clipped=_is_clipped(value, low, high),
                            label_before=index >= count / 2))
        return Series(key, label, COLOURS[key], bars)

    band = _band(rows, shaded, left, slot)
    legend, x = [], float(left)
    for key, label in zip(("used", "billed", "band"), labels, strict=True):
        if key == "band" and band is None:
            continue
        legend.append(LegendItem(key, label, COLOURS[key], round(x, 1), round(x + SWATCH + 6, 1)))
        x += SWATCH + 6 + text_width(label) + 24
    return Chart(
        width=WIDTH, height=HEIGHT, font_size=FONT_SIZE, left=left, right=right, top=top, bottom=bottom,
        middle=round((left + right) / 2, 1), plot_height=bottom - top, zero=zero, label_x=left - 8,
        tick_end=bottom + 5, date_y=bottom + 22, x_ticks=_x_ticks(rows, centre), y_ticks=_y_ticks(low, high, step, y_of),
        series=[series("used", labels[0], -bar_width - gap / 2), series("billed", labels[1], gap / 2)],
        band=band, band_colour=COLOURS["band"], legend=legend, legend_y=LEGEND_Y, swatch=SWATCH,
        days=[
            DayRow(row.day, row.used, row.billed,
                   shaded is not None and shaded[0] <= row.day <= shaded[1], row.last)
            for row in rows
        ],
        empty=not any(values), bin_days=WEEK if count < len(days) else 1, clipped_at=cap,
    )


@dataclass(frozen=True)
class Binned:
    """Use and billing over a day, or over a week from `day` to `last`."""

    day: datetime.date
    used: Decimal
    billed: Decimal
    last: datetime.date | None = None

    @property
    def difference(self) -> Decimal:
        return self.used - self.billed


def binned(days: Sequence[DayAmounts]) -> list[Binned]:
    """The days as they are (up to BARS_UP_TO), or summed by week counted back from the last day
    (the first week may be short)."""
    if len(days) <= BARS_UP_TO:
        return [Binned(day.day, day.used, day.billed) for day in days]
    weeks = []
    for end in range(len(days), 0, -WEEK):
        chunk = days[max(0, end - WEEK):end]
        weeks.append(Binned(chunk[0].day, sum((day.used for day in chunk), Decimal("0.00")),
                            sum((day.billed for day in chunk), Decimal("0.00")), chunk[-1].day))
    return weeks[::-1]


@dataclass(frozen=True)
class DifferenceChart(Plot):
    """Used − billed per day or week: bars up (used, not billed) or down (billed, not used)."""

    zero: float
    label_x: float
    tick_end: float
    date_y: float
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    bars: list[Bar]
    colours: dict
    bin_days: int
    clipped_at: float | None
    empty: bool

    @property
    def clipped_bars(self) -> list[Bar]:
        return [bar for bar in self.bars if bar.clipped]


def difference_chart(days: Sequence[DayAmounts]) -> DifferenceChart:
    """The discrepancy itself, binned and clipped as the use and billing chart is."""
    rows = binned(days)
    height = 240
    left, right, top, bottom = LEFT, WIDTH - RIGHT, 16, height - BOTTOM
    slot = (right - left) / len(rows)
    values = [row.difference for row in rows]
    low, high, step, cap = _clipped_scale(values)
    y_of = _y_scale(low, high, top, bottom)
    zero = y_of(0)

    def centre(index: int) -> float:
        return left + (index + 0.5) * slot

    bars = []
    for index, row in enumerate(rows):
        y = y_of(_clip(row.difference, low, high))
        bars.append(Bar(round(centre(index) - slot * 0.35, 1), min(y, zero), round(slot * 0.7, 1),
                        round(abs(zero - y), 1), row.day, row.difference,
                        clipped=_is_clipped(row.difference, low, high), label_before=index >= len(rows) / 2))
    return DifferenceChart(
        width=WIDTH, height=height, font_size=FONT_SIZE, left=left, right=right, top=top, bottom=bottom, zero=zero,
        label_x=left - 8, tick_end=bottom + 5, date_y=bottom + 22, x_ticks=_x_ticks(rows, centre),
        y_ticks=_y_ticks(low, high, step, y_of), bars=bars, colours={"up": COLOURS["short"], "down": COLOURS["over"]},
        bin_days=WEEK if len(rows) < len(days) else 1, clipped_at=cap, empty=not any(values),
    )


@dataclass(frozen=True)
class FindingBar:
    kind: str
    label: str
    count: int
    amount: Decimal
    y: float
    width: float  # of the bar, in SVG units
    label_x: float  # where the amount is written, after the bar


@dataclass(frozen=True)
class FindingsChart:
    width: int
    height: int
    font_size: int
    left: float
    bar_height: float
    colour: str
    bars: list[FindingBar]


def findings_chart(kinds: Sequence[tuple[str, str, int, Decimal]]) -> FindingsChart | None:
    """The run's findings by type (kind, label, count, amount) with any, as horizontal bars of
    their amounts, largest first; None when there is none."""
    shown = sorted((kind for kind in kinds if kind[2]), key=lambda kind: (-kind[3], kind[0]))
    if not shown:
        return None
    left = min(420, max(text_width(kind[1]) for kind in shown) + 16)
    room = WIDTH - left - 180
    largest = max(float(kind[3]) for kind in shown) or 1.0
    row_height, bar_height = 28, 18
    bars = []
    for index, (kind, label, count, amount) in enumerate(shown):
        width = round(max(2.0, float(amount) / largest * room), 1)
        bars.append(FindingBar(kind, label, count, amount, index * row_height + 6, width, round(left + width + 8, 1)))
    return FindingsChart(width=WIDTH, height=len(shown) * row_height + 12, font_size=FONT_SIZE, left=left,
                         bar_height=bar_height, colour=COLOURS["finding"], bars=bars)


def _x_ticks(rows: Sequence[Binned], centre) -> list[Tick]:
    count = len(rows)
    every = max(1, math.ceil(count / MAX_DATE_LABELS))
    return [
        Tick(round(centre(index), 1), f"{row.day:%m-%d}")
        for index, row in enumerate(rows) if (count - 1 - index) % every == 0  # the last always
    ]


def _y_ticks(low: float, high: float, step: float, y_of, shown=None) -> list[Tick]:
    """A tick a step from `low` to `high`, labelled by `shown` (compact_money by default)."""
    shown = shown or compact_money
    return [Tick(y_of(low + step * n), shown(low + step * n)) for n in range(int(round((high - low) / step)) + 1)]


def _y_scale(low: float, high: float, top: float, bottom: float):
    def y_of(value: Decimal | float) -> float:
        return round(bottom - (float(value) - low) / (high - low) * (bottom - top), 1)

    return y_of


def _clip(value: Decimal, low: float, high: float) -> float:
    return min(max(float(value), low), high)


def _is_clipped(value: Decimal, low: float, high: float) -> bool:
    return not low <= float(value) <= high


def _clipped_scale(values: Sequence[Decimal]) -> tuple[float, float, float, float | None]:
    """`_scale` of the values, clipped when one stands CLIP_RATIO times above the next largest
    (in size, either sign): then the scale reaches CLIP_HEADROOM times the next largest and that
    bar is clipped. The fourth value is where the scale was clipped (None: not clipped)."""
    sizes = sorted((abs(float(value)) for value in values if value), reverse=True)
    if len(sizes) >= CLIP_FROM and sizes[0] > CLIP_RATIO * sizes[1]:
        cap = sizes[1] * CLIP_HEADROOM
        kept = [min(max(float(value), -cap), cap) for value in values]
        low, high, step = _scale(Decimal(str(min(kept))), Decimal(str(max(kept))))
        return low, high, step, cap
    low, high, step = _scale(min(values), max(values))
    return low, high, step, None


def text_width(text: str, size: int = FONT_SIZE) -> float:
    """About how wide `text` is drawn (SVG text cannot be measured on the server): a Chinese
    character about as wide as the font is high, a Latin letter a little over half of that."""
    return sum(size if ord(char) >= 0x2E80 else size * 0.6 for char in text)


def _band(
    days: Sequence[Binned], shaded: tuple[datetime.date, datetime.date] | None, left: float, slot: float
) -> tuple[float, float] | None:
    if shaded is None:
        return None
    inside = [index for index, day in enumerate(days) if shaded[0] <= (day.last or day.day) and day.day <= shaded[1]]
    if not inside or len(inside) == len(days):  # shading every day would set nothing apart
        return None
    return round(left + inside[0] * slot, 1), round((inside[-1] - inside[0] + 1) * slot, 1)


def _scale(low: Decimal, high: Decimal) -> tuple[float, float, float]:
    """A y range from a round number at or below min(0, low) to one at or above max(0, high), in
    about Y_STEPS round steps (1, 2, 2.5 or 5 times a power of ten)."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if high == low:
        high = 100.0  # nothing at all: an empty chart from ¥0 to ¥100
    raw = (high - low) / Y_STEPS
    power = 10 ** math.floor(math.log10(raw))
    step = next(power * factor for factor in (1, 2, 2.5, 5, 10) if power * factor >= raw)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def compact_money(value: float) -> str:
    """An axis label: ¥1.2万 / ¥300万 in Chinese, ¥12k / ¥3M in English; small amounts as they are."""
    sign, value = ("-" if value < 0 else ""), abs(value)
    if (get_language() or "").startswith("zh"):
        units = ((1e8, "亿"), (1e4, "万"))
    else:
        units = ((1e9, "B"), (1e6, "M"), (1e3, "k"))
    for size, suffix in units:
        if value >= size:
            return f"{sign}¥{_short(value / size)}{suffix}"
    return f"{sign}¥{_short(value)}"


def _short(number: float) -> str:
    return f"{number:.2f}".rstrip("0").rstrip(".") or "0"


# --- the small charts' shared frame ---------------------------------------------------------------
# The dashboard's bar charts and the trend line charts: a picture of a fixed size, a plot within
# its margins, amounts from 0 up on the y axis (labelled at its left), labels under the x axis.

SMALL_FONT = 13


@dataclass(frozen=True)
class ChartFrame(Plot):
    """What a small chart's template draws around its content: the plot, where the amounts
    (label_x, their right edge) and the x labels (label_y, their baseline) are written, the y axis's
    ticks, and the amounts at its ends (`y_of` places an amount)."""

    label_x: float
    label_y: float
    y_ticks: list[Tick]
    y_low: float
    y_high: float

    def y_of(self, value: Decimal | float) -> float:
        return _y_scale(self.y_low, self.y_high, self.top, self.bottom)(value)

    def around(self, chart_class, **content):
        """A chart of `chart_class` (a ChartFrame with fields for its content) in this frame."""
        return chart_class(**{field.name: getattr(self, field.name) for field in fields(ChartFrame)}, **content)


@dataclass(frozen=True)
class FrameSize:
    """A small chart's size and margins in SVG units: the plot runs from `left` to width − right and
    from `top` to height − bottom."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int

    def frame(self, *, high: Decimal, shown=compact_money) -> ChartFrame:
        """The frame with a y axis from 0 to a round number at or above `high`, its ticks labelled by `shown`."""
        left, right, top, bottom = self.left, self.width - self.right, self.top, self.height - self.bottom
        low, top_value, step = _scale(Decimal(0), high)
        y_of = _y_scale(low, top_value, top, bottom)
        return ChartFrame(
            width=self.width, height=self.height, font_size=SMALL_FONT, left=left, right=right, top=top,
            bottom=bottom, label_x=left - 6, label_y=bottom + 18, y_ticks=_y_ticks(low, top_value, step, y_of, shown),
            y_low=low, y_high=top_value,
        )


# --- the dashboard's bar charts -------------------------------------------------------------------
# One series of amounts of money (never quantities: boxes and pieces do not add up), a bar per
# period, each bar a link to the list behind it and titled with its numbers; the page shows the same
# numbers in a table beside the chart.

SMALL = FrameSize(520, 260, left=64, right=12, top=24, bottom=40)


@dataclass(frozen=True)
class BarInput:
    label: str  # under the bar (a week, a month)
    value: Decimal
    title: str  # the bar's tooltip and accessible name: the period and its numbers in words
    href: str = ""  # the list of what the bar counts
    colour: str = COLOURS["used"]


@dataclass(frozen=True)
class ValueBar:
    x: float
    y: float
    width: float
    height: float
    centre: float
    label: str
    title: str
    href: str
    colour: str


@dataclass(frozen=True)
class BarChart(ChartFrame):
    bars: list[ValueBar]
    empty: bool


def bar_chart(bars: Sequence[BarInput], *, every: int = 1) -> BarChart:
    """Lay out one bar per input (at least one), amounts from 0 up; `every` n-th bar is labelled
    below (counted from the last, which always is)."""
    frame = SMALL.frame(high=max(bar.value for bar in bars))
    slot = (frame.right - frame.left) / len(bars)
    laid = []
    for index, bar in enumerate(bars):
        y = frame.y_of(bar.value)
        centre = round(frame.left + (index + 0.5) * slot, 1)
        laid.append(ValueBar(
            round(frame.left + index * slot + slot * 0.15, 1), y, round(slot * 0.7, 1), round(frame.bottom - y, 1),
            centre, bar.label if (len(bars) - 1 - index) % every == 0 else "", bar.title, bar.href, bar.colour,
        ))
    return frame.around(BarChart, bars=laid, empty=not any(bar.value for bar in bars))


# --- trend lines: one line per series over months -------------------------------------------------

LINE = FrameSize(720, 300, left=72, right=16, top=48, bottom=40)
LINE_COLOURS = ("#1d2733", "#0b6e8a", "#d9730d", "#6941c6", "#2e7d32", "#b42318", "#8a6d0b")


@dataclass(frozen=True)
class LinePoint:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class LineSeries:
    label: str
    colour: str
    points: list[LinePoint]
    legend_x: float
    legend_y: float

    @property
    def legend_text_x(self) -> float:
        return round(self.legend_x + SWATCH + 4, 1)

    @property
    def path(self) -> str:
        """The SVG polyline `points` attribute."""
        return " ".join(f"{point.x},{point.y}" for point in self.points)


@dataclass(frozen=True)
class LineChart(ChartFrame):
    x_ticks: list[Tick]
    series: list[LineSeries]
    limit_y: float | None  # a horizontal red line (e.g. a 耗占比 red line), None without one
    empty: bool


def line_chart(
    x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[Decimal | None]]], *, percent: bool = False,
    limit: Decimal | None = None,
) -> LineChart:
    """Lay out one line per (label, values) over the x labels (months), from 0 up; a None value is a
    gap (e.g. a month without revenue). Amounts are labelled in yuan, or in % with `percent`; `limit`
    draws a horizontal line at that value (a red line)."""
    values = [value for _, line in series for value in line if value is not None]

    def shown(value: float) -> str:
        return f"{_short(value)}%" if percent else compact_money(value)

    frame = LINE.frame(high=max([*values, limit or Decimal(0), Decimal(0)]), shown=shown)
    slot = (frame.right - frame.left) / max(len(x_labels), 1)

    def x_of(index: int) -> float:
        return round(frame.left + (index + 0.5) * slot, 1)

    laid, legend_x, legend_y = [], float(frame.left), float(LEGEND_Y)
    for index, (label, line) in enumerate(series):
        points = [LinePoint(x_of(n), frame.y_of(value), f"{label} {x_labels[n]}: {value}{'%' if percent else ''}")
                  for n, value in enumerate(line) if value is not None]
        width = SWATCH + 12 + text_width(label, SMALL_FONT)
        if legend_x + width > frame.right and legend_x > frame.left:  # the legend wraps to a second row
            legend_x, legend_y = float(frame.left), legend_y + 18
        laid.append(LineSeries(label, LINE_COLOURS[index % len(LINE_COLOURS)], points, legend_x, legend_y))
        legend_x += width
    every = max(1, math.ceil(len(x_labels) / 12))
    return frame.around(
        LineChart,
        x_ticks=[Tick(x_of(n), label) for n, label in enumerate(x_labels) if (len(x_labels) - 1 - n) % every == 0],
        series=laid, limit_y=frame.y_of(limit) if limit is not None else None, empty=not any(values),
    )
