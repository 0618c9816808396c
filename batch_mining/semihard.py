"""``semihard``: one random positive and a semi-hard negative per anchor.

Reference: Schroff, Kalenichenko & Philbin, "FaceNet: A Unified Embedding for Face Recognition and
Clustering", CVPR 2015 (semi-hard negatives: d_ap < d_an < d_ap + margin); the ``semihard`` miner of
Roth et al., ICML 2020.

Deviations from the original harness: the margin is this miner's own flag
(``--miner_semihard_margin``) instead of ``opt.loss_<loss>_margin``, which raised a KeyError for
losses without a margin flag; anchors without a positive or without a negative are skipped instead
of crashing the loop; all anchors are handled at once. As in the original, an anchor with no
semi-hard negative falls back to a uniformly random negative.
"""

from __future__ import annotations

from batch_mining.base import MINERS, Miner, Triplets
from batch_mining.pairwise import AnchorRows, draw_uniform, with_fallback


@MINERS.register("semihard")
class SemihardMiner(Miner):
    """Random positive, semi-hard negative (d_ap < d_an < d_ap + margin), else a random negative.

    Args:
        margin: width of the semi-hard band above d_ap (FaceNet's margin alpha).
    """

    produces = "triplets"

    def __init__(self, margin: float = 0.2, **context) -> None:
        super().__init__(**context)
        self.margin = float(margin)

    def select(self, rows: AnchorRows) -> Triplets:
        """-> Triplets of (A,) long, A = anchors with pos and neg."""
        d, pos, neg = rows.distances(), rows.pos, rows.neg
        positives = draw_uniform(pos, self.generator)
        d_ap = d.gather(1, positives[:, None])
        band = neg & (d > d_ap) & (d < d_ap + self.margin)
        negatives = draw_uniform(with_fallback(band, neg), self.generator)
        return Triplets(rows.anchors, positives, negatives)
