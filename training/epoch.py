"""One training epoch: batches from the sampler, embeddings, loss, step, and the figures to log.

Non-finite steps: a step whose loss, gradients or BatchNorm statistics (updated by the forward
pass) hold a NaN or an infinity is skipped: its gradients are dropped, the statistics are restored
from before the batch, and the batch is named on the console. After ``--max_nonfinite_steps`` such
steps in a run, :class:`NonFiniteSteps` stops it. The figures to log are summed on the device and
read once at the end of the epoch; each step reads one small tensor (loss and finite flag). Under
torchrun the flag is all-reduced, so that every rank skips the same steps.
Known gap: a memory-bank miner has already enqueued the skipped batch's embeddings.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from runrecord import faults


class NonFiniteSteps(RuntimeError):
    """Too many steps with a non-finite loss, gradient or statistic: the run stops."""


class SkipBudget:
    """Counts skipped steps over the whole run (the count is part of the train state)."""

    def __init__(self, limit: int, count: int = 0) -> None:
        self.limit, self.count = int(limit), int(count)

    def skip(self, epoch: int, batch: int, loss: float, log) -> None:
        self.count += 1
        what = (
            f"loss {loss}"
            if not math.isfinite(loss)
            else f"loss {loss:.4g} with non-finite gradients or BatchNorm statistics"
        )
        log(
            f"epoch {epoch}, batch {batch}: {what}; step skipped ({self.count} of at most "
            f"{self.limit} per run, --max_nonfinite_steps)"
        )
        if self.count >= self.limit:
            raise NonFiniteSteps(
                f"training diverged: {self.count} non-finite steps (the last at epoch {epoch}, "
                f"batch {batch}: {what}); last.pt keeps the last finite epoch; lower --lr or "
                "check the loss flags"
            )


def _max_abs(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    if not tensors:
        return []
    return [n.reshape(()).float() for n in torch._foreach_norm(tensors, math.inf)]


def train_one_epoch(
    model,
    loader,
    loss_fn,
    optimizer,
    device: torch.device,
    *,
    epoch: int,
    iters: int = 0,
    amp: bool | torch.dtype | None = False,
    scaler=None,
    grad_clip: float = 0.0,
    sampler=None,
    show_progress: bool = True,
    after_backward=None,
    budget: SkipBudget | None = None,
    log=print,
) -> dict[str, float]:
    """Train for one pass of ``loader`` (or ``iters`` batches); return the epoch's mean figures
    over the steps taken (``iterations``; ``skipped_steps`` when a step was skipped)."""
    model.train()
    loss_fn.train()
    budget = budget if budget is not None else SkipBudget(limit=1)
    batches = loader if not iters else itertools.islice(loader, iters)
    total = iters or len(loader)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    stats = [b for b in model.buffers() if b.is_floating_point()]
    saved_stats = [b.detach().clone() for b in stats]
    acc = torch.float32 if device.type == "mps" else torch.float64
    sums: dict[str, Any] = {}
    tuples, taken, skipped = 0, 0, 0
    start = time.perf_counter()
    bar = tqdm(
        batches,
        total=total,
        desc=f"epoch {epoch}",
        leave=False,
        disable=None if show_progress else True,
    )
    for batch, (images, labels, indices) in enumerate(bar):
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        if stats:
            torch._foreach_copy_(saved_stats, stats)
        # amp may name the autocast dtype (training.acceleration.amp_dtype: bf16 or fp16)
        with torch.autocast(
            device_type=device.type,
            enabled=bool(amp),
            dtype=amp if isinstance(amp, torch.dtype) else None,
        ):
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
        # The GradScaler skips steps with inf gradients itself (and lowers its scale).
        grads = [p.grad for p in params if p.grad is not None] if scaler is None else []
        checks = torch.stack(
            [loss.detach().float().reshape(()), *_max_abs(grads), *_max_abs(stats)]
        )
        finite = torch.isfinite(checks).all().float()
        if dist.is_available() and dist.is_initialized():  # every rank skips, or none
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        value, ok = torch.stack([checks[0], finite]).tolist()  # the step's one host read
        if not ok:
            optimizer.zero_grad(set_to_none=True)
            if stats:
                torch._foreach_copy_(stats, saved_stats)
            skipped += 1
            budget.skip(epoch, batch, value, log)
            continue
        step_logs = {"loss": loss.detach()}
        if grad_clip > 0:
            step_logs["grad_norm"] = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if sampler is not None and sampler.needs_embeddings:
            sampler.update_embeddings(indices.numpy(), embeds.detach().float().cpu())
        for key, item in getattr(loss_fn, "last_logs", {}).items():
            step_logs[f"loss/{key}"] = item
        for key, item in step_logs.items():
            item = torch.as_tensor(item).detach().to(device, acc)
            sums[key] = sums[key] + item if key in sums else item
        miner = getattr(loss_fn, "miner", None)
        if miner is not None:
            tuples += miner.last_count
        taken += 1
        bar.set_postfix(loss=f"{value:.4f}")
        faults.point("step")
    means = torch.stack(list(sums.values())).tolist() if sums else []
    out = {key: total_ / taken for key, total_ in zip(sums, means)}
    if getattr(loss_fn, "miner", None) is not None and taken:
        out["miner/tuples"] = tuples / taken
    out["time_s"] = time.perf_counter() - start
    out["iterations"] = taken
    if skipped:
        out["skipped_steps"] = skipped
    return out
