"""Generalised lifted structure loss.

Song, Xiang, Jegelka & Savarese, "Deep Metric Learning via Lifted Structured Feature Embedding",
CVPR 2016, in the generalised per-anchor form of Hermans, Beyer & Leibe, "In Defense of the Triplet
Loss for Person Re-Identification", arXiv 2017 (as in the original harness):
``[log Σ_p exp d(a,p) + log Σ_n exp(m − d(a,n))]₊`` averaged over anchors, plus the norm penalty
``l2 · mean ‖x‖`` over the batch. Positives are all other samples of the anchor's label, negatives
all samples of other labels. Distances are ``sqrt(d² + 1e-8)``. Vectorised over anchors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from criteria.base import LOSSES, Loss, TupleMiner, full_precision
from criteria.pairwise import dist_matrix, label_masks, masked_logsumexp, masked_mean


@LOSSES.register("lifted")
class Lifted(Loss):
    """Generalised lifted structure loss over every positive and negative of each anchor.

    Args:
        neg_margin: margin m that negatives are pushed beyond.
        l2: weight of the embedding-norm penalty l2·mean‖x‖.
    """

    miner_kinds = ("lifted",)

    def __init__(self, neg_margin: float = 1.0, l2: float = 0.005, *, miner: TupleMiner) -> None:
        super().__init__()
        self.neg_margin, self.l2, self.miner = neg_margin, l2, miner

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) -> scalar."""
        batch = embeds
        embeds, labels, (a,) = self.mine(embeds, labels)
        if a.numel() == 0:
            return self.empty(embeds, "active", "d_pos", "d_neg")
        dists = dist_matrix(embeds[a], embeds)  # (A, N)
        pos, neg = label_masks(labels[a], labels)
        pos = pos & (a[:, None] != torch.arange(len(labels), device=a.device)[None, :])
        losses = F.relu(
            masked_logsumexp(dists, pos) + masked_logsumexp(self.neg_margin - dists, neg)
        )
        self.set_logs(
            active=(losses > 0).float().mean(),
            d_pos=masked_mean(dists, pos),
            d_neg=masked_mean(dists, neg),
        )
        return losses.mean() + self.l2 * batch.norm(dim=1).mean()
