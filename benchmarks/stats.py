"""The pure half of the benchmark runner: figures with targets, percentiles, the machine
description and the table. Nothing here loads a model or times anything."""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OPS = {"<=": "≤", ">=": "≥"}


def percentile(values: list[float] | tuple[float, ...], q: float) -> float:
    """The q-th percentile with linear interpolation between ranks (NumPy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def statistic(values: tuple[float, ...], stat: str) -> float:
    """median, p95, max or mean of the samples; NaN when there are none (a skipped figure)."""
    if not values:
        return math.nan
    if stat == "median":
        return percentile(values, 50)
    if stat == "p95":
        return percentile(values, 95)
    if stat == "max":
        return max(values)
    if stat == "mean":
        return sum(values) / len(values)
    raise ValueError(f"unknown statistic {stat!r}")


@dataclass(frozen=True)
class Target:
    """A goal on one statistic of a figure, such as `median <= 4`."""

    op: str
    value: float
    stat: str = "median"

    def met(self, samples: tuple[float, ...]) -> bool | None:
        have = statistic(samples, self.stat)
        if math.isnan(have):
            return None
        return have <= self.value if self.op == "<=" else have >= self.value

    def label(self, unit: str) -> str:
        return f"{self.stat} {OPS[self.op]} {self.value:g} {unit}".rstrip()


@dataclass(frozen=True)
class Figure:
    """One measured quantity: its samples in `unit`, and optionally the target it must meet.

    A figure with no samples was skipped; `note` says why."""

    section: str
    name: str
    unit: str
    samples: tuple[float, ...]
    target: Target | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistic(self.samples, "median")

    @property
    def p95(self) -> float:
        return statistic(self.samples, "p95")

    @property
    def ok(self) -> bool | None:
        return self.target.met(self.samples) if self.target else None

    def to_json(self) -> dict[str, object]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 6)

        return {
            "section": self.section,
            "name": self.name,
            "unit": self.unit,
            "n": len(self.samples),
            "median": clean(self.median),
            "p95": clean(self.p95),
            "mean": clean(statistic(self.samples, "mean")),
            "max": clean(statistic(self.samples, "max")),
            "target": self.target.label(self.unit) if self.target else None,
            "ok": self.ok,
            "note": self.note,
            "samples": [round(s, 6) for s in self.samples],
        }


def by_section(figures: list[Figure]) -> list[Figure]:
    """Figures grouped by section, sections in order of first appearance, so a section
    measured in two phases still prints as one block."""
    order = {s: i for i, s in reversed(list(enumerate(f.section for f in figures)))}
    return sorted(figures, key=lambda f: order[f.section])


def fmt(x: float) -> str:
    """Three significant figures, without scientific notation for everyday magnitudes."""
    if math.isnan(x):
        return "—"
    if x == 0:
        return "0"
    magnitude = abs(x)
    if magnitude >= 1000:
        return f"{x:,.0f}"
    if magnitude >= 100:
        return f"{x:.0f}"
    if magnitude >= 10:
        return f"{x:.1f}"
    if magnitude >= 1:
        return f"{x:.2f}"
    return f"{x:.{2 - math.floor(math.log10(magnitude))}f}"


def render_table(figures: list[Figure], header: list[str], footer: list[str]) -> str:
    """A plain-text table, one block per section, with the target and ✓/✗ next to each figure."""
    rows = [("figure", "median", "p95", "unit", "n", "target", "ok")]
    kinds = ["head"]
    section = None
    for f in figures:
        if f.section != section:
            section = f.section
            rows.append((section, "", "", "", "", "", ""))
            kinds.append("section")
        mark = {True: "✓", False: "✗", None: ""}[f.ok]
        target = f.target.label(f.unit) if f.target else ""
        rows.append(
            ("  " + f.name, fmt(f.median), fmt(f.p95), f.unit, str(len(f.samples)), target, mark)
        )
        kinds.append("row")
        if f.note:
            rows.append(("    " + f.note, "", "", "", "", "", ""))
            kinds.append("note")
    measured = [r for r, k in zip(rows, kinds, strict=True) if k in ("head", "row")]
    widths = [max(len(r[i]) for r in measured) for i in range(7)]
    lines = [*header, ""]
    for row, kind in zip(rows, kinds, strict=True):
        if kind in ("section", "note"):
            lines.append(row[0])
            continue
        cells = [row[0].ljust(widths[0])]
        cells += [row[i].rjust(widths[i]) for i in (1, 2)]
        cells += [row[i].ljust(widths[i]) for i in (3,)]
        cells += [row[i].rjust(widths[i]) for i in (4,)]
        cells += [row[i].ljust(widths[i]) for i in (5, 6)]
        lines.append("  ".join(cells).rstrip())
        if kind == "head":
            lines.append("-" * len(lines[-1]))
    if footer:
        lines += ["", *footer]
    return "\n".join(lines)


def recall_at_k(
    exact_scores: np.ndarray, approx_ids: np.ndarray, approx_scores: np.ndarray
) -> float:
    """Share of the approximate top-k that belongs in the exact top-k, one query.

    A result scoring at least the exact k-th score counts as a hit: the synthetic corpus
    recombines a few dozen sentences, so equal-scoring neighbours are common and whichever
    of them a search returns is equally right."""
    k = len(exact_scores)
    threshold = float(exact_scores[-1]) - 1e-6
    pairs = zip(approx_ids, approx_scores, strict=True)
    hits = sum(1 for i, s in pairs if i >= 0 and s >= threshold)
    return min(hits, k) / k


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else whatever `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict[str, object]:
    """Where and when the figures were taken; the load average says how busy the box was."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "processor": platform.processor(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def progress_text(label: str, done: int, total: int, elapsed: float, width: int = 30) -> str:
    """One progress-bar line: label, bar, counts, rate and time left."""
    share = done / total if total else 1.0
    filled = round(width * share)
    rate = done / elapsed if elapsed > 0 else 0.0
    left = (total - done) / rate if rate > 0 else math.nan
    eta = "—" if math.isnan(left) else f"{left:.0f}s"
    bar = "#" * filled + "." * (width - filled)
    return f"{label} [{bar}] {done}/{total} {rate:.0f}/s eta {eta}"
