"""The trend chart of supplier evaluation: each supplier's score over successive finalised runs, laid
out for an inline SVG (templates/web/evaluation/_trend_chart.html). Drawn on the server, no
JavaScript and nothing fetched; this module computes the geometry, the template writes the elements.

Scores are 0–1 (linear weighting and TOPSIS closeness alike), so the vertical scale is fixed.
"""
from dataclasses import dataclass
from decimal import Decimal

from inventory.models import EvaluationRun
from inventory.selectors.evaluation import TrendPoint

WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 48, 180, 16, 40  # the legend on the right, run names below
COLOURS = ("#0b6e8a", "#d9730d", "#6941c6", "#12805c", "#b42318", "#5b6776", "#c11574", "#1d4ed8")
MAX_LINES = len(COLOURS)


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Line:
    key: int  # the supplier's id
    label: str
    colour: str
    points: str  # "x,y x,y …" for a polyline
    dots: list[Dot]
    legend_y: float


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class TrendChart:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    legend_x: float
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    lines: list[Line]

    @property
    def empty(self) -> bool:
        return not self.lines


def trend_chart(runs: list[EvaluationRun], series: list[tuple[int, str, list[TrendPoint]]]) -> TrendChart:
    """`series`: (supplier id, label, its points), at most MAX_LINES drawn."""
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    step = (right - LEFT) / max(len(runs) - 1, 1)
    x_of = {run.pk: round(LEFT + (index * step if len(runs) > 1 else (right - LEFT) / 2), 1)
            for index, run in enumerate(runs)}

    def y_of(score: Decimal) -> float:
        return round(bottom - float(score) * (bottom - TOP), 1)

    lines = []
    for number, (key, label, points) in enumerate(series[:MAX_LINES]):
        dots = [Dot(x_of[point.run.pk], y_of(point.score), f"{label} · {point.run.name}: {point.score:.4f} "
                    f"(#{point.rank}/{point.of})") for point in points if point.run.pk in x_of]
        if dots:
            lines.append(Line(key, label, COLOURS[number], " ".join(f"{dot.x},{dot.y}" for dot in dots), dots,
                              TOP + 6 + number * 20))
    return TrendChart(
        WIDTH, HEIGHT, LEFT, right, TOP, bottom, right + 16,
        [Tick(x_of[run.pk], run.name[:14]) for run in runs],
        [Tick(y_of(Decimal(step) / 4), f"{step / 4:.2f}") for step in range(5)],
        lines,
    )
