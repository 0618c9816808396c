"""Exact ranks of each query's relevant gallery items, from the chunked distance pass.

Every retrieval metric here (Recall@k, MRR, P@1, R-precision, MAP@R, AP@k, full AP, precision@k) is
a function of the ranks at which a query's relevant items appear, so this returns, per query, the
sorted 0-based ranks of all of them, exactly, with ties in distance broken by the lower gallery
index — never a top-k list: recall@1000 costs no more than recall@1 (as in Roth et al., ICML 2020
and Musgrave et al., "A Metric Learning Reality Check", ECCV 2020, relevant = same label, the query
itself excluded).

Per chunk: the distances of each query's positives give its farthest positive; the items up to it
(everything that can precede a positive) are collected and sorted once by (row, distance, index)
with integer keys made from the float bits, and the positions of the positives are their ranks. The
cost beyond the matrix product is a compare and a ``flatnonzero`` (numpy's, on the CPU: each about
2× and 5× faster than torch's there) and a sort of those items: small for a good embedding; for a
random one it approaches a sort of each row (correct, slower). A metric with a depth limit
(``mAP_1000``) lets rows with thousands of items keep only those up to their limit-th nearest (one
batched ``kthvalue``), cut on the dense mask before the items are listed. Counting with two
``searchsorted`` passes per row instead was tried and measured 5× slower on the CPU.
"""

from __future__ import annotations

import numpy as np
import torch

from .knn import Side, blocks

#: Rows with more candidate items than this (and than the limit) are cut at the limit-th item.
SORT_CAP_FROM = 4096
#: Use numpy's faster kernels for three steps on the CPU. Off, the CPU runs exactly the torch code
#: a GPU runs (tests compare the two).
NUMPY_ON_CPU = True


def _numpy(t: torch.Tensor) -> bool:
    return NUMPY_ON_CPU and t.device.type == "cpu"


class ByLabel:
    """The gallery sorted by label, to list each query's same-label items without a loop."""

    def __init__(self, g: Side):
        self.g = g
        self.order = torch.argsort(g.labels, stable=True)
        self.uniq, self.counts = torch.unique(g.labels[self.order], return_counts=True)
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    def runs(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and length of each label's run in ``order`` (length 0 for labels not in the
        gallery)."""
        slot = torch.searchsorted(self.uniq, labels).clamp(max=len(self.uniq) - 1)
        return self.starts[slot], torch.where(self.uniq[slot] == labels, self.counts[slot], 0)

    def positive_columns(self, q: Side, width: int) -> torch.Tensor:
        """(nq, width) gallery positions of each query's relevant items, padded with -1."""
        start, n = self.runs(q.labels)
        ar = torch.arange(width, device=q.x.device)
        cols = self.order[(start[:, None] + ar).clamp(max=len(self.order) - 1)]
        ok = (ar[None, :] < n[:, None]) & (self.g.ids[cols] != q.ids[:, None])
        if q.ignore is not None:
            ok &= self.g.ignore[cols] != q.ignore[:, None]
        return torch.where(ok, cols, -1)


def _sort_key(vals: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """int64 keys ordering by (row, value): the float32 bits mapped to an order-preserving
    integer."""
    bits = (vals + 0.0).view(torch.int32).long()  # + 0.0 turns -0.0 into +0.0
    bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits) + (1 << 31)
    return (rows << 32) | bits


def _ranks_of_positives(
    d: torch.Tensor, r: torch.Tensor, c: torch.Tensor, pos: torch.Tensor, width: int
) -> torch.Tensor:
    """(rows, width) ranks of the positives, from the items (r, c) up to each row's farthest
    positive.

    d: (rows, n_g); r, c, pos: (M,) row, column and relevance of each item, in row-major order.
    """
    # one stable sort on (row, distance); nonzero lists columns in ascending order, so equal
    # distances stay ordered by gallery index
    o = torch.argsort(_sort_key(d[r, c], r), stable=True)
    r, pos = r[o], pos[o]
    start = torch.searchsorted(r, torch.arange(len(d), device=d.device))
    rank = torch.arange(len(r), device=d.device) - start[r]
    cs = torch.cumsum(pos, 0)
    j = cs - (cs - pos.long())[start[r]] - 1  # index of each positive within its row
    out = torch.full((len(d), width), d.shape[1], dtype=torch.long, device=d.device)
    keep = pos & (j < width)  # ties at a limit threshold can admit more positives than needed
    out[r[keep], j[keep]] = rank[keep]
    return out


