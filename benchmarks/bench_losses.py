"""Forward + backward time of every registered loss at the paper's batch shape.

Batch 112 of 56 classes × 2 samples, embedding 128 (L2-normalised), 100 classes for the proxy
losses, CPU, float32. Tuple losses get a fixed tuple set computed once (one random positive and
negative per anchor; first positive per anchor; every anchor with a positive), so the figures are
the losses' own cost, without mining. Prints the median over ``--repeats`` runs, and the minimum,
which is the steadier figure on a shared machine.

    .venv/bin/python benchmarks/bench_losses.py [--repeats 20] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import criteria  # noqa: F401
from batch_mining.base import Lifted, NPairs, Triplets
from criteria.base import LOSSES


class FixedTuples:
    """A miner stand-in that returns one precomputed tuple set."""

    def __init__(self, produces: str, tuples) -> None:
        self.produces, self.tuples = produces, tuples

    def augment(self, embeds, labels):
        return embeds, labels

    def __call__(self, embeds, labels):
        return self.tuples


def tuple_sets(labels: torch.Tensor, seed: int = 0) -> dict[str, FixedTuples]:
    g = torch.Generator().manual_seed(seed)
    n = len(labels)
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(n, dtype=torch.bool, device=labels.device)
    anchors = pos.any(1).nonzero().squeeze(1)
    noise = torch.rand(n, n, generator=g).to(labels.device)
    positives = (noise + 2 * pos).argmax(1)[anchors]
    negatives = (noise + 2 * ~same).argmax(1)[anchors]
    return {
        "triplets": FixedTuples("triplets", Triplets(anchors, positives, negatives)),
        "npair": FixedTuples("npair", NPairs(anchors, positives)),
        "lifted": FixedTuples("lifted", Lifted(anchors)),
    }


def time_loss(
    name: str, embeds: torch.Tensor, labels: torch.Tensor, miners, repeats: int
) -> list[float]:
    """Milliseconds of ``repeats`` forward + backward passes, after 3 warm-up passes."""
    kinds = LOSSES.get(name).miner_kinds
    loss_fn = LOSSES.build(
        name,
        {},
        miner=miners[kinds[0]] if kinds else None,
        n_classes=100,
        embed_dim=embeds.shape[1],
    ).to(embeds.device)
    times = []
    for i in range(repeats + 3):
        x = embeds.clone().requires_grad_()
        if embeds.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss_fn(x, labels).backward()
        if embeds.is_cuda:
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return [1000 * t for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bs", type=int, default=112)
    parser.add_argument("--embed_dim", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: least noisy)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    labels = torch.arange(args.bs // 2, device=device).repeat_interleave(2)
    embeds = F.normalize(torch.randn(args.bs, args.embed_dim, device=device), dim=1)
    miners = tuple_sets(labels)
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"batch {args.bs}, dim {args.embed_dim}, median of {args.repeats}"
    )
    print(f"{'loss':<16} {'median ms':>10} {'min ms':>8}")
    for name in LOSSES.names():
        times = time_loss(name, embeds, labels, miners, args.repeats)
        print(f"{name:<16} {statistics.median(times):>10.3f} {min(times):>8.3f}")


if __name__ == "__main__":
    main()
