"""N-pair loss.

Sohn, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective", NeurIPS 2016: for an
anchor a with positive p, ``log(1 + Σ_n exp(aᵀn − aᵀp))``, averaged over anchors, plus an
embedding-norm penalty ``l2 · mean ‖x‖`` over the batch.

As in the original harness, the negatives of an anchor are all samples of other labels (the
paper uses one sample per other class), and the norm penalty is the mean norm, not squared. The
original divided the embeddings by 4 for BN-Inception backbones; that arch-specific scaling is
not reproduced. Vectorised over anchors.
"""

from __future__ import annotations

import torch

from criteria.base import LOSSES, Loss, TupleMiner, full_precision
from criteria.pairwise import label_masks, log1p_sum_exp, masked_mean


def npair_terms(
    embeds: torch.Tensor, labels: torch.Tensor, a: torch.Tensor, p: torch.Tensor
) -> tuple:
    """Per-anchor N-pair losses (A,) and, for logging, the fraction of anchors with a negative
    more similar than their positive, the mean positive and the mean negative similarity.
    embeds: (N, D), labels: (N,), a, p: (A,) indices into them."""
    sims = embeds[a] @ embeds.T  # (A, N)
    s_ap = sims.gather(1, p[:, None])
    _, neg = label_masks(labels[a], labels)
    violated = ((sims > s_ap) & neg).any(1).float().mean()
    s_an = masked_mean(sims, neg)
    return log1p_sum_exp(sims - s_ap, neg), violated, s_ap.mean(), s_an


@LOSSES.register("npair")
class NPair(Loss):
    """N-pair loss (Sohn 2016): one positive per anchor, all other labels as negatives.

    Args:
        l2: weight of the embedding-norm penalty l2·mean‖x‖ (0.02 in the paper, ×0.25 in its code).
    """

    miner_kinds = ("npair",)

    def __init__(self, l2: float = 0.005, *, miner: TupleMiner) -> None:
        super().__init__()
        self.l2, self.miner = l2, miner

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) -> scalar."""
        batch = embeds
        embeds, labels, (a, p) = self.mine(embeds, labels)
        if a.numel() == 0:
            return self.empty(embeds, "active", "s_pos", "s_neg")
        losses, violated, s_ap, s_an = npair_terms(embeds, labels, a, p)
        self.set_logs(active=violated, s_pos=s_ap, s_neg=s_an)
        return losses.mean() + self.l2 * batch.norm(dim=1).mean()
