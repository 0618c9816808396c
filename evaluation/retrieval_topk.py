"""Retrieval metrics read from the relevance flags of the top-k neighbours.

R is the number of relevant gallery items of a query (the query itself and ignored items excluded);
``hit_i`` says whether the i-th neighbour is relevant and ``P(i)`` is the precision of the first i.

- ``r_precision`` = Σ_{i≤R} hit_i / R and ``mAP_at_r`` = Σ_{i≤R} P(i)·hit_i / R (Musgrave et al., "A
  Metric Learning Reality Check", ECCV 2020; divisor always R, as in pytorch-metric-learning).
- ``mAP_c`` (Roth et al., ICML 2020): the original computed MAP@R-like sums over the first f
  neighbours divided by f = class size *including the query*, so the maximum was (f−1)/f, and
  averaged per query although documented as class-averaged. Here it is what the name promises: MAP@R
  averaged first over the queries of each class, then over classes.
- ``mAP_1000`` / ``mAP_lim``: AP over the top 1000 / 1023 neighbours (1023 was the original's
  faiss-GPU cap; kept for comparability). The original divided by f; here by min(k, R), the most
  relevant items the list can hold, so a perfect ranking scores 1.
- ``precision@k`` = Σ_{i≤k} hit_i / min(k, R) and ``map@k`` = Σ_{i≤k} P(i)·hit_i / min(k, R) (Open
  Metric Learning's normalisation; a perfect model scores 1 also when R < k). ``map@1000`` therefore
  equals ``mAP_1000``.
"""

from __future__ import annotations

import numpy as np
import torch

from .names import METRICS
from .retrieval import RetrievalMetric, View


@METRICS.register("r_precision")
class RPrecision(RetrievalMetric):
    """R-precision: fraction of the first R neighbours that are relevant."""

    def depth(self) -> str:
        return "R"

    def per_query(self, v: View) -> torch.Tensor:
        return (v.ranks < v.n_pos[:, None]).sum(1) / v.n_pos


@METRICS.register("map_at_r")
class MAPAtR(RetrievalMetric):
    """MAP@R: average precision over the first R neighbours, divided by R."""

    spelling = "mAP_at_r"

    def depth(self) -> str:
        return "R"

    def per_query(self, v: View) -> torch.Tensor:
        return torch.where(v.ranks < v.n_pos[:, None], v.precision(), 0.0).sum(1) / v.n_pos


@METRICS.register("map_c")
class MAPClass(MAPAtR):
    """Class-averaged MAP@R: mean over classes of the mean MAP@R of their queries."""

    spelling = "mAP_c"

    def aggregate(self, per_query: np.ndarray, labels: np.ndarray) -> float:
        if not len(per_query):
            return float("nan")
        _, inv = np.unique(labels, return_inverse=True)
        sums, counts = np.bincount(inv, per_query), np.bincount(inv)
        return float((sums / counts).mean())


class _TopK(RetrievalMetric):
    k: int = 0

    def top(self) -> int:
        return self.k or self.value

    def depth(self) -> int:
        return self.top()

    @staticmethod
    def check_value(k: int) -> str | None:
        return None if k >= 1 else "k must be at least 1"

    def per_query(self, v: View) -> torch.Tensor:
        return v.ap_sum(self.top()) / v.n_pos.clamp(max=self.top())


@METRICS.register("map_1000")
class MAP1000(_TopK):
    """AP over the top 1000 neighbours, divided by min(1000, R)."""

    spelling, k = "mAP_1000", 1000


@METRICS.register("map_lim")
class MAPLim(_TopK):
    """AP over the top 1023 neighbours, divided by min(1023, R)."""

    spelling, k = "mAP_lim", 1023


@METRICS.register("map")
class MAPAtK(_TopK):
    """map@k (Open Metric Learning): AP over the top k, divided by min(k, R)."""

    arg = "int"


@METRICS.register("precision")
class PrecisionAtK(_TopK):
    """precision@k (Open Metric Learning): relevant items in the top k, divided by min(k, R)."""

    arg = "int"

    def per_query(self, v: View) -> torch.Tensor:
        return v.hits_within(self.top()).sum(1) / v.n_pos.clamp(max=self.top())
