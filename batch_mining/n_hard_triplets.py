"""``n_hard_triplets``: per anchor, the n hardest positives × the n hardest negatives.

Reference: Open Metric Learning's ``NHardTripletsMiner`` (OML-Team, open-metric-learning), an
extension of batch-hard mining (Hermans, Beyer & Leibe, arXiv 2017). Each count may be a range
``lo hi`` (1-based, inclusive: the lo-th to hi-th hardest), which skips the very hardest tuples —
often label noise.

Deviations: an anchor with fewer candidates than the range asks for contributes the ones it has;
anchors without a positive or negative are skipped; the anchor is never its own positive.
"""

from __future__ import annotations

import torch

from batch_mining.base import MINERS, Miner, Triplets
from batch_mining.pairwise import AnchorRows


def _rank_range(value: tuple[int, ...] | list[int] | int, what: str) -> tuple[int, int]:
    v = [value] if isinstance(value, int) else list(value)
    lo, hi = (1, v[0]) if len(v) == 1 else (v[0], v[1])
    if len(v) > 2 or not 1 <= lo <= hi:
        raise ValueError(
            f"n_hard_triplets {what} must be k or 'lo hi' with 1 <= lo <= hi, got {value}"
        )
    return lo, hi


@MINERS.register("n_hard_triplets")
class NHardTripletsMiner(Miner):
    """All combinations of each anchor's hardest positives and hardest negatives.

    Args:
        n_positive: k (the k farthest positives) or 'lo hi' (the lo-th..hi-th farthest).
        n_negative: k (the k closest negatives) or 'lo hi' (the lo-th..hi-th closest).
    """

    produces = "triplets"
    device_syncs = 2  # the anchors, then the (anchor, positive, negative) cells that qualify

    def __init__(
        self, n_positive: tuple[int, ...] = (1,), n_negative: tuple[int, ...] = (3,), **context
    ) -> None:
        super().__init__(**context)
        self.pos_range = _rank_range(n_positive, "n_positive")
        self.neg_range = _rank_range(n_negative, "n_negative")

    def select(self, rows: AnchorRows) -> Triplets:
        """-> Triplets of (T,) long, T <= A·kp·kn."""
        d = rows.distances()
        inf = torch.tensor(float("inf"), device=d.device)
        p_val, p_idx = self._ranked(torch.where(rows.pos, d, -inf), self.pos_range, True)
        n_val, n_idx = self._ranked(torch.where(rows.neg, d, inf), self.neg_range, False)
        valid = p_val.isfinite()[:, :, None] & n_val.isfinite()[:, None, :]
        row, i, j = torch.nonzero(valid, as_tuple=True)
        return Triplets(rows.anchors[row], p_idx[row, i], n_idx[row, j])

    @staticmethod
    def _ranked(d: torch.Tensor, rank: tuple[int, int], largest: bool):
        """d: (A, N) -> values and indices (A, k) of ranks lo..hi (inf marks missing ones)."""
        lo, hi = rank
        k = min(hi, d.shape[1])
        val, idx = d.topk(k, dim=1, largest=largest)
        return val[:, lo - 1 :], idx[:, lo - 1 :]
