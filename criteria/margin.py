"""Margin loss with a learnable per-class boundary β.

Wu, Manmatha, Smola & Krähenbühl, "Sampling Matters in Deep Embedding Learning", ICCV 2017:
``[d_ap − β_{y_a} + α]₊ + [β_{y_a} − d_an + α]₊`` summed over triplets, plus the β regulariser
``ν·Σ β_{y_a}``, divided by the number of non-zero hinge terms (as the authors' code and the
original harness do). Distances are ``sqrt(d² + 1e-8)``.

A batch with no active hinge (a decision; the authors' code divides by zero there): the β
regulariser still acts, divided by the number of hinge terms, 2T for T triplets, so the loss is
``ν·Σβ_{y_a} / 2T``. The divisor can never exceed 2T, so a solved batch pulls β no harder than
any batch with active hinges. (The original harness clamped the divisor to 1 and so pulled β 2T
times harder on a solved batch than on one where every hinge is active; Pytorch Metric Learning
drops the regulariser there, so ν would stop acting just when batches become easy.) With ν = 0
the loss of such a batch is a graph-connected zero, as before.

Deviations from the original harness: the ν regulariser works (it raised a NameError there, fixed
only in the unmerged PR #14); with ``beta_constant`` β is a buffer, not a parameter without
gradient; vectorised over triplets. The paper's per-image β term is not implemented (neither
did the original).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from criteria.base import LOSSES, Loss, TupleMiner, full_precision
from criteria.pairwise import row_dists


@LOSSES.register("margin")
class Margin(Loss):
    """Margin loss (Wu et al. 2017) with a learnable β per class.

    Args:
        margin: margin α around the boundary β.
        beta_lr: learning rate of β.
        beta: initial value of β for every class.
        nu: weight ν of the β regulariser ν·Σβ.
        beta_constant: keep β fixed at its initial value.
    """

    miner_kinds = ("triplets",)
    lr_param = "beta_lr"

    def __init__(
        self,
        margin: float = 0.2,
        beta_lr: float = 5e-4,
        beta: float = 1.2,
        nu: float = 0.0,
        beta_constant: bool = False,
        *,
        miner: TupleMiner,
        n_classes: int,
    ) -> None:
        super().__init__()
        self.margin, self.beta_lr, self.nu, self.miner = margin, beta_lr, nu, miner
        self.beta_constant = beta_constant
        init = torch.full((n_classes,), float(beta))
        if beta_constant:
            self.register_buffer("beta", init)
        else:
            self.beta = nn.Parameter(init)

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) in [0, n_classes) -> scalar."""
        embeds, labels, (a, p, n) = self.mine(embeds, labels)
        if a.numel() == 0:
            return self.empty(embeds, "active", "d_pos", "d_neg", "beta")
        d_ap = row_dists(embeds[a], embeds[p])
        d_an = row_dists(embeds[a], embeds[n])
        beta = self.beta[labels[a]]
        pos = F.relu(d_ap - beta + self.margin)
        neg = F.relu(beta - d_an + self.margin)
        n_active = (pos > 0).sum() + (neg > 0).sum()
        divisor = torch.where(n_active > 0, n_active, 2 * a.numel())  # no sync: stays a tensor
        loss = (pos.sum() + neg.sum() + self.nu * beta.sum()) / divisor
        self.set_logs(
            active=n_active / (2 * a.numel()),
            d_pos=d_ap.mean(),
            d_neg=d_an.mean(),
            beta=self.beta.mean(),
        )
        return loss
