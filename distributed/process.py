"""Process group of a ``torchrun`` launch, DDP wrapping, and the loss's own gradients.

Each rank trains on its slice of every global batch (the sampler shards batches contiguously, so
class groups stay whole); the loss sees the whole global batch (``distributed.gather``). Gradients
of the network are averaged by DDP and those of the loss's own parameters (proxies, β) by an
explicit all-reduce. Rank 0 evaluates, logs and checkpoints; the others wait at a barrier. Without
``torchrun`` (no ``WORLD_SIZE`` in the environment) everything degrades to one process.
NCCL is used when every rank has a GPU of its own, gloo otherwise (CPU, or ranks sharing a GPU).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from distributed.devices import launch_env, resolve_device, shares_gpu


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def backend_for(device: torch.device, shared_gpu: bool = False) -> str:
    return "nccl" if device.type == "cuda" and not shared_gpu else "gloo"


def setup(device: torch.device, shared_gpu: bool = False) -> DistContext:
    """Join the ``torchrun`` process group (a no-op in a single process)."""
    world, local, _ = launch_env()
    if world <= 1:
        return DistContext()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend_for(device, shared_gpu))
    return DistContext(int(os.environ["RANK"]), world, local)


def start(
    choice: str, gpu_ids: Sequence[int] = (0,), share_ranks: bool = False
) -> tuple[DistContext, torch.device]:
    """The device of this process (``resolve_device``) and its process group, in that order, so a
    node with too few GPUs stops before any rank waits for another."""
    device = resolve_device(choice, gpu_ids, share_ranks)
    return setup(device, shares_gpu(device, gpu_ids)), device


def wrap(model: torch.nn.Module, ctx: DistContext, device: torch.device) -> torch.nn.Module:
    if not ctx.active:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def average_gradients(module: torch.nn.Module, ctx: DistContext) -> None:
    """All-reduce the gradients of parameters DDP does not manage (the loss's own)."""
    if not ctx.active:
        return
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= ctx.world_size


def rank0_decides(flag: bool, ctx: DistContext, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank (only rank 0 evaluates, so only it can decide)."""
    if not ctx.active:
        return flag
    on = torch.device("cpu") if dist.get_backend() == "gloo" else device
    value = torch.tensor([float(flag)], device=on)
    dist.broadcast(value, src=0)
    return bool(value.item())


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


def cleanup(ctx: DistContext) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()
