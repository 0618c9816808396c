"""Circle loss (pair-wise form, per anchor).

Sun, Cheng, Zhang, Zhang, Zheng, Wang & Wei, "Circle Loss: A Unified Perspective of Pair
Similarity Optimization", CVPR 2020. With cosine similarities, for each anchor
``log(1 + Σ_n exp(γ α_n (s_n − Δ_n)) · Σ_p exp(−γ α_p (s_p − Δ_p)))`` where
``α_p = [1 + m − s_p]₊``, ``α_n = [s_n + m]₊`` (treated as constants, as in the paper's code),
``Δ_p = 1 − m`` and ``Δ_n = m``. Averaged over the anchors that have a positive and a negative
(pytorch-metric-learning averages over the non-zero ones). Defaults m = 0.4, γ = 80 follow
pytorch-metric-learning. Not in the original harness.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from criteria.base import LOSSES, Loss, full_precision
from criteria.pairwise import label_masks, masked_logsumexp, masked_mean


@LOSSES.register("circle")
class Circle(Loss):
    """Circle loss (Sun et al. 2020) over all pairs of the batch; uses no miner.

    Args:
        m: relaxation margin m.
        gamma: scale γ.
    """

    def __init__(self, m: float = 0.4, gamma: float = 80.0) -> None:
        super().__init__()
        self.m, self.gamma = m, gamma

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) -> scalar."""
        unit = F.normalize(embeds, dim=1)
        sims = unit @ unit.T
        pos, neg = label_masks(labels)
        alpha_p = F.relu(1 + self.m - sims.detach())
        alpha_n = F.relu(sims.detach() + self.m)
        logit_p = -self.gamma * alpha_p * (sims - (1 - self.m))
        logit_n = self.gamma * alpha_n * (sims - self.m)
        valid = pos.any(1) & neg.any(1)
        lse = masked_logsumexp(logit_p, pos) + masked_logsumexp(logit_n, neg)
        losses = F.softplus(torch.where(valid, lse, torch.zeros_like(lse)))
        self.set_logs(
            active=valid.float().mean(), s_pos=masked_mean(sims, pos), s_neg=masked_mean(sims, neg)
        )
        return masked_mean(losses, valid)
