"""Multi-similarity loss with its own pair mining.

Wang, Han, Huang, Dong & Scott, "Multi-Similarity Loss with General Pair Weighting for Deep Metric
Learning", CVPR 2019. With cosine similarities s, each anchor keeps the negatives with
``s + ε > min s_pos`` and the positives with ``s − ε < max s_neg``; its loss is
``1/α log(1 + Σ_P exp(−α(s − λ))) + 1/β log(1 + Σ_N exp(β(s − λ)))``, averaged over the anchors
that keep at least one positive and one negative.

Deviations from the original harness: embeddings are L2-normalised here (the original relied on
the backbone's ``_normalize``; normalising twice changes nothing); when no anchor keeps a pair the
loss is a graph-connected zero instead of a crash on an empty stack; vectorised over anchors.
"""
from __future__ import annotations

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
    """

    def __init__(self, pos_weight: float = 2.0, neg_weight: float = 40.0, margin: float = 0.1,
                 thresh: float = 0.5) -> None:
        super().__init__()
        self.pos_weight, self.neg_weight = pos_weight, neg_weight
        self.margin, self.thresh = margin, thresh

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
        pos_term = log1p_sum_exp(-self.pos_weight * (sims - self.thresh), keep_pos) / self.pos_weight
        neg_term = log1p_sum_exp(self.neg_weight * (sims - self.thresh), keep_neg) / self.neg_weight
        self.set_logs(active=valid.float().mean(),
                      s_pos=masked_mean(sims, pos),
                      s_neg=masked_mean(sims, neg))
        return masked_mean(pos_term + neg_term, valid)
