"""The chart of use against billing, laid out for an inline SVG (templates/web/reconciliation/_chart.html).

Drawn on the server: no JavaScript, no chart library, nothing fetched from elsewhere. This module
computes the geometry (scales, ticks, bars or lines, legend) in the SVG's own coordinates; the
template writes the elements, so that every word on the chart goes through the translations.

Up to BARS_UP_TO days are drawn as two bars a day (used beside billed: a day billed short shows a
shorter second bar); longer ranges as two lines. The days of the run are shaded when the chart shows days before them.
"""
import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import get_language

from inventory.selectors.charts import DayAmounts

WIDTH, HEIGHT = 960, 340
LEFT, RIGHT, TOP, BOTTOM = 80, 16, 42, 46  # margins: the legend above, amounts on the left, dates below
FONT_SIZE = 15
LEGEND_Y = 12
SWATCH = 14
BARS_UP_TO = 62
MAX_DATE_LABELS = 10
Y_STEPS = 4
# Written into the SVG (not only the stylesheet), so that the picture keeps its colours when it is
# copied or saved: blue and orange are told apart also without colour vision.
COLOURS = {"used": "#0b6e8a", "billed": "#d9730d", "band": "#fff3d6"}


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


@dataclass(frozen=True)
class Series:
    key: str  # "used" or "billed"
    label: str
    colour: str
    bars: list[Bar]  # when drawn as bars
    points: str  # the polyline, when drawn as a line


@dataclass(frozen=True)
class LegendItem:
    key: str  # "used", "billed" or "band"
    label: str
    colour: str
    x: float  # of the swatch
    text_x: float


@dataclass(frozen=True)
class DayRow:
    day: datetime.date
    used: Decimal
    billed: Decimal
    in_band: bool

    @property
    def difference(self) -> Decimal:
        return self.used - self.billed


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    font_size: int
    left: float
    right: float
    top: float
    bottom: float
    middle: float
    plot_height: float
    zero: float  # y of the 0 line
    label_x: float  # right edge of the amounts
    tick_end: float  # lower end of a date's tick mark
    date_y: float  # baseline of the dates
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    series: list[Series]  # used, then billed
    as_bars: bool
    band: tuple[float, float] | None  # x and width of the shaded run period
    band_colour: str
    legend: list[LegendItem]
    legend_y: float
    swatch: int
    days: list[DayRow]
    empty: bool  # nothing used or billed in the whole range

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
        return self.days[-1].day

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
    """Lay out `days` (consecutive, oldest first, at least one). `labels` name the used and billed
    series and the shaded days in the legend; `shaded` is the (first, last) day of the run."""
    count = len(days)
    left, right, top, bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    slot = (right - left) / count
    values = [amount for day in days for amount in (day.used, day.billed)]
    low, high, step = _scale(min(values), max(values))

    def y_of(value: Decimal | float) -> float:
        return round(bottom - (float(value) - low) / (high - low) * (bottom - top), 1)

    def centre(index: int) -> float:
        return left + (index + 0.5) * slot

    zero = y_of(0)
    as_bars = count <= BARS_UP_TO
    bar_width, gap = slot * 0.38, slot * 0.04

    def series(key: str, label: str, offset: float) -> Series:
        bars, points = [], []
        for index, day in enumerate(days):
            value = getattr(day, key)
            y = y_of(value)
            points.append(f"{round(centre(index), 1)},{y}")
            if as_bars:
                bars.append(Bar(round(centre(index) + offset, 1), min(y, zero), round(bar_width, 1),
                                round(abs(zero - y), 1), day.day, value))
        return Series(key, label, COLOURS[key], bars, " ".join(points))

    every = max(1, math.ceil(count / MAX_DATE_LABELS))
    x_ticks = [
        Tick(round(centre(index), 1), f"{day.day:%m-%d}")
        for index, day in enumerate(days) if (count - 1 - index) % every == 0  # the last day always
    ]
    y_ticks = [
        Tick(y_of(low + step * n), compact_money(low + step * n)) for n in range(int(round((high - low) / step)) + 1)
    ]
    band = _band(days, shaded, left, slot)
    legend, x = [], float(left)
    for key, label in zip(("used", "billed", "band"), labels, strict=True):
        if key == "band" and band is None:
            continue
        legend.append(LegendItem(key, label, COLOURS[key], round(x, 1), round(x + SWATCH + 6, 1)))
        x += SWATCH + 6 + text_width(label) + 24
    return Chart(
        width=WIDTH, height=HEIGHT, font_size=FONT_SIZE, left=left, right=right, top=top, bottom=bottom,
        middle=round((left + right) / 2, 1), plot_height=bottom - top, zero=zero, label_x=left - 8,
        tick_end=bottom + 5, date_y=bottom + 22, x_ticks=x_ticks, y_ticks=y_ticks,
        series=[series("used", labels[0], -bar_width - gap / 2), series("billed", labels[1], gap / 2)],
        as_bars=as_bars, band=band, band_colour=COLOURS["band"], legend=legend, legend_y=LEGEND_Y, swatch=SWATCH,
        days=[
            DayRow(day.day, day.used, day.billed, shaded is not None and shaded[0] <= day.day <= shaded[1])
            for day in days
        ],
        empty=not any(values),
    )


