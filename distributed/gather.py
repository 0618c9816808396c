"""The global batch under DistributedDataParallel: every rank sees every rank's embeddings.

DDP alone would let each rank compute its loss on its own slice of the global batch, so a miner
would look for positives and negatives among ``B / world_size`` rows only and a proxy loss would
see a fraction of the classes: training with N GPUs would be a different method from training with
one. :class:`GlobalBatchLoss` gathers the embeddings (with their gradient path) and labels of every
rank, in rank order — which is the order of the sampler's global batch, because the sampler hands
out contiguous slices — and computes the loss on that whole batch, the same on every rank.

Gradients: every rank's loss is the same function ``L`` of the gathered rows. The backward of the
gather sums the rows' gradients over ranks, so rank ``r`` receives ``W · ∂L/∂e_r`` for its own rows;
DDP then averages the network gradients over the ``W`` ranks, which leaves exactly ``∂L/∂θ``. The
loss's own parameters (proxies, β) get the full ``∂L/∂p`` on every rank, and
``average_gradients`` keeps them equal. (With ranks drawing different random tuples the same rules
give the gradient of the mean of the ranks' losses.) This is the scheme of SimCLR / MoCo-v3's
``all_gather`` with gradient (torch.distributed.nn), written on ``all_reduce`` because it also
handles ranks with different row counts and runs on gloo with CUDA tensors.

Embedding-store samplers keep one row per training image; :func:`share_embeddings` makes each step's
update carry the rows of every rank, so every rank's store, and hence its batches, agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from distributed.process import DistContext


def _counts(n: int, ctx: DistContext, device: torch.device) -> list[int]:
    counts = torch.zeros(ctx.world_size, dtype=torch.int64, device=device)
    counts[ctx.rank] = n
    dist.all_reduce(counts)
    return counts.tolist()


def _gather(x: torch.Tensor, ctx: DistContext, equal: bool = False) -> tuple[torch.Tensor, int]:
    """(rows of every rank concatenated in rank order, offset of this rank's rows). ``equal``:
    every rank holds as many rows as this one (the caller knows), so no counts are exchanged and
    nothing waits for the device; otherwise the counts go through the host first."""
    if dist.get_backend() == "nccl" and not x.is_cuda:  # NCCL moves CUDA tensors only
        out, offset = _gather(x.cuda(), ctx, equal)
        return out.to(x.device), offset
    if equal:
        out = x.new_empty((ctx.world_size * len(x), *x.shape[1:]))
        dist.all_gather_into_tensor(out, x)
        return out, ctx.rank * len(x)
    counts = _counts(len(x), ctx, x.device)
    offset = sum(counts[: ctx.rank])
    # zeros elsewhere make the sum an exact copy (x + 0 == x in floating point)
    out = x.new_zeros((sum(counts), *x.shape[1:]))
    out[offset : offset + len(x)] = x
    dist.all_reduce(out)
    return out, offset


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(fctx: Any, x: torch.Tensor, ctx: DistContext, equal: bool) -> torch.Tensor:
        out, offset = _gather(x.detach().contiguous(), ctx, equal)
        fctx.span, fctx.dist_ctx = (offset, len(x)), ctx
        return out

    @staticmethod
    def backward(fctx: Any, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        offset, n = fctx.span
        return grad[offset : offset + n], None, None


def gather_with_grad(x: torch.Tensor, ctx: DistContext, equal: bool = False) -> torch.Tensor:
    """x: (n_r, ...) on rank r -> (Σ n_r, ...) in rank order; gradients flow back to every rank's
    own rows, summed over ranks. One process: ``x`` itself. ``equal``: as in :func:`_gather`."""
    return _GatherWithGrad.apply(x, ctx, equal) if ctx.active else x


def gather_rows(idx, embeds: torch.Tensor, ctx: DistContext) -> tuple[np.ndarray, torch.Tensor]:
    """Dataset indices (n_r,) and detached embeddings (n_r, D) of every rank, in rank order: what an
    embedding store needs so every rank stores the same rows. Row counts may differ per rank."""
    idx = torch.as_tensor(np.asarray(idx), dtype=torch.int64, device=embeds.device)
    embeds = embeds.detach()
    if not ctx.active:
        return idx.cpu().numpy(), embeds
    all_idx, _ = _gather(idx, ctx)
    all_embeds, _ = _gather(embeds.contiguous(), ctx)
    return all_idx.cpu().numpy(), all_embeds


class GlobalBatchLoss(nn.Module):
    """A loss computed on the batch of every rank (see the module docstring).

    Wraps the run's loss for the training step only: the optimiser, checkpoints and gradient
    averaging keep using the wrapped loss itself. ``last_logs`` and ``miner`` are the wrapped
    loss's, so the training loop cannot tell the difference. Every rank holds ``--bs / N`` rows
    (the samplers' contract, checked at their construction), so the gathers exchange no counts and
    add no host sync to the step.
    """

    def __init__(self, loss: nn.Module, ctx: DistContext) -> None:
        super().__init__()
        self.loss, self.ctx = loss, ctx

    @property
    def last_logs(self) -> dict:
        return getattr(self.loss, "last_logs", {})

    @property
    def miner(self):
        return getattr(self.loss, "miner", None)

    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B/W, D), labels: (B/W,) of this rank -> the loss of the global (B, D) batch."""
        if self.ctx.active:
            embeds = gather_with_grad(embeds, self.ctx, equal=True)
            labels, _ = _gather(labels.contiguous(), self.ctx, equal=True)
        return self.loss(embeds, labels)


def global_batch_loss(loss: nn.Module, ctx: DistContext) -> nn.Module:
    """``loss`` itself in one process, else :class:`GlobalBatchLoss` around it."""
    return GlobalBatchLoss(loss, ctx) if ctx.active else loss


class SharedEmbeddingStore:
    """Stands in for an embedding-store sampler in the training step: each ``update_embeddings``
    first gathers the rows of every rank (all ranks call it once per step)."""

    needs_embeddings = True

    def __init__(self, sampler: Any, ctx: DistContext) -> None:
        self.sampler, self.ctx = sampler, ctx

    def update_embeddings(self, indices, embeds) -> None:
        if not torch.is_tensor(embeds):
            embeds = torch.as_tensor(np.asarray(embeds))
        self.sampler.update_embeddings(*gather_rows(indices, embeds, self.ctx))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sampler, name)


def share_embeddings(sampler: Any, ctx: DistContext) -> Any:
    """The sampler for the training step: itself unless it stores embeddings under DDP."""
    if ctx.active and getattr(sampler, "needs_embeddings", False):
        return SharedEmbeddingStore(sampler, ctx)
    return sampler
