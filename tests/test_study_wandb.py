"""W&B: the mode the environment asks for, a quick offline fallback when the server is unreachable,
and results/ reading the offline run files that the real wandb library wrote for a tiny run."""

from __future__ import annotations

import glob
import json
import os
import time

import pandas as pd
import pytest

import main
from results import cli
from results.runs import from_wandb_api, load_runs
from results.wandb_offline import read_offline_run
from runrecord.wandb_sink import WandbSink, flatten_summary, wandb_mode
from tests.test_main import tiny_args

KEY = "k" * 40
UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing listens, no traffic leaves


def wait_for_summary(path: str) -> None:
    """W&B's service process writes the file asynchronously (a main.py process exits only after
    it is complete); in-process, wait for the summary record."""
    start = time.time()
    while not read_offline_run(path).summary.get("finished") and time.time() - start < 60:
        time.sleep(0.2)


@pytest.mark.parametrize(
    "env,mode",
    [
        ({}, "offline"),
        ({"WANDB_API_KEY": KEY}, "online"),
        ({"WANDB_API_KEY": KEY, "WANDB_MODE": "offline"}, "offline"),
        ({"WANDB_MODE": "disabled"}, "disabled"),
        ({"WANDB_API_KEY": KEY, "WANDB_DISABLED": "true"}, "disabled"),
        ({"WANDB_MODE": "dryrun"}, "offline"),
    ],
)
def test_mode_follows_the_environment(monkeypatch, env, mode):
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_DISABLED"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert wandb_mode() == mode


def test_summary_is_flattened_per_split():
    flat = flatten_summary(
        {
            "finished": True,
            "selected_epoch": 3,
            "last_epoch": 5,
            "selection": {"rule": "max e_recall@1 on the val split"},
            "selected": {
                "test": {"e_recall@1": 0.5, "rho_spectrum@0": [1, 2]},
                "val": {"nmi": 0.25},
            },
        }
    )
    assert flat == {
        "finished": True,
        "selected_epoch": 3,
        "last_epoch": 5,
        "selection_rule": "max e_recall@1 on the val split",
        "selected/test/e_recall@1": 0.5,
        "selected/val/nmi": 0.25,
    }


def test_unreachable_server_falls_back_to_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", UNREACHABLE)
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "2")
    sink = WandbSink(str(tmp_path), "p", "g", "g_s0", {"lr": 1.0})
    assert sink.mode == "offline" and sink.run is not None
    sink.log(1, "test", {"e_recall@1": 0.5})
    sink.finish({"finished": True, "selected_epoch": 1, "selected": {"test": {"e_recall@1": 0.5}}})
    assert "W&B unreachable" in capsys.readouterr().err
    (path,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "run-*.wandb"))
    wait_for_summary(path)
    runs, problems = load_runs(wandb=str(tmp_path))
    assert not problems and runs[0].value("test", 1, "e_recall@1") == 0.5


def test_offline_files_of_a_real_run_read_like_its_run_folder(tmp_path, monkeypatch):
    # WANDB_MODE=offline must win over a key (before, the key forced online)
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_BASE_URL", UNREACHABLE)
    assert main.main(tiny_args(tmp_path, "--log_online")) == 0
    run_dir = tmp_path / "runs" / "p" / "g_s0"
    (path,) = glob.glob(str(run_dir / "wandb" / "offline-run-*" / "run-*.wandb"))
    wait_for_summary(path)
    (local,), _ = load_runs([str(tmp_path / "runs")])
    (online,), problems = load_runs(wandb=str(tmp_path / "runs"))
    assert not problems
    assert (online.name, online.group, online.seed) == ("g_s0", "g", 0)
    assert online.finished and online.selected_epoch == local.selected_epoch
    assert online.config["loss"] == "margin" and online.config["embed_dim"] == 16
    assert online.run_dir == str(run_dir)
    for split in ("val", "test"):
        assert sorted(online.history[split]) == sorted(local.history[split]) == [0, 1, 2]
        for epoch in (0, 1, 2):
            for metric in ("e_recall@1", "nmi", "mAP_at_r"):
                assert online.value(split, epoch, metric) == local.value(split, epoch, metric)
    out_local, out_wandb = tmp_path / "a", tmp_path / "b"
    assert (
        cli.main(
            [
                str(tmp_path / "runs"),
                "--out",
                str(out_local),
                "--no_figures",
                "--metrics",
                "e_recall@1",
                "nmi",
            ]
        )
        == 0
    )
    assert (
        cli.main(
            [
                "--wandb",
                str(tmp_path / "runs"),
                "--out",
                str(out_wandb),
                "--no_figures",
                "--metrics",
                "e_recall@1",
                "nmi",
            ]
        )
        == 0
    )
    pd.testing.assert_frame_equal(
        pd.read_csv(out_local / "results.csv"), pd.read_csv(out_wandb / "results.csv")
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"]


class _ApiRun:
    """Stands in for a wandb.apis.public.Run (the network API cannot be reached from tests)."""

    def __init__(self, name, group, seed, values):
        self.name, self.group, self.id = name, group, name
        self.config = {"group": group, "seed": seed, "dataset": "glyphs", "_wandb": {}}
        self.summary = {"finished": True, "selected_epoch": 1}
        self._rows = [{"epoch": e, "test/e_recall@1": v, "_step": e} for e, v in enumerate(values)]

    def scan_history(self):
        return iter(self._rows)


class _Api:
    def runs(self, path):
        assert path == "ent/proj"
        return [_ApiRun("g_s0", "g", 0, [0.1, 0.5]), _ApiRun("g_s1", "g", 1, [0.1, 0.7])]


def test_api_runs_become_runs():
    runs = from_wandb_api("ent/proj", api=_Api())
    assert [r.seed for r in runs] == [0, 1] and "_wandb" not in runs[0].config
    assert runs[1].value("test", runs[1].selected_epoch, "e_recall@1") == 0.7
    assert os.sep not in runs[0].source.split(":")[0]


def test_unreadable_wandb_project_is_one_line(monkeypatch, capsys):
    import results.runs

    def refuse(path, api=None):
        raise ConnectionError("no route to api.wandb.ai\n(retried 3 times)")

    monkeypatch.setattr(results.runs, "from_wandb_api", refuse)
    with pytest.raises(SystemExit) as exc:
        cli.main(["--wandb", "ent/proj"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and "could not read W&B project 'ent/proj'" in err[-1]
    assert "retried 3 times" in err[-1]
