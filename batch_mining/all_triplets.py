"""``all_triplets``: every valid (anchor, positive, negative) of the batch, optionally capped.

Reference: Open Metric Learning's ``AllTripletsMiner`` (OML-Team, open-metric-learning, 2022–);
the "batch all" strategy of Hermans, Beyer & Leibe, "In Defense of the Triplet Loss for Person
Re-Identification", 2017.

Deviation: the cap keeps a uniformly random subset drawn from the miner's seeded generator, returned
in enumeration order; ``max_triplets = 0`` means no cap (OML's default is ``sys.maxsize``). The
enumeration goes over (anchor, positive) pairs × negatives, never materialising a B³ mask.
"""

from __future__ import annotations

import torch

from batch_mining.base import MINERS, Miner, Triplets
from batch_mining.pairwise import from_host, label_masks


@MINERS.register("all_triplets")
class AllTripletsMiner(Miner):
    """All triplets with y_a = y_p != y_n and a != p.

    Args:
        max_triplets: keep at most this many triplets, chosen at random (0 keeps all).
    """

    produces = "triplets"
    device_syncs = 2  # the positive pairs, then their negatives

    def __init__(self, max_triplets: int = 0, **context) -> None:
        super().__init__(**context)
        if max_triplets < 0:
            raise ValueError(f"all_triplets max_triplets must be >= 0, got {max_triplets}")
        self.max_triplets = int(max_triplets)

    def mine(self, embeds: torch.Tensor, labels: torch.Tensor) -> Triplets:
        """embeds: (B, D), labels: (B,) -> Triplets of (T,) long, T = sum_a |P(a)|·|N(a)|."""
        pos, neg = label_masks(labels)
        pair_a, pair_p = torch.nonzero(pos, as_tuple=True)
        if pair_a.numel() == 0:
            return self.empty(embeds.device)
        row, negatives = torch.nonzero(neg[pair_a], as_tuple=True)
        anchors, positives = pair_a[row], pair_p[row]
        if self.max_triplets and len(anchors) > self.max_triplets:
            keep = torch.randperm(len(anchors), generator=self.generator)[: self.max_triplets]
            keep = from_host(keep.sort().values, anchors.device)
            anchors, positives, negatives = anchors[keep], positives[keep], negatives[keep]
        return Triplets(anchors, positives, negatives)
