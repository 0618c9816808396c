"""The contract every miner follows.

A miner is called as ``miner(embeds (B, D), labels (B,))`` under ``torch.no_grad`` and returns index
tensors on the embeddings' device: for ``produces == "triplets"`` a :class:`Triplets` of three
``(T,)`` long tensors. Miners of other kinds ("npair", "lifted") return their own small
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

from batch_mining.pairwise import AnchorRows, anchor_rows
from registry import Registry


class Triplets(NamedTuple):
    anchors: torch.Tensor  # (T,) long
    positives: torch.Tensor  # (T,) long
    negatives: torch.Tensor  # (T,) long


class NPairs(NamedTuple):
    """One positive per anchor; every sample of another label is a negative."""

    anchors: torch.Tensor  # (A,) long
    positives: torch.Tensor  # (A,) long


class Lifted(NamedTuple):
    """Anchors that have a positive; all same-label samples are positives, the rest negatives."""

    anchors: torch.Tensor  # (A,) long


class Miner:
    """Base class of all miners."""

    produces: str = "triplets"
    context_params: tuple[str, ...] = ("seed",)
    # How often one mine() makes the host wait for a GPU: its output has a data-dependent length
    # (``nonzero`` picks the anchors that have a positive and a negative). Audited op by op on the
    # CPU by tests/test_device_syncs.py; the miners that wait more say so.
    device_syncs: int = 1

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.last_count = 0

    def __call__(self, embeds: torch.Tensor, labels: torch.Tensor):
        with torch.no_grad():
            out = self.mine(embeds.detach(), labels)
        self.last_count = int(out[0].numel())
        return out

    def mine(self, embeds: torch.Tensor, labels: torch.Tensor, n_anchors: int | None = None):
        """The preamble most miners share: the anchors (among the first ``n_anchors`` rows) that
        have both a positive and a negative; the empty output when there is none; otherwise
        :meth:`select` on those rows. Miners that mine differently override this method."""
        rows = anchor_rows(embeds, labels, n_anchors)
        if rows.anchors.numel() == 0:
            return self.empty(embeds.device)
        return self.select(rows)

    def select(self, rows: AnchorRows):
        """The tuples of anchors that have a positive and a negative (at least one anchor)."""
        raise NotImplementedError

    def empty(self, device: torch.device):
        """The output of a batch without a single valid tuple, for this miner's ``produces``."""
        e = torch.empty(0, dtype=torch.long, device=device)
        if self.produces == "triplets":
            return Triplets(e, e.clone(), e.clone())
        return NPairs(e, e.clone()) if self.produces == "npair" else Lifted(e)

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
