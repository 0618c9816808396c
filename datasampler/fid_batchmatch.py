"""``fid_batchmatch``: the candidate batch with the smallest Fréchet distance to a big batch.

Reference: the ``fid_batchmatch`` sampler of Roth et al., "Revisiting Training Strategies and
Generalization Performance in Deep Metric Learning", ICML 2020, scoring with the Fréchet distance
of Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017: ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½).

Deviations: the original was unreachable (its module was never imported); tr((Σ₁Σ₂)^½) is computed
as the sum of square roots of the eigenvalues of Σ₁^½ Σ₂ Σ₁^½ (symmetric, so no complex
``sqrtm``); the big batch is a uniform subset of stored rows.
"""

from __future__ import annotations

import numpy as np

from datasampler.base import SAMPLERS
from datasampler.embedding_store import MATCH_FLAGS, BatchMatchSampler


@SAMPLERS.register("fid_batchmatch", flags=MATCH_FLAGS)
class FIDBatchMatchSampler(BatchMatchSampler):
    """Best of ncomps SPC-N candidates by Fréchet distance to a big batch of stored embeddings.

    Args:
        bigbs: size of the random big batch the candidates are compared with.
        ncomps: number of candidate batches per batch.
        lowproj_dim: random projection to this many dimensions first (-1: none).
        no_update: keep the first stored embeddings; ignore later updates.
    """

    def select(self, rng: np.random.Generator, store: np.ndarray) -> np.ndarray:
        big = store[self.big_batch(rng)].astype(np.float64)
        mu_b, cov_b = big.mean(0), np.atleast_2d(np.cov(big, rowvar=False))
        vals, vecs = np.linalg.eigh(cov_b)
        root_b = (vecs * np.sqrt(vals.clip(0))) @ vecs.T
        cands = [self.spc_batch(rng) for _ in range(self.ncomps)]
        scores = []
        for c in cands:
            f = store[c].astype(np.float64)
            cov_c = np.atleast_2d(np.cov(f, rowvar=False))
            cross = np.sqrt(np.linalg.eigvalsh(root_b @ cov_c @ root_b).clip(0)).sum()
            scores.append(
                ((mu_b - f.mean(0)) ** 2).sum() + np.trace(cov_b) + np.trace(cov_c) - 2 * cross
            )
        return cands[int(np.argmin(scores))]