def text_width(text: str, size: int = FONT_SIZE) -> float:
    """About how wide `text` is drawn (SVG text cannot be measured on the server): a Chinese
    character about as wide as the font is high, a Latin letter a little over half of that."""
    return sum(size if ord(char) >= 0x2E80 else size * 0.6 for char in text)


def _band(
    days: Sequence[DayAmounts], shaded: tuple[datetime.date, datetime.date] | None, left: float, slot: float
) -> tuple[float, float] | None:
    if shaded is None:
        return None
    inside = [index for index, day in enumerate(days) if shaded[0] <= day.day <= shaded[1]]
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


# --- the dashboard's bar charts -------------------------------------------------------------------
# One series of amounts of money (never quantities: boxes and pieces do not add up), a bar per
# period, each bar a link to the list behind it and titled with its numbers; the page shows the same
# numbers in a table beside the chart.

SMALL_WIDTH, SMALL_HEIGHT = 520, 260
SMALL_LEFT, SMALL_RIGHT, SMALL_TOP, SMALL_BOTTOM = 64, 12, 24, 40
SMALL_FONT = 13


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
class BarChart:
    width: int
    height: int
    font_size: int
    left: float
    right: float
    top: float
    bottom: float
    label_x: float
    label_y: float
    y_ticks: list[Tick]
    bars: list[ValueBar]
    empty: bool


def bar_chart(bars: Sequence[BarInput], *, every: int = 1) -> BarChart:
    """Lay out one bar per input (at least one), amounts from 0 up; `every` n-th bar is labelled
    below (counted from the last, which always is)."""
    left, right, top, bottom = SMALL_LEFT, SMALL_WIDTH - SMALL_RIGHT, SMALL_TOP, SMALL_HEIGHT - SMALL_BOTTOM
    low, high, step = _scale(Decimal(0), max(bar.value for bar in bars))
    slot = (right - left) / len(bars)

    def y_of(value: Decimal | float) -> float:
        return round(bottom - (float(value) - low) / (high - low) * (bottom - top), 1)

    laid = []
    for index, bar in enumerate(bars):
        y = y_of(bar.value)
        centre = round(left + (index + 0.5) * slot, 1)
        laid.append(ValueBar(
            round(left + index * slot + slot * 0.15, 1), y, round(slot * 0.7, 1), round(bottom - y, 1), centre,
            bar.label if (len(bars) - 1 - index) % every == 0 else "", bar.title, bar.href, bar.colour,
        ))
    return BarChart(
        width=SMALL_WIDTH, height=SMALL_HEIGHT, font_size=SMALL_FONT, left=left, right=right, top=top,
        bottom=bottom, label_x=left - 6, label_y=bottom + 18,
        y_ticks=[Tick(y_of(low + step * n), compact_money(low + step * n))
                 for n in range(int(round((high - low) / step)) + 1)],
        bars=laid, empty=not any(bar.value for bar in bars),
    )
