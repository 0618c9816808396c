"""SoftTriple loss: several learnable centres per class.

Qian, Shang, Sun, Hu, Li & Jin, "SoftTriple Loss: Deep Metric Learning Without Triplet Sampling",
ICCV 2019. With a normalised embedding x and K unit-norm centres w_c^k per class, the class
similarity is ``S_c = Σ_k softmax_k(xᵀw_c^k / γ) · xᵀw_c^k`` and the loss is
``CE(λ(S − δ·1[c = y]), y) + τ · Σ_c Σ_{k<k'} √(2 + 1e-5 − 2 w_c^kᵀw_c^k') / (C K (K−1))``.

Deviations: the original harness could not even be built (it read a non-existent
``loss_softtriplet_lr``); its softmax ran over classes instead of a class's centres, multiplied by
γ instead of dividing, and normalised the centres over the wrong axis. All of that follows the
paper here, and the centres learn at ``lr × lrmulti``. Defaults stay those of the original
(K = 2, λ = 8; the paper uses K = 10, λ = 20). Centres start Kaiming-uniform as in the paper's code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from criteria.base import LOSSES, Loss, full_precision


@LOSSES.register(
    "softtriplet",
    flags={"lam": "--loss_softtriplet_lambda", "lr_multi": "--loss_softtriplet_lrmulti"},
)
class SoftTriple(Loss):
    """SoftTriple loss (Qian et al. 2019) with K centres per class; uses no miner.

    Args:
        n_centroids: number K of centres per class.
        margin_delta: margin δ subtracted from the target class similarity.
        gamma: temperature γ of the softmax over a class's centres.
        lam: scale λ of the logits.
        reg_weight: weight τ of the regulariser that merges redundant centres.
        lr_multi: the centres learn at lr times this factor.
    """

    class_proxies = True
    lr_param = "lr_multi"
    lr_times_base = True

    def __init__(
        self,
        n_centroids: int = 2,
        margin_delta: float = 0.01,
        gamma: float = 0.1,
        lam: float = 8.0,
        reg_weight: float = 0.2,
        lr_multi: float = 1.0,
        *,
        n_classes: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        self.n_centroids, self.margin_delta, self.gamma, self.lam = (
            n_centroids,
            margin_delta,
            gamma,
            lam,
        )
        self.reg_weight, self.lr_multi, self.n_classes = reg_weight, lr_multi, n_classes
        self.centres = nn.Parameter(torch.empty(n_centroids * n_classes, embed_dim))
        nn.init.kaiming_uniform_(self.centres, a=math.sqrt(5))

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) in [0, n_classes) -> scalar."""
        C, K = self.n_classes, self.n_centroids
        # rows are ordered centre-major (k·C + c): the softmax then runs over a short outer axis
        # with classes contiguous, several times faster than over a trailing axis of length K
        centres = F.normalize(self.centres, dim=1)
        sims = (F.normalize(embeds, dim=1) @ centres.T).view(-1, K, C)
        class_sims = (F.softmax(sims / self.gamma, dim=1) * sims).sum(1)  # (B, C)
        target = F.one_hot(labels, C).to(class_sims.dtype)
        loss = F.cross_entropy(self.lam * (class_sims - self.margin_delta * target), labels)
        if self.reg_weight > 0 and K > 1:
            per_class = centres.view(K, C, -1).transpose(0, 1)  # (C, K, D)
            gram = per_class @ per_class.transpose(1, 2)  # (C, K, K)
            i, j = torch.triu_indices(K, K, offset=1, device=gram.device)  # no boolean index
            spread = (2.0 + 1e-5 - 2 * gram[:, i, j]).sqrt().sum() / (C * K * (K - 1))
            loss = loss + self.reg_weight * spread
        self.set_logs(
            sim_target=(class_sims * target).sum(1).mean(),
            accuracy=(class_sims.argmax(1) == labels).float().mean(),
        )
        return loss
