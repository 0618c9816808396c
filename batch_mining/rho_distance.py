"""``rho_distance``: distance-weighted sampling with ρ-regularisation.

Reference: Roth, Milbich, Sinha, Gupta, Ommer & Cohen, "Revisiting Training Strategies and
Generalization Performance in Deep Metric Learning", ICML 2020, Sec. 5: with probability p (the
"cp" flag) a triplet (a, p, n) is replaced by (a, a, p'), i.e. a same-class sample p' plays the
negative, which pushes samples of one class apart and slows the decay of the embedding spectrum.
Ordinary triplets are drawn as in ``distance`` (Wu et al., ICCV 2017).

Deviations: inherits those of ``distance`` (normalised embeddings, working upper cut-off, uniform
fallback, skipped anchors); p' is the anchor's randomly drawn positive, which has the same law as
the original's separate draw. ``last_push`` counts the swapped triplets (the original's
``push_triplets``).
"""

from __future__ import annotations

import torch

from batch_mining.base import MINERS, Triplets
from batch_mining.distance import DistanceMiner
from batch_mining.pairwise import from_host


@MINERS.register("rho_distance")
class RhoDistanceMiner(DistanceMiner):
    """Distance-weighted triplets; with probability cp a triplet becomes (a, a, same-class p').

    Args:
        lower_cutoff: distances are clamped to at least this value before weighting.
        upper_cutoff: negatives farther than this get weight 0 (uniform fallback if none is left).
        cp: probability that a triplet is turned into a same-class push (a, a, p').
    """

    def __init__(self, cp: float = 0.2, **context) -> None:
        super().__init__(**context)
        if not 0.0 <= cp <= 1.0:
            raise ValueError(f"rho_distance cp must be a probability, got {cp}")
        self.cp = float(cp)
        self._swap = torch.zeros(0, dtype=torch.bool)

    @property
    def last_push(self) -> int:
        """Triplets the last batch turned into pushes (counted when asked, on the host)."""
        return int(self._swap.sum())

    def mine(self, embeds: torch.Tensor, labels: torch.Tensor) -> Triplets:
        """embeds: (B, D), labels: (B,) -> Triplets of (A,) long; swapped rows are (a, a, p')."""
        a, p, n = super().mine(embeds, labels)
        self._swap = torch.rand(len(a), generator=self.generator) < self.cp
        swap = from_host(self._swap, a.device)
        return Triplets(a, torch.where(swap, a, p), torch.where(swap, p, n))
