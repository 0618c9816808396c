"""``disthist_batchmatch``: the candidate batch whose statistics best match a big batch.

Reference: the ``disthist_batchmatch`` sampler of Roth et al., "Revisiting Training Strategies and
Generalization Performance in Deep Metric Learning", ICML 2020. Per batch, ``ncomps`` random SPC-N
candidate batches are compared with a random big batch of stored embeddings by
‖μ_big − μ_c‖ + ‖σ_big − σ_c‖ + 75·(W₁(h_big, h_c) + W₁(h_c, h_big)), with h the 50-bin
histograms of pairwise distances; the best candidate is the batch.

Deviations: W₁ is the 1-Wasserstein distance between the two histograms *as distributions over the
bin positions* (Σ|CDF_big − CDF_c|·bin width on common bins); the original passed the histogram
values to ``scipy.stats.wasserstein_distance`` as if they were samples. Since W₁ is symmetric, the
two terms equal 150·W₁. The big batch is a uniform subset of stored rows, not class-structured.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist

from datasampler.base import SAMPLERS
from datasampler.embedding_store import MATCH_FLAGS, BatchMatchSampler


@SAMPLERS.register("disthist_batchmatch", flags=MATCH_FLAGS)
class DistHistBatchMatchSampler(BatchMatchSampler):
    """Best of ncomps SPC-N candidates by mean, std and pairwise-distance-histogram match.

    Args:
        bigbs: size of the random big batch the candidates are compared with.
        ncomps: number of candidate batches per batch.
        lowproj_dim: random projection to this many dimensions first (-1: none).
        no_update: keep the first stored embeddings; ignore later updates.
    """

    n_bins = 50
    hist_weight = 75.0

    def select(self, rng: np.random.Generator, store: np.ndarray) -> np.ndarray:
        big = store[self.big_batch(rng)].astype(np.float64)
        cands = [self.spc_batch(rng) for _ in range(self.ncomps)]
        feats = [store[c].astype(np.float64) for c in cands]
        d_big, d_cand = pdist(big), [pdist(f) for f in feats]
        edges = np.linspace(
            0.0, max([d_big.max()] + [d.max() for d in d_cand]) + 1e-12, self.n_bins + 1
        )
        cdf_big = np.cumsum(np.histogram(d_big, edges)[0]) / len(d_big)
        scores = []
        for f, d in zip(feats, d_cand):
            w1 = np.abs(cdf_big - np.cumsum(np.histogram(d, edges)[0]) / len(d)).sum() * edges[1]
            scores.append(
                np.linalg.norm(big.mean(0) - f.mean(0))
                + np.linalg.norm(big.std(0) - f.std(0))
                + 2 * self.hist_weight * w1
            )
        return cands[int(np.argmin(scores))]
