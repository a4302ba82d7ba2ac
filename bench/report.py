# SPDX-License-Identifier: GPL-3.0-or-later
"""Figures of the benchmark: statistics, the Go/Python table, importtime parsing."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

IMPLS = ("go", "py")


def median(values: Sequence[float]) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def p95(values: Sequence[float]) -> Optional[float]:
    """Nearest-rank 95th percentile: a value that was actually measured."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    # a count (duplicates, failures): no ratio, 0 is the expected value
    is_count: bool = False
    # only ours has it (the agent's RSS): Go's column is "-", not a missing value
    py_only: bool = False
    values: Dict[str, Optional[float]] = field(default_factory=lambda: {impl: None for impl in IMPLS})
    samples: Dict[str, int] = field(default_factory=lambda: {impl: 0 for impl in IMPLS})

    @property
    def ratio(self) -> Optional[float]:
        go, py = self.values["go"], self.values["py"]
        if self.is_count or go is None or py is None or go <= 0:
            return None
        return py / go

    def to_dict(self) -> Dict[str, object]:
        d = asdict(self)
        d.update(go=self.values["go"], py=self.values["py"], ratio=self.ratio)
        return d


class Figures:
    """Ordered figures; unset values stay None and print as n/a."""

    def __init__(self) -> None:
        self._by_key: Dict[str, Figure] = {}

    def declare(self, key: str, label: str, unit: str, is_count: bool = False, py_only: bool = False) -> None:
        self._by_key[key] = Figure(key, label, unit, is_count, py_only)

    def set(self, key: str, impl: str, value: Optional[float], samples: int = 1) -> None:
        figure = self._by_key[key]
        figure.values[impl] = value
        figure.samples[impl] = samples if value is not None else 0

    def __iter__(self):
        return iter(self._by_key.values())

    def extend(self, other: "Figures") -> None:
        for figure in other:
            self._by_key[figure.key] = figure

    def __getitem__(self, key: str) -> Figure:
        return self._by_key[key]


def _cell(value: Optional[float], unit: str) -> str:
    if value is None:
        return "n/a"
    if unit in ("", "count"):
        return "%d" % value
    return "%.1f" % value if value >= 10 else "%.2f" % value


def table(figures: Figures) -> str:
    rows = [("figure", "Go", "Python", "Py/Go")]
    for f in figures:
        label = "%s (%s)" % (f.label, f.unit) if f.unit and f.unit != "count" else f.label
        ratio = "-" if f.is_count or f.py_only else ("n/a" if f.ratio is None else "%.2fx" % f.ratio)
        go = "-" if f.py_only else _cell(f.values["go"], f.unit)
        rows.append((label, go, _cell(f.values["py"], f.unit), ratio))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# `python -X importtime` lines: "import time:  self [us] | cumulative | name",
# the name indented two spaces per nesting level.
_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


@dataclass
class ImportEntry:
    module: str
    self_us: int
    cumulative_us: int
    depth: int


def parse_importtime(stderr: str) -> List[ImportEntry]:
    entries = []
    for line in stderr.splitlines():
        m = _IMPORTTIME.match(line)
        if m:
            depth = max(0, (len(m.group(3)) - 1) // 2)
            entries.append(ImportEntry(m.group(4), int(m.group(1)), int(m.group(2)), depth))
    return entries


def importtime_summary(entries: List[ImportEntry], top: int = 10) -> Dict[str, object]:
    return {
        "total_ms": sum(e.cumulative_us for e in entries if e.depth == 0) / 1000.0,
        "modules": len(entries),
        "top_cumulative": [asdict(e) for e in sorted(entries, key=lambda e: -e.cumulative_us)[:top]],
        "top_self": [asdict(e) for e in sorted(entries, key=lambda e: -e.self_us)[:top]],
    }


def importtime_text(title: str, summary: Dict[str, object]) -> str:
    lines = ["%s: %d modules, %.1f ms in top-level imports (inflated by -X importtime itself)" % (title, summary["modules"], summary["total_ms"])]
    for heading, key, column in (("top-10 cumulative", "top_cumulative", "cumulative_us"), ("top-10 self", "top_self", "self_us")):
        lines.append("  %s:" % heading)
        for e in summary[key]:  # type: ignore[union-attr]
            lines.append("    %8.1f ms  %s%s" % (e[column] / 1000.0, "  " * e["depth"], e["module"]))
    return "\n".join(lines)
