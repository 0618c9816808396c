"""The training-set embedding store shared by the embedding-aware samplers.

Reference: the storage samplers of Roth et al., "Revisiting Training Strategies and Generalization
Performance in Deep Metric Learning", ICML 2020 (greedy / D² coreset, distance-histogram and FID
batch matching). They summarise a random "big batch" of stored embeddings and pick the batch that
best represents it.

Contract with the training loop: fill the store once before the first epoch with
``update_embeddings(all_indices, embeds (N, D))`` and then, per step, with the batch's indices and
embeddings. With ``no_update`` (``--data_storage_no_update``) only rows never filled are written.
Under distributed training every rank must pass the same (all-gathered) rows so the ranks' stores,
and hence their batches, agree. Until anything is stored the samplers fall back to SPC-N batches.

Deviations: the big batch is a uniform random subset of stored rows (the batch-match samplers of
the original drew it class-structured); positions picked inside the big batch are mapped back
through that same big batch (the original coreset samplers mapped them through a second, unrelated
random draw); the optional projection to ``lowproj_dim`` dimensions is a Gaussian matrix drawn
from the epoch's generator; the original's joblib precomputation over 16 workers is gone.
"""

from __future__ import annotations

import numpy as np

from datasampler.class_random import ClassRandomSampler

#: Legacy flags shared by every embedding-store sampler (registry entries merge in their own).
STORE_FLAGS = {
    "bigbs": "--data_batchmatch_bigbs",
    "lowproj_dim": "--data_sampler_lowproj_dim",
    "no_update": "--data_storage_no_update",
}
#: ... and those of the two batch-match samplers.
MATCH_FLAGS = {**STORE_FLAGS, "ncomps": "--data_batchmatch_ncomps"}


class EmbeddingSampler(ClassRandomSampler):
    """Base of the samplers that read stored embeddings (not registered itself)."""

    needs_embeddings = True

    def __init__(
        self, bigbs: int = 512, lowproj_dim: int = -1, no_update: bool = False, **context
    ) -> None:
        super().__init__(**context)
        if bigbs < self.batch_size:
            raise ValueError(f"big batch {bigbs} is smaller than the batch size {self.batch_size}")
        self.bigbs, self.lowproj_dim, self.no_update = int(bigbs), int(lowproj_dim), bool(no_update)
        self.store: np.ndarray | None = None
        self.filled = np.zeros(len(self.labels), dtype=bool)
        self.class_pos = np.searchsorted(self.classes, self.labels)

    def update_embeddings(self, indices, embeds) -> None:
        """indices: (n,) dataset indices; embeds: (n, D) tensor or array."""
        if hasattr(embeds, "detach"):
            embeds = embeds.detach().float().cpu().numpy()
        indices, embeds = np.asarray(indices, dtype=np.int64), np.asarray(embeds, dtype=np.float32)
        if self.store is None or self.store.shape[1] != embeds.shape[1]:
            self.store = np.zeros((len(self.labels), embeds.shape[1]), dtype=np.float32)
            self.filled[:] = False
        if self.no_update:
            keep = ~self.filled[indices]
            indices, embeds = indices[keep], embeds[keep]
        self.store[indices] = embeds
        self.filled[indices] = True

    def projected_store(self, rng: np.random.Generator) -> np.ndarray | None:
        """(N, D') stored embeddings, randomly projected when lowproj_dim > 0; None if empty."""
        if self.store is None or not self.filled.any():
            return None
        if 0 < self.lowproj_dim < self.store.shape[1]:
            proj = rng.standard_normal((self.store.shape[1], self.lowproj_dim))
            return (self.store @ proj / np.sqrt(self.lowproj_dim)).astype(np.float32)
        return self.store

    def big_batch(self, rng: np.random.Generator) -> np.ndarray:
        """(M,) dataset indices of a random big batch, M = min(bigbs, N)."""
        return rng.choice(len(self.labels), min(self.bigbs, len(self.labels)), replace=False)

    def fill_groups(self, rng: np.random.Generator, anchors: np.ndarray) -> np.ndarray:
        """Each anchor (distinct classes) followed by samples_per_class - 1 other images of its
        class, drawn without replacement when the class is large enough."""
        out = []
        for a in anchors.tolist():
            mates = self.class_indices[self.class_pos[a]]
            mates = mates[mates != a] if len(mates) > 1 else mates
            k = self.samples_per_class - 1
            out.append(np.concatenate([[a], rng.choice(mates, k, replace=len(mates) < k)]))
        return np.concatenate(out).astype(np.int64)

    def complete_anchors(self, rng: np.random.Generator, anchors: list[int]) -> np.ndarray:
        """Top up ``anchors`` with random images of unused classes until there are n_groups."""
        anchors = np.asarray(anchors, dtype=np.int64)
        if len(anchors) == self.n_groups:
            return anchors
        free = np.setdiff1d(np.arange(len(self.classes)), self.class_pos[anchors])
        extra = rng.choice(free, self.n_groups - len(anchors), replace=False)
        extra_anchors = [int(rng.choice(self.class_indices[c])) for c in extra.tolist()]
        return np.concatenate([anchors, np.asarray(extra_anchors, dtype=np.int64)])

    def global_batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        store = self.projected_store(rng)
        if store is None:
            return super().global_batches(rng)
        return [self.select(rng, store) for _ in range(len(self))]

    def select(self, rng: np.random.Generator, store: np.ndarray) -> np.ndarray:
        """One batch of (batch_size,) indices chosen with the help of ``store`` (N, D')."""
        raise NotImplementedError


class BatchMatchSampler(EmbeddingSampler):
    """Base of the samplers that score ``ncomps`` SPC-N candidates against a big batch and keep the
    best one (not registered itself); subclasses implement :meth:`select`."""

    def __init__(self, ncomps: int = 10, **context) -> None:
        super().__init__(**context)
        if ncomps < 1:
            raise ValueError(f"ncomps must be >= 1, got {ncomps}")
        self.ncomps = int(ncomps)
