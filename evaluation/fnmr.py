"""``fnmr@fmr``: false non-match rate at a given false match rate (Open Metric Learning).

Over the pairs of the pair-score kind (``pairs.py``: self pairs, ignored pairs and queries without
any positive left out), positives are same-label pairs and negatives different-label pairs. The
threshold T is the fmr-quantile of the negative distances (linear interpolation between order
statistics, numpy's default, as OML uses ``np.quantile``); FNMR is the fraction of positive
distances ≥ T. The value is a fraction in [0, 1] (OML reports percent). Distances are Euclidean, or
1 − cos for ``c_fnmr`` (monotone in the ranking distances, so only the interpolation depends on
the choice).

Exact without holding the negatives: sweep 1 of the shared pass keeps the positive distances and a
histogram of the negative ones; sweep 2 collects the negatives in the bins holding the wanted order
statistics (plus one bin either side, so bin-edge rounding cannot lose them) and counts those below,
then sorts only those.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .names import METRICS
from .pairs import BINS, PairMetric, PairScores


@dataclass
class _Order:
    """Sweep-2 state: for each wanted order statistic m, its distance window and what fell there."""

    wanted: list[int]
    ranges: list[tuple[float, float]]
    below: list = field(default_factory=list)  # int or (device) 0-d tensor
    inside: list[list[torch.Tensor]] = field(default_factory=list)


@METRICS.register("fnmr")
class FNMR(PairMetric):
    """False non-match rate at the given false match rate (e.g. fnmr@0.001)."""

    arg = "float"
    uses_histogram = True

    @staticmethod
    def check_value(fmr: float) -> str | None:
        return None if 0 <= fmr <= 1 else "the false match rate must lie in [0, 1]"

    def prepare(self, s: PairScores) -> _Order | None:
        if s.n_neg == 0 or len(s.pos) == 0:
            return None
        lo = int(np.floor(self.value * (s.n_neg - 1)))
        wanted = sorted({lo, min(lo + 1, s.n_neg - 1)})
        cum = s.hist.cumsum(0)
        width = s.hi / BINS
        ranges = []
        for m in wanted:
            b = int(torch.searchsorted(cum, torch.tensor(float(m + 1), dtype=torch.float64)))
            ranges.append((max(b - 1, 0) * width, (b + 2) * width))
        return _Order(wanted, ranges, [0] * len(wanted), [[] for _ in wanted])

    def consume(self, st: _Order, neg: torch.Tensor) -> None:
        # +inf marks the pairs that are not negatives: never below lo nor inside a window
        for j, (lo, up) in enumerate(st.ranges):
            st.below[j] += (neg < lo).sum()  # a device count: no host sync per block
            st.inside[j].append(neg[(neg >= lo) & (neg <= up)])

    def finish(self, st: _Order | None, s: PairScores) -> float:
        if st is None:
            return float("nan")
        order = {
            m: float(torch.sort(torch.cat(st.inside[j]))[0][m - int(st.below[j])])
            for j, m in enumerate(st.wanted)
        }
        p = self.value * (s.n_neg - 1)
        lo = int(np.floor(p))
        up = min(lo + 1, s.n_neg - 1)
        t = order[lo] + (p - lo) * (order[up] - order[lo])
        return float((s.pos.double() >= t).double().mean())
