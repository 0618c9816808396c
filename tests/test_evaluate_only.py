"""``main.py --evaluate_only``: the run's own data and metrics give the run record's figures
exactly; other data, other metrics; checkpoints from another version or architecture fail in one
line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import main
from architectures.saved import SavedRunError, load_saved_model
from tests.tiny_run import glyphs_args

METRICS = ["e_recall@1", "e_recall@2", "nmi", "mAP_at_r", "r_precision"]


def tiny_run(root: Path, *extra: str) -> list[str]:
    return glyphs_args(
        root, "--arch_smallnet_width", "8", *extra, seed=3, metrics=METRICS, model=""
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evalonly")
    assert main.main(tiny_run(root)) == 0
    return root


def _ckpt(root: Path) -> Path:
    return root / "runs" / "p" / "g_s3" / "checkpoints" / "best.pt"


def test_reproduces_the_run_record_exactly(run, capsys):
    ckpt = _ckpt(run)
    epoch = torch.load(ckpt, weights_only=True)["epoch"]
    assert main.main(["--evaluate_only", "--checkpoint", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "R@1" in out and "MAP@R" in out and "test" in out
    lines = (ckpt.parent.parent / "metrics.jsonl").read_text().splitlines()
    logged = {
        r["split"]: r
        for r in map(json.loads, lines)
        if r["epoch"] == epoch and r["split"] != "train_loop"
    }
    assert set(logged) == {"train", "val", "test"}
    for split in ("train", "val", "test"):
        written = json.loads((ckpt.parent / f"eval_glyphs_{split}.json").read_text())
        assert written["split"] == split and written["epoch"] == epoch
        for m in METRICS:
            assert written["metrics"][m] == logged[split][m], (split, m)  # exactly, not close


def test_other_metrics_and_splits_are_flags(run, capsys):
    ckpt = _ckpt(run)
    assert (
        main.main(
            [
                "--evaluate_only",
                "--checkpoint",
                str(ckpt),
                "--no_train_metrics",
                "--evaluation_metrics",
                "precision_at_1",
                "e_recall@4",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "train" not in out.split("written:")[0].split("\n", 1)[1]
    written = json.loads((ckpt.parent / "eval_glyphs_test.json").read_text())
    assert set(written["metrics"]) >= {"precision_at_1", "e_recall@4"}
    assert "nmi" not in written["metrics"]


def test_network_flags_cannot_be_overridden(run, capsys):
    code = main.main(["--evaluate_only", "--checkpoint", str(_ckpt(run)), "--embed_dim", "32"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "drop --embed_dim" in err


def test_missing_checkpoint_and_foreign_files_fail_in_one_line(run, tmp_path, capsys):
    assert main.main(["--evaluate_only"]) == 2
    assert "needs --checkpoint" in capsys.readouterr().err
    assert main.main(["--evaluate_only", "--checkpoint", str(tmp_path / "nope.pt")]) == 2
    assert "not found" in capsys.readouterr().err
    run_dir = _ckpt(run).parent.parent
    cases = {
        "pickled.pt": {"model": torch.nn.Linear(2, 2)},  # a pickled object, not plain data
        "nomodel.pt": {"weights": {}},
        "otherarch.pt": {"model": torch.nn.Linear(4, 4).state_dict(), "epoch": 1},
    }
    expected = {
        "pickled.pt": "not a plain-data dmlbench checkpoint",
        "nomodel.pt": "no network state_dict under 'model'",
        "otherarch.pt": "does not fit --arch smallnet_normalize",
    }
    for name, state in cases.items():
        torch.save(state, run_dir / "checkpoints" / name)
        code = main.main(["--evaluate_only", "--checkpoint", str(run_dir / "checkpoints" / name)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and expected[name] in err, err
    # another version: the saved model.json describes a network this version builds otherwise
    model_json = json.loads((run_dir / "model.json").read_text())
    changed = dict(model_json, feature_dim=model_json["feature_dim"] + 1)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "model.json").write_text(json.dumps(changed))
    (tmp_path / "run" / "config.json").write_text((run_dir / "config.json").read_text())
    os.link(_ckpt(run), tmp_path / "run" / "checkpoints" / "best.pt")
    with pytest.raises(SavedRunError, match=r"model\.json says feature_dim.*another version"):
        load_saved_model(tmp_path / "run" / "checkpoints" / "best.pt")
