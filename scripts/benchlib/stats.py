"""Medians, p99 and per-round ratios: pure functions over the measurements.

Ratios are computed per interleaved round (both sides measured within seconds of each other) and
the median over rounds is taken, so that machine drift between rounds cancels out.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def p99(values: Sequence[float]) -> float:
    if not values:
        return math.nan
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[98])


def round_ratio(mine: Sequence[float | None], theirs: Sequence[float | None]) -> float:
    """Median over rounds of mine[r] / theirs[r], over the rounds where both were measured."""
    ratios = [x / y for x, y in zip(mine, theirs, strict=False) if x is not None and y is not None and y > 0]
    return median(ratios)
