"""The run record: atomic writes, a torn metric log, model selection, the end-of-run table."""

from __future__ import annotations

import json
import os
from typing import ClassVar

import numpy as np
import pytest

from runrecord.files import append_jsonl, read_jsonl, write_atomic, write_json_atomic
from runrecord.record import Selection
from runrecord.report import format_table


def test_failed_write_leaves_the_previous_file_and_no_temp(tmp_path):
    path = tmp_path / "summary.json"
    write_json_atomic(str(path), {"a": 1, "arr": np.arange(3), "x": np.float32(0.5)})
    assert json.loads(path.read_text()) == {"a": 1, "arr": [0, 1, 2], "x": 0.5}

    def crash(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("{half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(str(path), crash)
    assert json.loads(path.read_text())["a"] == 1
    assert os.listdir(tmp_path) == ["summary.json"]


def test_metric_log_ignores_a_torn_last_line(tmp_path):
    path = str(tmp_path / "metrics.jsonl")
    append_jsonl(path, {"epoch": 0, "split": "test", "e_recall@1": 0.1})
    append_jsonl(path, {"epoch": 1, "split": "test", "e_recall@1": 0.2})
    with open(path, "a") as f:
        f.write('{"epoch": 2, "spl')
    assert [r["epoch"] for r in read_jsonl(path)] == [0, 1]


def test_selection_keeps_first_best_and_ignores_other_splits_and_nan():
    sel = Selection("val", "e_recall@1")
    assert sel.update(0, {"val": {"e_recall@1": 0.2}, "test": {"e_recall@1": 0.9}})
    assert not sel.update(1, {"val": {"e_recall@1": 0.2}})  # a tie keeps the earlier epoch
    assert not sel.update(2, {"val": {"e_recall@1": float("nan")}})
    assert not sel.update(3, {"test": {"e_recall@1": 1.0}})  # never chosen on test
    assert sel.update(4, {"val": {"e_recall@1": 0.5}})
    assert (sel.best_epoch, sel.best_value) == (4, 0.5)
    assert sel.rule == "max e_recall@1 on the val split"


def test_table_shows_before_selected_and_last():
    summary = {
        "untrained": {"test": {"e_recall@1": 0.1, "nmi": 0.3}},
        "selected": {"test": {"e_recall@1": 0.5, "nmi": 0.6}},
        "last": {"test": {"e_recall@1": 0.4, "nmi": 0.55}},
        "selected_epoch": 3,
        "last_epoch": 5,
        "run_dir": "x",
        "selection": {"rule": "max e_recall@1 on the val split"},
    }
    text = format_table(summary)
    lines = text.splitlines()
    assert lines[0].split()[-2:] == ["R@1", "NMI"]
    assert lines[2].startswith("untrained (epoch 0)") and lines[2].split()[-2:] == [
        "0.1000",
        "0.3000",
    ]
    assert lines[3].startswith("selected (epoch 3)") and "0.5000" in lines[3]
    assert lines[4].startswith("last (epoch 5)") and "0.4000" in lines[4]
    assert "max e_recall@1 on the val split" in lines[5]


def test_run_name_and_config_differences_ignore_resumable_flags():
    from types import SimpleNamespace

    from runrecord.record import config_differences, run_name

    assert (
        run_name(SimpleNamespace(group="CUB_Margin", seed=3, savename="group_plus_seed"))
        == "CUB_Margin_s3"
    )
    assert run_name(SimpleNamespace(group="g", seed=3, savename="mine")) == "mine"
    saved = {"lr": 1e-5, "kernels": 6, "n_epochs": 10, "tau": [1000]}
    assert (
        config_differences(saved, {"lr": 1e-5, "kernels": 2, "n_epochs": 20, "tau": (1000,)}) == []
    )
    assert config_differences(saved, {"lr": 1e-4, "kernels": 6, "n_epochs": 10, "tau": [1000]}) == [
        "lr"
    ]


class FakeWandb:
    """Stands in for the wandb module: records calls, or fails where told to."""

    def __init__(self, fail_init=False, fail_log=False):
        self.fail_init, self.fail_log, self.logged, self.inits = fail_init, fail_log, [], []
        self.Settings = lambda **kw: kw
        self.Histogram = lambda values: ("hist", len(values))

    def init(self, **kwargs):
        if self.fail_init:
            raise RuntimeError("no network")
        self.inits.append(kwargs)
        fake = self

        class Run:
            summary: ClassVar[dict] = {}

            def log(self, row):
                if fake.fail_log:
                    raise ConnectionError("quota")
                fake.logged.append(row)

            def finish(self):
                fake.logged.append("finished")

        return Run()


def test_wandb_sink_logs_scalars_and_histograms_offline_without_key(tmp_path, monkeypatch):
    import sys

    from runrecord.wandb_sink import WandbSink

    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    sink = WandbSink(str(tmp_path), "proj", "grp", "grp_s0", {"lr": 1e-5})
    assert fake.inits[0]["mode"] == "offline" and fake.inits[0]["group"] == "grp"
    sink.log(3, "test", {"e_recall@1": 0.5, "rho_spectrum@0": np.ones(4), "note": "x"})
    assert fake.logged == [{"test/e_recall@1": 0.5, "test/rho_spectrum@0": ("hist", 4), "epoch": 3}]
    sink.finish({"e_recall@1": 0.5})
    assert fake.logged[-1] == "finished"


def test_wandb_sink_sends_a_row_once_per_run_folder(tmp_path, monkeypatch):
    import sys

    from runrecord.wandb_sink import WandbSink

    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setenv("WANDB_MODE", "offline")
    first = WandbSink(str(tmp_path), "p", "g", "g_s0", {})
    first.log(1, "test", {"e_recall@1": 0.5})
    resumed = WandbSink(str(tmp_path), "p", "g", "g_s0", {}, continues=True)
    resumed.log(1, "test", {"e_recall@1": 0.5})  # the replayed epoch: already sent
    resumed.log(1, "val", {"e_recall@1": 0.6})
    assert [sorted(r) for r in fake.logged] == [
        ["epoch", "test/e_recall@1"],
        ["epoch", "val/e_recall@1"],
    ]
    fresh = WandbSink(str(tmp_path), "p", "g", "g_s0", {})  # other settings took the folder over
    fresh.log(1, "test", {"e_recall@1": 0.1})
    assert fake.logged[-1] == {"test/e_recall@1": 0.1, "epoch": 1}


@pytest.mark.parametrize("failure", ["fail_init", "fail_log"])
def test_failing_wandb_disables_the_sink_without_raising(tmp_path, monkeypatch, failure):
    import sys

    from runrecord.wandb_sink import WandbSink

    monkeypatch.setitem(sys.modules, "wandb", FakeWandb(**{failure: True}))
    with pytest.warns(UserWarning, match="W&B logging disabled"):
        sink = WandbSink(str(tmp_path), "p", "g", "g_s0", {})
        sink.log(1, "test", {"e_recall@1": 0.1})
    assert sink.run is None
    sink.log(2, "test", {"e_recall@1": 0.2})  # a disabled sink stays quiet
    sink.finish()


def tiny_record(tmp_path):
    from types import SimpleNamespace

    from runrecord import RunRecord

    opt = SimpleNamespace(
        save_path=str(tmp_path),
        project="p",
        group="g",
        seed=0,
        savename="group_plus_seed",
        as_dict=lambda: {"lr": 1.0},
    )
    return RunRecord(opt)


def test_train_state_is_plain_data_and_round_trips(tmp_path):
    import io
    import random

    import torch

    from batch_mining import MINERS
    from training.state import TrainState

    def make():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
        loss = torch.nn.Linear(3, 2)
        optim = torch.optim.Adam(list(model.parameters()) + list(loss.parameters()))
        sched = torch.optim.lr_scheduler.MultiStepLR(optim, milestones=[2, 4], gamma=0.5)
        miner = MINERS.build("memory_bank", None, seed=3)
        return TrainState(
            model=model,
            loss=loss,
            optimizer=optim,
            scheduler=sched,
            miner=miner,
            sampler=object(),
            selections=[Selection("val", "e_recall@1")],
            config={"lr": 1e-3, "tau": [2, 4]},
        )

    a = make()
    a.model(torch.randn(8, 4)).sum().backward()
    a.optimizer.step()
    a.scheduler.step()
    a.miner.augment(torch.randn(5, 3), torch.arange(5))
    a.selection.update(1, {"val": {"e_recall@1": 0.5}})
    a.epoch, a.train_time, a.nonfinite_steps = 1, 2.5, 1
    random.random()
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    draws = (random.random(), np.random.rand(), torch.rand(1).item())
    saved = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)  # plain data only
    assert set(saved) == set(TrainState.KEYS)
    b = make()
    b.load_state_dict(saved)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == draws
    assert (b.epoch, b.train_time, b.nonfinite_steps) == (1, 2.5, 1)
    assert b.selection == a.selection and b.config == a.config
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key]), key
    assert b.scheduler.state_dict() == a.scheduler.state_dict()
    assert torch.equal(b.miner.bank, a.miner.bank) and b.miner.ptr == a.miner.ptr
    with pytest.raises(ValueError, match="checkpoint lacks epoch"):
        b.load_state_dict({k: v for k, v in saved.items() if k != "epoch"})


