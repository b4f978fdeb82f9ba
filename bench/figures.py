"""Figures, their statistics and the report: the printed table and bench/results/latest.json.

Every figure is measured several times, each time next to its baseline (same repetition, same
machine), and judged by the ratio figure ÷ baseline of each repetition: drift on a shared machine
moves both. The table shows medians and the spread (min–max) over the repetitions.
"""
from __future__ import annotations

import datetime
import json
import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Target:
    """What a figure should achieve: `text` for people, `check(figure)` decides."""

    text: str
    check: Callable[[Figure], bool]


@dataclass
class Figure:
    benchmark: str
    name: str
    unit: str
    samples: list[float] = field(default_factory=list)
    baseline_name: str = ""
    baseline_samples: list[float] = field(default_factory=list)
    target: Target | None = None
    note: str = ""
    available: bool = True
    higher_is_better: bool = False

    def add(self, value: float, baseline: float | None = None) -> None:
        self.samples.append(value)
        if baseline is not None:
            self.baseline_samples.append(baseline)

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline_samples) if self.baseline_samples else None

    @property
    def ratios(self) -> list[float]:
        return [value / base for value, base in zip(self.samples, self.baseline_samples, strict=False) if base]

    @property
    def ratio(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None

    @property
    def met(self) -> bool | None:
        if self.target is None or not self.available or not self.samples:
            return None
        return bool(self.target.check(self))

    def as_dict(self) -> dict:
        ratios = self.ratios
        return {
            "benchmark": self.benchmark, "figure": self.name, "unit": self.unit, "available": self.available,
            "median": self.median, "min": min(self.samples, default=None), "max": max(self.samples, default=None),
            "iqr": _iqr(self.samples), "samples": self.samples, "baseline": self.baseline_name,
            "baseline_median": self.baseline_median, "baseline_samples": self.baseline_samples,
            "ratio": self.ratio, "ratio_min": min(ratios, default=None), "ratio_max": max(ratios, default=None),
            "target": self.target.text if self.target else None, "met": self.met, "note": self.note,
        }


def _iqr(samples: list[float]) -> list[float] | None:
    if len(samples) < 4:
        return None
    quartiles = statistics.quantiles(samples, n=4)
    return [quartiles[0], quartiles[2]]


def number(value: float | None) -> str:
    if value is None:
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    context: dict = field(default_factory=dict)

    def extend(self, figures: list[Figure]) -> None:
        self.figures.extend(figures)

    def rows(self) -> list[list[str]]:
        rows = []
        for figure in self.figures:
            if not figure.available:
                rows.append([figure.benchmark, figure.name, "not available", "", figure.baseline_name, "",
                             figure.target.text if figure.target else "", "n/a"])
                continue
            spread = f"{number(min(figure.samples))}–{number(max(figure.samples))}" if figure.samples else "—"
            baseline = f"{number(figure.baseline_median)} {figure.baseline_name}" if figure.baseline_name else ""
            ratio = f"{figure.ratio:.3g}×" if figure.ratio is not None else "—"
            met = {True: "yes", False: "NO", None: ""}[figure.met]
            rows.append([figure.benchmark, figure.name, f"{number(figure.median)} {figure.unit}", spread, baseline,
                         ratio, figure.target.text if figure.target else "", met])
        return rows

    def table(self) -> str:
        header = ["benchmark", "figure", "median", "spread (min–max)", "baseline (median)", "ratio", "target", "met?"]
        rows = [header, *self.rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = []
        for index, row in enumerate(rows):
            lines.append(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
            if index == 0:
                lines.append("-+-".join("-" * width for width in widths))
        notes = [f"  {figure.benchmark} / {figure.name}: {figure.note}" for figure in self.figures if figure.note]
        return "\n".join(lines + (["", "notes:", *notes] if notes else []))

    def as_dict(self) -> dict:
        return {
            "written_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": _cpu_count()},
            **self.context,
            "figures": [figure.as_dict() for figure in self.figures],
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), ensure_ascii=False, indent=2, default=str) + "\n")


def _cpu_count() -> int | None:
    import os

    return os.cpu_count()
