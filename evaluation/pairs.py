"""The pair-score kind: metrics over every (query, gallery) pair scored by its distance.

The verification view of Open Metric Learning (``fnmr@fmr``) and ``pr_auc``. Pairs: every query
with at least one relevant gallery item against the whole gallery, self pairs and pairs sharing
an ignore id left out (queries without a positive are left out, as in the retrieval metrics).
Positives are same-label pairs, negatives the rest. Distances are Euclidean, or 1 − cos for the
``c_`` variants.

There are N² pairs (3.7 × 10⁹ at Stanford Online Products size) but only about N × class size
positives, so the shared pass never holds the negatives: sweep 1 goes over the chunked distance
blocks (``knn.blocks``) keeping the positive distances (sorted) and the number of negatives, plus
a histogram of the negative distances when a metric asks for one; sweep 2, only when a metric
needs it, streams each block to every metric's accumulator. One sweep costs one chunked matrix
product over the pairs and holds one block. The positives of a block are gathered from their
columns (the gallery sorted by label) and then set to +inf, like the excluded pairs, so the block
itself is the negatives: no mask over the block and no copy of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from . import knn
from .context import Context, key
from .names import Metric
from .ranks import ByLabel

BINS = 1 << 16


@dataclass
class PairScores:
    """What sweep 1 leaves. pos: (P,) sorted positive distances (float32, on the device);
    n_neg: number of negative pairs; hist: (BINS,) float64 histogram of the negative distances
    over [0, hi] (None unless a metric asked for it)."""

    pos: torch.Tensor
    n_neg: int
    hist: torch.Tensor | None
    hi: float


def pair_blocks(
    qs: knn.Side, gs: knn.Side, cosine: bool, backend: str
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield, block by block, ((p,) positive distances, (c, n_g) block of distances where every
    pair but the negatives is +inf). The block is a reused buffer: consume it before advancing."""
    by_label = ByLabel(gs)
    width = int(by_label.runs(qs.labels)[1].max()) if len(qs.x) else 0
    for _, q, d in knn.blocks(qs, gs, cosine, backend, full=True):
        d = d.add_(1.0) if cosine else d.clamp_(min=0).sqrt_()
        # the same pairs knn.exclude leaves finite: same label, not itself, not an ignored id
        pc = by_label.positive_columns(q, width)
        r, j = torch.nonzero(pc >= 0, as_tuple=True)
        c = pc[r, j]
        pos = d[r, c]
        d[r, c] = float("inf")
        yield pos, d


class PairMetric(Metric):
    """A number from the distances of all pairs. ``prepare`` sees sweep 1's ``PairScores`` and
    returns an accumulator state for sweep 2 (None: no second sweep needed); ``consume`` gets each
    (c, n_g) block with every pair but the negatives at +inf; ``finish`` returns the value."""

    kind = "pairs"
    uses_histogram = False

    def prepare(self, s: PairScores) -> Any:
        return None

    def consume(self, state: Any, neg: torch.Tensor) -> None:
        pass

    def finish(self, state: Any, s: PairScores) -> float:
        raise NotImplementedError

    @classmethod
    def run(cls, ctx: Context, metrics: list[Metric]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for cosine in sorted({m.cosine for m in metrics}):
            mine = [m for m in metrics if m.cosine == cosine]
            for c, mask in ctx.groups:
                qv = ctx.q_idx[(ctx.n_pos > 0) & mask[ctx.q_idx]]
                res = (
                    _pair_metrics(
                        ctx.side(qv, cosine), ctx.side(ctx.g_idx, cosine), mine, cosine, ctx.backend
                    )
                    if len(qv)
                    else {}
                )
                for m in mine:
                    out[key(m.name, c)] = res.get(m.name, float("nan"))
        return out


def _pair_metrics(
    qs: knn.Side, gs: knn.Side, metrics: list[PairMetric], cosine: bool, backend: str
) -> dict[str, float]:
    hist, hi = None, 0.0
    if any(m.uses_histogram for m in metrics):
        top = max(float(qs.x.norm(dim=1).max()), float(gs.x.norm(dim=1).max()), 1e-6)
        hi = 2.0 * (1.0 if cosine else top) * 1.001
        hist = torch.zeros(BINS, dtype=torch.float64, device=qs.x.device)
    positives, n_neg = [], torch.zeros((), dtype=torch.long, device=qs.x.device)
    for pos, d in pair_blocks(qs, gs, cosine, backend):
        positives.append(pos)
        if hist is not None:
            # histc drops +inf (the non-negatives) and values outside [0, hi]: 1 − cos may round
            # below 0, so clamp there; no finite distance exceeds hi (|q − g| ≤ |q| + |g|, and hi
            # has a 0.1 % margin)
            hist += torch.histc(d.clamp_(min=0.0), BINS, 0.0, hi).double()
        else:
            n_neg += torch.isfinite(d).sum()
    if hist is not None:
        n_neg, hist = hist.sum(), hist.cpu()  # the counts stay on the device until the end
    s = PairScores(torch.sort(torch.cat(positives))[0], int(n_neg), hist, hi)
    states = [m.prepare(s) for m in metrics]
    if any(st is not None for st in states):
        for _, neg in pair_blocks(qs, gs, cosine, backend):
            for m, st in zip(metrics, states):
                if st is not None:
                    m.consume(st, neg)
    return {m.name: m.finish(st, s) for m, st in zip(metrics, states)}
