"""``evaluate()``: every requested metric from one neighbour pass, one k-means and the embeddings.

Follows the data flow of Roth et al., "Revisiting Training Strategies and Generalization Performance
in Deep Metric Learning", ICML 2020 (shared expensive quantities computed once per evaluation), with
query/gallery splits, ignore ids and per-category breakdowns as in Open Metric Learning.

Queries and gallery are boolean masks over the samples (default: every sample is both, and a query
never retrieves itself). Retrieval metrics average over queries that have at least one relevant
gallery item; the others are counted in ``n_queries_without_positive`` and left out. Per-category
entries (``name/cat=<c>``) average the same per-query values over the queries of a category;
clustering and embedding-space metrics are recomputed on the samples (queries, for fnmr and k-means)
of that category. Deviation: k-means uses as many clusters as there are distinct labels among the
clustered samples unless ``n_clusters`` is given (the original used the number of training classes).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import knn
from .clustering import kmeans_assign
from .fnmr import fnmr_at_fmr
from .names import parse_name
from .ranks import positive_ranks
from .retrieval_rank import View

ArrayLike = Any  # np.ndarray | torch.Tensor | sequence


def _array(x: Any, name: str, n: int | None, dtype=None) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if n is not None and (a.ndim != 1 or len(a) != n):
        raise ValueError(f"{name} must have shape ({n},), got {a.shape}")
    return a.astype(dtype) if dtype is not None else a


def _n_pos(q_lab: np.ndarray, g_lab: np.ndarray, q_self: np.ndarray,
           q_ign: np.ndarray | None, g_ign: np.ndarray | None) -> np.ndarray:
    """(nq,) relevant gallery items per query: same label, not itself, not sharing its ignore id."""
    keys, inv = np.unique(np.concatenate([q_lab, g_lab]), return_inverse=True)
    cnt = np.bincount(inv[len(q_lab):], minlength=len(keys))
    if q_ign is None:
        return cnt[inv[: len(q_lab)]] - q_self
    pairs = np.stack([np.concatenate([q_lab, g_lab]), np.concatenate([q_ign, g_ign])], 1)
    _, pinv = np.unique(pairs, axis=0, return_inverse=True)
    pinv = pinv.ravel()
    pcnt = np.bincount(pinv[len(q_lab):], minlength=int(pinv.max()) + 1)
    return cnt[inv[: len(q_lab)]] - pcnt[pinv[: len(q_lab)]]


def evaluate(embeds: ArrayLike, labels: ArrayLike, metrics: list[str], *, is_query: ArrayLike | None = None,
             is_gallery: ArrayLike | None = None, categories: ArrayLike | None = None,
             ignore_ids: ArrayLike | None = None, backend: str = "torch", device: str = "cpu",
             n_clusters: int | None = None, seed: int = 0) -> dict[str, float | np.ndarray]:
    """Compute ``metrics`` (names like ``e_recall@1``, ``c_mAP_c``) for embeds: (N, D), labels: (N,).

    Args:
        is_query, is_gallery: (N,) bool masks; default every sample is both (self never retrieved).
        categories: (N,) per-sample category; adds ``<name>/cat=<c>`` entries.
        ignore_ids: (N,) ids (e.g. sequence ids); a gallery item sharing the query's id is skipped.
        backend: "torch" or "faiss" distance kernels (same results). device: where tensors live.
        n_clusters: k-means clusters; default the number of distinct labels of the clustered samples.
        seed: k-means seed.
    Returns metric name → float (``rho_spectrum@0``: np.ndarray), plus ``n_queries_without_positive``
    when retrieval metrics are asked for.
    """
    parsed = [parse_name(m) for m in metrics]
    if backend not in ("torch", "faiss"):
        raise ValueError(f"backend must be 'torch' or 'faiss', got {backend!r}")
    x = torch.as_tensor(_array(embeds, "embeds", None, np.float32))
    if x.ndim != 2:
        raise ValueError(f"embeds must have shape (N, D), got {tuple(x.shape)}")
    n = len(x)
    lab = _array(labels, "labels", n, np.int64)
    isq = np.ones(n, bool) if is_query is None else _array(is_query, "is_query", n, bool)
    isg = np.ones(n, bool) if is_gallery is None else _array(is_gallery, "is_gallery", n, bool)
    ign = None if ignore_ids is None else np.unique(_array(ignore_ids, "ignore_ids", n), return_inverse=True)[1]
    cats = None if categories is None else _array(categories, "categories", n)
    x = x.to(device)
    spaces = {c: (torch.nn.functional.normalize(x, dim=1) if c else x) for c in {p.cosine for p in parsed}}
    built = [(p, p.build()) for p in parsed]
    out: dict[str, Any] = {}
    groups = [(None, np.ones(n, bool))] + ([] if cats is None else [(c, cats == c) for c in np.unique(cats)])
    q_idx, g_idx = np.nonzero(isq)[0], np.nonzero(isg)[0]

    def side(idx: np.ndarray, xs: torch.Tensor) -> knn.Side:
        t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        return knn.Side(xs[t(idx)], t(idx), t(lab[idx]), None if ign is None else t(ign[idx]))

    retrieval = [(p, m) for p, m in built if m.kind == "retrieval"]
    if retrieval:
        n_pos = _n_pos(lab[q_idx], lab[g_idx], isg[q_idx].astype(np.int64),
                       None if ign is None else ign[q_idx], None if ign is None else ign[g_idx])
        valid = n_pos > 0
        out["n_queries_without_positive"] = float((~valid).sum())
        qv = q_idx[valid]
        for cosine in sorted({p.cosine for p, _ in retrieval}):
            mine = [(p, m) for p, m in retrieval if p.cosine == cosine]
            limit = _rank_limit([m for _, m in mine], n_pos[valid])
            chunks = positive_ranks(side(qv, spaces[cosine]), side(g_idx, spaces[cosine]), cosine,
                                    backend, limit) if len(qv) else []
            parts: list[list[np.ndarray]] = [[] for _ in mine]
            for s, first, ranks in chunks:
                e = s + len(first)
                view = View(ranks, n_pos[valid][s:e], lab[qv][s:e], first)
                for part, (_, m) in zip(parts, mine):
                    part.append(m.per_query(view))
            for part, (p, m) in zip(parts, mine):
                per_q = np.concatenate(part) if part else np.zeros(0)
                for c, mask in groups:
                    sel = mask[qv]
                    out[_key(p.name, c)] = m.aggregate(per_q[sel], lab[qv][sel])
            for c, mask in groups[1:]:
                out[_key("n_queries_without_positive", c)] = float((~valid & mask[q_idx]).sum())

    kmeans: dict[tuple, np.ndarray] = {}
    for p, m in built:
        for c, mask in groups:
            if m.kind == "clustering":
                sel = q_idx[mask[q_idx]]
                k = n_clusters or len(np.unique(lab[sel]))
                key = (p.cosine, c)
                if key not in kmeans:
                    kmeans[key] = kmeans_assign(spaces[p.cosine][torch.as_tensor(sel, device=device)], k, p.cosine, seed)
                out[_key(p.name, c)] = m.score(lab[sel], kmeans[key])
            elif m.kind == "space":
                sel = np.nonzero((isq | isg) & mask)[0]
                out[_key(p.name, c)] = m.compute(spaces[p.cosine][torch.as_tensor(sel, device=device)], lab[sel])
    fnmr = [(p, m) for p, m in built if m.kind == "pairs"]
    for cosine in sorted({p.cosine for p, _ in fnmr}):
        mine = [(p, m) for p, m in fnmr if p.cosine == cosine]
        n_pos = _n_pos(lab[q_idx], lab[g_idx], isg[q_idx].astype(np.int64),
                       None if ign is None else ign[q_idx], None if ign is None else ign[g_idx])
        for c, mask in groups:
            qv = q_idx[(n_pos > 0) & mask[q_idx]]
            res = fnmr_at_fmr(side(qv, spaces[cosine]), side(g_idx, spaces[cosine]),
                              [m.value for _, m in mine], cosine, backend) if len(qv) else {}
            for p, m in mine:
                out[_key(p.name, c)] = res.get(m.value, float("nan"))
    return {k: out[k] for k in sorted(out, key=lambda k: _order(k, [p.name for p in parsed]))}


def _rank_limit(metrics: list, n_pos: np.ndarray) -> int | None:
    """How deep the neighbour pass must rank: the deepest ``depth()`` of the requested metrics."""
    depths = [m.depth() for m in metrics]
    if any(d is None for d in depths):
        return None
    need = [int(n_pos.max()) if d == "R" and len(n_pos) else d for d in depths if d != "R" or len(n_pos)]
    return max(need, default=0)


def _key(name: str, category: Any) -> str:
    return name if category is None else f"{name}/cat={category}"


def _order(key: str, names: list[str]) -> tuple:
    base, _, cat = key.partition("/cat=")
    return (bool(cat), cat, names.index(base) if base in names else len(names))
