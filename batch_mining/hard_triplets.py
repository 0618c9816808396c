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
from batch_mining.distances import empty_triplets, label_masks, pairwise_distances


@MINERS.register("hard_triplets")
class HardTripletsMiner(Miner):
    """One triplet per anchor: argmax_p d(a, p) over positives, argmin_n d(a, n) over negatives."""

    produces = "triplets"

    def mine(self, embeds: torch.Tensor, labels: torch.Tensor) -> Triplets:
        """embeds: (N, D), labels: (N,); anchors are the first rows -> Triplets of (A,) long."""
        return batch_hard(embeds, labels, len(labels))


def batch_hard(embeds: torch.Tensor, labels: torch.Tensor, n_anchors: int) -> Triplets:
    """Batch-hard triplets for the first ``n_anchors`` rows against all N rows.

    embeds: (N, D), labels: (N,) -> Triplets of (A,) long, A <= n_anchors.
    """
    pos, neg = label_masks(labels, n_anchors)
    anchors = torch.nonzero(pos.any(1) & neg.any(1)).flatten()
    if anchors.numel() == 0:
        return empty_triplets(embeds.device)
    d = pairwise_distances(embeds[anchors], embeds)
    inf = torch.tensor(float("inf"), device=d.device)
    positives = torch.where(pos[anchors], d, -inf).argmax(1)
    negatives = torch.where(neg[anchors], d, inf).argmin(1)
    return Triplets(anchors, positives, negatives)
