"""``full_random``: plain shuffled batches over the whole training set, ignoring classes.

Reference: the ``full_random`` sampler of Roth et al., "Revisiting Training Strategies and
Generalization Performance in Deep Metric Learning", ICML 2020, and the default (label-agnostic)
loader that Open Metric Learning recommends for classification losses.

Deviation: the original drew ``bs - 1`` images class-uniformly with replacement plus one image from
the class of an already drawn one (to force a positive pair). Here an epoch is a random permutation
of the dataset cut into ``N // batch_size`` batches: sample-uniform, no duplicates, every image at
most once per epoch; a batch may contain no positive pair, which class-based losses tolerate and
pair-based miners answer with empty outputs.
"""

from __future__ import annotations

import numpy as np

from datasampler.base import SAMPLERS, BatchSampler


@SAMPLERS.register("full_random")
class FullRandomSampler(BatchSampler):
    """Shuffled epoch of the dataset in batches of batch_size (the incomplete last one is
    dropped)."""

    def __init__(self, **context) -> None:
        super().__init__(**context)
        if len(self) == 0:
            raise ValueError(f"batch size {self.batch_size} exceeds the {len(self.labels)} samples")

    def global_batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        order = rng.permutation(len(self.labels))[: len(self) * self.batch_size]
        return list(order.reshape(len(self), self.batch_size))
