"""Which device a process trains on: one GPU per ``torchrun`` rank, or the CPU.

Under ``torchrun`` every process is told ``LOCAL_RANK`` (its index on this node) and
``LOCAL_WORLD_SIZE`` (processes on this node). Rank ``r`` takes the ``r``-th GPU of its pool: the
ids given with ``--gpu`` when several are given, else every visible GPU. Two ranks sharing one GPU
is usually a mistake (half the speed, twice the memory, and NCCL refuses it), so it happens only
with ``--gpu_share_ranks`` (rank ``r`` then takes GPU ``r mod pool size`` and the process group
falls back to gloo); otherwise a node with fewer GPUs than ranks stops with one line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch


class DeviceError(ValueError):
    """The device request cannot be met; the message says what is visible and what to change."""


def launch_env(env: Mapping[str, str] | None = None) -> tuple[int, int | None, int]:
    """(world size, local rank or None outside torchrun, processes on this node)."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 1, None, 1
    local = int(env.get("LOCAL_RANK", "0"))
    return world, local, int(env.get("LOCAL_WORLD_SIZE", str(local + 1)))


def gpu_pool(gpu_ids: Sequence[int], visible: int, distributed: bool) -> list[int]:
    """GPU ids ranks are placed on: ``--gpu`` when it names several (or when not distributed),
    else every visible GPU."""
    pool = list(gpu_ids) if (len(gpu_ids) > 1 or not distributed) else list(range(visible))
    bad = [i for i in pool if not 0 <= i < visible]
    if bad:
        raise DeviceError(
            f"--gpu {' '.join(map(str, bad))}: no such GPU; {visible} visible "
            f"(ids 0..{visible - 1}; CUDA_VISIBLE_DEVICES renumbers them)"
        )
    return pool


def resolve_device(
    choice: str,
    gpu_ids: Sequence[int] = (0,),
    share_ranks: bool = False,
    env: Mapping[str, str] | None = None,
) -> torch.device:
    """The device of this process for ``--device`` ``choice`` (auto, cpu, cuda)."""
    if choice not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"--device {choice!r} is not allowed; choose auto, cpu or cuda")
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError("--device cuda needs a CUDA GPU; none is visible (use --device cpu)")
    visible = torch.cuda.device_count()
    _, local, local_world = launch_env(env)
    pool = gpu_pool(gpu_ids, visible, local is not None)
    if local is None:
        return torch.device("cuda", pool[0])
    if local_world > len(pool) and not share_ranks:
        raise DeviceError(
            f"torchrun started {local_world} processes on this node but only {len(pool)} GPU(s) "
            f"are available to them; use --nproc_per_node {len(pool)}, or --gpu_share_ranks to put "
            "several ranks on one GPU, or --device cpu"
        )
    return torch.device("cuda", pool[local % len(pool)])


def shares_gpu(
    device: torch.device, gpu_ids: Sequence[int] = (0,), env: Mapping[str, str] | None = None
) -> bool:
    """Whether several ranks of this node run on one GPU (then NCCL cannot be used)."""
    if device.type != "cuda":
        return False
    _, local, local_world = launch_env(env)
    if local is None:
        return False
    return local_world > len(gpu_pool(gpu_ids, torch.cuda.device_count(), True))
