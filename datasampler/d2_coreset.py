"""``d2_coreset``: batch anchors drawn by density-weighted D² (k-means++-style) sampling.

Reference: Arthur & Vassilvitskii, "k-means++: The Advantages of Careful Seeding", SODA 2007 (D²
sampling); used as a batch sampler by Roth et al., "Revisiting Training Strategies and
Generalization Performance in Deep Metric Learning", ICML 2020.

Per batch: fit a Gaussian N(μ, Σ) to a random big batch of stored embeddings; the first anchor is
the point nearest a draw from it; each further anchor is drawn with probability
∝ N(x; μ, Σ) · (Σ_chosen ‖x − c‖²)^λ (``--data_d2_coreset_lambda``); each anchor is joined by
samples_per_class - 1 random images of its class.

Deviations: Σ is regularised by 1e-3·tr(Σ)/D·I (a big batch of 512 rows gives a near-singular
covariance in 128-D) and the product is computed in log space; chosen points and the rest of their
class are excluded; positions map back through the same big batch (the original's index bug); the
original registered itself as ``greedy_coreset_sampler``.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

from datasampler.base import SAMPLERS
from datasampler.embedding_store import STORE_FLAGS, EmbeddingSampler


@SAMPLERS.register("d2_coreset", flags={**STORE_FLAGS, "lam": "--data_d2_coreset_lambda"})
class D2CoresetSampler(EmbeddingSampler):
    """Gaussian-density-weighted D² sampling of anchors over a big batch, filled per class.

    Args:
        bigbs: size of the random big batch the anchors are drawn from.
        lowproj_dim: random projection to this many dimensions first (-1: none).
        no_update: keep the first stored embeddings; ignore later updates.
        lam: exponent lambda on the summed squared distance to the chosen anchors.
    """

    def __init__(self, lam: float = 1.0, **context) -> None:
        super().__init__(**context)
        self.lam = float(lam)

    def select(self, rng: np.random.Generator, store: np.ndarray) -> np.ndarray:
        big = self.big_batch(rng)
        x, cls = store[big].astype(np.float64), self.class_pos[big]
        mu = x.mean(0)
        cov = np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])
        cov += (1e-3 * np.trace(cov) / x.shape[1] + 1e-8) * np.eye(x.shape[1])
        chol = np.linalg.cholesky(cov)
        log_density = -0.5 * (solve_triangular(chol, (x - mu).T, lower=True) ** 2).sum(0)
        draw = mu + chol @ rng.standard_normal(x.shape[1])
        pick = int(np.argmin(((x - draw) ** 2).sum(1)))
        blocked = np.zeros(len(big), dtype=bool)
        spread = np.zeros(len(big))
        chosen = []
        while True:
            chosen.append(pick)
            blocked |= cls == cls[pick]
            spread += ((x - x[pick]) ** 2).sum(1)
            if blocked.all() or len(chosen) == self.n_groups:
                break
            log_p = log_density + self.lam * np.log(spread + 1e-12)
            log_p[blocked] = -np.inf
            p = np.exp(log_p - log_p.max())
            pick = int(rng.choice(len(big), p=p / p.sum()))
        return self.fill_groups(rng, self.complete_anchors(rng, big[chosen]))
