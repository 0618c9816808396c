"""Supervised NT-Xent (normalised temperature-scaled cross-entropy) loss.

Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020, in the supervised form of pytorch-metric-learning's NTXentLoss (Sohn's
N-pair objective with cosine similarities over a temperature): for every positive pair (i, j),
``−log(exp(s_ij/τ) / (exp(s_ij/τ) + Σ_{k: y_k ≠ y_i} exp(s_ik/τ)))``, averaged over positive pairs.
Not in the original harness.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from criteria.base import LOSSES, Loss, full_precision
from criteria.pairwise import label_masks, masked_logsumexp, masked_mean


@LOSSES.register("ntxent")
class NTXent(Loss):
    """Supervised NT-Xent loss over all positive pairs of the batch; uses no miner.

    Args:
        temperature: temperature τ dividing the cosine similarities.
    """

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        self.temperature = temperature

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) -> scalar."""
        unit = F.normalize(embeds, dim=1)
        sims = unit @ unit.T
        logits = sims / self.temperature
        pos, neg = label_masks(labels)
        neg_lse = masked_logsumexp(logits, neg, dim=1)[:, None]
        losses = torch.logaddexp(logits, neg_lse) - logits
        self.set_logs(s_pos=masked_mean(sims, pos), s_neg=masked_mean(sims, neg))
        return masked_mean(losses, pos)