def test_checkpoint_rotation_keeps_the_previous_and_falls_back(tmp_path):
    import torch

    record = tiny_record(tmp_path)
    record.save_checkpoint("last", {"epoch": 1, "w": torch.ones(2)}, keep_previous=True)
    record.save_checkpoint("last", {"epoch": 2, "w": torch.zeros(2)}, keep_previous=True)
    folder = tmp_path / "p" / "g_s0" / "checkpoints"
    assert sorted(os.listdir(folder)) == ["last.prev.pt", "last.pt"]
    assert record.load_checkpoint()["epoch"] == 2 and record.notes == []
    os.remove(folder / "last.pt")  # stopped between the two renames
    assert record.load_checkpoint()["epoch"] == 1
    assert "stopped while replacing last.pt" in record.notes[-1]
    with pytest.raises(Exception, match=r"Unsupported|not allowed|weights"):
        record.save_checkpoint("last", {"epoch": 3, "obj": Selection("a", "b")})


def test_the_log_is_cut_back_to_the_checkpoint_epoch(tmp_path):
    record = tiny_record(tmp_path)
    os.makedirs(record.dir)
    for epoch in range(3):
        record.log(epoch, "test", {"e_recall@1": epoch / 10})
    with open(record.path("metrics.jsonl"), "a") as f:
        f.write('{"epoch": 3, "spl')
    record.truncate_log(1)
    assert [r["epoch"] for r in record.metric_rows()] == [0, 1]
    with open(record.path("metrics.jsonl")) as f:
        assert f.read().endswith("}\n")
    record.truncate_log(-1)
    assert record.metric_rows() == []


