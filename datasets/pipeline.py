"""How a split reaches the network: DataLoader settings, the decoded cache, GPU decoding.

One entry point, :func:`make_loader`, so main.py and the benchmark build the same pipeline; what
comes out is always ``(images (B, C, S, S), labels (B,), indices (B,))`` per batch, whichever of
the three routes produced it (files decoded by workers; a decoded uint8 cache, see
``datasets.decoded_cache``; JPEG decoding and transforms on the GPU, see ``datasets.gpu_decode``).

Worker settings for a GPU node: persistent workers (no re-fork every epoch), pinned host memory
(asynchronous copies), ``prefetch_factor`` batches queued per worker so a slow batch does not
starve the GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from datasets.decoded_cache import DecodedCache, use_decoded_cache
from datasets.gpu_decode import DeviceDecodeLoader, check_gpu_decodable

__all__ = [
    "DecodedCache",
    "DeviceDecodeLoader",
    "check_gpu_decodable",
    "make_loader",
    "use_decoded_cache",
]


def loader_options(
    workers: int,
    device: torch.device,
    prefetch_factor: int = 4,
    worker_init_fn: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "num_workers": workers,
        "pin_memory": device.type == "cuda",
        "persistent_workers": workers > 0,
        "worker_init_fn": worker_init_fn,
    }
    if workers > 0:
        opts["prefetch_factor"] = prefetch_factor
    return opts


def make_loader(
    dataset: Dataset,
    *,
    workers: int,
    device: torch.device,
    gpu_decode: bool = False,
    prefetch_factor: int = 4,
    worker_init_fn: Callable[[int], None] | None = None,
    **kwargs: Any,
):
    """A loader over ``dataset`` (``kwargs``: ``batch_size``/``shuffle`` or ``batch_sampler``).

    ``gpu_decode``: workers read bytes, ``device`` decodes and transforms (JPEG files only)."""
    if prefetch_factor < 1:
        raise ValueError(f"--prefetch_factor must be >= 1, got {prefetch_factor}")
    opts = loader_options(workers, torch.device(device), prefetch_factor, worker_init_fn)
    if gpu_decode:
        opts["pin_memory"] = False  # encoded bytes are small; the images never visit
        return DeviceDecodeLoader(dataset, device, **opts, **kwargs)
    return DataLoader(dataset, **opts, **kwargs)
