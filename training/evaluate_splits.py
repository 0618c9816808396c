"""Evaluation of every split a run tracks: embeddings once per split, then the metric engine."""

from __future__ import annotations

import time
from typing import Any

import torch

import evaluation
from runrecord import faults
from training.epoch import NonFiniteSteps


def evaluate_splits(
    model,
    loaders: dict[str, Any],
    metrics: list[str],
    device: torch.device,
    *,
    backend: str,
    on_gpu: bool,
    amp: bool,
    seed: int,
    layer: str = "head",
) -> dict[str, dict]:
    """``{split: {metric: value}}`` for each loader, on the output of the network's ``layer``;
    each split's dataset supplies its query/gallery masks and categories."""
    results = {}
    for split, loader in loaders.items():
        start = time.perf_counter()
        embeds, labels = evaluation.compute_embeddings(model, loader, device, amp=amp, layer=layer)
        if not bool(torch.isfinite(embeds).all()):
            raise NonFiniteSteps(
                f"training diverged: the network's {split} embeddings hold "
                "NaN or inf; last.pt keeps the last finite epoch; lower --lr "
                "or check the loss flags"
            )
        ds = loader.dataset
        values = evaluation.evaluate(
            embeds,
            labels,
            metrics,
            is_query=getattr(ds, "is_query", None),
            is_gallery=getattr(ds, "is_gallery", None),
            categories=getattr(ds, "categories", None),
            backend=backend,
            device=str(device) if on_gpu else "cpu",
            seed=seed,
        )
        values["eval_time_s"] = time.perf_counter() - start
        results[split] = values
        faults.point("split_evaluated")
    return results
