"""``softhard``: hard positives and hard negatives drawn at random among the violators.

Reference: the ``softhard`` miner of Roth et al., "Revisiting Training Strategies and Generalization
Performance in Deep Metric Learning", ICML 2020: per anchor, a positive farther than the closest
negative and a negative closer than the farthest positive, each drawn uniformly, with a uniformly
random positive / negative when no such sample exists.

Deviation: anchors without a negative are skipped as well (the original crashed on them); all
anchors are handled at once.
"""

from __future__ import annotations

import torch

from batch_mining.base import MINERS, Miner, Triplets
from batch_mining.pairwise import AnchorRows, draw_uniform, with_fallback


@MINERS.register("softhard")
class SofthardMiner(Miner):
    """Random hard positive (d_ap > min d_an) and hard negative (d_an < max d_ap), else random."""

    produces = "triplets"

    def select(self, rows: AnchorRows) -> Triplets:
        """-> Triplets of (A,) long."""
        d, pos, neg = rows.distances(), rows.pos, rows.neg
        inf = torch.tensor(float("inf"), device=d.device)
        closest_neg = torch.where(neg, d, inf).min(1, keepdim=True).values
        farthest_pos = torch.where(pos, d, -inf).max(1, keepdim=True).values
        hard_pos = pos & (d > closest_neg)
        hard_neg = neg & (d < farthest_pos)
        positives = draw_uniform(with_fallback(hard_pos, pos), self.generator)
        negatives = draw_uniform(with_fallback(hard_neg, neg), self.generator)
        return Triplets(rows.anchors, positives, negatives)
