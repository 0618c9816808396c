"""Command line:
``python -m evaluation --embeddings E.npy --labels L.npy --metrics e_recall@1 nmi``.

Evaluates saved embeddings with the metrics of Roth et al., ICML 2020, Musgrave et al., ECCV 2020
and Open Metric Learning (see ``evaluation/__init__.py``). Prints a table; ``--json`` also writes
metric → value (arrays as lists). Bad input (non-finite embeddings included) gives a one-line
error on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

from registry import RegistryError

from . import check_metric_names, evaluate, valid_spellings
from .context import check_finite


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__.split("\n\n")[0])
    p.add_argument("--embeddings", required=True, help="(N, D) .npy")
    p.add_argument("--labels", required=True, help="(N,) .npy")
    p.add_argument("--is_query", help="(N,) bool .npy")
    p.add_argument("--is_gallery", help="(N,) bool .npy")
    p.add_argument("--categories", help="(N,) .npy, adds per-category entries")
    p.add_argument(
        "--ignore_ids", help="(N,) .npy, gallery items sharing the query's id are skipped"
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        required=True,
        help="valid: " + ", ".join(valid_spellings()).replace("%", "%%"),
    )
    p.add_argument("--backend", choices=("torch", "faiss"), default="torch")
    p.add_argument("--device", default="cpu")
    p.add_argument("--n_clusters", type=int)
    p.add_argument(
        "--kmeans",
        choices=("auto", "faiss", "torch"),
        default="auto",
        help="k-means for nmi/ami/f1: auto = faiss on the CPU; on a GPU faiss-gpu when "
        "importable, else torch",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write metric → value here")
    return p


def _load(path: str | None, what: str):
    if path is None:
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read {what} from {path}: {e}") from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        check_metric_names(args.metrics)
        embeds = _load(args.embeddings, "--embeddings")
        if embeds.ndim == 2 and embeds.dtype.kind == "f":
            check_finite(torch.from_numpy(embeds), f"--embeddings {args.embeddings}")
        res = evaluate(
            embeds,
            _load(args.labels, "--labels"),
            args.metrics,
            is_query=_load(args.is_query, "--is_query"),
            is_gallery=_load(args.is_gallery, "--is_gallery"),
            categories=_load(args.categories, "--categories"),
            ignore_ids=_load(args.ignore_ids, "--ignore_ids"),
            backend=args.backend,
            device=args.device,
            n_clusters=args.n_clusters,
            seed=args.seed,
            kmeans=args.kmeans,
        )
    except (RegistryError, ValueError, TypeError, IndexError) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    width = max(map(len, res))
    for k, v in res.items():
        shown = (
            np.array2string(np.asarray(v), precision=4, threshold=8) if np.ndim(v) else f"{v:.4f}"
        )
        print(f"{k:<{width}}  {shown}")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(
                {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in res.items()},
                f,
                indent=1,
            )
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
