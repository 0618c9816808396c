"""``evaluate()``: parse the metric names, group them by kind, run each kind's shared pass once.

Follows the data flow of Roth et al., "Revisiting Training Strategies and Generalization Performance
in Deep Metric Learning", ICML 2020 (shared expensive quantities computed once per evaluation), with
query/gallery splits, ignore ids and per-category breakdowns as in Open Metric Learning.

A metric *kind* (``names.Metric``) owns its pass: ``retrieval`` (exact ranks of the relevant
items, ``retrieval.py``), ``clustering`` (one k-means, ``clustering.py``), ``space`` (the
embeddings directly, ``embedding_space.py``) and ``pairs`` (every query-gallery pair's distance,
``pairs.py``). The inputs are checked once and shared through ``context.Context``; see there for
query/gallery masks, ignore ids and categories, and each kind's module for its averaging rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .context import ArrayLike, Context
from .names import KINDS, Metric, parse_name


def evaluate(
    embeds: ArrayLike,
    labels: ArrayLike,
    metrics: list[str],
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
) -> dict[str, float | np.ndarray]:
    """Compute ``metrics`` (``e_recall@1``, ``c_mAP_c``...) for embeds: (N, D), labels: (N,).

    Args:
        is_query, is_gallery: (N,) bool masks; default every sample is both (self never retrieved).
        categories: (N,) per-sample category; adds ``<name>/cat=<c>`` entries.
        ignore_ids: (N,) ids (e.g. sequence ids); a gallery item sharing the query's id is skipped.
        backend: "torch" or "faiss" distance kernels (same results). device: where tensors live.
        n_clusters: k-means clusters; default the number of distinct labels of the clustered
            samples.
        seed: k-means seed. kmeans: "auto", "faiss" or "torch" (see ``kmeans.py``).
    Returns metric name → float (``rho_spectrum@0``: np.ndarray), plus
    ``n_queries_without_positive`` when retrieval metrics are asked for. Bad input raises a
    one-line ValueError (non-finite embeddings included) or RegistryError (an unknown name).
    """
    parsed = [parse_name(m) for m in metrics]
    ctx = Context.build(
        embeds,
        labels,
        is_query=is_query,
        is_gallery=is_gallery,
        categories=categories,
        ignore_ids=ignore_ids,
        backend=backend,
        device=device,
        n_clusters=n_clusters,
        seed=seed,
        kmeans=kmeans,
    )
    by_kind: dict[str, list[Metric]] = {}
    for p in parsed:
        m = p.build()
        by_kind.setdefault(m.kind, []).append(m)
    out: dict[str, Any] = {}
    for kind, group in by_kind.items():
        out.update(KINDS[kind].run(ctx, group))
    names = [p.name for p in parsed]
    return {k: out[k] for k in sorted(out, key=lambda k: _order(k, names))}


def _order(key: str, names: list[str]) -> tuple:
    """Overall entries first in the order asked, then each category's."""
    base, _, cat = key.partition("/cat=")
    return (bool(cat), cat, names.index(base) if base in names else len(names))
