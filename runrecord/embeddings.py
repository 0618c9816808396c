"""``--save_embeddings``: the test embeddings of a run's selected epoch, kept in its run folder.

Written as ``embeddings/<split>.npy`` (float16, (N, D)), ``embeddings/<split>_labels.npy`` (int64,
(N,), in dataset order) and ``embeddings/info.json`` (epoch, selection rule, layer). The
Reality-Check ensemble ("concatenated 512-d", Musgrave et al., ECCV 2020) concatenates the
L2-normalised test embeddings of the four fold models from these files (``results.ensemble``);
float16 halves the disk cost and changes retrieval metrics by far less than a seed does.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import numpy as np
import torch

import evaluation
from runrecord.files import write_atomic, write_json_atomic

FOLDER = "embeddings"


def embeddings_path(run_dir: str, split: str = "test") -> tuple[str, str]:
    """(embeddings .npy, labels .npy) of ``split`` in ``run_dir``."""
    return (
        os.path.join(run_dir, FOLDER, f"{split}.npy"),
        os.path.join(run_dir, FOLDER, f"{split}_labels.npy"),
    )


def _save_npy(path: str, array: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)

    write_atomic(path, write)


def save_selected_embeddings(
    run_dir: str,
    model: torch.nn.Module,
    loaders: dict[str, Any],
    device: torch.device,
    *,
    state_dict: dict | None,
    epoch: int,
    rule: str,
    amp: bool = False,
    layer: str = "head",
) -> list[str]:
    """Embed each loader's split with the selected epoch's weights (``state_dict``; the current
    weights when None) and save them; returns the paths written. ``model`` is left untouched."""
    net = model
    if state_dict is not None:
        net = copy.deepcopy(model)
        net.load_state_dict(state_dict)
    written = []
    for split, loader in loaders.items():
        embeds, labels = evaluation.compute_embeddings(net, loader, device, amp=amp, layer=layer)
        emb_path, lab_path = embeddings_path(run_dir, split)
        _save_npy(emb_path, embeds.numpy().astype(np.float16))
        _save_npy(lab_path, labels.numpy().astype(np.int64))
        written += [emb_path, lab_path]
    write_json_atomic(
        os.path.join(run_dir, FOLDER, "info.json"),
        {
            "epoch": epoch,
            "rule": rule,
            "layer": layer,
            "splits": sorted(loaders),
            "dtype": "float16",
        },
    )
    return written


def load_embeddings(run_dir: str, split: str = "test") -> tuple[np.ndarray, np.ndarray] | None:
    """(embeds float32 (N, D), labels (N,)) saved by ``save_selected_embeddings``, or None."""
    emb_path, lab_path = embeddings_path(run_dir, split)
    if not (os.path.exists(emb_path) and os.path.exists(lab_path)):
        return None
    return np.load(emb_path).astype(np.float32), np.load(lab_path)
