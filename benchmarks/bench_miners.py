"""Wall-clock time of every registered miner on CPU (median over repeats), printed as a table.

Usage: ``python benchmarks/bench_miners.py [--sizes 112 256] [--dim 128] [--spc 2] [--repeats 30]``.
A memory-bank miner is timed with a full bank (augment + mine), since that is its steady state.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from batch_mining import MINERS


def time_miner(name: str, bs: int, dim: int, spc: int, repeats: int) -> tuple[float, int]:
    """Median milliseconds per call and the number of tuples of the last call."""
    g = torch.Generator().manual_seed(0)
    embeds = torch.nn.functional.normalize(torch.randn(bs, dim, generator=g), dim=1)
    labels = torch.arange(bs // spc).repeat_interleave(spc)
    miner = MINERS.build(name, {}, seed=0)
    for _ in range(3 + getattr(miner, "size", 0) // bs):  # warm-up (and fill a memory bank)
        miner(*miner.augment(embeds, labels))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        miner(*miner.augment(embeds, labels))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times), miner.last_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[112, 256])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--spc", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    head = "| miner | " + " | ".join(f"bs={b} ms | tuples" for b in args.sizes) + " |"
    print(
        f"CPU, embed dim {args.dim}, samples/class {args.spc}, {args.threads} thread(s), "
        f"median of {args.repeats}, torch {torch.__version__}"
    )
    print(head)
    print("|---|" + "---:|---:|" * len(args.sizes))
    for name in MINERS.names():
        cells = [time_miner(name, b, args.dim, args.spc, args.repeats) for b in args.sizes]
        print(f"| {name} | " + " | ".join(f"{ms:.2f} | {n}" for ms, n in cells) + " |")


if __name__ == "__main__":
    main()