def _nonzero(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column of each True of a (rows, n) bool block, in row-major order.

    On the CPU numpy's ``flatnonzero`` is about 5× faster than ``torch.nonzero`` on these sparse
    blocks, and this is the costliest step after the matrix product.
    """
    if not _numpy(mask):
        return torch.nonzero(mask, as_tuple=True)
    flat = torch.from_numpy(np.flatnonzero(mask.contiguous().numpy()))
    rows = flat // mask.shape[1]
    return rows, flat - rows * mask.shape[1]


def _at_most(d: torch.Tensor, tau: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill ``mask`` with ``d[i, j] <= tau[i]`` and return it.

    On the CPU numpy's comparison is used: about 2× faster than ``torch.le`` on these (c, n_g)
    blocks with a broadcast threshold (measured on a 2-core CPU, 138 × 60,502 blocks).
    """
    if _numpy(d):
        np.less_equal(d.numpy(), tau[:, None].numpy(), out=mask.numpy())
        return mask
    return torch.le(d, tau[:, None], out=mask)


def _cap_rows(
    d: torch.Tensor, tau: torch.Tensor, mask: torch.Tensor, cap_from: int, limit: int
) -> None:
    """In rows of ``mask`` (d <= tau) with more than ``cap_from`` items, keep only the items up to
    the row's limit-th nearest (ties with it kept): one batched ``kthvalue`` over those rows.

    Done on the dense mask, before the items are listed: with classes of thousands nearly every
    row lists most of the gallery, and cutting first keeps those lists short.
    """
    if _numpy(mask):  # row by row: 6× faster than numpy's or torch's count along an axis
        counts = torch.tensor([np.count_nonzero(row) for row in mask.numpy()])
    else:
        counts = mask.sum(1)
    over = torch.nonzero(counts > cap_from).squeeze(1)
    if len(over):
        rows = d[over]
        kth = torch.kthvalue(rows, limit, dim=1).values
        mask[over] = rows <= torch.minimum(tau[over], kth)[:, None]


def _first_positive(d: torch.Tensor, pc: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(rows,) exact 0-based rank of each row's nearest relevant item.

    d: (rows, n_g); pc: (rows, width) relevant columns padded with -1; mask: a (rows, n_g) bool
    buffer. The rank counts the items strictly closer plus the equally close ones of lower gallery
    index, read from the few items at or below the nearest relevant distance: one compare and one
    ``nonzero`` over the block, no sort.
    """
    dp = torch.where(pc >= 0, d.gather(1, pc.clamp(min=0)), float("inf"))
    dmin = dp.min(1).values
    big = torch.iinfo(torch.long).max
    cmin = torch.where((dp == dmin[:, None]) & (pc >= 0), pc, big).min(1).values
    r, c = _nonzero(_at_most(d, dmin, mask))
    before = (d[r, c] < dmin[r]) | (c < cmin[r])
    return torch.bincount(r[before], minlength=len(d))


def positive_ranks(
    qs: Side, gs: Side, cosine: bool, backend: str = "torch", limit: int | None = None
):
    """Yield, chunk by chunk, ``(offset, first (c,), ranks (c, M))``: int64 tensors on the
    embeddings' device (the ranking never leaves it).

    ``first`` is the exact rank of each query's nearest relevant item over the whole gallery;
    ``ranks`` holds the sorted exact ranks of its relevant items that rank below ``limit`` (all of
    them when ``limit`` is None), padded with n_g. ``limit == 0`` skips the ranking (first only).
    Only items up to min(farthest relevant item, the limit-th item) are sorted, so MAP@R or
    mAP_1000 on classes of thousands costs a partial sort per row, not a full one.
    Memory: one chunk of c × M integers, M = min(largest gallery class, limit).
    """
    by_label = ByLabel(gs)
    max_pos = int(by_label.runs(qs.labels)[1].max()) if len(qs.x) else 0
    width = max_pos if limit is None else min(max_pos, limit)
    mask = None
    for s, q, d in blocks(qs, gs, cosine, backend):
        mask = (
            torch.empty(d.shape, dtype=torch.bool, device=d.device)
            if mask is None
            else mask[: len(d)]
        )
        pc = by_label.positive_columns(q, max_pos)
        if width == 0:
            yield (
                s,
                _first_positive(d, pc, mask),
                torch.zeros((len(d), 0), dtype=torch.long, device=d.device),
            )
            continue
        tau = torch.where(pc >= 0, d.gather(1, pc.clamp(min=0)), -float("inf")).amax(1)
        _at_most(d, tau, mask)
        if limit is not None and limit < d.shape[1]:
            _cap_rows(d, tau, mask, max(limit, SORT_CAP_FROM), limit)
        r, c = _nonzero(mask)
        res = _ranks_of_positives(d, r, c, gs.labels[c] == q.labels[r], width)
        first = res[:, 0].clone()
        unranked = torch.nonzero(first >= d.shape[1]).squeeze(1)  # nearest positive beyond the cap
        if len(unranked):
            first[unranked] = _first_positive(d[unranked], pc[unranked], mask[: len(unranked)])
        yield s, first, res
