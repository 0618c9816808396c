"""Supervised contrastive loss.

Khosla, Teterwak, Wang, Sarna, Tian, Isola, Maschinot, Liu & Krishnan, "Supervised Contrastive
Learning", NeurIPS 2020, the L_out form: for anchor i with positives P(i),
``−1/|P(i)| Σ_{p∈P(i)} log(exp(s_ip/τ) / Σ_{a≠i} exp(s_ia/τ))`` on cosine similarities, averaged
over the anchors that have a positive. The paper's two augmented views per image are whatever the
sampler puts in the batch (samples of one class). Not in the original harness.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from criteria.base import LOSSES, Loss, full_precision
from criteria.pairwise import label_masks, masked_logsumexp, masked_mean


@LOSSES.register("supcon")
class SupCon(Loss):
    """Supervised contrastive loss (Khosla et al. 2020); uses no miner.

    Args:
        temperature: temperature τ dividing the cosine similarities.
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) -> scalar."""
        unit = F.normalize(embeds, dim=1)
        sims = unit @ unit.T
        logits = sims / self.temperature
        pos, neg = label_masks(labels)
        log_prob = logits - masked_logsumexp(logits, pos | neg, dim=1)[:, None]
        n_pos = pos.sum(1)
        per_anchor = torch.where(pos, log_prob, torch.zeros_like(log_prob)).sum(
            1
        ) / n_pos.clamp_min(1)
        self.set_logs(s_pos=masked_mean(sims, pos), s_neg=masked_mean(sims, neg))
        return -masked_mean(per_anchor, n_pos > 0)
