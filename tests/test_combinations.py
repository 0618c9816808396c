"""Every registered loss with every miner it accepts, built through the registries as main.py does:
forward and backward on a P×K batch give a finite loss whose gradient reaches the embeddings."""

from __future__ import annotations

import pytest
import torch

from batch_mining import MINERS
from criteria import LOSSES

PAIRS = [
    (loss, miner)
    for loss in LOSSES.names()
    for miner in (LOSSES.get(loss).allowed_miners() or [None])
]


def pk_batch(p: int = 6, k: int = 4, dim: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(p).repeat_interleave(k)
    centres = torch.randn(p, dim, generator=g)
    embeds = 0.3 * centres[labels] + torch.randn(
        p * k, dim, generator=g
    )  # hard: many active tuples
    embeds = torch.nn.functional.normalize(embeds, dim=1).requires_grad_(True)
    return embeds, labels


def test_every_loss_is_paired_and_every_miner_is_usable():
    assert len(LOSSES) >= 20 and len(MINERS) >= 14
    used = {m for _, m in PAIRS if m is not None}
    unused = set(MINERS.names()) - used
    assert not unused, f"miners no loss accepts: {unused}"


@pytest.mark.parametrize(
    "loss_name, miner_name", PAIRS, ids=[f"{loss}-{miner}" for loss, miner in PAIRS]
)
def test_loss_with_miner_forward_backward(loss_name, miner_name):
    embeds, labels = pk_batch()
    miner = MINERS.build(miner_name or "distance", {}, seed=0)
    loss_fn = LOSSES.build(loss_name, {}, miner=miner, n_classes=6, embed_dim=16)
    value = loss_fn(embeds, labels)
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    assert embeds.grad is not None and torch.isfinite(embeds.grad).all()
    assert embeds.grad.abs().sum() > 0, "no gradient reached the embeddings"
    assert all(torch.is_tensor(v) and v.shape == () for v in loss_fn.last_logs.values())
    if miner_name is not None:
        assert miner.last_count > 0
