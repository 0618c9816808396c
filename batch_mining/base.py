"""The contract every miner follows.

A miner is called as ``miner(embeds (B, D), labels (B,))`` under ``torch.no_grad`` and returns index
tensors on the embeddings' device: for ``produces == "triplets"`` a :class:`Triplets` of three
``(T,)`` long tensors. Miners of other kinds ("npair", "lifted", "pairs") return their own small
named tuples of tensors, documented in their module. A miner owns a ``torch.Generator`` seeded at
construction, so a seed fixes every draw, and records ``last_count`` (tuples produced).
Losses call ``embeds, labels = miner.augment(embeds, labels)`` before mining, so a memory-bank miner
can serve stored embeddings (rows after the batch) as extra positives and negatives.
A miner's constructor names its own hyper-parameters and ends in ``**context``, handed on to
``Miner.__init__`` (which takes the run-time ``seed``).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from registry import Registry


class Triplets(NamedTuple):
    anchors: torch.Tensor    # (T,) long
    positives: torch.Tensor  # (T,) long
    negatives: torch.Tensor  # (T,) long


class NPairs(NamedTuple):
    """One positive per anchor; every sample of another label is a negative."""

    anchors: torch.Tensor    # (A,) long
    positives: torch.Tensor  # (A,) long


class Lifted(NamedTuple):
    """Anchors that have a positive; all same-label samples are positives, the rest negatives."""

    anchors: torch.Tensor    # (A,) long


class Miner:
    """Base class of all miners."""

    produces: str = "triplets"
    context_params: tuple[str, ...] = ("seed",)

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.last_count = 0

    def __call__(self, embeds: torch.Tensor, labels: torch.Tensor):
        with torch.no_grad():
            out = self.mine(embeds.detach(), labels)
        self.last_count = int(out[0].numel())
        return out

    def mine(self, embeds: torch.Tensor, labels: torch.Tensor):
        raise NotImplementedError

    def augment(self, embeds: torch.Tensor, labels: torch.Tensor):
        """Embeddings and labels the mined indices refer to: the batch itself, except for miners
        with a memory bank, which append (detached) stored entries after the batch rows."""
        return embeds, labels

    def state_dict(self) -> dict:
        """What a resumed run needs to continue identically: the random generator's state (and, in
        miners that keep one, their memory)."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


MINERS = Registry("miner", "miner")
