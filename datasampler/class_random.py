"""``class_random``: the SPC-N sampler — N classes per batch, samples_per_class images each.

Reference: Roth et al., "Revisiting Training Strategies and Generalization Performance in Deep
Metric Learning", ICML 2020 (Sec. 4.3, "SPC-N"), the default sampler of its harness.

Classes are drawn uniformly. Deviations from the original, which drew every class *and* every
image with replacement (so a batch could repeat classes and images): here the classes of one batch
are distinct, and the images of one class are drawn without replacement; only a class with fewer
than ``samples_per_class`` images is drawn with replacement (duplicates in the batch), as the paper
does. Batches are independent, so an epoch (``N // batch_size`` batches) does not promise to cover
every image.
"""

from __future__ import annotations

import numpy as np

from datasampler.base import SAMPLERS, BatchSampler


@SAMPLERS.register("class_random")
class ClassRandomSampler(BatchSampler):
    """SPC-N: batch_size / samples_per_class distinct random classes, samples_per_class images
    each."""

    def __init__(self, **context) -> None:
        super().__init__(**context)
        self.n_groups = self.require_class_groups()
        self.require_classes(self.n_groups)

    def spc_batch(self, rng: np.random.Generator) -> np.ndarray:
        """(batch_size,) indices in groups of samples_per_class with one label per group."""
        classes = rng.choice(len(self.classes), self.n_groups, replace=False)
        return self.draw_members(rng, classes, self.samples_per_class)

    def global_batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        return [self.spc_batch(rng) for _ in range(len(self))]
