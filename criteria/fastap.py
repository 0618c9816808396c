"""FastAP: a soft-binned approximation of average precision.

Cakir, He, Xia, Kulis & Sclaroff, "Deep Metric Learning to Rank", CVPR 2019. On L2-normalised
embeddings, squared distances in [0, 4] from each anchor to every other sample are soft-assigned
to L+1 evenly spaced bin centres (triangular kernel of width Δ = 4/L). With the per-anchor
histograms h⁺ (positives), h = h⁺ + h⁻ and their cumulative sums H⁺, H,
``FastAP = (1/N⁺) Σ_l h⁺_l H⁺_l / H_l``; the loss is ``1 − FastAP`` averaged over the anchors that
have a positive (a graph-connected zero when none has). Not in the original harness.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from criteria.base import LOSSES, Loss, full_precision
from criteria.pairwise import label_masks, masked_mean


def soft_histograms(
    lower: torch.Tensor, upper_w: torch.Tensor, member: torch.Tensor, num_bins: int
) -> torch.Tensor:
    """Per-anchor soft histograms of the samples with ``member``. lower: (B, B) bin below each
    distance, upper_w: (B, B) weight of the bin above, member: (B, B) bool -> (B, num_bins + 1)."""
    w = member.to(upper_w.dtype)
    width = num_bins + 1
    # flattened 1-D index_add: deterministic on CUDA, unlike a 2-D scatter_add
    flat = lower + width * torch.arange(len(lower), device=lower.device)[:, None]
    hist = upper_w.new_zeros(len(lower) * width)
    hist = hist.index_add(0, flat.flatten(), ((1 - upper_w) * w).flatten())
    hist = hist.index_add(0, (flat + 1).flatten(), (upper_w * w).flatten())
    return hist.view(len(lower), width)


@LOSSES.register("fastap")
class FastAP(Loss):
    """FastAP (Cakir et al. 2019), a histogram approximation of average precision; uses no miner.

    Args:
        num_bins: number L of distance bins on [0, 4].
    """

    def __init__(self, num_bins: int = 10) -> None:
        super().__init__()
        self.num_bins = num_bins

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) -> scalar."""
        unit = F.normalize(embeds, dim=1)
        dists = (2 - 2 * unit @ unit.T).clamp(0, 4)
        pos, neg = label_masks(labels)
        # the triangular kernel puts each distance on its two neighbouring bin centres only
        pos_in_bins = dists * (self.num_bins / 4)
        lower = pos_in_bins.detach().floor().clamp(max=self.num_bins - 1).long()
        upper_w = pos_in_bins - lower
        h_pos = soft_histograms(lower, upper_w, pos, self.num_bins)
        h_all = h_pos + soft_histograms(lower, upper_w, neg, self.num_bins)
        cum_pos, cum_all = h_pos.cumsum(1), h_all.cumsum(1)
        safe = torch.where(cum_all > 0, cum_all, torch.ones_like(cum_all))
        n_pos = pos.sum(1)
        fastap = (h_pos * cum_pos / safe).sum(1) / n_pos.clamp_min(1)
        valid = n_pos > 0
        self.set_logs(fastap=masked_mean(fastap, valid))
        return masked_mean(1 - fastap, valid)
