"""Contrastive loss on the pairs of mined triplets.

Hadsell, Chopra & LeCun, "Dimensionality Reduction by Learning an Invariant Mapping", CVPR 2006.
Follows the original harness rather than the paper: plain (not squared, not halved) Euclidean
distances with a positive margin as well, ``mean [d_ap − m⁺]₊ + mean [m⁻ − d_an]₊``, each mean
taken over the mined triplets (an anchor-positive pair shared by two triplets counts twice).
Distances are ``sqrt(d² + 1e-8)`` so identical points keep a finite gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from criteria.base import LOSSES, Loss, TupleMiner, full_precision
from criteria.pairwise import row_dists


@LOSSES.register("contrastive")
class Contrastive(Loss):
    """Contrastive loss on the (anchor, positive) and (anchor, negative) pairs of mined triplets.

    Args:
        pos_margin: positive pairs are pulled until closer than this distance.
        neg_margin: negative pairs are pushed until farther than this distance.
    """

    miner_kinds = ("triplets",)

    def __init__(
        self, pos_margin: float = 0.0, neg_margin: float = 1.0, *, miner: TupleMiner
    ) -> None:
        super().__init__()
        self.pos_margin, self.neg_margin, self.miner = pos_margin, neg_margin, miner

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) -> scalar."""
        embeds, labels, (a, p, n) = self.mine(embeds, labels)
        if a.numel() == 0:
            return self.empty(embeds, "active", "d_pos", "d_neg")
        d_ap = row_dists(embeds[a], embeds[p])
        d_an = row_dists(embeds[a], embeds[n])
        pos = F.relu(d_ap - self.pos_margin)
        neg = F.relu(self.neg_margin - d_an)
        active = torch.cat([pos > 0, neg > 0]).float().mean()
        self.set_logs(active=active, d_pos=d_ap.mean(), d_neg=d_an.mean())
        return pos.mean() + neg.mean()
