"""Multi-process training through ``torchrun`` and DistributedDataParallel.

Each rank trains on its slice of every global batch (the sampler shards batches contiguously, so
class groups stay whole); gradients of the network are averaged by DDP and those of the loss's own
parameters (proxies, β) by an explicit all-reduce. Rank 0 evaluates, logs and checkpoints; the
others wait at a barrier. Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) everything
degrades to one process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


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


def setup(use_cuda: bool) -> DistContext:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(rank, world, local)


def wrap(model: torch.nn.Module, ctx: DistContext, device: torch.device) -> torch.nn.Module:
    if not ctx.active:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def average_gradients(module: torch.nn.Module, ctx: DistContext) -> None:
    """All-reduce the gradients of parameters DDP does not manage (the loss's own)."""
    if not ctx.active:
        return
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= ctx.world_size


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


def cleanup(ctx: DistContext) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()
