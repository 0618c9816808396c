"""The contract every loss follows.

A loss is an ``nn.Module`` with ``forward(embeds (B, D), labels (B,)) -> scalar``. It receives its
miner (if any) at construction as context, fills ``last_logs`` with a few scalars worth
logging (0-dim tensors).
The facts the rest of the harness needs are class attributes, so there is one home for each:
``miner_kinds`` (the miner outputs it consumes, matched against the miners' ``produces``; a loss
with kinds needs a miner, one without uses none; :meth:`Loss.allowed_miners` names them),
``class_proxies`` (it learns vectors per class, so it is defined on single samples) and ``lr_param``
/ ``lr_times_base`` (the hyper-parameter that sets the learning rate of its own parameters).
Losses with their own parameters (proxies, β, centres) get one optimiser group from
``param_groups(base_lr)``; those parameters stay float32 under mixed precision: every
``forward`` is wrapped in :func:`full_precision`, which lifts half-precision embeddings to float32
and switches autocast off (exponentials with scales of 16–64 overflow in float16).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from registry import Registry


class TupleMiner(Protocol):
    """What a loss needs from a miner (``batch_mining.base.Miner`` satisfies it)."""

    produces: str

    def augment(
        self, embeds: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def __call__(self, embeds: torch.Tensor, labels: torch.Tensor) -> Any: ...


class Loss(nn.Module):
    """Base class of all losses."""

    #: Miner output kinds this loss consumes ("triplets", "npair", "lifted"); a loss with
    #: kinds cannot work without a miner; empty: it mines its own pairs or needs none.
    miner_kinds: ClassVar[tuple[str, ...]] = ()
    #: True for losses that learn vectors per class (proxies, class weights, centres).
    class_proxies: ClassVar[bool] = False
    #: Attribute holding the learning rate of the loss's own parameters (None: it has none) ...
    lr_param: ClassVar[str | None] = None
    #: ... as a multiple of the backbone's learning rate (``lr × lrmulti``) rather than absolute.
    lr_times_base: ClassVar[bool] = False
    #: Arguments that are run-time context, never flags.
    context_params: tuple[str, ...] = ("miner", "n_classes", "embed_dim")

    def __init__(self) -> None:
        super().__init__()
        self.last_logs: dict[str, torch.Tensor] = {}

    def mine(self, embeds: torch.Tensor, labels: torch.Tensor):
        """``(embeds, labels, tuples)``: the miner's view of the batch (possibly extended by a
        memory bank) and the index tensors it mined on it."""
        embeds, labels = self.miner.augment(embeds, labels)
        return embeds, labels, self.miner(embeds, labels)

    def param_groups(self, base_lr: float) -> list[dict]:
        """One optimiser group for the loss's trainable parameters, without weight decay, at the
        learning rate ``lr_param`` declares; empty when it has none (or they are frozen)."""
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            return []
        if self.lr_param is None:
            raise TypeError(f"{type(self).__name__} has parameters but declares no lr_param")
        lr = getattr(self, self.lr_param)
        return [
            {
                "params": params,
                "lr": base_lr * lr if self.lr_times_base else lr,
                "weight_decay": 0.0,
            }
        ]

    def set_logs(self, **values: torch.Tensor) -> None:
        """Store scalar tensors in ``last_logs``, detached 0-dim float32 tensors left on their
        device: the training loop sums them there and reads them once an epoch (no sync here)."""
        self.last_logs = {k: v.detach().reshape(()).to(torch.float32) for k, v in values.items()}

    def empty(self, embeds: torch.Tensor, *keys: str) -> torch.Tensor:
        """The loss of a batch without a single valid tuple: zero, logs zero, still in the graph."""
        self.last_logs = {k: torch.zeros((), device=embeds.device) for k in keys}
        return zero_loss(embeds)

    @classmethod
    def allowed_miners(cls) -> list[str]:
        """Registered miners whose output this loss consumes (empty: it uses no miner)."""
        from batch_mining import MINERS  # late: criteria and batch_mining are independent folders

        return [m for m in MINERS.names() if MINERS.get(m).produces in cls.miner_kinds]

    @classmethod
    def help_extra(cls) -> str:
        allowed = cls.allowed_miners()
        return f"Needs a miner: {', '.join(allowed)}." if allowed else "Uses no miner."


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
