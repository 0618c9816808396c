"""``ndcg@k``: normalised discounted cumulative gain of the top k, binary relevance (Open Metric
Learning users' request; Järvelin & Kekäläinen, "Cumulated Gain-Based Evaluation of IR Techniques",
ACM TOIS 2002).

Per query: DCG@k = Σ_{i≤k} rel_i / log2(i + 1) over the ranked gallery (i 1-based, rel_i = 1 for a
relevant item: same label, not the query itself, not sharing its ignore id), divided by the ideal
IDCG@k = Σ_{i≤min(k,R)} 1 / log2(i + 1), R = the query's relevant items. Averaged over the queries
with R ≥ 1, like every retrieval metric (``retrieval.py``). Equal distances are ranked by gallery
index, as in every retrieval metric here; scikit-learn's ``ndcg_score`` instead averages the gain
over a tied group (they agree whenever there are no ties).
"""

from __future__ import annotations

import torch

from .names import METRICS
from .retrieval import RetrievalMetric, View


@METRICS.register("ndcg")
class NDCG(RetrievalMetric):
    """nDCG@k with binary relevance: DCG of the top k over the ideal DCG, averaged over queries."""

    arg = "int"

    def depth(self) -> int:
        return self.value

    @staticmethod
    def check_value(k: int) -> str | None:
        return None if k >= 1 else "k must be at least 1"

    def per_query(self, v: View) -> torch.Tensor:
        gain = torch.where(v.hits_within(self.value), 1.0 / torch.log2(v.ranks + 2.0), 0.0).sum(1)
        at = torch.arange(self.value, dtype=torch.float64, device=v.ranks.device)
        ideal = torch.cumsum(1.0 / torch.log2(at + 2.0), 0)
        return gain / ideal[v.n_pos.clamp(max=self.value).long() - 1]
