"""``random_distance``: distance-weighted sampling on randomly permuted labels (an ablation).

Reference: the ``random_distance`` miner of Roth et al., "Revisiting Training Strategies and
Generalization Performance in Deep Metric Learning", ICML 2020, which asks how much of distance
sampling's benefit survives when the class structure is destroyed: the batch labels are shuffled,
then triplets are mined as in ``distance`` (Wu et al., ICCV 2017). Its triplets therefore do NOT
respect the true labels.

Deviations: the original registered itself under the name ``distance`` (copy-paste); it inherits
the fixes of ``distance`` (normalised embeddings, working upper cut-off, uniform fallback).
"""

from __future__ import annotations

import torch

from batch_mining.base import MINERS, Triplets
from batch_mining.distance import DistanceMiner
from batch_mining.pairwise import from_host


@MINERS.register("random_distance")
class RandomDistanceMiner(DistanceMiner):
    """Distance-weighted triplets mined after a random permutation of the batch labels.

    Args:
        lower_cutoff: distances are clamped to at least this value before weighting.
        upper_cutoff: negatives farther than this get weight 0 (uniform fallback if none is left).
    """

    def mine(self, embeds: torch.Tensor, labels: torch.Tensor) -> Triplets:
        """embeds: (B, D), labels: (B,) -> Triplets of (A,) long w.r.t. the permuted labels."""
        perm = from_host(torch.randperm(len(labels), generator=self.generator), labels.device)
        return super().mine(embeds, labels[perm])
