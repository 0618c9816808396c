"""``balance``: n_labels × n_instances batches, each label once per epoch.

Reference: Open Metric Learning's ``BalanceSampler`` (OML-Team, open-metric-learning), i.e. the
P×K sampling of Hermans, Beyer & Leibe, "In Defense of the Triplet Loss for Person
Re-Identification", 2017. Here n_labels = batch_size / samples_per_class and n_instances =
samples_per_class.

An epoch is a random permutation of the labels cut into ``L // n_labels`` batches, so every label
appears at most once per epoch (all but ``L mod n_labels`` exactly once); a label with fewer than
n_instances samples is drawn with repetition, as in OML. Deviation: none beyond the flags (the
sizes come from --bs and --samples_per_class).
"""

from __future__ import annotations

import numpy as np

from datasampler.base import SAMPLERS, BatchSampler


@SAMPLERS.register("balance")
class BalanceSampler(BatchSampler):
    """Labels without repetition across the epoch's batches, samples_per_class items per label."""

    def __init__(self, **context) -> None:
        super().__init__(**context)
        self.n_labels = self.require_class_groups()
        self.require_classes(self.n_labels)

    def __len__(self) -> int:
        return len(self.classes) // self.n_labels

    def global_batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        order = rng.permutation(len(self.classes))[: len(self) * self.n_labels]
        return [
            self.draw_members(rng, chunk, self.samples_per_class)
            for chunk in order.reshape(len(self), self.n_labels)
        ]
