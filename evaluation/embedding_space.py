"""Embedding-space statistics read directly from the embeddings: ``dists``, ``rho_spectrum``,
``pcf``.

``dists@intra|inter|intra_over_inter`` and ``rho_spectrum@k`` are π_intra, π_inter, π_ratio and ρ(Φ)
of Roth et al., "Revisiting Training Strategies and Generalization Performance in Deep Metric
Learning", ICML 2020. ``pcf@r`` is the principal-component fraction of Open Metric Learning.

- dists use cosine distances (1 − cos), as the original did. intra: per class, the mean pairwise
  distance over distinct pairs, then the mean over classes with at least two samples (the original's
  NaN replacement for single-sample classes was broken; here such classes are left out). inter: mean
  distance over distinct pairs of class means. Both are closed forms over class sums (index_add) in
  float64, no per-class loop. ``c_dists`` equals ``dists``: cosine distance ignores the norm
  already.
- rho_spectrum: singular values of the uncentred (N, D) embedding matrix from an exact float64 SVD
  on every device (the original used a randomised TruncatedSVD of D−1 components on CPU and a full
  SVD on GPU, which disagreed). k > 0: drop the k−1 largest values, normalise to a distribution s
  and return KL(U ‖ s); k < 0: drop |k|−1 values and return KL(s ‖ U); k = 0: the full normalised
  spectrum as an array. A zero singular value makes KL(U ‖ s) infinite and is returned as inf.
- pcf@r: eigenvalues of the covariance of the centred embeddings (float64); the smallest number n of
  leading components whose explained-variance share reaches r (≥ r), divided by D.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .context import Context, key
from .names import METRICS, Metric


class SpaceMetric(Metric):
    """A statistic of the embeddings of every query and gallery sample (per category)."""

    kind = "space"

    def compute(self, x: torch.Tensor, labels: np.ndarray) -> float | np.ndarray:
        raise NotImplementedError

    @classmethod
    def run(cls, ctx: Context, metrics: list[Metric]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c, mask in ctx.groups:
            sel = np.nonzero((ctx.is_query | ctx.is_gallery) & mask)[0]
            for m in metrics:
                out[key(m.name, c)] = m.compute(ctx.rows(sel, m.cosine), ctx.labels[sel])
        return out


@METRICS.register("dists")
class Dists(SpaceMetric):
    """Mean intra-class and inter-class cosine distances and their ratio (π_intra, π_inter, π_ratio)."""  # noqa: E501 - --help shows only this first line

    arg = ("intra", "inter", "intra_over_inter")

    def compute(self, x: torch.Tensor, labels: np.ndarray) -> float:
        xn = torch.nn.functional.normalize(x.double(), dim=1)
        _, inv = np.unique(labels, return_inverse=True)
        inv_t = torch.as_tensor(inv, device=x.device)
        n_c = torch.bincount(inv_t).double()
        sums = torch.zeros(len(n_c), x.shape[1], dtype=torch.float64, device=x.device).index_add_(
            0, inv_t, xn
        )
        many = n_c > 1
        # Σ_{i≠j} cos = |Σ x̂|² − n for unit vectors
        mean_cos = ((sums[many] ** 2).sum(1) - n_c[many]) / (n_c[many] * (n_c[many] - 1))
        intra = float((1 - mean_cos).mean()) if many.any() else float("nan")
        means = torch.nn.functional.normalize(
            torch.zeros_like(sums).index_add_(0, inv_t, x.double()) / n_c[:, None], dim=1
        )
        c = len(means)
        inter = (
            float(1 - ((means.sum(0) ** 2).sum() - c) / (c * (c - 1))) if c > 1 else float("nan")
        )
        ratio = intra / inter if inter > 0 else float("nan")
        return {"intra": intra, "inter": inter, "intra_over_inter": ratio}[self.value]


@METRICS.register("rho_spectrum")
class RhoSpectrum(SpaceMetric):
    """ρ(Φ): KL divergence between a uniform distribution and the normalised singular-value spectrum."""  # noqa: E501 - --help shows only this first line

    arg = "int"

    def compute(self, x: torch.Tensor, labels: np.ndarray) -> float | np.ndarray:
        s = torch.linalg.svdvals(x.double()).cpu().numpy()
        if self.value == 0:
            return s / s.sum()
        s = s[abs(self.value) - 1 :]
        s = s / s.sum()
        u = np.full_like(s, 1.0 / len(s))
        with np.errstate(divide="ignore"):
            if self.value > 0:
                return float(np.sum(u * (np.log(u) - np.log(s))))
            return float(
                np.sum(np.where(s > 0, s * (np.log(np.where(s > 0, s, 1)) - np.log(u)), 0.0))
            )


@METRICS.register("pcf")
class PCF(SpaceMetric):
    """Principal-component fraction: share of dimensions needed to explain a variance fraction r."""

    arg = "float"

    @staticmethod
    def check_value(r: float) -> str | None:
        return None if 0 < r <= 1 else "the variance share must lie in (0, 1]"

    def compute(self, x: torch.Tensor, labels: np.ndarray) -> float:
        xc = x.double() - x.double().mean(0)
        ev = torch.linalg.eigvalsh(xc.T @ xc).flip(0).clamp(min=0).cpu().numpy()
        share = np.cumsum(ev) / ev.sum()
        n = int(np.searchsorted(share, self.value - 1e-12) + 1)
        return min(n, len(ev)) / x.shape[1]
