"""Histogram loss.

Ustinova & Lempitsky, "Learning Deep Embeddings with Histogram Loss", NeurIPS 2016. Cosine
similarities of all pairs i < j are soft-assigned to R evenly spaced nodes on [−1, 1] with the
triangular kernel of width Δ = 2/(R−1), so each pair feeds its two neighbouring nodes; h⁺ and h⁻
are the normalised histograms of positive and negative pairs, and the loss is ``Σ_r h⁻_r Φ⁺_r``
with ``Φ⁺_r = Σ_{q≤r} h⁺_q``, the probability that a random negative pair is more similar than a
random positive one.

Deviations from the original harness: embeddings are L2-normalised here (the paper assumes it;
the original relied on the backbone); binning stays in torch instead of a numpy round-trip, so
it runs on the GPU. A batch without positive or without negative pairs gives a zero loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from criteria.base import LOSSES, Loss, full_precision


def soft_histogram(
    lower: torch.Tensor, upper_w: torch.Tensor, member: torch.Tensor, nbins: int
) -> torch.Tensor:
    """Normalised soft histogram of the pairs with ``member`` = 1. lower: (P,) node below each
    value, upper_w: (P,) weight of the node above, member: (P,) 0/1 -> (nbins,)."""
    hist = upper_w.new_zeros(nbins)
    hist = hist.index_add(0, lower, (1 - upper_w) * member).index_add(
        0, lower + 1, upper_w * member
    )
    return hist / member.sum().clamp_min(1)


@LOSSES.register("histogram")
class Histogram(Loss):
    """Histogram loss (Ustinova & Lempitsky 2016) over all pairs of the batch; uses no miner.

    Args:
        nbins: number R of histogram nodes on [-1, 1].
    """

    def __init__(self, nbins: int = 65) -> None:
        super().__init__()
        self.nbins = nbins

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) -> scalar."""
        unit = F.normalize(embeds, dim=1)
        i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
        sims = (unit @ unit.T)[i, j]
        same = (labels[i] == labels[j]).to(sims.dtype)
        # the triangular kernel puts each similarity on its two neighbouring nodes only
        pos_in_bins = ((sims + 1) * (self.nbins - 1) / 2).clamp(0, self.nbins - 1)
        lower = pos_in_bins.detach().floor().clamp(max=self.nbins - 2).long()
        upper_w = pos_in_bins - lower
        h_pos = soft_histogram(lower, upper_w, same, self.nbins)
        h_neg = soft_histogram(lower, upper_w, 1 - same, self.nbins)
        loss = (h_neg * h_pos.cumsum(0)).sum()
        self.set_logs(
            s_pos=(sims * same).sum() / same.sum().clamp_min(1),
            s_neg=(sims * (1 - same)).sum() / (1 - same).sum().clamp_min(1),
        )
        return loss
