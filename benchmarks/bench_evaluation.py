"""Benchmark of the evaluation engine on a synthetic set of Stanford Online Products test size.

SOP test (Oh Song et al., "Deep Metric Learning via Lifted Structured Feature Embedding", CVPR 2016):
60,502 images of 11,316 classes with 2–12 images each. The synthetic set has the same counts, 128-d
L2-normalised embeddings scattered around random class centres. Timed on the CPU:
(a) the floor: X @ X.T computed chunk by chunk (same chunks as the engine) without keeping it;
(b) the retrieval suite in one ``evaluate`` call; (c) nmi + f1 (one k-means).
Peak extra memory is the growth of the resident set's high-water mark during each phase (Linux).

    .venv/bin/python benchmarks/bench_evaluation.py [--quick] [--backend torch|faiss] [--noise 1.2]
        [--threads N]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from evaluation import evaluate, knn  # noqa: E402

SUITE = ["e_recall@1", "e_recall@2", "e_recall@4", "e_recall@10", "e_recall@100", "e_recall@1000",
         "mAP_at_r", "r_precision", "mAP_c", "mAP_1000", "mrr"]


def synthetic(n: int, n_classes: int, dim: int, noise: float = 1.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n samples in n_classes classes of 2..12 samples; (n, dim) float32 unit vectors, (n,) labels."""
    rng = np.random.default_rng(seed)
    sizes = np.clip(rng.geometric(1 / (n / n_classes - 1), n_classes) + 1, 2, 12)
    while sizes.sum() != n:  # nudge random classes until the total is exact
        step = 1 if sizes.sum() < n else -1
        pick = rng.integers(n_classes, size=abs(n - sizes.sum()))
        sizes[pick] = np.clip(sizes[pick] + step, 2, 12)
    labels = np.repeat(np.arange(n_classes), sizes)
    centres = rng.normal(size=(n_classes, dim))
    x = centres[labels] + noise * rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perm = rng.permutation(n)
    return x[perm].astype(np.float32), labels[perm]


def _peak_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))


def _reset_peak() -> int:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _peak_kb()


def timed(fn):
    """(result, wall seconds, process CPU seconds, peak extra GB)."""
    base = _reset_peak()
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c, (_peak_kb() - base) / 1024 ** 2


def floor(x: torch.Tensor) -> float:
    """The bare product, chunk by chunk, into one reused buffer (the engine's chunks)."""
    chunk = max(1, knn.CHUNK_ELEMENTS // len(x))
    buf = torch.empty(chunk, len(x))
    acc = 0.0
    for s in range(0, len(x), chunk):
        q = x[s:s + chunk]
        acc += float(torch.mm(q, x.T, out=buf[: len(q)])[:, 0].sum())
    return acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="6,050 samples / 1,132 classes")
    ap.add_argument("--backend", default="torch", choices=("torch", "faiss"))
    ap.add_argument("--noise", type=float, default=1.2, help="per-dimension noise around class centres "
                    "(1.2: Recall@1 ≈ 0.94; 1.45: ≈ 0.8, about a trained SOP model)")
    ap.add_argument("--threads", type=int, help="torch and faiss threads (default: torch's choice). On a "
                    "crowded machine 1 avoids OpenMP waits that swamp the small per-chunk operations")
    args = ap.parse_args()
    if args.threads:
        import faiss
        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
    n, c = (6050, 1132) if args.quick else (60502, 11316)
    x, y = synthetic(n, c, 128, args.noise)
    xt = torch.from_numpy(x)
    print(f"N={n} classes={c} D=128 noise={args.noise} threads={torch.get_num_threads()} load={os.getloadavg()[0]:.2f}")
    # the machine is shared: time the floor before and after the suite, and report CPU time as well
    _, ta1, ca1, ma = timed(lambda: floor(xt))
    res, tb, cb, mb = timed(lambda: evaluate(x, y, SUITE, backend=args.backend))
    _, ta2, ca2, _ = timed(lambda: floor(xt))
    cl, tc, cc, mc = timed(lambda: evaluate(x, y, ["nmi", "f1"]))
    ta, ca = (ta1 + ta2) / 2, (ca1 + ca2) / 2
    print(f"(a) chunked X @ X.T floor    wall {ta:7.2f} s ({ta1:.2f} / {ta2:.2f})  cpu {ca:7.2f} s   "
          f"peak extra {ma:5.2f} GB")
    print(f"(b) retrieval suite ({args.backend})  wall {tb:7.2f} s  cpu {cb:7.2f} s   peak extra {mb:5.2f} GB   "
          f"(b)/(a) = {tb / ta:.2f} wall, {cb / ca:.2f} cpu")
    print(f"(c) nmi + f1                 wall {tc:7.2f} s  cpu {cc:7.2f} s   peak extra {mc:5.2f} GB")
    for k, v in {**res, **cl}.items():
        print(f"    {k:<28s} {v:.4f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
