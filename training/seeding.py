"""Seeds and random-state snapshots of a run (device choice lives in ``distributed``)."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int, cudnn_benchmark: bool = False) -> None:
    """Seed Python, numpy and torch (every GPU). cuDNN runs its deterministic kernels unless
    ``cudnn_benchmark`` (``--cudnn_benchmark``) lets it time the algorithms and keep the fastest:
    faster convolutions, but the same seed no longer gives bit-identical runs on a GPU."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = not cudnn_benchmark
    torch.backends.cudnn.benchmark = cudnn_benchmark


def worker_init(worker_id: int) -> None:
    """DataLoader workers get distinct, reproducible numpy/random streams."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def rng_state() -> dict:
    """Every global random state as plain data (tensors and numbers), loadable with
    ``torch.load(weights_only=True)``."""
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": {
            "version": version,
            "words": torch.tensor(words, dtype=torch.int64),
            "gauss": gauss,
        },
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": pos,
            "has_gauss": has_gauss,
            "cached": cached,
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    py, nps = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(int(w) for w in py["words"].tolist()), py["gauss"]))
    np.random.set_state(
        (
            nps["kind"],
            nps["keys"].numpy().astype(np.uint32),
            nps["pos"],
            nps["has_gauss"],
            nps["cached"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
