"""Quadruplet loss: a triplet term plus a term against pairs of two other classes.

Chen, Chen, Zhang & Huang, "Beyond Triplet Loss: a Deep Quadruplet Network for Person
Re-identification", CVPR 2017: ``[d(a,p) − d(a,n) + α₁]₊ + [d(a,p) − d(n,l) + α₂]₊`` with
``y_l ≠ y_n`` and ``y_l ≠ y_a``. Each mined triplet (a, p, n) is paired with **every** such l of
the batch and the second term is averaged over all those quadruplets, deterministically.

Deviations: the original harness drew one l per triplet with a mask built over triplet indices
and reused as batch indices, which only made sense when #triplets = batch size; that is replaced
by the paper's definition above. Distances are plain Euclidean, ``sqrt(d² + 1e-8)``, as in the
original harness (the paper writes squared distances of a learned metric).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from criteria.base import LOSSES, Loss, TupleMiner, full_precision
from criteria.pairwise import dist_matrix, masked_mean, row_dists


@LOSSES.register("quadruplet")
class Quadruplet(Loss):
    """Quadruplet loss (Chen et al. 2017) on mined triplets plus every valid fourth sample.

    Args:
        margin_alpha_1: margin α₁ of the triplet term.
        margin_alpha_2: margin α₂ of the term against a pair of two other classes.
    """

    miner_kinds = ("triplets",)

    def __init__(
        self, margin_alpha_1: float = 0.2, margin_alpha_2: float = 0.2, *, miner: TupleMiner
    ) -> None:
        super().__init__()
        self.margin_alpha_1, self.margin_alpha_2, self.miner = margin_alpha_1, margin_alpha_2, miner

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) -> scalar."""
        embeds, labels, (a, p, n) = self.mine(embeds, labels)
        if a.numel() == 0:
            return self.empty(embeds, "active", "d_pos", "d_neg")
        d_ap = row_dists(embeds[a], embeds[p])
        d_an = row_dists(embeds[a], embeds[n])
        triplet = F.relu(d_ap - d_an + self.margin_alpha_1)
        d_nl = dist_matrix(embeds[n], embeds)  # (T, N)
        fourth = (labels[None, :] != labels[n, None]) & (labels[None, :] != labels[a, None])
        quad = F.relu(d_ap[:, None] - d_nl + self.margin_alpha_2)
        self.set_logs(active=(triplet > 0).float().mean(), d_pos=d_ap.mean(), d_neg=d_an.mean())
        return triplet.mean() + masked_mean(quad, fourth)
