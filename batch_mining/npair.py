"""``npair``: one positive per anchor; every other-class sample is a negative.

Reference: Sohn, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective", NeurIPS
2016; the ``npair`` miner of Roth et al., ICML 2020.

Deviation: instead of lists of index arrays per anchor, the miner returns anchors and positives
(:class:`NPairs`); the loss takes the negatives from the label mask. Anchors without a positive or
without a negative are skipped.
"""

from __future__ import annotations

from batch_mining.base import MINERS, Miner, NPairs
from batch_mining.pairwise import AnchorRows, draw_uniform


@MINERS.register("npair")
class NPairMiner(Miner):
    """Each anchor with a positive and a negative gets one random positive (N-pair tuples)."""

    produces = "npair"

    def select(self, rows: AnchorRows) -> NPairs:
        """-> NPairs of (A,) long; the negatives are implied: labels != labels[a]."""
        return NPairs(rows.anchors, draw_uniform(rows.pos, self.generator))
