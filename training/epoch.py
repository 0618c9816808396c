"""One training epoch: batches from the sampler, embeddings, loss, step, and the figures to log."""
from __future__ import annotations

import itertools
import time
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from tqdm import tqdm


def train_one_epoch(model, loader, loss_fn, optimizer, device: torch.device, *, epoch: int,
                    iters: int = 0, amp: bool | torch.dtype | None = False, scaler=None,
                    grad_clip: float = 0.0,
                    sampler=None, show_progress: bool = True,
                    after_backward=None) -> dict[str, float]:
    """Train for one pass of ``loader`` (or ``iters`` batches); return the epoch's mean figures."""
    model.train()
    loss_fn.train()
    batches = loader if not iters else itertools.islice(loader, iters)
    total = iters or len(loader)
    logs: dict[str, list[float]] = defaultdict(list)
    start = time.perf_counter()
    bar = tqdm(batches, total=total, desc=f"epoch {epoch}", leave=False, disable=None if show_progress else True)
    for images, labels, indices in bar:
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        # amp may name the autocast dtype (training.acceleration.amp_dtype: bf16 or fp16)
        with torch.autocast(device_type=device.type, enabled=bool(amp),
                            dtype=amp if isinstance(amp, torch.dtype) else None):
            embeds = model(images)
        loss = loss_fn(embeds.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if after_backward is not None:
            after_backward()
        if grad_clip > 0:
            logs["grad_norm"].append(float(torch.nn.utils.clip_grad_norm_(
                model.parameters(), grad_clip)))
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if sampler is not None and sampler.needs_embeddings:
            sampler.update_embeddings(indices.numpy(), embeds.detach().float().cpu())
        value = float(loss.detach())
        if not np.isfinite(value):
            raise FloatingPointError(f"loss became {value} at epoch {epoch}; lower --lr or check "
                                     "the loss flags")
        logs["loss"].append(value)
        for key, item in getattr(loss_fn, "last_logs", {}).items():
            logs[f"loss/{key}"].append(float(item))
        miner = getattr(loss_fn, "miner", None)
        if miner is not None:
            logs["miner/tuples"].append(float(miner.last_count))
        bar.set_postfix(loss=f"{value:.4f}")
    out = {key: float(np.mean(vals)) for key, vals in logs.items()}
    out["time_s"] = time.perf_counter() - start
    out["iterations"] = len(logs["loss"])
    return out
