"""The value distribution of one band: what stretches and colour ramps need when they do not look at
a request's own pixels (statistics, percentiles, the cumulative distribution for equalisation).

It is kept as a step function: sorted support values and, for each, the share of pixels at or below
it. A sample keeps its values (beyond a limit, evenly spaced order statistics); a histogram keeps
its bin centres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

_MAX_POINTS = 65536


@dataclass(frozen=True)
class BandDistribution:
    min: float
    max: float
    mean: float
    stdv: float
    values: np.ndarray | None = None        # sorted support values (None: statistics only)
    cumulative: np.ndarray | None = None    # P(X <= values[i])

    @classmethod
    def of(cls, values: np.ndarray, points: int = _MAX_POINTS) -> BandDistribution:
        """From pixel values (masked pixels already left out); NaN and infinities are ignored. More
        than `points` values are kept as that many evenly spaced order statistics."""
        v = np.asarray(values, dtype=np.float64).ravel()
        v = np.sort(v[np.isfinite(v)])
        n = v.size
        if n == 0:
            return cls(0.0, 1.0, 0.5, 0.0, np.array([0.0]), np.array([1.0]))
        if n > points:
            idx = np.unique(np.linspace(0, n - 1, points).round().astype(np.int64))
            support, cumulative = v[idx], (idx + 1) / n
        else:
            support, cumulative = v, np.arange(1, n + 1) / n
        return cls(float(v[0]), float(v[-1]), float(v.mean()), float(v.std()), support, cumulative)

    @classmethod
    def of_histogram(cls, stats: tuple[float, float, float, float], lo: float, hi: float,
                     counts: ArrayLike) -> BandDistribution:
        """From known statistics (min, max, mean, stdv) and a histogram of `counts` over [lo, hi]."""
        counts = np.asarray(counts, dtype=np.float64)
        total = counts.sum()
        if total <= 0:
            return cls(*stats)
        width = (hi - lo) / counts.size
        centres = lo + (np.arange(counts.size) + 0.5) * width
        keep = counts > 0
        return cls(*stats, centres[keep], np.cumsum(counts)[keep] / total)

    @property
    def has_shape(self) -> bool:
        return self.values is not None

    def quantile(self, q: float) -> float:
        """The smallest value with at least a share `q` of the pixels at or below it (the inverse
        of the empirical distribution function)."""
        if self.values is None or self.cumulative is None:
            raise ValueError("a distribution of statistics only has no quantiles (see has_shape)")
        i = int(np.searchsorted(self.cumulative, q - 1e-12, side="left"))
        return float(self.values[min(i, self.values.size - 1)])

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """The share of pixels at or below each x."""
        if self.values is None or self.cumulative is None:
            raise ValueError("a distribution of statistics only has no cdf (see has_shape)")
        i = np.searchsorted(self.values, x, side="right")
        return np.where(i > 0, self.cumulative[np.maximum(i - 1, 0)], 0.0)
