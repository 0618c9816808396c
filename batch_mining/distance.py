"""``distance``: distance-weighted negative sampling.

Reference: Wu, Manmatha, Smola & Krähenbühl, "Sampling Matters in Deep Embedding Learning", ICCV
2017. On the unit sphere in n dimensions pairwise distances follow
q(d) ∝ d^(n-2) (1 - d²/4)^((n-3)/2); negatives are drawn with weight 1/q(d), with d clamped below at
a lower cut-off so near-duplicates do not dominate, and weight 0 beyond an upper cut-off (far
negatives give no signal with a margin loss).

Deviations from the original harness (Roth et al., ICML 2020): embeddings are L2-normalised here
before measuring distances (the density assumes the unit sphere; the original relied on a
``_normalize`` architecture); the upper cut-off works (the original commented it out); an anchor
with no admissible negative falls back to a uniformly random negative; anchors without a positive
are skipped (the original appended a negative for them anyway, misaligning its zip of anchors,
positives and negatives); ``1 - d²/4`` is clamped at 1e-8 so antipodal pairs cannot produce inf.
"""

from __future__ import annotations

import torch

from batch_mining.base import MINERS, Miner, Triplets
from batch_mining.pairwise import AnchorRows, draw_rows, draw_uniform, with_fallback


def inverse_sphere_weights(d: torch.Tensor, dim: int, admissible: torch.Tensor) -> torch.Tensor:
    """Row-normalised 1/q(d) weights, zero outside ``admissible``.

    d: (A, N) distances already clamped at the lower cut-off; admissible: (A, N) bool -> (A, N).
    Rows without an admissible entry come back all zero.
    """
    d = d.float()
    log_w = (2.0 - dim) * d.log() - (dim - 3.0) / 2.0 * (1.0 - d.pow(2) / 4.0).clamp_min(1e-8).log()
    log_w = log_w.masked_fill(~admissible, float("-inf"))
    row_max = log_w.max(1, keepdim=True).values.nan_to_num(neginf=0.0)
    return (log_w - row_max).exp()


@MINERS.register("distance")
class DistanceMiner(Miner):
    """Random positive, negative drawn with weight 1/q(d) (Wu et al. 2017) within the cut-offs.

    Args:
        lower_cutoff: distances are clamped to at least this value before weighting.
        upper_cutoff: negatives farther than this get weight 0 (uniform fallback if none is left).
    """

    produces = "triplets"

    def __init__(self, lower_cutoff: float = 0.5, upper_cutoff: float = 1.4, **context) -> None:
        super().__init__(**context)
        self.lower_cutoff = float(lower_cutoff)
        self.upper_cutoff = float(upper_cutoff)

    def negative_weights(self, rows: AnchorRows) -> torch.Tensor:
        """(A, N) sampling weights of the negatives of each anchor."""
        d = rows.normalized_distances().clamp_min(self.lower_cutoff)
        admissible = rows.neg & (d <= self.upper_cutoff)
        weights = inverse_sphere_weights(d, rows.embeds.shape[1], admissible)
        return with_fallback(weights, rows.neg.float())

    def select(self, rows: AnchorRows) -> Triplets:
        """-> Triplets of (A,) long, A = anchors with pos and neg."""
        positives = draw_uniform(rows.pos, self.generator)
        negatives = draw_rows(self.negative_weights(rows), self.generator)
        return Triplets(rows.anchors, positives, negatives)
