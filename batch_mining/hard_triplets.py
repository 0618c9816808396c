"""``hard_triplets``: batch-hard mining, the farthest positive and closest negative per anchor.

Reference: Hermans, Beyer & Leibe, "In Defense of the Triplet Loss for Person Re-Identification",
arXiv 2017 (batch hard); Open Metric Learning's ``HardTripletsMiner``.

Deviation from OML: the anchor itself is never its own positive (OML's miner could pick it when the
anchor's class had no other sample in the batch); such anchors, and anchors without a negative, are
skipped. Distances are Euclidean on the embeddings as given (no normalisation).
"""

from __future__ import annotations

import torch

from batch_mining.base import MINERS, Miner, Triplets
from batch_mining.pairwise import AnchorRows


@MINERS.register("hard_triplets")
class HardTripletsMiner(Miner):
    """One triplet per anchor: argmax_p d(a, p) over positives, argmin_n d(a, n) over negatives."""

    produces = "triplets"

    def select(self, rows: AnchorRows) -> Triplets:
        """-> Triplets of (A,) long."""
        return batch_hard(rows)


def batch_hard(rows: AnchorRows) -> Triplets:
    """Each anchor's farthest positive and closest negative among all N rows -> (A,) long."""
    d = rows.distances()
    inf = torch.tensor(float("inf"), device=d.device)
    positives = torch.where(rows.pos, d, -inf).argmax(1)
    negatives = torch.where(rows.neg, d, inf).argmin(1)
    return Triplets(rows.anchors, positives, negatives)
