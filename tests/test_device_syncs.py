"""What in a training step would make the host wait for a GPU, audited op by op on the CPU.

A ``TorchDispatchMode`` sees every ATen op of a loss's forward and backward (and of a whole
training epoch) and counts those that need a device value on the host: ``nonzero`` and boolean
indexing (data-dependent sizes), ``unique``, ``item`` (``_local_scalar_dense``), ``masked_select``.
On a GPU each is a stream synchronisation. The losses wait for nothing; a miner waits as often as
its ``device_syncs`` says; the training loop adds nothing (with a fused optimiser). The one CPU-only
check this would see, ``F.one_hot``'s range check, is replaced by CUDA's unchecked equivalent.
"""

from __future__ import annotations

import collections

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import parameters
from batch_mining import MINERS
from criteria import LOSSES
from tests.test_training_loop import Net
from training import build_optimizer, train_one_epoch

SYNC_OPS = {
    "aten.nonzero.default",
    "aten._local_scalar_dense.default",
    "aten.masked_select.default",
    "aten._unique2.default",
    "aten.unique_dim.default",
    "aten.unique_consecutive.default",
    "aten.repeat_interleave.Tensor",
}
N_CLASSES, SPC = 8, 4


class SyncAudit(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if name in SYNC_OPS:
            self.ops[name] += 1
        elif name.startswith(("aten.index.Tensor", "aten.index_put")) and any(
            i is not None and i.dtype == torch.bool for i in args[1]
        ):
            self.ops["boolean index"] += 1
        return func(*args, **(kwargs or {}))

    @property
    def count(self) -> int:
        return sum(self.ops.values())


@pytest.fixture(autouse=True)
def one_hot_as_on_cuda(monkeypatch):
    def unchecked(labels, num_classes=-1):
        out = torch.zeros(len(labels), num_classes, dtype=torch.long, device=labels.device)
        return out.scatter_(1, labels[:, None], 1)

    monkeypatch.setattr(F, "one_hot", unchecked)


def pk_batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(N_CLASSES * SPC, 16, generator=gen), dim=1).requires_grad_()
    return x, torch.arange(N_CLASSES).repeat_interleave(SPC)


def combinations():
    for loss in LOSSES.names():
        for miner in LOSSES.get(loss).allowed_miners() or [None]:
            yield loss, miner


@pytest.mark.parametrize("loss_name,miner_name", list(combinations()))
def test_a_loss_waits_only_for_its_miner(loss_name, miner_name):
    miner = MINERS.build(miner_name, None, seed=0) if miner_name else None
    loss = LOSSES.build(loss_name, None, miner=miner, n_classes=N_CLASSES, embed_dim=16)
    x, labels = pk_batch()
    loss(x, labels)  # a memory bank fills on the first batch: audit the second
    audit = SyncAudit()
    with audit:
        loss(x, labels).backward()
    expected = MINERS.get(miner_name).device_syncs if miner_name else 0
    assert audit.count == expected, dict(audit.ops)


def test_the_audit_sees_a_boolean_index():
    """The audit can fail: the log the proxy losses used to take waited for the device."""
    x, _ = pk_batch()
    audit = SyncAudit()
    with audit:
        x[x > 0].mean()
        x.sum().item()
    assert audit.ops == {"boolean index": 1, "aten._local_scalar_dense.default": 1}


@pytest.mark.parametrize("loss_name,miner_name", [("margin", "distance"), ("proxyanchor", None)])
def test_a_training_step_waits_only_for_the_miner(loss_name, miner_name):
    """Whole epochs of 2 and 6 steps (Adam, fused): the difference per step is the miner's."""
    labels = torch.arange(N_CLASSES).repeat_interleave(SPC)
    gen = torch.Generator().manual_seed(1)
    data = [
        (torch.randn(len(labels), 3, 8, 8, generator=gen), labels, torch.arange(len(labels)))
        for _ in range(6)
    ]
    counts = []
    for n in (2, 6):
        miner = MINERS.build(miner_name, None, seed=0) if miner_name else None
        loss = LOSSES.build(loss_name, None, miner=miner, n_classes=N_CLASSES, embed_dim=16)
        net = Net()
        opt = build_optimizer(parameters.namespace(optim="adam"), net, loss)
        audit = SyncAudit()
        with audit:
            train_one_epoch(
                net,
                data[:n],
                loss,
                opt,
                torch.device("cpu"),
                epoch=1,
                show_progress=False,
                read_every_s=float("inf"),
            )
        counts.append(audit.count)
    per_step = (counts[1] - counts[0]) / 4
    assert per_step == (MINERS.get(miner_name).device_syncs if miner_name else 0), counts
