"""Angular loss, combined with the N-pair loss.

Wang, Zhou, Wen, Liu & Lin, "Deep Metric Learning with Angular Loss", ICCV 2017: on normalised
embeddings, ``f = 4 tan²α (a+p)ᵀn − 2(1 + tan²α) aᵀp`` and ``l_ang = log(1 + Σ_n exp(f))``; the
paper's best objective is ``l_npair + λ l_ang`` (λ = 2), averaged over anchors, here plus the N-pair
norm penalty ``l2 · mean ‖x‖`` as in the original harness.

Negatives are all samples of other labels (see ``npair``). Deviation from the original harness:
it clamped the N-pair logits to ±50 against overflow, which also cut their gradient; a stable
log-sum-exp makes the clamp unnecessary. Vectorised over anchors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from criteria.base import LOSSES, Loss, TupleMiner, full_precision
from criteria.npair import npair_terms
from criteria.pairwise import label_masks, log1p_sum_exp


@LOSSES.register("angular")
class Angular(Loss):
    """Angular loss (Wang et al. 2017) plus the N-pair loss.

    Args:
        alpha: angle α of the angular constraint, in degrees.
        npair_ang_weight: weight λ of the angular term next to the N-pair term.
        npair_l2: weight of the embedding-norm penalty l2·mean‖x‖.
    """

    miner_kinds = ("npair",)

    def __init__(
        self,
        alpha: float = 45.0,
        npair_ang_weight: float = 2.0,
        npair_l2: float = 0.005,
        *,
        miner: TupleMiner,
    ) -> None:
        super().__init__()
        self.alpha, self.npair_ang_weight, self.npair_l2 = alpha, npair_ang_weight, npair_l2
        self.miner = miner

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) -> scalar."""
        batch = embeds
        embeds, labels, (a, p) = self.mine(embeds, labels)
        if a.numel() == 0:
            return self.empty(embeds, "active", "s_pos", "s_neg")
        npair, violated, s_ap, s_an = npair_terms(embeds, labels, a, p)
        unit = F.normalize(embeds, dim=1)
        tan2 = math.tan(math.radians(self.alpha)) ** 2
        f = 4 * tan2 * (unit[a] + unit[p]) @ unit.T - 2 * (1 + tan2) * (unit[a] * unit[p]).sum(
            1, keepdim=True
        )
        _, neg = label_masks(labels[a], labels)
        angular = log1p_sum_exp(f, neg)
        losses = npair + self.npair_ang_weight * angular
        self.set_logs(active=violated, s_pos=s_ap, s_neg=s_an)
        return losses.mean() + self.npair_l2 * batch.norm(dim=1).mean()
