"""Triplet loss on mined triplets, with the hinge or the soft margin.

Schroff, Kalenichenko & Philbin, "FaceNet: A Unified Embedding for Face Recognition and
Clustering", CVPR 2015: mean over triplets of ``[‖a−p‖² − ‖a−n‖² + m]₊`` (squared distances, as
in the paper and the original harness). The ``soft`` variant replaces the hinge by the soft margin
``log(1 + exp(d_ap − d_an))`` of Hermans, Beyer & Leibe, "In Defense of the Triplet Loss for Person
Re-Identification", arXiv 2017; unlike that paper it keeps the squared distances of the hinge
variant, so the two switch with one flag, and it ignores ``margin``.

Deviation from the original harness: vectorised over triplets instead of a Python loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from criteria.base import LOSSES, Loss, TupleMiner, full_precision
from criteria.pairwise import row_sq_dists


@LOSSES.register("triplet")
class Triplet(Loss):
    """Triplet loss on mined triplets (FaceNet hinge or soft margin).

    Args:
        margin: margin m of the hinge on squared distances (also read by the semihard miner).
        soft: use the soft margin log(1+exp(d_ap-d_an)) instead of the hinge.
    """

    miner_kinds = ("triplets",)

    def __init__(self, margin: float = 0.2, soft: bool = False, *, miner: TupleMiner) -> None:
        super().__init__()
        self.margin, self.soft, self.miner = margin, soft, miner

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) -> scalar."""
        embeds, labels, (a, p, n) = self.mine(embeds, labels)
        if a.numel() == 0:
            return self.empty(embeds, "active", "d_pos", "d_neg")
        d_ap = row_sq_dists(embeds[a], embeds[p])
        d_an = row_sq_dists(embeds[a], embeds[n])
        if self.soft:
            losses = F.softplus(d_ap - d_an)
            active = d_ap > d_an
        else:
            losses = F.relu(d_ap - d_an + self.margin)
            active = losses > 0
        self.set_logs(active=active.float().mean(), d_pos=d_ap.mean(), d_neg=d_an.mean())
        return losses.mean()
