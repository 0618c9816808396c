"""The chunked, exact distance pass shared by every retrieval metric and the pair-score metrics.

Queries go in chunks against the whole gallery, so no query × gallery matrix is ever held. A block
is squared Euclidean through norms (``|g|² − 2 q·g``; ``|q|²`` is a per-row constant the ranking
does not need), or minus the inner product of L2-normalised vectors for the cosine variants.
Excluded pairs — a query and itself (by index), gallery items sharing its ignore id — are set
to +inf.

Backends: ``torch`` (matmul) or ``faiss`` (faiss' exhaustive L2/IP kernels,
``faiss.pairwise_distances``, the ones behind IndexFlatL2/IndexFlatIP). Both feed the same ranking
code (``ranks.py``), so they agree whenever their float32 distances order the items the same way.
Deviation from the original harness (Roth et al., "Revisiting Training Strategies and Generalization
Performance in Deep Metric Learning", ICML 2020), which searched a faiss index with
k = max recall + 1 and dropped the first column as "the query": self-exclusion is by index and no
top-k search is needed (ranks come from ``ranks.py``); on CUDA the torch kernels run for both
backends.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CHUNK_ELEMENTS = 1 << 23  # distance entries per chunk (32 MB in float32); tests shrink it


@dataclass
class Side:
    """One side of the search. x: (n, D) float32; ids: (n,) sample index; labels, ignore: (n,)."""

    x: torch.Tensor
    ids: torch.Tensor
    labels: torch.Tensor
    ignore: torch.Tensor | None

    def rows(self, sl) -> Side:
        return Side(
            self.x[sl],
            self.ids[sl],
            self.labels[sl],
            None if self.ignore is None else self.ignore[sl],
        )


def block(
    q: torch.Tensor,
    g: torch.Tensor,
    g_sq: torch.Tensor | None,
    use_faiss: bool,
    full: bool = False,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """(c, n_g) distances, smaller is closer. g_sq is None for the cosine (inner product) case.

    Euclidean: ``|g|² − 2 q·g``, plus ``|q|²`` only when ``full`` (a per-row constant: the ranking
    does not need it). Cosine: ``−q·g``. The faiss kernels always return full distances.
    """
    if use_faiss and q.device.type == "cpu":
        import faiss

        metric = faiss.METRIC_L2 if g_sq is not None else faiss.METRIC_INNER_PRODUCT
        d = torch.from_numpy(faiss.pairwise_distances(q.numpy(), g.numpy(), metric=metric))
        return d if g_sq is not None else d.neg_()
    if g_sq is None:
        return torch.mm(q.neg(), g.T, out=out)
    d = torch.addmm(g_sq, q, g.T, beta=1.0, alpha=-2.0, out=out)
    return d.add_((q * q).sum(1, keepdim=True)) if full else d


def exclude(d: torch.Tensor, q: Side, g: Side, self_pos: torch.Tensor) -> None:
    """Set excluded pairs to +inf in place. self_pos: (c,) gallery position of each query or -1."""
    rows = torch.nonzero(self_pos >= 0).squeeze(1)
    d[rows, self_pos[rows]] = float("inf")
    if q.ignore is not None:
        d.masked_fill_(q.ignore[:, None] == g.ignore[None, :], float("inf"))


def blocks(qs: Side, gs: Side, cosine: bool, backend: str, full: bool = False):
    """Yield (offset, query rows, (c, n_g) distances with excluded pairs at +inf), chunk by chunk.

    The distance block is a view of a buffer reused by the next chunk: consume it before advancing.
    """
    g_sq = None if cosine else (gs.x * gs.x).sum(1)
    lookup = torch.full(
        (int(max(qs.ids.max(), gs.ids.max())) + 1,), -1, dtype=torch.long, device=gs.x.device
    )
    lookup[gs.ids] = torch.arange(len(gs.x), device=gs.x.device)
    chunk = max(1, CHUNK_ELEMENTS // max(len(gs.x), 1))
    # one buffer for every chunk: a fresh 32 MB block per chunk costs page faults comparable to
    # the product
    buf = torch.empty(min(chunk, len(qs.x)), len(gs.x), dtype=gs.x.dtype, device=gs.x.device)
    for s in range(0, len(qs.x), chunk):
        q = qs.rows(slice(s, s + chunk))
        d = block(q.x, gs.x, g_sq, backend == "faiss", full, out=buf[: len(q.x)])
        exclude(d, q, gs, lookup[q.ids])
        yield s, q, d
