"""The contract every loss follows.

A loss is an ``nn.Module`` with ``forward(embeds (B, D), labels (B,)) -> scalar``. It receives its
miner (if any) at construction as context, fills ``last_logs`` with a few floats worth logging, and
declares which miners it accepts through ``miner_kinds`` (the ``produces`` attribute of miners).
Losses with their own parameters (proxies, β, centres) return their parameter groups with learning
rates from ``param_groups(base_lr)``; those parameters stay float32 under mixed precision: every
``forward`` is wrapped in :func:`full_precision`, which lifts half-precision embeddings to float32
and switches autocast off (exponentials with scales of 16–64 overflow in float16).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Protocol

import torch
from torch import nn

from registry import Registry


class TupleMiner(Protocol):
    """What a loss needs from a miner (``batch_mining.base.Miner`` satisfies it)."""

    produces: str

    def augment(self, embeds: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ...

    def __call__(self, embeds: torch.Tensor, labels: torch.Tensor) -> Any:
        ...


class Loss(nn.Module):
    """Base class of all losses."""

    #: True when the loss cannot work without a miner.
    requires_miner: bool = False
    #: Miner output kinds this loss consumes ("triplets", "npair", "lifted", "pairs"); empty = none.
    miner_kinds: tuple[str, ...] = ()
    #: Arguments that are run-time context, never flags.
    context_params: tuple[str, ...] = ("miner", "n_classes", "embed_dim")

    def __init__(self) -> None:
        super().__init__()
        self.last_logs: dict[str, float] = {}

    def mine(self, embeds: torch.Tensor, labels: torch.Tensor):
        """``(embeds, labels, tuples)``: the miner's view of the batch (possibly extended by a
        memory bank) and the index tensors it mined on it."""
        embeds, labels = self.miner.augment(embeds, labels)
        return embeds, labels, self.miner(embeds, labels)

    def param_groups(self, base_lr: float) -> list[dict]:
        """Optimiser groups of the loss's own parameters (empty for parameter-free losses)."""
        return []

    def set_logs(self, **values: torch.Tensor) -> None:
        """Store scalar tensors in ``last_logs`` as floats, with one device sync for all of them."""
        flat = [v.detach().reshape(()).to(torch.float32) for v in values.values()]
        self.last_logs = dict(zip(values, torch.stack(flat).tolist())) if flat else {}

    def empty(self, embeds: torch.Tensor, *keys: str) -> torch.Tensor:
        """The loss of a batch without a single valid tuple: zero, logs zero, still in the graph."""
        self.last_logs = {k: 0.0 for k in keys}
        return zero_loss(embeds)

    @classmethod
    def help_extra(cls) -> str:
        if not cls.miner_kinds:
            return "Uses no miner."
        from batch_mining import MINERS  # late: criteria and batch_mining are independent folders
        allowed = [m for m in MINERS.names() if MINERS.get(m).produces in cls.miner_kinds]
        need = "Needs" if cls.requires_miner else "Accepts"
        return f"{need} a miner: {', '.join(allowed)}."


def zero_loss(embeds: torch.Tensor) -> torch.Tensor:
    """A zero that still belongs to the graph, for batches without a valid tuple."""
    return embeds.sum() * 0.0


def full_precision(forward: Callable) -> Callable:
    """Decorator for ``forward(self, embeds, labels)``: float16/bfloat16 embeddings become float32
    and autocast is off inside, so proxies and logits stay float32 under AMP. float64 passes
    through untouched (the tests run losses in float64 against their references)."""

    @functools.wraps(forward)
    def run(self: Loss, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if embeds.dtype in (torch.float16, torch.bfloat16):
            embeds = embeds.float()
        with torch.autocast(device_type=embeds.device.type, enabled=False):
            return forward(self, embeds, labels)

    return run


LOSSES = Registry("loss", "loss")
