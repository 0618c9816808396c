"""Retrieval metrics read from the rank of the first correct neighbour, and full-ranking mAP.

``e_recall@k`` (Roth et al., "Revisiting Training Strategies and Generalization Performance in Deep
Metric Learning", ICML 2020; = Recall@k of Oh Song et al., CVPR 2016), ``cmc@k`` (Open Metric
Learning; the same number under its re-identification name), ``precision_at_1`` (Musgrave et al., "A
Metric Learning Reality Check", ECCV 2020), ``mrr`` (mean reciprocal rank) and ``mAP`` (average
precision over the whole ranking).

Every value is a per-query quantity averaged over the queries that have at least one correct item in
the gallery; the others are reported as ``n_queries_without_positive`` and left out (pytorch-metric-
learning does the same; the original harness counted them as misses, OML counts them as hits).
Deviations: ``mrr`` uses the exact rank over the whole gallery (pytorch-metric-learning gives 0
beyond its k neighbours); ``mAP`` is divided by R, the number of relevant gallery items, and is
sample-averaged (the original harness' README called it class-averaged, its code averaged per query
as here).
"""

from __future__ import annotations

import torch

from .names import METRICS
from .retrieval import RetrievalMetric, View


class _RankBelow(RetrievalMetric):
    arg = "int"

    def depth(self) -> int:
        return 0

    @staticmethod
    def check_value(k: int) -> str | None:
        return None if k >= 1 else "k must be at least 1"

    def per_query(self, v: View) -> torch.Tensor:
        return (v.first < self.value).double()


@METRICS.register("e_recall")
class Recall(_RankBelow):
    """Recall@k: 1 when a correct item is among the k nearest gallery items, averaged over queries."""  # noqa: E501 - --help shows only this first line


@METRICS.register("cmc")
class CMC(_RankBelow):
    """CMC@k (Open Metric Learning): identical to Recall@k."""


@METRICS.register("precision_at_1")
class PrecisionAt1(RetrievalMetric):
    """P@1 (MLRC): 1 when the nearest gallery item is correct."""

    def depth(self) -> int:
        return 0

    def per_query(self, v: View) -> torch.Tensor:
        return (v.first == 0).double()


@METRICS.register("mrr")
class MRR(RetrievalMetric):
    """Mean reciprocal rank of the first correct gallery item (exact rank over the whole gallery)."""  # noqa: E501 - --help shows only this first line

    def depth(self) -> int:
        return 0

    def per_query(self, v: View) -> torch.Tensor:
        return 1.0 / (v.first + 1.0)


@METRICS.register("map_full")
class MAPFull(RetrievalMetric):
    """mAP over the full ranking: sum of precision at each correct item, divided by R."""

    spelling = "mAP"

    def per_query(self, v: View) -> torch.Tensor:
        return v.ap_sum(float("inf")) / v.n_pos
