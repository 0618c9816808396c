"""``fnmr@fmr``: false non-match rate at a given false match rate (Open Metric Learning).

Over all (query, gallery) pairs — self pairs, ignored pairs and queries without any positive left out —
positives are same-label pairs and negatives different-label pairs. The threshold T is the fmr-quantile
of the negative distances (linear interpolation between order statistics, numpy's default, as OML uses
``np.quantile``); FNMR is the fraction of positive distances ≥ T. The value is a fraction in [0, 1]
(OML reports percent). Distances are Euclidean, or 1 − cos for ``c_fnmr`` (monotone in the ranking
distances, so only the interpolation depends on the choice).

Exact without holding the negatives: pass 1 keeps the positive distances and a histogram of the
negative ones; pass 2 collects the negatives in the bins holding the wanted order statistics (plus one
bin either side, so bin-edge rounding cannot lose them) and counts those below, then sorts only those.
"""
from __future__ import annotations

import numpy as np
import torch

from . import knn
from .names import METRICS, Metric

BINS = 1 << 16


@METRICS.register("fnmr")
class FNMR(Metric):
    """False non-match rate at the given false match rate (e.g. fnmr@0.001)."""

    kind = "pairs"
    arg = "float"

    @staticmethod
    def check_value(fmr: float) -> str | None:
        return None if 0 <= fmr <= 1 else "the false match rate must lie in [0, 1]"


def _blocks(qs: knn.Side, gs: knn.Side, cosine: bool, backend: str):
    """Yield (distances, positive mask) blocks; excluded pairs carry +inf."""
    for _, q, d in knn.blocks(qs, gs, cosine, backend, full=True):
        d = d.add_(1.0) if cosine else d.clamp_(min=0).sqrt_()
        yield d, gs.labels[None, :] == q.labels[:, None]


def fnmr_at_fmr(qs: knn.Side, gs: knn.Side, fmrs: list[float], cosine: bool, backend: str) -> dict[float, float]:
    """FNMR for each requested FMR, from two passes over the query × gallery distances."""
    top = max(float(qs.x.norm(dim=1).max()), float(gs.x.norm(dim=1).max()), 1e-6)
    hi = 2.0 * (1.0 if cosine else top) * 1.001
    hist = torch.zeros(BINS, dtype=torch.float64)
    positives = []
    for d, pos in _blocks(qs, gs, cosine, backend):
        fin = torch.isfinite(d)
        positives.append(d[pos & fin].cpu())
        # clamp: rounding may push a distance a hair past its bound, and histc drops such values
        hist += torch.histc(d[~pos & fin].clamp(0.0, hi), BINS, 0.0, hi).double().cpu()
    pos_d = torch.cat(positives).double()
    n_neg = int(hist.sum())
    if n_neg == 0 or len(pos_d) == 0:
        return {f: float("nan") for f in fmrs}
    wanted = sorted({int(np.floor(f * (n_neg - 1))) for f in fmrs} | {min(int(np.floor(f * (n_neg - 1))) + 1, n_neg - 1) for f in fmrs})
    cum = hist.cumsum(0)
    width = hi / BINS
    ranges = []
    for m in wanted:
        b = int(torch.searchsorted(cum, torch.tensor(float(m + 1), dtype=torch.float64)))
        ranges.append((max(b - 1, 0) * width, (b + 2) * width))
    below = [0] * len(wanted)
    inside: list[list[torch.Tensor]] = [[] for _ in wanted]
    for d, pos in _blocks(qs, gs, cosine, backend):
        neg = d[~pos & torch.isfinite(d)]
        for j, (lo, up) in enumerate(ranges):
            below[j] += int((neg < lo).sum())
            inside[j].append(neg[(neg >= lo) & (neg <= up)].cpu())
    order = {m: float(torch.sort(torch.cat(inside[j]))[0][m - below[j]]) for j, m in enumerate(wanted)}
    out = {}
    for f in fmrs:
        p = f * (n_neg - 1)
        lo = int(np.floor(p))
        up = min(lo + 1, n_neg - 1)
        t = order[lo] + (p - lo) * (order[up] - order[lo])
        out[f] = float((pos_d >= t).double().mean())
    return out
