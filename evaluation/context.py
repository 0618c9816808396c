"""The inputs of one ``evaluate`` call, checked once and shared by every metric kind's pass.

Queries and gallery are boolean masks over the samples (default: every sample is both, and a query
never retrieves itself). ``ignore_ids`` (Open Metric Learning's sequence ids) hide gallery items
sharing the query's id. ``categories`` add per-category entries. What several kinds need (the
embeddings on the device, their L2-normalised copy, the number of relevant gallery items per query)
is computed here once, on first use.

Deviation from every anchor: non-finite embeddings are refused with one line (the original harness
ranked NaN rows arbitrarily; faiss k-means failed on them with a traceback).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch

from . import knn

ArrayLike = Any  # np.ndarray | torch.Tensor | sequence
KMEANS = ("auto", "faiss", "torch")


def _array(x: Any, name: str, n: int | None, dtype=None) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if n is not None and (a.ndim != 1 or len(a) != n):
        raise ValueError(f"{name} must have shape ({n},), got {a.shape}")
    return a.astype(dtype) if dtype is not None else a


def check_finite(x: torch.Tensor, what: str = "embeds") -> None:
    """Raise a one-line ValueError: how many rows of x: (N, D) hold NaN or inf, and the first."""
    bad = ~torch.isfinite(x).all(1)
    if bool(bad.any()):
        rows = torch.nonzero(bad).squeeze(1)
        raise ValueError(
            f"{what}: {len(rows)} of {len(x)} rows hold NaN or inf (first: row "
            f"{int(rows[0])}); evaluation needs finite embeddings (a diverged model?)"
        )


def n_relevant(
    q_lab: np.ndarray,
    g_lab: np.ndarray,
    q_self: np.ndarray,
    q_ign: np.ndarray | None,
    g_ign: np.ndarray | None,
) -> np.ndarray:
    """(nq,) relevant gallery items per query: same label, not itself, not sharing its ignore id."""
    keys, inv = np.unique(np.concatenate([q_lab, g_lab]), return_inverse=True)
    cnt = np.bincount(inv[len(q_lab) :], minlength=len(keys))
    if q_ign is None:
        return cnt[inv[: len(q_lab)]] - q_self
    pairs = np.stack([np.concatenate([q_lab, g_lab]), np.concatenate([q_ign, g_ign])], 1)
    _, pinv = np.unique(pairs, axis=0, return_inverse=True)
    pinv = pinv.ravel()
    pcnt = np.bincount(pinv[len(q_lab) :], minlength=int(pinv.max()) + 1)
    return cnt[inv[: len(q_lab)]] - pcnt[pinv[: len(q_lab)]]


def key(name: str, category: Any) -> str:
    """Result key of a metric overall (category None) or for one category."""
    return name if category is None else f"{name}/cat={category}"


@dataclass
class Context:
    """x: (N, D) float32 on ``device``; labels, is_query, is_gallery: (N,); ignore: (N,) dense ids.

    backend: "torch" or "faiss" distance kernels; kmeans: "auto" (faiss on the CPU; on CUDA
    faiss-gpu when importable, else the torch k-means), "faiss" or "torch".
    """

    x: torch.Tensor
    labels: np.ndarray
    is_query: np.ndarray
    is_gallery: np.ndarray
    ignore: np.ndarray | None = None
    categories: np.ndarray | None = None
    backend: str = "torch"
    device: str = "cpu"
    n_clusters: int | None = None
    seed: int = 0
    kmeans: str = "auto"
    _spaces: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        embeds: ArrayLike,
        labels: ArrayLike,
        *,
        is_query: ArrayLike | None = None,
        is_gallery: ArrayLike | None = None,
        categories: ArrayLike | None = None,
        ignore_ids: ArrayLike | None = None,
        backend: str = "torch",
        device: str = "cpu",
        n_clusters: int | None = None,
        seed: int = 0,
        kmeans: str = "auto",
    ) -> Context:
        """Check every input (one-line ValueError on the first problem) and build the context."""
        if backend not in ("torch", "faiss"):
            raise ValueError(f"backend must be 'torch' or 'faiss', got {backend!r}")
        if kmeans not in KMEANS:
            raise ValueError(f"kmeans must be one of {', '.join(KMEANS)}, got {kmeans!r}")
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise ValueError(f"device must be cpu, cuda or cuda:N, got {device!r}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: no CUDA GPU is visible; use device 'cpu'")
        if n_clusters is not None and n_clusters < 1:
            raise ValueError(f"n_clusters must be at least 1, got {n_clusters}")
        if isinstance(embeds, torch.Tensor):  # stays on its device until moved to ``device``
            x = embeds.detach().float()
        else:
            x = torch.as_tensor(_array(embeds, "embeds", None, np.float32))
        if x.ndim != 2:
            raise ValueError(f"embeds must have shape (N, D), got {tuple(x.shape)}")
        x = x.to(device)
        check_finite(x)
        n = len(x)
        lab = _array(labels, "labels", n, np.int64)
        isq = np.ones(n, bool) if is_query is None else _array(is_query, "is_query", n, bool)
        isg = np.ones(n, bool) if is_gallery is None else _array(is_gallery, "is_gallery", n, bool)
        ign = (
            None
            if ignore_ids is None
            else np.unique(_array(ignore_ids, "ignore_ids", n), return_inverse=True)[1].ravel()
        )
        cats = None if categories is None else _array(categories, "categories", n)
        return cls(x, lab, isq, isg, ign, cats, backend, device, n_clusters, seed, kmeans)

    def space(self, cosine: bool) -> torch.Tensor:
        """(N, D) embeddings, L2-normalised for the cosine variants (computed once)."""
        if cosine not in self._spaces:
            xs = torch.nn.functional.normalize(self.x, dim=1) if cosine else self.x
            self._spaces[cosine] = xs
        return self._spaces[cosine]

    def rows(self, idx: np.ndarray, cosine: bool) -> torch.Tensor:
        return self.space(cosine)[torch.as_tensor(idx, device=self.device)]

    def side(self, idx: np.ndarray, cosine: bool) -> knn.Side:
        """The samples ``idx`` as one side of a neighbour search."""
        t = lambda a: torch.as_tensor(a, device=self.device)
        return knn.Side(
            self.rows(idx, cosine),
            t(idx),
            t(self.labels[idx]),
            None if self.ignore is None else t(self.ignore[idx]),
        )

    @cached_property
    def q_idx(self) -> np.ndarray:
        return np.nonzero(self.is_query)[0]

    @cached_property
    def g_idx(self) -> np.ndarray:
        return np.nonzero(self.is_gallery)[0]

    @cached_property
    def n_pos(self) -> np.ndarray:
        """(nq,) relevant gallery items of each query in ``q_idx`` (shared by every kind)."""
        ign = self.ignore
        return n_relevant(
            self.labels[self.q_idx],
            self.labels[self.g_idx],
            self.is_gallery[self.q_idx].astype(np.int64),
            None if ign is None else ign[self.q_idx],
            None if ign is None else ign[self.g_idx],
        )

    @cached_property
    def groups(self) -> list[tuple[Any, np.ndarray]]:
        """(category or None for all, (N,) mask): the whole set first, then each category."""
        n = len(self.labels)
        cats = self.categories
        return [(None, np.ones(n, bool))] + (
            [] if cats is None else [(c, cats == c) for c in np.unique(cats)]
        )
