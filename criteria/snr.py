"""Signal-to-noise-ratio triplet loss.

Yuan, Chen, Wang, Yu, Zhang & Liang, "Signal-To-Noise Ratio: A Robust Distance Metric for Deep
Metric Learning", CVPR 2019: the SNR distance ``d(a, x) = var(x − a) / var(a)`` (variance over the
embedding dimensions) in a triplet hinge ``[d(a,p) − d(a,n) + m]₊`` summed and divided by the
number of active triplets, plus ``λ · mean |Σ_dim a|`` over the triplets' anchors, the paper's
regulariser pushing embeddings towards zero mean.

Deviation from the original harness: it silently forced λ = 0 when the miner was ``distance``;
here λ is only what ``--loss_snr_reg_lambda`` says. Vectorised over triplets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from criteria.base import LOSSES, Loss, TupleMiner, full_precision


def snr_distance(anchors: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """SNR distance of matching rows. anchors, others: (T, D) -> (T,)."""
    return (others - anchors).var(dim=1) / anchors.var(dim=1)


@LOSSES.register("snr")
class SNR(Loss):
    """Signal-to-noise-ratio triplet loss (Yuan et al. 2019).

    Args:
        margin: margin m of the triplet hinge on SNR distances.
        reg_lambda: weight λ of the zero-mean regulariser on the anchors.
    """

    miner_kinds = ("triplets",)

    def __init__(
        self, margin: float = 0.2, reg_lambda: float = 0.005, *, miner: TupleMiner
    ) -> None:
        super().__init__()
        self.margin, self.reg_lambda, self.miner = margin, reg_lambda, miner

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) -> scalar."""
        embeds, labels, (a, p, n) = self.mine(embeds, labels)
        if a.numel() == 0:
            return self.empty(embeds, "active", "d_pos", "d_neg")
        anchors = embeds[a]
        d_ap = snr_distance(anchors, embeds[p])
        d_an = snr_distance(anchors, embeds[n])
        losses = F.relu(d_ap - d_an + self.margin)
        n_active = (losses > 0).sum()
        reg = anchors.sum(dim=1).abs().mean()
        self.set_logs(active=n_active / a.numel(), d_pos=d_ap.mean(), d_neg=d_an.mean())
        return losses.sum() / n_active.clamp_min(1) + self.reg_lambda * reg
