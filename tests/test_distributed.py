"""Multi-process training: device choice per rank, the global batch under DDP, torchrun end to end.

The DDP test runs two gloo processes on the CPU and checks one training step against one process
on the concatenated batch: same loss, same gradients (network and the loss's own parameters), same
mined tuples, same parameters after the optimiser step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import distributed
from batch_mining import MINERS
from criteria import LOSSES
from tests.test_main import ROOT
from tests.tiny_run import GLYPHS_TINY

WORLD, PER_RANK, DIM_IN, DIM, CLASSES = 2, 12, 10, 8, 6
CASES = (("margin", "distance"), ("proxyanchor", None))


# ----------------------------------------------------------------------------- device choice
def _torchrun_env(local: int, local_world: int, world: int | None = None) -> dict[str, str]:
    world = world or local_world
    return {
        "WORLD_SIZE": str(world),
        "RANK": str(local),
        "LOCAL_RANK": str(local),
        "LOCAL_WORLD_SIZE": str(local_world),
    }


@pytest.fixture
def gpus(monkeypatch):
    """Pretend ``n`` GPUs are visible."""

    def visible(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return visible


def test_no_cuda_means_cpu_and_gloo(gpus):
    gpus(0)
    device = distributed.resolve_device("auto", [0], env=_torchrun_env(1, 2))
    assert device == torch.device("cpu")
    assert distributed.backend_for(device) == "gloo"
    with pytest.raises(distributed.DeviceError, match="--device cpu"):
        distributed.resolve_device("cuda", [0], env={})


def test_one_gpu_per_rank(gpus):
    gpus(4)
    devices = [distributed.resolve_device("auto", [0], env=_torchrun_env(r, 4)) for r in range(4)]
    assert [d.index for d in devices] == [0, 1, 2, 3]
    assert distributed.backend_for(devices[1]) == "nccl"
    # several --gpu ids: ranks are placed on those
    assert distributed.resolve_device("cuda", [2, 3], env=_torchrun_env(1, 2)).index == 3
    # one process: the first --gpu id
    assert distributed.resolve_device("auto", [2], env={}).index == 2


def test_fewer_gpus_than_ranks_is_one_line_error_unless_shared(gpus):
    gpus(1)
    with pytest.raises(distributed.DeviceError) as err:
        distributed.resolve_device("auto", [0], env=_torchrun_env(1, 2))
    assert "\n" not in str(err.value) and "--gpu_share_ranks" in str(err.value)
    shared = [
        distributed.resolve_device("auto", [0], share_ranks=True, env=_torchrun_env(r, 3))
        for r in range(3)
    ]
    assert [d.index for d in shared] == [0, 0, 0]  # never cuda:1 on a one-GPU machine
    from distributed.devices import shares_gpu

    assert shares_gpu(shared[1], [0], env=_torchrun_env(1, 3))
    assert distributed.backend_for(shared[1], shared_gpu=True) == "gloo"
    with pytest.raises(distributed.DeviceError, match="no such GPU"):
        distributed.resolve_device("cuda", [0, 5], env=_torchrun_env(0, 2))


# ----------------------------------------------------------------------------- the global batch
def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(WORLD * PER_RANK, DIM_IN, generator=g)
    labels = torch.arange(CLASSES).repeat_interleave(WORLD * PER_RANK // CLASSES)
    return x, labels


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(DIM_IN, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.fc(x), dim=1)


def _build(loss_name: str, miner_name: str | None):
    torch.manual_seed(0)
    net = _Net()
    miner = MINERS.build(miner_name, None, seed=5) if miner_name else None
    loss = LOSSES.build(loss_name, None, miner=miner, n_classes=CLASSES, embed_dim=DIM)
    mined: list = []
    if miner is not None:
        mine = miner.mine
        miner.mine = lambda e, labels: mined.append(mine(e, labels)) or mined[-1]
    opt = torch.optim.SGD(list(net.parameters()) + list(loss.parameters()), lr=0.1)
    return net, loss, mined, opt


def _step(net, model, loss_fn, train_loss, opt, x, labels, ctx) -> dict:
    value = train_loss(model(x), labels)
    opt.zero_grad()
    value.backward()
    distributed.average_gradients(loss_fn, ctx)
    grads = {f"net.{k}": p.grad.clone() for k, p in net.named_parameters()}
    grads.update(
        {f"loss.{k}": p.grad.clone() for k, p in loss_fn.named_parameters() if p.grad is not None}
    )
    opt.step()
    return {
        "loss": value.detach(),
        "grads": grads,
        "params": {k: p.detach().clone() for k, p in net.named_parameters()},
    }


class _Store:
    """Stands in for an embedding-store sampler: records what it is asked to store."""

    needs_embeddings = True

    def update_embeddings(self, indices, embeds) -> None:
        self.rows = (np.asarray(indices), embeds)


def _rank(rank: int, init: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=WORLD)
    ctx = distributed.DistContext(rank, WORLD, rank)
    x, labels = _data()
    part = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
    results = {}
    for loss_name, miner_name in CASES:
        net, loss_fn, mined, opt = _build(loss_name, miner_name)
        model = distributed.wrap(net, ctx, torch.device("cpu"))
        out = _step(
            net,
            model,
            loss_fn,
            distributed.global_batch_loss(loss_fn, ctx),
            opt,
            x[part],
            labels[part],
            ctx,
        )
        out["mined"] = [tuple(t.clone() for t in m) for m in mined]
        results[loss_name] = out
    # the embedding store: rank r contributes 3 + r rows; both ranks must store all 7
    idx = np.arange(10 * rank, 10 * rank + 3 + rank)
    store = _Store()
    shared = distributed.share_embeddings(store, ctx)
    assert shared is not store and shared.needs_embeddings
    shared.update_embeddings(idx, torch.full((len(idx), 2), float(rank)))  # as the loop calls it
    results["store"] = (torch.as_tensor(store.rows[0]), store.rows[1])  # plain tensors
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_ddp_step_equals_one_process_on_the_global_batch(tmp_path):
    mp.spawn(_rank, args=(f"file://{tmp_path / 'rendezvous'}", str(tmp_path)), nprocs=WORLD)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    x, labels = _data()
    one = distributed.DistContext()
    for loss_name, miner_name in CASES:
        net, loss_fn, mined, opt = _build(loss_name, miner_name)
        ref = _step(
            net, net, loss_fn, distributed.global_batch_loss(loss_fn, one), opt, x, labels, one
        )
        for r, res in enumerate(ranks):
            got = res[loss_name]
            torch.testing.assert_close(got["loss"], ref["loss"], rtol=1e-5, atol=1e-6)
            assert got["grads"].keys() == ref["grads"].keys()
            assert any(k.startswith("loss.") for k in ref["grads"]) or miner_name
            for k, g in ref["grads"].items():
                torch.testing.assert_close(
                    got["grads"][k],
                    g,
                    rtol=1e-4,
                    atol=1e-6,
                    msg=f"{loss_name} rank {r}: gradient of {k}",
                )
            for k, p in ref["params"].items():
                torch.testing.assert_close(got["params"][k], p, rtol=1e-4, atol=1e-6)
            assert len(got["mined"]) == len(mined)
            for m_got, m_ref in zip(got["mined"], mined):
                for t_got, t_ref in zip(m_got, m_ref):
                    assert torch.equal(t_got, t_ref), f"{loss_name}: mined tuples differ"
        if miner_name:
            assert len(mined) == 1 and mined[0][0].numel() > 0
            # the tuples span both ranks' rows: mining saw the global batch
            assert (torch.cat(list(mined[0])) >= PER_RANK).any()
            assert (torch.cat(list(mined[0])) < PER_RANK).any()
    assert distributed.share_embeddings(_Store(), one).__class__ is _Store  # one process: as is
    for rows, embeds in (res["store"] for res in ranks):
        assert rows.tolist() == [0, 1, 2, 10, 11, 12, 13]
        assert embeds[:, 0].tolist() == [0, 0, 0, 1, 1, 1, 1]


def test_ddp_without_the_gather_would_differ():
    """The check above can fail: the per-rank loss of the old scheme is another number."""
    x, labels = _data()
    net, loss_fn, _, _ = _build("proxyanchor", None)
    whole = loss_fn(net(x), labels)
    halves = torch.stack(
        [loss_fn(net(x[s]), labels[s]) for s in (slice(0, PER_RANK), slice(PER_RANK, None))]
    ).mean()
    assert not torch.allclose(whole, halves, rtol=1e-3)


# ----------------------------------------------------------------------------- torchrun end to end
def test_torchrun_two_ranks_train_and_record_once(tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    # --device cpu: the test is about the processes and the record, and must also pass on a
    # machine with one visible GPU (where auto would need a GPU per rank)
    cmd = [
        torchrun,
        "--standalone",
        "--nproc_per_node",
        "2",
        "main.py",
        "--dataset",
        "glyphs",
        "--source_path",
        str(tmp_path / "data"),
        *GLYPHS_TINY,
        "--device",
        "cpu",
        "--save_path",
        str(tmp_path / "runs"),
        "--project",
        "p",
        "--group",
        "ddp",
        "--arch",
        "smallnet_normalize",
        "--not_pretrained",
        "--embed_dim",
        "16",
        "--bs",
        "32",
        "--samples_per_class",
        "4",
        "--lr",
        "1e-3",
        "--n_epochs",
        "4",
        "--iters_per_epoch",
        "2",
        "--kernels",
        "0",
        "--loss",
        "proxynca",
        "--no_train_metrics",
        "--evaluation_metrics",
        "e_recall@1",
        "e_recall@1000",
        # selection on a metric that is 1.0 every epoch: the best stays epoch 0, so --patience 1
        # stops both ranks after epoch 2 (rank 0 decides; rank 1 would hang otherwise)
        "--storage_metrics",
        "e_recall@1000",
        "--patience",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("selection rule:") == 1  # only rank 0 reports
    folder = tmp_path / "runs" / "p" / "ddp_s1"
    with open(folder / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]
    tests = [r["epoch"] for r in rows if r["split"] == "test"]
    assert tests == [0, 1, 2]
    loops = [r for r in rows if r["split"] == "train_loop"]
    assert [r["iterations"] for r in loops] == [2, 2]
    with open(folder / "summary.json") as f:
        summary = json.load(f)
    assert summary["finished"]
    assert summary["stopped_early"] == {"epoch": 2, "best_epoch": 0, "patience": 1}


def test_main_stops_with_one_line_when_a_rank_has_no_gpu(gpus, monkeypatch, tmp_path, capsys):
    import main

    gpus(1)
    for key, value in _torchrun_env(1, 2).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: pytest.fail(f"asked for {d}"))
    code = main.main(
        [
            "--dataset",
            "glyphs",
            "--source_path",
            str(tmp_path),
            "--save_path",
            str(tmp_path / "runs"),
            "--arch",
            "smallnet_normalize",
            "--not_pretrained",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--nproc_per_node 1" in err
