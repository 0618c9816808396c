"""``random``: uniformly random valid triplets.

Reference: the ``random`` miner of Roth et al., "Revisiting Training Strategies and Generalization
Performance in Deep Metric Learning", ICML 2020, used as the no-mining baseline.

Deviation from the original: the original enumerated every valid (a, p, n) with
``itertools.product`` and ``random.sample``-d ``bs`` of them without replacement (and crashed when
fewer than ``bs`` existed). Here the same uniform distribution over valid triplets is drawn without
enumeration: an anchor with probability proportional to its number of triplets |P(a)|·|N(a)|, then a
uniform positive and a uniform negative. ``B`` triplets are drawn *with* replacement, so a small
batch yields duplicates instead of an error.
"""

from __future__ import annotations

import torch

from batch_mining.base import MINERS, Miner, Triplets
from batch_mining.pairwise import draw_rows, draw_uniform, label_masks


@MINERS.register("random")
class RandomMiner(Miner):
    """Uniformly random valid triplets, as many as the batch has samples."""

    produces = "triplets"
    device_syncs = 1  # whether any anchor has a positive and a negative

    def mine(self, embeds: torch.Tensor, labels: torch.Tensor) -> Triplets:
        """embeds: (B, D), labels: (B,) -> Triplets of (B,) long, or empty ones."""
        pos, neg = label_masks(labels)
        per_anchor = pos.sum(1).double() * neg.sum(1).double()
        if not bool((per_anchor > 0).any()):
            return self.empty(embeds.device)
        n = len(labels)
        anchors = draw_rows(per_anchor[None].expand(n, -1), self.generator)
        positives = draw_uniform(pos[anchors], self.generator)
        negatives = draw_uniform(neg[anchors], self.generator)
        return Triplets(anchors, positives, negatives)
