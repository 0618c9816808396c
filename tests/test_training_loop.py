"""The training step without host syncs: non-finite steps skipped on the device by the fused
optimisers, the step ledger read once in a while, and the same outcome as reading every step."""

from __future__ import annotations

import math

import pytest
import torch

import parameters
from batch_mining import MINERS
from criteria import LOSSES
from training import SkipBudget, build_optimizer, seed_everything, train_one_epoch
from training.epoch import NonFiniteSteps, skips_on_device

CPU = torch.device("cpu")
N_CLASSES, SPC = 4, 4


class Net(torch.nn.Module):
    """A conv + BatchNorm network with the ``head`` build_optimizer looks for."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
        )
        self.head = torch.nn.Linear(8, 16)

    def forward(self, x):
        return torch.nn.functional.normalize(self.head(self.body(x)), dim=1)


def batches(n: int) -> list:
    gen = torch.Generator().manual_seed(1)
    labels = torch.arange(N_CLASSES).repeat_interleave(SPC)
    return [
        (torch.randn(len(labels), 3, 8, 8, generator=gen), labels, torch.arange(len(labels)))
        for _ in range(n)
    ]


class PoisonedLoss(torch.nn.Module):
    """Margin loss + distance mining whose value is NaN at the given calls (0-based)."""

    def __init__(self, bad: set[int]) -> None:
        super().__init__()
        self.inner = LOSSES.build(
            "margin", None, miner=MINERS.build("distance", None, seed=0), n_classes=N_CLASSES
        )
        self.miner, self.bad, self.calls = self.inner.miner, bad, 0

    @property
    def last_logs(self):
        return self.inner.last_logs

    def forward(self, embeds, labels):
        out = self.inner(embeds, labels)
        self.calls += 1
        return out * float("nan") if self.calls - 1 in self.bad else out


def run(optim: str, bad: set[int], n: int = 6, read_every_s: float = 1.0, limit: int = 10):
    net, loss = Net(), PoisonedLoss(bad)
    opt = build_optimizer(parameters.namespace(optim=optim, lr=0.05), net, loss.inner)
    lines: list[str] = []
    logs = train_one_epoch(
        net,
        batches(n),
        loss,
        opt,
        CPU,
        epoch=1,
        show_progress=False,
        budget=SkipBudget(limit),
        log=lines.append,
        read_every_s=read_every_s,
    )
    return net, opt, logs, lines


def state_of(net, opt) -> list[torch.Tensor]:
    out = [t.detach().clone() for t in net.state_dict().values()]
    for per_param in opt.state.values():
        out += [v.detach().clone() for v in per_param.values() if torch.is_tensor(v)]
    return out


@pytest.mark.parametrize("optim", ["adam", "adamw", "sgd", "rmsprop"])
def test_a_nonfinite_step_changes_nothing(optim):
    """Skipping step 2 of 4 leaves weights, BatchNorm statistics and optimiser state (moments,
    step counts, momentum) exactly as training on batches 0, 1 and 3 alone."""
    _, _, logs, lines = run(optim, bad={2}, n=4)
    assert logs["iterations"] == 3 and logs["skipped_steps"] == 1
    assert lines == [
        "epoch 1, batch 2: loss nan; step skipped (1 of at most 10 per run, --max_nonfinite_steps)"
    ]
    net_a, opt_a, _, _ = run(optim, bad={2}, n=4)
    net_b, loss_b = Net(), PoisonedLoss(set())
    opt_b = build_optimizer(parameters.namespace(optim=optim, lr=0.05), net_b, loss_b.inner)
    for step, (images, labels, indices) in enumerate(batches(4)):
        if step == 2:  # the poisoned call mined too: draw as it did (a PK batch: 16 anchors)
            loss_b.miner(torch.randn(len(labels), 16), labels)
            continue
        batch = [(images, labels, indices)]
        train_one_epoch(net_b, batch, loss_b, opt_b, CPU, epoch=1, show_progress=False)
    for got, want in zip(state_of(net_a, opt_a), state_of(net_b, opt_b), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_fused_optimisers_skip_on_the_device():
    net, loss = Net(), PoisonedLoss(set())
    for optim, fused in [("adam", True), ("adamw", True), ("sgd", True), ("rmsprop", False)]:
        opt = build_optimizer(parameters.namespace(optim=optim), net, loss.inner)
        assert skips_on_device(opt) is fused, optim
        assert not skips_on_device(opt, scaler=object())  # a GradScaler decides on the host


def test_skipped_first_sgd_step_leaves_zero_momentum():
    """Fused SGD allocates its momentum buffers uninitialised on the first step; build_optimizer
    starts them at zero, so a skipped first step cannot leak garbage into the next."""
    _, opt, logs, _ = run("sgd", bad={0}, n=1)
    assert logs["iterations"] == 0 and logs["skipped_steps"] == 1
    for per_param in opt.state.values():
        assert torch.equal(
            per_param["momentum_buffer"], torch.zeros_like(per_param["momentum_buffer"])
        )


def test_reading_once_an_epoch_equals_reading_every_step():
    now = run("adam", bad={1, 4}, read_every_s=0.0)
    late = run("adam", bad={1, 4}, read_every_s=math.inf)
    for got, want in zip(state_of(*late[:2]), state_of(*now[:2]), strict=True):
        assert torch.equal(got, want)
    assert late[2].keys() == now[2].keys() and late[3] == now[3] and len(now[3]) == 2
    for key in now[2]:
        if key != "time_s":
            assert late[2][key] == now[2][key], key


def test_too_many_skips_stop_at_the_next_read():
    with pytest.raises(NonFiniteSteps, match=r"2 non-finite steps .*batch 3"):
        run("adam", bad={1, 3}, n=6, read_every_s=math.inf, limit=2)


class HostReads:
    """Counts the tensor methods that move a value to the host (and so wait for the device)."""

    NAMES = ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy")

    def __init__(self, monkeypatch) -> None:
        self.count = 0
        for name in self.NAMES:
            real = getattr(torch.Tensor, name)

            def counted(t, *args, _real=real, **kwargs):
                self.count += 1
                return _real(t, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counted)


@pytest.mark.parametrize("optim", ["adam", "sgd"])
def test_a_step_reads_nothing_from_the_device(monkeypatch, optim):
    """With a fused optimiser the loop's host reads do not grow with the number of steps (the
    miner's ``nonzero`` is the one sync left, and it is not a Python-level read)."""
    counts = []
    for n in (2, 7):
        reads = HostReads(monkeypatch)
        run(optim, bad=set(), n=n, read_every_s=math.inf)
        counts.append(reads.count)
        monkeypatch.undo()
    assert counts[0] == counts[1], counts


def test_rmsprop_reads_the_flag_each_step(monkeypatch):
    counts = []
    for n in (2, 7):
        reads = HostReads(monkeypatch)
        run("rmsprop", bad=set(), n=n, read_every_s=math.inf)
        counts.append(reads.count)
        monkeypatch.undo()
    assert counts[1] - counts[0] == 5  # one tolist per step


def test_cudnn_benchmark_is_opt_in():
    before = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    try:
        seed_everything(0)
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        seed_everything(0, cudnn_benchmark=True)
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before
    assert parameters.namespace().cudnn_benchmark is False
