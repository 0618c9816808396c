"""``intra_random``: anchor, "positive" and "negative" all from one class (an ablation).

Reference: the ``intra_random`` miner of Roth et al., "Revisiting Training Strategies and
Generalization Performance in Deep Metric Learning", ICML 2020: per triplet a class is drawn
uniformly and a, p, n are drawn from it with replacement. Its "negatives" share the anchor's label
by design, and a = p = n can happen (a zero-gradient triplet), as in the original.

Deviations: the original registered itself under the name ``random`` (copy-paste); only classes with
at least two samples in the batch are drawn, so a batch without any positive pair yields no
triplets (the original drew singleton classes too).
"""

from __future__ import annotations

import torch

from batch_mining.base import MINERS, Miner, Triplets
from batch_mining.pairwise import draw_rows, draw_uniform


@MINERS.register("intra_random")
class IntraRandomMiner(Miner):
    """B triplets (a, p, n) drawn with replacement from one uniformly chosen class each."""

    produces = "triplets"
    device_syncs = 2  # the classes present (unique), then whether one has two members

    def mine(self, embeds: torch.Tensor, labels: torch.Tensor) -> Triplets:
        """embeds: (B, D), labels: (B,) -> Triplets of (B,) long, or empty ones."""
        _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
        eligible = (counts >= 2).double()
        if not bool(eligible.any()):
            return self.empty(embeds.device)
        n = len(labels)
        classes = draw_rows(eligible[None].expand(n, -1), self.generator)
        members = inverse[None, :] == classes[:, None]
        a, p, neg = (draw_uniform(members, self.generator) for _ in range(3))
        return Triplets(a, p, neg)
