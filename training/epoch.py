"""One training epoch: batches from the sampler, embeddings, loss, step, and the figures to log.

Non-finite steps: a step whose loss, gradients or BatchNorm statistics (updated by the forward
pass) hold a NaN or an infinity is skipped: the optimiser leaves weights and state alone, the
buffers of the modules in training mode are restored from before the batch, and the batch is named
on the console. After ``--max_nonfinite_steps`` such steps in a run, :class:`NonFiniteSteps` stops
it. Under torchrun the flag is all-reduced, so that every rank skips the same steps.

No host sync in a step (GPU throughput): the figures to log are summed on the device; with a fused
optimiser (Adam, AdamW, SGD; :mod:`training.optimizer`) the finite flag reaches the optimiser as
its ``found_inf`` tensor, the buffers are restored with ``torch.where``, and the per-step figures
the host needs (loss for the progress bar, flag, tuples mined) wait in a :class:`StepLedger` read
about once a second, so a skip is reported, and the run stopped, at the next read. RMSprop and fp16
with a GradScaler read the flag each step, before stepping. What still syncs: a miner's
variable-length output (``nonzero``), and an embedding-store sampler's copy of the batch to the
host.
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


def skips_on_device(optimizer, scaler=None) -> bool:
    """Whether ``optimizer`` can skip a step on the device, without the host looking at the
    finite flag: PyTorch's fused optimisers take a ``found_inf`` tensor (the mechanism the AMP
    loss scaler uses). A loss scaler of its own keeps the host read (GradScaler decides there)."""
    return scaler is None and bool(getattr(optimizer, "_step_supports_amp_scaling", False))


class StepLedger:
    """The per-step figures that need the host (loss for the console, finite flag, tuples mined),
    kept on the device and read in one transfer by :meth:`read`; a read reports the skipped steps
    to the run's :class:`SkipBudget` (which stops the run past its limit)."""

    def __init__(self, epoch: int, budget: SkipBudget, log, bar) -> None:
        self.epoch, self.budget, self.log, self.bar = epoch, budget, log, bar
        self.pending: list[tuple[int, int, torch.Tensor]] = []
        self.taken = self.skipped = self.tuples = 0
        self.last_read = time.perf_counter()

    def add(self, batch: int, loss: torch.Tensor, finite: torch.Tensor, tuples: int) -> None:
        row = torch.stack([loss.detach().float().reshape(()), finite.float().reshape(())])
        self.pending.append((batch, tuples, row))

    def due(self, every_s: float, most: int = 256) -> bool:
        return len(self.pending) >= most or time.perf_counter() - self.last_read >= every_s

    def read(self) -> bool:
        """Read the pending steps (one host sync); True when the last of them was finite."""
        if not self.pending:
            return True
        values = torch.stack([row for _, _, row in self.pending]).tolist()
        steps, self.pending = self.pending, []
        self.last_read = time.perf_counter()
        ok, shown = True, None
        for (batch, tuples, _), (loss, finite) in zip(steps, values):
            ok = bool(finite)
            if ok:
                self.taken += 1
                self.tuples += tuples
                shown = loss
            else:
                self.skipped += 1
                self.budget.skip(self.epoch, batch, loss, self.log)
        if shown is not None:
            self.bar.set_postfix(loss=f"{shown:.4f}")
        return ok


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
    read_every_s: float = 1.0,
) -> dict[str, float]:
    """Train for one pass of ``loader`` (or ``iters`` batches); return the epoch's mean figures
    over the steps taken (``iterations``; ``skipped_steps`` when a step was skipped).

    With a fused optimiser (:func:`skips_on_device`) nothing in a step waits for the device: the
    finite flag goes to the optimiser as ``found_inf``, the BatchNorm statistics are restored with
    ``torch.where``, and the host reads the step ledger about every ``read_every_s`` seconds (and
    at the end). Otherwise the flag is read each step, before the optimiser steps."""
    model.train()
    loss_fn.train()
    budget = budget if budget is not None else SkipBudget(limit=1)
    on_device = skips_on_device(optimizer, scaler)
    batches = loader if not iters else itertools.islice(loader, iters)
    total = iters or len(loader)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    # BatchNorm statistics and counts of the modules in training mode (frozen ones cannot change),
    # restored on a skip
    buffers = [b for m in model.modules() if m.training for b in m.buffers(recurse=False)]
    saved = [b.detach().clone() for b in buffers]
    stats = [b for b in buffers if b.is_floating_point()]  # checked for non-finite values
    acc = torch.float32 if device.type == "mps" else torch.float64
    sums: dict[str, Any] = {}
    start = time.perf_counter()
    bar = tqdm(
        batches,
        total=total,
        desc=f"epoch {epoch}",
        leave=False,
        disable=None if show_progress else True,
    )
    ledger = StepLedger(epoch, budget, log, bar)
    miner = getattr(loss_fn, "miner", None)
    for batch, (images, labels, indices) in enumerate(bar):
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        if buffers:
            torch._foreach_copy_(saved, buffers)
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
        finite = torch.isfinite(checks).all()
        if dist.is_available() and dist.is_initialized():  # every rank skips, or none
            finite = finite.float()
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
            finite = finite.bool()
        ledger.add(batch, loss, finite, miner.last_count if miner is not None else 0)
        if not on_device and not ledger.read():  # the step's one host read
            optimizer.zero_grad(set_to_none=True)
            if buffers:
                torch._foreach_copy_(buffers, saved)
            continue
        step_logs = {"loss": loss.detach()}
        if grad_clip > 0:
            step_logs["grad_norm"] = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        elif on_device:
            optimizer.found_inf = (~finite).float()  # the fused kernels skip the update on 1
            try:
                optimizer.step()
            finally:
                del optimizer.found_inf
            for buffer, before in zip(buffers, saved):
                torch.where(finite, buffer, before, out=buffer)
        else:
            optimizer.step()
        if sampler is not None and sampler.needs_embeddings and (not on_device or bool(finite)):
            sampler.update_embeddings(indices.numpy(), embeds.detach().float().cpu())
        for key, item in getattr(loss_fn, "last_logs", {}).items():
            step_logs[f"loss/{key}"] = item
        for key, item in step_logs.items():
            item = torch.where(finite, torch.as_tensor(item).detach().to(device, acc), 0.0)
            sums[key] = sums[key] + item if key in sums else item
        if on_device and ledger.due(read_every_s):
            ledger.read()
        faults.point("step")
    ledger.read()
    taken = ledger.taken
    means = torch.stack(list(sums.values())).tolist() if sums else []
    out = {key: total_ / taken for key, total_ in zip(sums, means)} if taken else {}
    if miner is not None and taken:
        out["miner/tuples"] = ledger.tuples / taken
    out["time_s"] = time.perf_counter() - start
    out["iterations"] = taken
    if ledger.skipped:
        out["skipped_steps"] = ledger.skipped
    return out
