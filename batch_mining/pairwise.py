"""Shared pieces of the miners: pairwise distances, label masks and vectorised per-row draws.

The original harness (Roth et al., "Revisiting Training Strategies and Generalization Performance in
Deep Metric Learning", ICML 2020) copied ``pdist`` into six miners and drew one index per anchor
with ``np.random.choice`` inside a Python loop. Here every draw is an inverse-CDF lookup over a
whole weight matrix, with the uniforms taken from the miner's own CPU generator, so a seed fixes the
draw on any device.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


def pairwise_distances(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Euclidean distances. x: (A, D), y: (N, D) (default x) -> (A, N), float32 or wider."""
    y = x if y is None else y
    x, y = x.float(), y.float()
    sq = (x * x).sum(1, keepdim=True) + (y * y).sum(1)[None] - 2.0 * x @ y.T
    return sq.clamp_min(0.0).sqrt()


def normalized_distances(embeds: torch.Tensor, n_anchors: int | None = None) -> torch.Tensor:
    """Distances between L2-normalised rows. embeds: (N, D) -> (A, N), A = n_anchors or N."""
    x = F.normalize(embeds.float(), dim=1)
    return pairwise_distances(x[: n_anchors or len(x)], x)


def label_masks(
    labels: torch.Tensor, n_anchors: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(pos, neg), both (A, N) bool: same label without the anchor itself / different label.

    Anchors are the first ``n_anchors`` rows (all rows by default); memory-bank rows follow them.
    """
    a = n_anchors or len(labels)
    same = labels[:a, None] == labels[None, :]
    pos = same.clone()
    idx = torch.arange(a, device=labels.device)
    pos[idx, idx] = False
    return pos, ~same


def from_host(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor (the miner's draws) on ``device`` without waiting for the device: on CUDA it is
    pinned and copied asynchronously, since a copy from pageable memory synchronises the stream."""
    if device.type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def draw_rows(weights: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One column per row, drawn with probability proportional to the row's weights.

    weights: (A, N) non-negative, every row with a positive sum -> (A,) long on weights' device.
    The first column whose cumulative weight exceeds u * total is taken, so a zero-weight column
    can never be chosen.
    """
    if weights.shape[0] == 0:
        return torch.empty(0, dtype=torch.long, device=weights.device)
    cdf = weights.double().cumsum(1)
    u = torch.rand(weights.shape[0], 1, generator=generator, dtype=torch.float64)
    u = from_host(u, weights.device)
    # Shrinking u keeps u·total strictly below the total despite rounding, so the count can never
    # step past the last positive weight into a zero-weight tail.
    idx = (cdf <= u * (1.0 - 1e-12) * cdf[:, -1:]).sum(1)
    return idx.clamp_max(weights.shape[1] - 1)


def draw_uniform(mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One True column per row, uniformly. mask: (A, N) bool, no empty row -> (A,) long."""
    return draw_rows(mask.to(torch.float64), generator)


def with_fallback(preferred: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """Row-wise: ``preferred`` where that row has any True (or positive weight), else ``fallback``.

    preferred, fallback: (A, N) of the same dtype.
    """
    has = (preferred > 0).any(1, keepdim=True)
    return torch.where(has, preferred, fallback)


class AnchorRows(NamedTuple):
    """The anchors of a batch that have both a positive and a negative, with their mask rows."""

    anchors: torch.Tensor  # (A,) long
    pos: torch.Tensor  # (A, N) bool
    neg: torch.Tensor  # (A, N) bool
    embeds: torch.Tensor  # (N, D), the rows the masks index (batch, then any memory rows)

    def distances(self) -> torch.Tensor:
        """(A, N) Euclidean distances from each anchor to every row."""
        return pairwise_distances(self.embeds[self.anchors], self.embeds)

    def normalized_distances(self) -> torch.Tensor:
        """(A, N) distances between L2-normalised rows."""
        return normalized_distances(self.embeds)[self.anchors]


def anchor_rows(
    embeds: torch.Tensor, labels: torch.Tensor, n_anchors: int | None = None
) -> AnchorRows:
    """Anchors among the first ``n_anchors`` rows (all by default) with a positive and a negative.

    embeds: (N, D), labels: (N,) -> AnchorRows with A <= n_anchors (A = 0 when there is none).
    """
    pos, neg = label_masks(labels, n_anchors)
    anchors = torch.nonzero(pos.any(1) & neg.any(1)).flatten()
    return AnchorRows(anchors, pos[anchors], neg[anchors], embeds)
