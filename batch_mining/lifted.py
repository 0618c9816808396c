"""``lifted``: anchors for the lifted-structure loss; all positives and negatives are used.

Reference: Oh Song, Xiang, Jegelka & Savarese, "Deep Metric Learning via Lifted Structured Feature
Embedding", CVPR 2016, in the generalised form of Hermans, Beyer & Leibe, "In Defense of the
Triplet Loss for Person Re-Identification", 2017; the ``lifted`` miner of Roth et al., ICML 2020.

Deviation: returns only the anchors (:class:`Lifted`); the loss reads positives (same label, not
the anchor) and negatives (other labels) from the label mask, which the original built per anchor
in Python. Anchors without a positive or without a negative are skipped.
"""

from __future__ import annotations

from batch_mining.base import MINERS, Lifted, Miner
from batch_mining.pairwise import AnchorRows


@MINERS.register("lifted")
class LiftedMiner(Miner):
    """Every sample with at least one positive and one negative in the batch is an anchor."""

    produces = "lifted"

    def select(self, rows: AnchorRows) -> Lifted:
        """-> Lifted with anchors (A,) long."""
        return Lifted(rows.anchors)
