"""``pr_auc``: area under the precision-recall curve of same-class pairs (the verification view).

Every (query, gallery) pair of the pair-score kind (``pairs.py``: self pairs, ignored pairs and
queries without a positive left out) is scored by its similarity, minus the distance (Euclidean;
1 − cos for ``c_pr_auc``); the positives are the same-label pairs. The area is the average
precision over all pairs, the step-wise (non-interpolated) form, as scikit-learn's
``average_precision_score`` on the flattened pairs:

    AP = (1/P) Σ_{positive pairs j} TP(d_j) / (TP(d_j) + FP(d_j)),

P the number of positive pairs and TP(d), FP(d) the positive and negative pairs at distance ≤ d.
Ties: pairs at equal distance form one threshold and are retrieved together, so a positive tied
with negatives gets the precision at the end of the tied group (scikit-learn's convention; neither
the optimistic nor the pessimistic order within the group). With every sample both query and
gallery each unordered pair appears twice, which leaves AP unchanged (distances are float32, so a
pair and its twin may differ by an ulp and count as two thresholds: a 1e-5 effect). Open Metric
Learning lists a global PR-AUC as a request (#588); no anchor system has it.

Exact without holding the pairs: sweep 1 of the shared pass keeps the sorted positive distances
(about N × class size of them); sweep 2 places every negative among them by binary search
(``searchsorted``, on the device) and counts per slot, so FP(d_j) is a cumulative sum. Memory: the
positives and one distance block.
"""

from __future__ import annotations

import torch

from .names import METRICS
from .pairs import PairMetric, PairScores


@METRICS.register("pr_auc")
class PRAUC(PairMetric):
    """Average precision of same-class pairs over all query-gallery pairs ranked by distance."""

    def prepare(self, s: PairScores) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(sorted positives, (P + 1,) negatives counted per slot between positives)."""
        if len(s.pos) == 0:
            return None
        return s.pos, torch.zeros(len(s.pos) + 1, dtype=torch.long, device=s.pos.device)

    def consume(self, state: tuple[torch.Tensor, torch.Tensor], neg: torch.Tensor) -> None:
        # slot = number of positives strictly closer; a negative is at distance ≤ d_j iff slot ≤ j
        pos, counts = state
        # +inf (the pairs that are not negatives) lands in slot P, which is never read
        counts += torch.bincount(
            torch.searchsorted(pos, neg.reshape(-1)).reshape(-1), minlength=len(counts)
        )

    def finish(self, state: tuple[torch.Tensor, torch.Tensor] | None, s: PairScores) -> float:
        if state is None:
            return float("nan")
        fp = torch.cumsum(state[1], 0)[:-1].double()
        tp = torch.searchsorted(s.pos, s.pos, right=True).double()  # positives at distance ≤ d_j
        return float((tp / (tp + fp)).mean())
