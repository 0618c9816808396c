"""``memory_bank``: batch-hard (or random) triplets against a queue of past embeddings.

Reference: Wang, Zhang, Huang & Scott, "Cross-Batch Memory for Embedding Learning", CVPR 2020;
Open Metric Learning's ``MinerWithBank``. The miner keeps the last ``size`` detached embeddings and
labels in a ring buffer. ``augment`` appends the stored rows after the batch (then enqueues the
batch), so losses see N = B + stored rows; anchors come only from the batch rows, positives and
negatives from batch and memory.

Deviations: the size is counted in rows, not in batches (OML); the inner miner is fixed to
batch-hard or random rather than any miner; the queue lives on the embeddings' device in float32
and is reset when the embedding dimension changes. A stored copy of the anchor's own image from an
earlier step is a legitimate (stale) positive.
"""

from __future__ import annotations

from typing import Literal

import torch

from batch_mining.base import MINERS, Miner, Triplets
from batch_mining.hard_triplets import batch_hard
from batch_mining.pairwise import AnchorRows, draw_uniform, from_host


@MINERS.register("memory_bank")
class MemoryBankMiner(Miner):
    """Cross-batch memory: batch anchors, positives and negatives from batch + a queue of the past.

    Args:
        size: number of past embeddings kept in the queue (rows).
        mode: hard (farthest positive, closest negative) or random (uniform positive and negative).
    """

    produces = "triplets"

    def __init__(
        self, size: int = 1024, mode: Literal["hard", "random"] = "hard", **context
    ) -> None:
        super().__init__(**context)
        if size < 1:
            raise ValueError(f"memory_bank size must be >= 1, got {size}")
        self.size, self.mode = int(size), mode
        self.bank: torch.Tensor | None = None
        self.bank_labels: torch.Tensor | None = None
        self.filled = 0
        self.ptr = 0
        self._n_batch: int | None = None

    def augment(self, embeds: torch.Tensor, labels: torch.Tensor):
        """embeds: (B, D), labels: (B,) -> (B + M, D), (B + M,) with the M stored rows after the
        batch; then the batch is enqueued (oldest rows are overwritten first)."""
        self._n_batch = len(embeds)
        if self.bank is not None and self.bank.device != embeds.device:  # loaded from a checkpoint
            device = embeds.device
            self.bank, self.bank_labels = self.bank.to(device), self.bank_labels.to(device)
        if self.bank is not None and self.bank.shape[1] != embeds.shape[1]:
            self.bank, self.filled, self.ptr = None, 0, 0
        out_e, out_l = embeds, labels
        if self.filled:
            out_e = torch.cat([embeds, self.bank[: self.filled].to(embeds.device, embeds.dtype)])
            out_l = torch.cat([labels, self.bank_labels[: self.filled].to(labels.device)])
        self._enqueue(embeds.detach(), labels)
        return out_e, out_l

    def _enqueue(self, embeds: torch.Tensor, labels: torch.Tensor) -> None:
        if self.bank is None:
            self.bank = torch.zeros(self.size, embeds.shape[1], device=embeds.device)
            self.bank_labels = torch.zeros(self.size, dtype=labels.dtype, device=labels.device)
        embeds, labels = embeds[-self.size :], labels[-self.size :]
        slots = from_host((self.ptr + torch.arange(len(embeds))) % self.size, self.bank.device)
        self.bank[slots] = embeds.float().to(self.bank.device)
        self.bank_labels[slots] = labels.to(self.bank_labels.device)
        self.ptr = int((self.ptr + len(embeds)) % self.size)
        self.filled = min(self.size, self.filled + len(embeds))

    def state_dict(self) -> dict:
        """The generator and the queue (rows, labels, fill and write position), on the CPU."""
        bank = None if self.bank is None else (self.bank.cpu(), self.bank_labels.cpu())
        return {**super().state_dict(), "bank": bank, "filled": self.filled, "ptr": self.ptr}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.bank, self.bank_labels = state["bank"] if state["bank"] is not None else (None, None)
        self.filled, self.ptr = int(state["filled"]), int(state["ptr"])

    def mine(self, embeds: torch.Tensor, labels: torch.Tensor) -> Triplets:
        """embeds: (N, D) = batch rows then memory rows, labels: (N,) -> Triplets of (A,) long;
        anchors are batch rows only."""
        n_anchors = min(self._n_batch or len(labels), len(labels))
        self._n_batch = None
        return super().mine(embeds, labels, n_anchors)

    def select(self, rows: AnchorRows) -> Triplets:
        if self.mode == "hard":
            return batch_hard(rows)
        return Triplets(
            rows.anchors,
            draw_uniform(rows.pos, self.generator),
            draw_uniform(rows.neg, self.generator),
        )
