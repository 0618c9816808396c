"""``category_balance``: n_categories categories × n_labels labels × samples_per_class items.

Reference: Open Metric Learning's ``CategoryBalanceSampler`` (OML-Team, open-metric-learning), for
datasets whose labels are grouped into coarser categories (e.g. "jackets" in In-shop / DeepFashion).
Each batch takes ``n_categories`` distinct categories (weighted by their number of labels when
``weight_categories``), ``n_labels`` distinct labels in each (batch_size / (samples_per_class ×
n_categories)) and samples_per_class items per label (with repetition only for smaller labels).

Deviations: ``categories`` is a per-sample array; a label's category is that of its first sample.
An epoch has ``L // (n_categories · n_labels)`` batches (OML uses ceil(L / n_labels)), so an epoch
draws about as many labels as exist; labels are not promised to be covered.
"""

from __future__ import annotations

import numpy as np

from datasampler.base import SAMPLERS, BatchSampler


@SAMPLERS.register("category_balance")
class CategoryBalanceSampler(BatchSampler):
    """Batches of n_categories categories, equal numbers of labels per category.

    Args:
        n_categories: distinct categories per batch.
        resample_labels: allow a category with fewer labels than needed (its labels repeat).
        weight_categories: draw categories with probability proportional to their label count.
    """

    needs_categories = True

    def __init__(
        self,
        n_categories: int = 2,
        resample_labels: bool = False,
        weight_categories: bool = True,
        **context,
    ) -> None:
        super().__init__(**context)
        groups = self.require_class_groups()
        if n_categories < 1 or groups % n_categories:
            raise ValueError(
                f"{groups} labels per batch (batch size {self.batch_size} / "
                f"samples_per_class {self.samples_per_class}) cannot be split over "
                f"{n_categories} categories"
            )
        self.n_categories, self.n_labels = int(n_categories), groups // n_categories
        self.resample_labels = resample_labels
        if len(self.categories) != len(self.labels):
            raise ValueError(
                f"categories has {len(self.categories)} entries for {len(self.labels)} samples"
            )
        first = np.array([idx[0] for idx in self.class_indices])
        names, label_cat = np.unique(self.categories[first], return_inverse=True)
        self.category_labels = [np.flatnonzero(label_cat == c) for c in range(len(names))]
        if len(names) < self.n_categories:
            raise ValueError(
                f"{self.n_categories} categories per batch requested, the data has "
                f"only {len(names)}"
            )
        short = [
            str(names[c]) for c, ls in enumerate(self.category_labels) if len(ls) < self.n_labels
        ]
        if short and not resample_labels:
            raise ValueError(
                f"categories {', '.join(short[:5])} have fewer than {self.n_labels} "
                "labels; pass resample_labels to allow repeated labels"
            )
        sizes = np.array([len(ls) for ls in self.category_labels], dtype=float)
        self.category_p = sizes / sizes.sum() if weight_categories else None
        if self.category_p is not None and (self.category_p > 0).sum() < self.n_categories:
            raise ValueError("too few categories with labels for n_categories")

    def __len__(self) -> int:
        return max(1, len(self.classes) // (self.n_categories * self.n_labels))

    def pick_labels(self, rng: np.random.Generator, category: int) -> np.ndarray:
        """n_labels label positions of one category."""
        pool = self.category_labels[category]
        return rng.choice(pool, self.n_labels, replace=len(pool) < self.n_labels)

    def one_batch(self, rng: np.random.Generator) -> np.ndarray:
        cats = rng.choice(
            len(self.category_labels), self.n_categories, replace=False, p=self.category_p
        )
        chosen = np.concatenate([self.pick_labels(rng, c) for c in cats])
        return self.draw_members(rng, chosen, self.samples_per_class)

    def global_batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        return [self.one_batch(rng) for _ in range(len(self))]
