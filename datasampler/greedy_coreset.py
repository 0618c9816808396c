"""``greedy_coreset``: batch anchors chosen by greedy k-center (farthest-point) selection.

Reference: Sener & Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set
Approach", ICLR 2018 (greedy k-center); used as a batch sampler by Roth et al., "Revisiting
Training Strategies and Generalization Performance in Deep Metric Learning", ICML 2020.

Per batch: a random big batch of stored embeddings (``--data_batchmatch_bigbs``), optionally
projected (``--data_sampler_lowproj_dim``); starting from a random point, repeatedly take the point
farthest (squared Euclidean) from those chosen — or, with ``--data_gc_softened``, a random one of
the 3 % farthest; each chosen anchor is joined by samples_per_class - 1 random images of its class.

Deviations: the selected positions are mapped back through the same big batch (the original mapped
them through a second random draw, so the coreset was never used); once an anchor is chosen, the
rest of its class is excluded so the batch has batch_size / samples_per_class distinct classes; if
the big batch runs out of classes, random unused classes complete the batch; the original's unused
``dist_lim`` flag is not kept. See ``embedding_store`` for the store's contract.
"""

from __future__ import annotations

import numpy as np

from datasampler.base import SAMPLERS
from datasampler.embedding_store import STORE_FLAGS, EmbeddingSampler


@SAMPLERS.register("greedy_coreset", flags={**STORE_FLAGS, "softened": "--data_gc_softened"})
class GreedyCoresetSampler(EmbeddingSampler):
    """Greedy k-center anchors over a big batch of stored embeddings, filled per class.

    Args:
        bigbs: size of the random big batch the coreset is selected from.
        lowproj_dim: random projection to this many dimensions first (-1: none).
        no_update: keep the first stored embeddings; ignore later updates.
        softened: pick randomly among the 3% farthest points instead of the farthest.
    """

    def __init__(self, softened: bool = False, **context) -> None:
        super().__init__(**context)
        self.softened = bool(softened)

    def select(self, rng: np.random.Generator, store: np.ndarray) -> np.ndarray:
        big = self.big_batch(rng)
        x, cls = store[big].astype(np.float64), self.class_pos[big]
        blocked = np.zeros(len(big), dtype=bool)
        min_d = np.full(len(big), np.inf)
        chosen, pick = [], int(rng.integers(len(big)))
        while True:
            chosen.append(pick)
            blocked |= cls == cls[pick]
            min_d = np.minimum(min_d, ((x - x[pick]) ** 2).sum(1))
            if blocked.all() or len(chosen) == self.n_groups:
                break
            score = np.where(blocked, -np.inf, min_d)
            if self.softened:
                free = np.flatnonzero(~blocked)
                top = free[np.argsort(-score[free], kind="stable")[: max(1, int(0.03 * len(free)))]]
                pick = int(rng.choice(top))
            else:
                pick = int(np.argmax(score))
        return self.fill_groups(rng, self.complete_anchors(rng, big[chosen]))
