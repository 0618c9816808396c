"""Multi-similarity loss with its own pair mining.

Wang, Han, Huang, Dong & Scott, "Multi-Similarity Loss with General Pair Weighting for Deep Metric
Learning", CVPR 2019. With cosine similarities s, each anchor keeps the negatives with
``s + ε > min s_pos`` and the positives with ``s − ε < max s_neg``; its loss is
``1/α log(1 + Σ_P exp(−α(s − λ))) + 1/β log(1 + Σ_N exp(β(s − λ)))``; anchors that keep no
positive or no negative contribute nothing.

Reduction (``--loss_multisimilarity_reduction``): ``batch`` (default) sums the anchors' terms and
divides by the batch size, as the paper and its authors' code do; ``anchors`` divides by the number
of anchors that keep a pair, the convention of the 2020 harness (use it to reproduce those
numbers). They differ in how the step size follows batch difficulty: with ``anchors`` the loss of
a batch where a few anchors keep pairs is as large as that of a batch where all do, so the
effective learning rate grows as batches get easier; with ``batch`` it shrinks with them.

Deviations from the original harness: embeddings are L2-normalised here (the original relied on
the backbone's ``_normalize``; normalising twice changes nothing); when no anchor keeps a pair the
loss is a graph-connected zero instead of a crash on an empty stack; vectorised over anchors; the
default reduction is the paper's, not the harness's (above).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from criteria.base import LOSSES, Loss, full_precision
from criteria.pairwise import label_masks, log1p_sum_exp, masked_mean


@LOSSES.register("multisimilarity")
class MultiSimilarity(Loss):
    """Multi-similarity loss (Wang et al. 2019) with its built-in pair mining; uses no miner.

    Args:
        pos_weight: α, the scale of the positive term.
        neg_weight: β, the scale of the negative term.
        margin: ε of the pair mining.
        thresh: λ, the similarity the terms are centred on.
        reduction: batch: sum over anchors / batch size (the paper); anchors: mean over the
            anchors that keep a pair (the 2020 harness).
    """

    def __init__(
        self,
        pos_weight: float = 2.0,
        neg_weight: float = 40.0,
        margin: float = 0.1,
        thresh: float = 0.5,
        reduction: Literal["batch", "anchors"] = "batch",
    ) -> None:
        super().__init__()
        if reduction not in ("batch", "anchors"):
            raise ValueError(f"multisimilarity reduction {reduction!r}; choose batch or anchors")
        self.pos_weight, self.neg_weight = pos_weight, neg_weight
        self.margin, self.thresh, self.reduction = margin, thresh, reduction

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) -> scalar."""
        unit = F.normalize(embeds, dim=1)
        sims = unit @ unit.T
        pos, neg = label_masks(labels)
        s = sims.detach()
        min_pos = torch.where(pos, s, torch.full_like(s, float("inf"))).amin(1, keepdim=True)
        max_neg = torch.where(neg, s, torch.full_like(s, float("-inf"))).amax(1, keepdim=True)
        keep_neg = neg & (s + self.margin > min_pos)
        keep_pos = pos & (s - self.margin < max_neg)
        valid = keep_pos.any(1) & keep_neg.any(1)
        pos_term = (
            log1p_sum_exp(-self.pos_weight * (sims - self.thresh), keep_pos) / self.pos_weight
        )
        neg_term = log1p_sum_exp(self.neg_weight * (sims - self.thresh), keep_neg) / self.neg_weight
        self.set_logs(
            active=valid.float().mean(), s_pos=masked_mean(sims, pos), s_neg=masked_mean(sims, neg)
        )
        if self.reduction == "anchors":
            return masked_mean(pos_term + neg_term, valid)
        terms = torch.where(valid, pos_term + neg_term, torch.zeros_like(pos_term))
        return terms.sum() / len(labels)
