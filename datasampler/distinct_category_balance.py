"""``distinct_category_balance``: category-balanced batches that use every label before any repeats.

Reference: Open Metric Learning's ``DistinctCategoryBalanceSampler`` (OML-Team,
open-metric-learning). As ``category_balance``, but inside a category a label is not drawn again
until every label of the dataset has been used; a category whose unused labels run out is topped up
with already used ones; once all labels are used the record resets.

Deviations: the record of used labels lives within one epoch (it is rebuilt from (seed, epoch) so
that ``set_epoch`` fixes every batch and ranks agree), where OML carries it across epochs;
``epoch_size = 0`` means ``L // labels_per_batch`` batches.
"""

from __future__ import annotations

import numpy as np

from datasampler.base import SAMPLERS
from datasampler.category_balance import CategoryBalanceSampler


@SAMPLERS.register("distinct_category_balance")
class DistinctCategoryBalanceSampler(CategoryBalanceSampler):
    """Category-balanced batches; labels are reused only after every label was drawn.

    Args:
        n_categories: distinct categories per batch.
        resample_labels: allow a category with fewer labels than needed (its labels repeat).
        weight_categories: draw categories with probability proportional to their label count.
        epoch_size: batches per epoch (0: number of labels // labels per batch).
    """

    def __init__(self, epoch_size: int = 0, **context) -> None:
        super().__init__(**context)
        self.epoch_size = int(epoch_size)
        self.used = np.zeros(len(self.classes), dtype=bool)

    def __len__(self) -> int:
        return self.epoch_size or super().__len__()

    def pick_labels(self, rng: np.random.Generator, category: int) -> np.ndarray:
        if self.used.all():
            self.used[:] = False
        pool = self.category_labels[category]
        fresh = rng.permutation(pool[~self.used[pool]])[: self.n_labels]
        missing = self.n_labels - len(fresh)
        if missing:
            stale = np.setdiff1d(pool, fresh)
            stale = stale if len(stale) else pool
            top_up = rng.choice(stale, missing, replace=len(stale) < missing)
            fresh = np.concatenate([fresh, top_up])
        self.used[fresh] = True
        return fresh

    def global_batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        self.used[:] = False
        return super().global_batches(rng)
