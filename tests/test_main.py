"""End to end through main.py on a tiny glyphs set: the run folder, re-running a finished run,
resuming a stopped run to the same weights, refusing a folder that holds another run, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import main
import training
from tests.tiny_run import glyphs_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_args(tmp_path, *extra: str, epochs: int = 2) -> list[str]:
    return glyphs_args(tmp_path, *extra, epochs=epochs)


def run_dir(tmp_path) -> str:
    return str(tmp_path / "runs" / "p" / "g_s0")


def read_text(path: str) -> str:
    with open(path) as f:
        return f.read()


def load_json(path: str):
    with open(path) as f:
        return json.load(f)


def rows(tmp_path) -> list[dict]:
    with open(os.path.join(run_dir(tmp_path), "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_run_writes_record_and_rerun_reports_finished(tmp_path, capsys):
    assert main.main(tiny_args(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "untrained (epoch 0)" in out and "selection rule: max e_recall@1 on the val split" in out
    folder = run_dir(tmp_path)
    for name in (
        "config.json",
        "metrics.jsonl",
        "summary.json",
        "splits.json",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert os.path.exists(os.path.join(folder, name)), name
    evaluated = [(r["epoch"], r["split"]) for r in rows(tmp_path) if r["split"] != "train_loop"]
    assert evaluated == [(e, s) for e in range(3) for s in ("train", "val", "test")]
    summary = load_json(os.path.join(folder, "summary.json"))
    assert summary["finished"] and summary["selection"]["split"] == "val"
    assert summary["selected_epoch"] in (0, 1, 2)
    assert 0 <= summary["last"]["test"]["e_recall@1"] <= 1
    config = load_json(os.path.join(folder, "config.json"))
    assert config["loss"] == "margin" and config["embed_dim"] == 16
    before = read_text(os.path.join(folder, "metrics.jsonl"))
    assert main.main(tiny_args(tmp_path)) == 0
    assert "run already finished" in capsys.readouterr().out
    assert read_text(os.path.join(folder, "metrics.jsonl")) == before


@pytest.mark.parametrize(
    "miner",
    [[], ["--batch_mining", "memory_bank", "--miner_memory_bank_size", "64"]],
    ids=["distance", "memory_bank"],
)
def test_stopped_run_resumes_to_the_same_weights(tmp_path, monkeypatch, miner):
    # the memory bank's queue (and every miner's random generator) is part of the checkpoint
    straight = tmp_path / "straight"
    assert main.main(tiny_args(straight, *miner, epochs=3)) == 0

    stopped = tmp_path / "stopped"
    real = training.train_one_epoch

    def stop_at_epoch_3(*args, **kwargs):
        if kwargs["epoch"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_one_epoch", stop_at_epoch_3)
    assert main.main(tiny_args(stopped, *miner, epochs=3)) == 130
    summary = load_json(os.path.join(run_dir(stopped), "summary.json"))
    assert not summary["finished"] and summary["last_epoch"] == 2
    monkeypatch.setattr(training, "train_one_epoch", real)
    assert main.main(tiny_args(stopped, *miner, epochs=3)) == 0

    a = torch.load(os.path.join(run_dir(straight), "checkpoints/last.pt"), weights_only=True)
    b = torch.load(os.path.join(run_dir(stopped), "checkpoints/last.pt"), weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    epochs = [(r["epoch"], r["split"]) for r in rows(stopped)]
    assert len(epochs) == len(set(epochs))  # no epoch logged twice
    assert epochs == [(r["epoch"], r["split"]) for r in rows(straight)]


def test_folder_with_other_settings_is_refused(tmp_path, capsys):
    assert main.main(tiny_args(tmp_path, epochs=1)) == 0
    assert main.main(tiny_args(tmp_path, "--loss_margin_beta", "0.6", epochs=1)) == 2
    err = capsys.readouterr().err
    assert "holds a run with other settings (loss_margin_beta: 1.2 -> 0.6)" in err


def test_cli_bad_input_exits_2_with_one_line():
    proc = subprocess.run(
        [
            sys.executable,
            "main.py",
            "--dataset",
            "glyphs",
            "--loss",
            "triplet",
            "--batch_mining",
            "npair",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # no usage block above it
    assert lines[0].startswith(
        "main.py: error: loss triplet cannot use miner npair; allowed miners:"
    )


def test_data_that_cannot_fill_a_batch_is_a_one_line_error(tmp_path, capsys):
    args = tiny_args(tmp_path, "--bs", "64", "--samples_per_class", "2")  # 32 classes > 9 train
    assert main.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("main.py: error: 32 classes are needed per batch")


def test_image_size_and_eval_layer_reach_the_run(tmp_path, monkeypatch):
    seen = []
    real = training.evaluate_splits

    def spy(model, loaders, *args, **kwargs):
        seen.append(kwargs["layer"])
        images = next(iter(loaders["test"]))[0]
        assert images.shape[-2:] == (24, 24)
        return real(model, loaders, *args, **kwargs)

    monkeypatch.setattr(training, "evaluate_splits", spy)
    args = tiny_args(tmp_path, "--image_size", "24", "--eval_layer", "pooled", epochs=1)
    assert main.main(args) == 0
    assert seen == ["pooled", "pooled"]
    described = load_json(os.path.join(run_dir(tmp_path), "model.json"))
    assert described["image_spec"]["size"] == 24 and described["image_spec"]["resize"] == 24
    assert described["feature_dim"] == 128 and described["embed_dim"] == 16


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--image_size", "64", "--image_resize", "60"], "--image_resize 60 is smaller than"),
        (["--image_size", "-3"], "must be >= 0"),
        (["--eval_layer", "logits"], "invalid choice: 'logits'"),
    ],
)
def test_bad_image_and_layer_flags_exit_2(flags, fragment):
    proc = subprocess.run(
        [sys.executable, "main.py", "--dataset", "glyphs", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and fragment in proc.stderr.strip().splitlines()[-1]


def test_rotation_classes_train_end_to_end_with_an_embedding_sampler(tmp_path, capsys, monkeypatch):
    from datasampler.embedding_store import EmbeddingSampler

    stored = []
    real = EmbeddingSampler.update_embeddings

    def spy(self, indices, embeds):
        stored.append((len(self.labels), len(indices)))
        return real(self, indices, embeds)

    monkeypatch.setattr(EmbeddingSampler, "update_embeddings", spy)
    args = tiny_args(
        tmp_path,
        "--rotation_classes",
        "4",
        "--data_sampler",
        "greedy_coreset",
        "--data_batchmatch_bigbs",
        "64",
        epochs=1,
    )
    assert main.main(args) == 0
    out = capsys.readouterr().out
    assert "(288 train images, 36 classes)" in out  # 9 classes × 8 images × 4 turns
    assert stored[0] == (288, 288)  # the sampler's store starts with every rotated item
    splits = load_json(os.path.join(run_dir(tmp_path), "splits.json"))
    assert splits["train"]["rotation_classes"] == 4 and splits["train_eval"]["n_classes"] == 9
    assert "rotation_classes" not in splits["test"]


def test_patience_stops_early_and_a_larger_one_continues(tmp_path, capsys):
    """MLRC's rule: stop once epoch - best_epoch > patience. Selected on a metric that is 1.0 every
    epoch, the best stays epoch 0; --patience 2 stops after epoch 3 of 6."""
    constant = [
        "--evaluation_metrics",
        "e_recall@1",
        "e_recall@1000",
        "--storage_metrics",
        "e_recall@1000",
    ]
    args = tiny_args(tmp_path, *constant, "--patience", "2", epochs=6)
    assert main.main(args) == 0
    out = capsys.readouterr().out
    assert "early stop after epoch 3: max e_recall@1000 on the val split last improved at " in out
    summary = load_json(os.path.join(run_dir(tmp_path), "summary.json"))
    assert summary["finished"] and summary["last_epoch"] == 3
    assert summary["stopped_early"] == {"epoch": 3, "best_epoch": 0, "patience": 2}
    assert main.main(args) == 0  # finished: nothing to do
    assert "run already finished" in capsys.readouterr().out
    assert max(r["epoch"] for r in rows(tmp_path)) == 3
    longer = tiny_args(tmp_path, *constant, "--patience", "4", epochs=6)
    assert main.main(longer) == 0  # a larger patience resumes from epoch 3
    summary = load_json(os.path.join(run_dir(tmp_path), "summary.json"))
    assert summary["last_epoch"] == 5 and summary["stopped_early"]["epoch"] == 5
    tests = [r["epoch"] for r in rows(tmp_path) if r["split"] == "test"]
    assert tests == [0, 1, 2, 3, 4, 5]


def test_patience_shorter_than_eval_every_is_refused(tmp_path, capsys):
    args = tiny_args(tmp_path, "--patience", "1", "--eval_every", "2")
    with pytest.raises(SystemExit) as stop:
        main.main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--patience 1 must be 0 (off) or at least --eval_every (2)" in err