def test_every_torch_load_in_the_repository_is_weights_only():
    import re

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    offenders = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "Datasets"]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path) as f:
                    text = f.read()
                for call in re.finditer(r"torch\.load\(([^()]|\([^()]*\))*\)", text):
                    if "weights_only=True" not in call.group(0):
                        offenders.append(f"{os.path.relpath(path, root)}: {call.group(0)[:60]}")
    assert offenders == []


def test_a_flag_newer_than_the_saved_config_counts_only_away_from_its_default():
    from runrecord.record import config_differences

    saved = {"lr": 1e-5}  # written before --cv_folds existed
    defaults = {"lr": 1e-5, "cv_folds": 0}
    assert config_differences(saved, {"lr": 1e-5, "cv_folds": 0}, defaults) == []
    assert config_differences(saved, {"lr": 1e-5, "cv_folds": 4}, defaults) == ["cv_folds"]
    assert config_differences(saved, {"lr": 1e-5, "cv_folds": 0}) == ["cv_folds"]  # no defaults


def test_a_run_folder_from_before_a_new_flag_still_resumes(tmp_path, capsys):
    import main
    from tests.tiny_run import glyphs_args

    assert main.main(glyphs_args(tmp_path, epochs=1)) == 0
    config = tmp_path / "runs" / "p" / "g_s0" / "config.json"
    saved = json.loads(config.read_text())
    del saved["cv_folds"], saved["amp_dtype"]  # as an older version wrote it
    config.write_text(json.dumps(saved))
    capsys.readouterr()
    assert main.main(glyphs_args(tmp_path, epochs=2)) == 0
    assert "extending" in capsys.readouterr().out
    assert main.main(glyphs_args(tmp_path, "--amp_dtype", "fp16", epochs=3)) == 2
    assert "amp_dtype: 'auto' -> 'fp16'" in capsys.readouterr().err  # rewritten on extension


def test_selection_goes_stale_by_mlrc_rule():
    from runrecord.record import Selection

    sel = Selection("val", "e_recall@1")
    assert not sel.stale(5, 2)  # nothing evaluated yet
    for epoch, value in [(0, 0.1), (2, 0.3), (4, 0.2), (6, 0.3)]:  # a tie is no improvement
        sel.update(epoch, {"val": {"e_recall@1": value}})
    assert sel.best_epoch == 2
    assert not sel.stale(4, 2) and sel.stale(5, 2) and sel.stale(6, 2)
    assert not sel.stale(100, 0)  # 0: off
