"""Batch-level building blocks shared by the losses: distances, label masks, masked reductions.

No paper of its own. Distances add a small epsilon under the square root (as the original
harness's margin loss did, ``sqrt(d² + 1e-8)``) so that coinciding points do not produce NaN
gradients; the masked log-sum-exp fills excluded entries with the dtype's lowest finite value
and keeps them out of ``exp``, so that empty rows give a finite, gradient-free result.
"""

from __future__ import annotations

import torch

EPS = 1e-8


def row_sq_dists(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distance of matching rows. x, y: (T, D) -> (T,)."""
    return (x - y).pow(2).sum(-1)


def row_dists(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distance of matching rows, ``sqrt(d² + EPS)``. x, y: (T, D) -> (T,)."""
    return (row_sq_dists(x, y) + EPS).sqrt()


def sq_dist_matrix(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """All squared Euclidean distances. x: (N, D), y: (M, D) -> (N, M), clamped at 0."""
    sq = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1)[None] - 2 * x @ y.T
    return sq.clamp_min(0)


def dist_matrix(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """All Euclidean distances ``sqrt(d² + EPS)``. x: (N, D), y: (M, D) -> (N, M)."""
    return (sq_dist_matrix(x, y) + EPS).sqrt()


def label_masks(
    labels: torch.Tensor, other: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(positive, negative)`` boolean masks between ``labels`` (N,) and ``other`` (M,) (default:
    ``labels`` itself, in which case the diagonal is no positive). Both (N, M)."""
    other = labels if other is None else other
    same = labels[:, None] == other[None, :]
    if other is labels:
        same = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        return same, labels[:, None] != other[None, :]
    return same, ~same


def masked_logsumexp(x: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``log Σ exp(x)`` over the entries where ``mask`` holds; a very negative finite value (and
    zero gradient) where a row has none. Excluded entries never reach ``exp``: exponentials that
    underflow take a slow path on CPU (5–20× slower), which ``torch.logsumexp`` over a filled
    tensor would hit for every excluded entry."""
    low = torch.finfo(x.dtype).min
    top = torch.where(mask, x, torch.full_like(x, low)).amax(dim, keepdim=True).detach()
    shifted = torch.where(mask, x - top, torch.zeros_like(x))
    total = (shifted.exp() * mask).sum(dim)
    return total.clamp_min(torch.finfo(x.dtype).tiny).log() + top.squeeze(dim)


def log1p_sum_exp(x: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``log(1 + Σ exp(x))`` over masked entries; 0 for a row without any.

    Exact: a log-sum-exp over the masked entries plus a zero column (the 1), shifted by the row's
    maximum including that 0. ``softplus(logsumexp(x))`` is not: ``F.softplus`` returns its
    input unchanged above 20, dropping ``log1p(exp(-y))`` (about 2e-9 per term at 20)."""
    low = torch.finfo(x.dtype).min
    top = torch.where(mask, x, torch.full_like(x, low)).amax(dim, keepdim=True)
    top = top.clamp_min(0.0).detach()
    shifted = torch.where(mask, x - top, torch.zeros_like(x))
    total = (shifted.exp() * mask).sum(dim) + (-top.squeeze(dim)).exp()
    return total.log() + top.squeeze(dim)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` holds; a graph-connected 0 when it holds nowhere."""
    return torch.where(mask, values, torch.zeros_like(values)).sum() / mask.sum().clamp_min(1)
