"""k-means for the clustering metrics: faiss (CPU, or GPU with faiss-gpu) or a torch implementation.

faiss: ``faiss.Kmeans`` with niter 20, one point per centroid allowed and a fixed seed (random
initial centroids, the setting of Roth et al., ICML 2020 and pytorch-metric-learning).

torch: Lloyd's algorithm (niter 20) from a seeded greedy k-means++ initialisation (Arthur &
Vassilvitskii, "k-means++: The Advantages of Careful Seeding", SODA 2007), on whatever device the
embeddings are: the GPU k-means for ``--evaluate_on_gpu`` when faiss has no GPU support. The same
code runs on the CPU (tests compare it there with faiss). Distances to the centroids are computed in
chunks, so no N × k matrix is held. Deviations from faiss: k-means++ instead of random initial
centroids (fewer poor local minima, so NMI agrees with faiss' only up to the run-to-run spread of
k-means), and an empty cluster keeps its previous centroid (faiss splits a large cluster instead).
The random draws come from a CPU generator, so the seed picks the same initial centroids on every
device. Spherical (cosine) k-means normalises the centroids after each update and assigns by inner
product.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .knn import CHUNK_ELEMENTS

NITER = 20


def resolve(method: str, device: torch.device) -> str:
    """``auto``: faiss on the CPU; on a GPU faiss-gpu when importable, else the torch k-means."""
    if method != "auto":
        return method
    if device.type == "cpu":
        return "faiss"
    try:
        import faiss

        return "faiss" if faiss.get_num_gpus() > 0 else "torch"
    except ImportError:
        return "torch"


def kmeans_assign(
    x: torch.Tensor, n_clusters: int, cosine: bool, seed: int = 0, method: str = "auto"
) -> np.ndarray:
    """x: (N, D) → (N,) cluster ids; ``method``: "auto", "faiss" or "torch"."""
    k = max(1, min(int(n_clusters), len(x)))
    if resolve(method, x.device) == "torch":
        return torch_kmeans(x, k, cosine, seed)[0].cpu().numpy()
    return faiss_kmeans(x, k, cosine, seed)


def faiss_kmeans(x: torch.Tensor, k: int, cosine: bool, seed: int) -> np.ndarray:
    import faiss

    xs = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
    km = faiss.Kmeans(
        xs.shape[1],
        k,
        niter=NITER,
        seed=seed,
        spherical=cosine,
        min_points_per_centroid=1,
        max_points_per_centroid=max(256, len(xs)),
        gpu=x.device.type == "cuda" and faiss.get_num_gpus() > 0,
        verbose=False,
    )
    km.train(xs)
    if cosine:
        return km.centroids.__matmul__(xs.T).argmax(0)
    return km.index.search(xs, 1)[1][:, 0]


def _nearest(x: torch.Tensor, c: torch.Tensor, cosine: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) nearest centroid and its squared distance (2 − 2 cos for unit vectors), in chunks."""
    chunk = max(1, CHUNK_ELEMENTS // max(len(c), 1))
    c_sq = None if cosine else (c * c).sum(1)
    ids, dist = [], []
    for s in range(0, len(x), chunk):
        q = x[s : s + chunk]
        if cosine:
            best = (q @ c.T).max(1)
            ids.append(best.indices)
            dist.append((2 - 2 * best.values).clamp(min=0))
        else:
            best = torch.addmm(c_sq, q, c.T, beta=1.0, alpha=-2.0).min(1)
            ids.append(best.indices)
            dist.append((best.values + (q * q).sum(1)).clamp(min=0))
    return torch.cat(ids), torch.cat(dist)


def _plus_plus(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """(k,) indices of greedy k-means++ seeds: each step draws 2 + ln k candidates with
    probability ∝ D² (the squared distance to the nearest seed so far) and keeps the one that
    lowers the total D² most (scikit-learn's default; plain k-means++ often puts two seeds in one
    cluster). Points already chosen have D² = 0 and are not drawn again while others remain."""
    n = len(x)
    trials = 2 + int(math.log(k))
    u = torch.rand(k, trials, generator=gen, dtype=torch.float64).to(x.device)
    picks = torch.empty(k, dtype=torch.long, device=x.device)
    picks[0] = torch.randint(n, (1,), generator=gen)[0].to(x.device)
    x_sq = (x * x).sum(1)

    def sq_dist(idx: torch.Tensor) -> torch.Tensor:  # (n, len(idx)) float64
        return (x_sq[:, None] - 2 * (x @ x[idx].T) + x_sq[idx][None, :]).clamp(min=0).double()

    d2 = sq_dist(picks[:1])[:, 0]
    for i in range(1, k):
        # no host sync in the loop: the draws are a searchsorted on the device
        cum = torch.cumsum(d2, 0)
        cand = torch.searchsorted(cum, u[i] * cum[-1], right=True).clamp(max=n - 1)
        pot = torch.minimum(d2[:, None], sq_dist(cand))
        best = pot.sum(0).argmin()
        picks[i] = cand[best]
        d2 = pot[:, best]
    return picks


def torch_kmeans(
    x: torch.Tensor, k: int, cosine: bool, seed: int = 0, niter: int = NITER
) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (N, D) (L2-normalised when ``cosine``) → ((N,) cluster ids, (k, D) centroids)."""
    x = x.detach().float()
    gen = torch.Generator().manual_seed(seed)
    k = max(1, min(int(k), len(x)))
    c = x[_plus_plus(x, k, gen)].clone()
    for _ in range(niter):
        assign, _ = _nearest(x, c, cosine)
        sums = torch.zeros(k, x.shape[1], dtype=torch.float64, device=x.device)
        sums.index_add_(0, assign, x.double())
        counts = torch.bincount(assign, minlength=k)
        full = counts > 0
        new = (sums / counts.clamp(min=1)[:, None]).float()
        if cosine:
            new = torch.nn.functional.normalize(new, dim=1)
        c = torch.where(full[:, None], new, c)
    return _nearest(x, c, cosine)[0], c
