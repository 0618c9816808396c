"""The contract every batch sampler follows.

A sampler is a ``torch.utils.data.Sampler`` yielding lists of dataset indices (used as
``batch_sampler=``). Subclasses implement ``global_batches(rng)``, returning the epoch's batches
of size ``batch_size``; the base class seeds ``rng`` from (seed, epoch), so ``set_epoch`` plus the
seed fix every batch, and shards each global batch into contiguous per-rank slices under
distributed training (contiguous so class groups of ``samples_per_class`` stay together).
Samplers that look at embeddings set ``needs_embeddings`` and receive ``update_embeddings``.
A sampler's constructor names its own hyper-parameters and ends in ``**context``, handed on to
``BatchSampler.__init__``, which takes the run-time context (labels, batch size, samples per class,
seed, categories, rank, world size).
"""

from __future__ import annotations

import numpy as np
import torch

from registry import Registry


class BatchSampler(torch.utils.data.Sampler):
    """Base class of all batch samplers."""

    needs_embeddings: bool = False
    needs_categories: bool = False
    context_params: tuple[str, ...] = (
        "labels",
        "batch_size",
        "samples_per_class",
        "seed",
        "categories",
        "rank",
        "world_size",
    )

    def __init__(
        self,
        labels,
        batch_size: int,
        samples_per_class: int = 2,
        seed: int = 0,
        categories=None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.labels = np.asarray(labels, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.samples_per_class = int(samples_per_class)
        self.seed = int(seed)
        self.categories = None if categories is None else np.asarray(categories)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0
        if self.batch_size % self.world_size:
            raise ValueError(
                f"batch size {self.batch_size} is not divisible by the "
                f"{self.world_size} distributed ranks"
            )
        if self.needs_categories and self.categories is None:
            raise ValueError(
                f"sampler {getattr(self, 'registry_name', type(self).__name__)} needs "
                "a dataset with categories; this one has none"
            )
        self.classes, inverse = np.unique(self.labels, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        counts = np.bincount(inverse)
        self.class_indices = np.split(order, np.cumsum(counts)[:-1])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.labels) // self.batch_size

    def global_batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        raise NotImplementedError

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        per_rank = self.batch_size // self.world_size
        for batch in self.global_batches(rng):
            batch = np.asarray(batch)
            yield batch[self.rank * per_rank : (self.rank + 1) * per_rank].tolist()

    def update_embeddings(self, indices, embeds) -> None:
        """Refresh stored embeddings of ``indices`` (only for ``needs_embeddings`` samplers)."""

    def require_class_groups(self) -> int:
        """Classes per batch, ``batch_size / samples_per_class``; ValueError if it is not whole."""
        if self.samples_per_class < 1 or self.batch_size % self.samples_per_class:
            raise ValueError(
                f"batch size {self.batch_size} is not divisible by samples_per_class "
                f"{self.samples_per_class}"
            )
        return self.batch_size // self.samples_per_class

    def require_classes(self, n: int, what: str = "per batch") -> None:
        if n > len(self.classes):
            raise ValueError(
                f"{n} classes are needed {what} (batch size {self.batch_size} / "
                f"samples_per_class {self.samples_per_class}), but the data has only "
                f"{len(self.classes)}"
            )

    def draw_members(self, rng: np.random.Generator, class_pos, k: int) -> np.ndarray:
        """k samples of each class (positions into ``self.classes``), grouped per class.

        Without replacement inside a class that has at least k samples, with replacement otherwise.
        Rows with a repeat are redrawn a few times (cheap for k small against the class size);
        the rare rows still left then go through ``rng.choice``.
        """
        class_pos = np.asarray(class_pos, dtype=np.int64)
        if not hasattr(self, "_flat_members"):
            self._flat_members = np.concatenate(self.class_indices)
            sizes = np.array([len(c) for c in self.class_indices])
            self._class_sizes, self._class_starts = sizes, np.cumsum(sizes) - sizes
        sizes = self._class_sizes[class_pos][:, None]
        pos = (rng.random((len(class_pos), k)) * sizes).astype(np.int64)
        for attempt in range(11):
            ordered = np.sort(pos, axis=1)
            repeat = (ordered[:, 1:] == ordered[:, :-1]).any(1) & (sizes[:, 0] >= k)
            if not repeat.any():
                break
            if attempt == 10:
                for row in np.flatnonzero(repeat).tolist():
                    pos[row] = rng.choice(int(sizes[row, 0]), k, replace=False)
                break
            pos[repeat] = (rng.random((int(repeat.sum()), k)) * sizes[repeat]).astype(np.int64)
        return self._flat_members[self._class_starts[class_pos][:, None] + pos].reshape(-1)


SAMPLERS = Registry("sampler", "data")
