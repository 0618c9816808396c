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
import torch

from .context import Context, key
from .names import Metric
from .ranks import positive_ranks


@dataclass
class View:
    """Valid queries of one chunk, float64 tensors on the pass's device (integer-valued, exact).

    ranks: (n, M) sorted 0-based ranks of the relevant items that rank below the pass's limit,
    padded with a value ≥ any real rank; n_pos: (n,) relevant items R; first: (n,) exact rank of
    the nearest relevant item. Float64 so that every quotient is float64 without casts.
    """

    ranks: torch.Tensor
    n_pos: torch.Tensor
    first: torch.Tensor

    def hits_within(self, k: float) -> torch.Tensor:
        """(n, M) whether the j-th relevant item is ranked among the first k (and exists)."""
        j = torch.arange(self.ranks.shape[1], device=self.ranks.device)
        return (self.ranks < k) & (j[None, :] < self.n_pos[:, None])

    def precision(self) -> torch.Tensor:
        """(n, M) precision at the j-th relevant item: j / (its rank), both 1-based."""
        j = torch.arange(1, self.ranks.shape[1] + 1, dtype=torch.float64, device=self.ranks.device)
        return j[None, :] / (self.ranks + 1.0)

    def ap_sum(self, k: float) -> torch.Tensor:
        """(n,) Σ_{i≤k} P(i)·hit_i: the j-th relevant item at rank r contributes j/r (1-based)."""
        return torch.where(self.hits_within(k), self.precision(), 0.0).sum(1)


class RetrievalMetric(Metric):
    """A per-query retrieval quantity. ``depth()`` says how far down the ranking it looks:
    0 (only the nearest relevant item), k (the top k), "R" (the top R, R = relevant items) or
    None (the whole ranking); the pass ranks no deeper than the deepest requested metric."""

    kind = "retrieval"

    def depth(self) -> int | str | None:
        return None

    def per_query(self, v: View) -> torch.Tensor:
        """(n,) float64 values of the chunk's queries, on the pass's device."""
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
            chunks = (
                positive_ranks(
                    ctx.side(qv, cosine), ctx.side(ctx.g_idx, cosine), cosine, ctx.backend, limit
                )
                if len(qv)
                else []
            )
            n_pos_t = torch.as_tensor(n_pos, dtype=torch.float64, device=ctx.device)
            parts: list[list[torch.Tensor]] = [[] for _ in mine]
            for s, first, ranks in chunks:  # the ranking stays on the device
                view = View(ranks.double(), n_pos_t[s : s + len(first)], first.double())
                for part, m in zip(parts, mine):
                    part.append(m.per_query(view))
            for part, m in zip(parts, mine):
                # numpy only for the final per-query numbers
                per_q = torch.cat(part).cpu().numpy() if part else np.zeros(0)
                for c, mask in ctx.groups:
                    sel = mask[qv]
                    out[key(m.name, c)] = m.aggregate(per_q[sel], lab[sel])
        return out


def _rank_limit(metrics: list[RetrievalMetric], n_pos: np.ndarray) -> int | None:
    """How deep the neighbour pass must rank: the deepest ``depth()`` of the requested metrics."""
    depths = [m.depth() for m in metrics]
    if any(d is None for d in depths):
        return None
    need = [
        int(n_pos.max()) if d == "R" and len(n_pos) else d for d in depths if d != "R" or len(n_pos)
    ]
    return max(need, default=0)
