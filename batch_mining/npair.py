"""``npair``: one positive per anchor; every other-class sample is a negative.

Reference: Sohn, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective", NeurIPS
2016; the ``npair`` miner of Roth et al., ICML 2020.

Deviation: instead of lists of index arrays per anchor, the miner returns anchors and positives
(:class:`NPairs`); the loss takes the negatives from the label mask. Anchors without a positive or
without a negative are skipped.
"""
from __future__ import annotations

import torch

from batch_mining.base import MINERS, Miner, NPairs
from batch_mining.distances import draw_uniform, label_masks


@MINERS.register("npair")
class NPairMiner(Miner):
    """Each anchor with a positive and a negative gets one random positive (N-pair tuples)."""

    produces = "npair"

    def mine(self, embeds: torch.Tensor, labels: torch.Tensor) -> NPairs:
        """embeds: (B, D), labels: (B,) -> NPairs of (A,) long; negatives: labels != labels[a]."""
        pos, neg = label_masks(labels)
        anchors = torch.nonzero(pos.any(1) & neg.any(1)).flatten()
        return NPairs(anchors, draw_uniform(pos[anchors], self.generator))
