"""The retrieval kind: per-query metrics read from the exact ranks of each query's relevant items.

One chunked neighbour pass per distance (Euclidean, cosine) ranks each query's relevant gallery
items exactly (``ranks.py``), only as deep as the deepest requested metric needs; every retrieval
metric turns that ``View`` into one number per query, and ``aggregate`` averages them. Queries
without any relevant gallery item are left out of every average and counted in
``n_queries_without_positive`` (as pytorch-metric-learning does; Roth et al., ICML 2020 counted
them as misses, Open Metric Learning as hits). Per-category entries average the same per-query
values over the queries of each category.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .context import Context, key
from .names import Metric
from .ranks import positive_ranks


@dataclass
class View:
    """Valid queries only. ranks: (n, M) sorted 0-based ranks of the relevant items that rank below
    the pass's limit, padded with a value ≥ any real rank; n_pos, labels: (n,); first: (n,) exact
    rank of the nearest relevant item."""

    ranks: np.ndarray
    n_pos: np.ndarray
    labels: np.ndarray
    first: np.ndarray

    def hits_within(self, k: float) -> np.ndarray:
        """(n, M) whether the j-th relevant item is ranked among the first k (and exists)."""
        return (self.ranks < k) & (np.arange(self.ranks.shape[1])[None, :] < self.n_pos[:, None])

    def ap_sum(self, k: float) -> np.ndarray:
        """(n,) Σ_{i≤k} P(i)·hit_i: the j-th relevant item at rank r contributes j/r (1-based)."""
        prec = np.arange(1, self.ranks.shape[1] + 1)[None, :] / (self.ranks + 1.0)
        return np.where(self.hits_within(k), prec, 0.0).sum(1)


class RetrievalMetric(Metric):
    """A per-query retrieval quantity. ``depth()`` says how far down the ranking it looks:
    0 (only the nearest relevant item), k (the top k), "R" (the top R, R = relevant items) or
    None (the whole ranking); the pass ranks no deeper than the deepest requested metric."""

    kind = "retrieval"

    def depth(self) -> int | str | None:
        return None

    def per_query(self, v: View) -> np.ndarray:
        raise NotImplementedError

    def aggregate(self, per_query: np.ndarray, labels: np.ndarray) -> float:
        return float(per_query.mean()) if len(per_query) else float("nan")

    @classmethod
    def run(cls, ctx: Context, metrics: list[Metric]) -> dict[str, Any]:
        valid = ctx.n_pos > 0
        qv, n_pos, lab = ctx.q_idx[valid], ctx.n_pos[valid], ctx.labels[ctx.q_idx[valid]]
        out: dict[str, Any] = {}
        for c, mask in ctx.groups:
            out[key("n_queries_without_positive", c)] = float((~valid & mask[ctx.q_idx]).sum())
        for cosine in sorted({m.cosine for m in metrics}):
            mine = [m for m in metrics if m.cosine == cosine]
            limit = _rank_limit(mine, n_pos)
            chunks = positive_ranks(ctx.side(qv, cosine), ctx.side(ctx.g_idx, cosine), cosine,
                                    ctx.backend, limit) if len(qv) else []
            parts: list[list[np.ndarray]] = [[] for _ in mine]
            for s, first, ranks in chunks:
                view = View(ranks, n_pos[s:s + len(first)], lab[s:s + len(first)], first)
                for part, m in zip(parts, mine):
                    part.append(m.per_query(view))
            for part, m in zip(parts, mine):
                per_q = np.concatenate(part) if part else np.zeros(0)
                for c, mask in ctx.groups:
                    sel = mask[qv]
                    out[key(m.name, c)] = m.aggregate(per_q[sel], lab[sel])
        return out


def _rank_limit(metrics: list[RetrievalMetric], n_pos: np.ndarray) -> int | None:
    """How deep the neighbour pass must rank: the deepest ``depth()`` of the requested metrics."""
    depths = [m.depth() for m in metrics]
    if any(d is None for d in depths):
        return None
    need = [int(n_pos.max()) if d == "R" and len(n_pos) else d
            for d in depths if d != "R" or len(n_pos)]
    return max(need, default=0)
