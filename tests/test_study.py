"""The study files: every line parses with the real parameters.parse_args, the ICML 2020 study has
its 335 runs, the shell runner's modes, and the class-disjoint cross-validation folds."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections import Counter

import numpy as np
import pytest

import parameters
from datasets.base import DatasetError, Split
from datasets.splitting import class_folds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def study_lines(script: str, **env: str) -> list[str]:
    out = subprocess.run(
        ["bash", os.path.join(ROOT, script), "--list"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHON": "python", **env},
    )
    return out.stdout.splitlines()


def parse_line(line: str):
    argv = shlex.split(line)
    assert argv[:2] == ["python", "main.py"], line
    return parameters.parse_args(argv[2:])


def test_revisit_study_lists_335_runs_of_67_groups_with_5_seeds():
    lines = study_lines("Revisit_Runs.sh")
    assert len(lines) == 335
    opts = [parse_line(line) for line in lines]
    groups = Counter(o.group for o in opts)
    assert len(groups) == 67 and set(groups.values()) == {5}
    assert {o.seed for o in opts} == {0, 1, 2, 3, 4}
    assert len({(o.group, o.seed) for o in opts}) == 335  # no two runs share a folder
    by_group = {o.group: o for o in opts}
    assert by_group["CUBreg_SNR_Distance"].batch_mining == "rho_distance"
    assert by_group["CUBreg_SNR_Distance"].miner_rho_distance_cp == 0.3
    assert by_group["SOP_Softmax"].loss_softmax_lr == 0.002 and by_group["SOP_MS"].kernels == 2
    assert by_group["SOP_Npair"].n_epochs == 100 and by_group["CARS_Npair"].n_epochs == 150
    assert by_group["CUB_Histogram"].loss_histogram_nbins == 65
    assert all(
        "--loss_multisimilarity_reduction anchors" in line
        for line in lines
        if "--loss multisimilarity" in line
    )


def test_reality_check_study_parses_and_has_4_folds_per_group_and_seed():
    lines = study_lines("RealityCheck_Runs.sh", SEEDS="0 1")
    opts = [parse_line(line) for line in lines]
    assert len({o.savename for o in opts}) == len(opts)
    per_group_seed = Counter((o.group, o.seed) for o in opts)
    assert set(per_group_seed.values()) == {4}
    assert all(
        o.cv_folds == 4
        and o.save_embeddings
        and o.optim == "rmsprop"
        and o.bs == 32
        and o.embed_dim == 128
        and o.selection_split == "auto"
        for o in opts
    )
    classification = {"proxynca", "softmax", "cosface", "arcface", "softtriplet"}
    assert all(o.samples_per_class == (1 if o.loss in classification else 4) for o in opts)
    assert {o.fold for o in opts} == {0, 1, 2, 3}
    assert len(study_lines("RealityCheck_Runs.sh")) == 720


def test_runner_filters_seeds_groups_and_appends_extra_flags():
    lines = study_lines(
        "Revisit_Runs.sh",
        SEEDS="3",
        ONLY="^CARS_Margin",
        EXTRA="--use_tv_split",
        LOG_ONLINE="1",
        DATA="/d a/x",
    )
    assert len(lines) == 2
    opt = parse_line(lines[0])
    assert opt.seed == 3 and opt.use_tv_split and opt.log_online and opt.source_path == "/d a/x"


def test_runner_rejects_unknown_arguments():
    out = subprocess.run(
        ["bash", os.path.join(ROOT, "Revisit_Runs.sh"), "--lst"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "--list" in out.stderr


def _split(n_classes: int, per_class: int = 3) -> Split:
    labels = np.repeat(np.arange(n_classes) * 7, per_class)  # labels need not be 0..C-1
    return Split(labels=labels, images=np.zeros((len(labels), 2, 2), np.uint8))


@pytest.mark.parametrize(
    "n_classes,n_train,n_val", [(100, 75, 25), (98, 74, 24), (11318, 8489, 2829)]
)
def test_class_folds_give_mlrc_counts_and_are_disjoint(n_classes, n_train, n_val):
    split = _split(n_classes, per_class=1)
    held_out = []
    for fold in range(4):
        train, val = class_folds(split, 4, fold)
        tr, va = set(np.unique(train.labels)), set(np.unique(val.labels))
        assert (len(tr), len(va)) == (n_train, n_val)
        assert not tr & va and tr | va == set(split.labels.tolist())
        held_out.append(va)
    assert all(not held_out[i] & held_out[j] for i in range(4) for j in range(i + 1, 4))
    leftover = set(split.labels.tolist()) - set().union(*held_out)
    assert len(leftover) == n_classes % 4  # the remainder always trains


def test_class_folds_keep_all_items_of_a_class_together():
    train, val = class_folds(_split(8, per_class=5), 4, 1)
    assert sorted(np.unique(val.labels).tolist()) == [14, 21]
    assert len(val) == 10 and len(train) == 30


def test_class_folds_reject_bad_arguments():
    with pytest.raises(DatasetError, match="--fold 4"):
        class_folds(_split(8), 4, 4)
    with pytest.raises(DatasetError, match="--cv_folds 9"):
        class_folds(_split(8), 9, 0)


@pytest.mark.parametrize(
    "flags",
    [
        ["--cv_folds", "1"],
        ["--cv_folds", "4", "--fold", "4"],
        ["--fold", "2"],
        ["--cv_folds", "4", "--use_tv_split"],
    ],
)
def test_bad_cv_flags_exit_2(flags, capsys):
    with pytest.raises(SystemExit) as exc:
        parameters.parse_args(["--dataset", "glyphs", *flags])
    assert exc.value.code == 2 and "fold" in capsys.readouterr().err


TINY = (
    "--dataset_glyphs_n_classes 24 --dataset_glyphs_per_class 8 --dataset_glyphs_image_size 16 "
    "--embed_dim 8 --n_epochs 1 --iters_per_epoch 2 --bs 32 "
    "--evaluation_metrics e_recall@1 --storage_metrics e_recall@1"
)


def test_rerunning_a_finished_study_starts_no_training(tmp_path):
    import sys

    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "DATA": str(tmp_path / "data"),
        "SAVE": str(tmp_path / "runs"),
        "ONLY": "Margin",
        "SEEDS": "0",
        "EXTRA": TINY,
        "OMP_NUM_THREADS": "1",
    }
    script = os.path.join(ROOT, "studies", "glyphs.sh")
    first = subprocess.run(["bash", script], check=False, capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    run = tmp_path / "runs" / "glyphs_study" / "glyphs_Margin_Distance_s0"
    log = (run / "metrics.jsonl").read_bytes()
    stamps = {p: p.stat().st_mtime_ns for p in (run / "checkpoints").iterdir()}
    second = subprocess.run(["bash", script], check=False, capture_output=True, text=True, env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "run already finished" in second.stdout and "all 1 runs finished" in second.stdout
    assert "epoch 1:" not in second.stdout
    assert (run / "metrics.jsonl").read_bytes() == log
    assert {p: p.stat().st_mtime_ns for p in (run / "checkpoints").iterdir()} == stamps


def test_parallel_mode_assigns_gpus_round_robin_and_reports_failures(tmp_path):
    fake = tmp_path / "fakepython"  # records its GPU and arguments instead of training
    fake.write_text(
        '#!/bin/bash\necho "gpu=$CUDA_VISIBLE_DEVICES $*"\n'
        '[[ "$*" == *"--seed 2"* ]] && exit 3\nexit 0\n'
    )
    fake.chmod(0o755)
    env = {
        **os.environ,
        "PYTHON": str(fake),
        "JOBS": "2",
        "GPUS": "0,1",
        "ONLY": "MS",
        "SAVE": str(tmp_path / "runs"),
        "LOG_DIR": str(tmp_path / "logs"),
    }
    out = subprocess.run(
        ["bash", os.path.join(ROOT, "studies", "glyphs.sh")],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 1 and "FAILED  glyphs_MS_s2 (rc 3" in out.stdout
    assert "ok      glyphs_MS_s0" in out.stdout and "ok      glyphs_MS_s1" in out.stdout
    logs = {p.name: p.read_text() for p in (tmp_path / "logs").iterdir()}
    assert set(logs) == {"0001_glyphs_MS_s0.log", "0002_glyphs_MS_s1.log", "0003_glyphs_MS_s2.log"}
    assert logs["0001_glyphs_MS_s0.log"].startswith("gpu=0 main.py --group glyphs_MS --seed 0")
    assert logs["0002_glyphs_MS_s1.log"].startswith("gpu=1 ")
    assert logs["0003_glyphs_MS_s2.log"].startswith("gpu=0 ")


def test_slurm_array_task_runs_its_line(tmp_path):
    def task(task_id: str) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "PYTHON": "echo",
            "SLURM_ARRAY_TASK_ID": task_id,
            "SLURM_SUBMIT_DIR": ROOT,
        }
        return subprocess.run(
            ["bash", os.path.join(ROOT, "slurm", "array.sbatch"), "Revisit_Runs.sh"],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        )

    out = task("85")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith("main.py --group CUB_MS --seed 4 ")
    out = task("336")
    assert out.returncode == 2 and "has no such line" in out.stderr


def test_fold_runs_save_embeddings_and_make_a_concatenated_row(tmp_path, capsys):
    import json

    import pandas as pd

    import evaluation
    import main
    from results import cli
    from runrecord.embeddings import load_embeddings
    from tests.test_main import tiny_args

    for fold in (0, 1):
        args = [a for a in tiny_args(tmp_path, epochs=1) if a != "--use_tv_split"]
        assert (
            main.main(
                [
                    *args,
                    "--cv_folds",
                    "2",
                    "--fold",
                    str(fold),
                    "--save_embeddings",
                    "--savename",
                    f"g_f{fold}_s0",
                    "--bs",
                    "16",
                ]
            )
            == 0
        )
    run = tmp_path / "runs" / "p" / "g_f1_s0"
    splits = json.loads((run / "splits.json").read_text())
    assert splits["val"]["cv_folds"] == 2 and splits["val"]["fold"] == 1
    assert splits["train"]["n_classes"] + splits["val"]["n_classes"] == 12  # 24 glyphs / 2
    summary = json.loads((run / "summary.json").read_text())
    assert summary["selection"]["split"] == "val"
    embeds, labels = load_embeddings(str(run))
    assert np.load(run / "embeddings" / "test.npy").dtype == np.float16
    assert embeds.shape == (len(labels), 16) and len(labels) == 12 * 8
    info = json.loads((run / "embeddings" / "info.json").read_text())
    assert info["epoch"] == summary["selected_epoch"]
    r1 = evaluation.evaluate(embeds, labels, ["e_recall@1"])["e_recall@1"]
    # float16 storage may flip a near-tie or two of a barely trained net, nothing more
    assert r1 == pytest.approx(summary["selected"]["test"]["e_recall@1"], abs=3 / len(labels))
    capsys.readouterr()
    assert (
        cli.main(
            [
                str(tmp_path / "runs"),
                "--out",
                str(tmp_path / "out"),
                "--metrics",
                "e_recall@1",
                "--no_figures",
            ]
        )
        == 0
    )
    table = pd.read_csv(tmp_path / "out" / "results.csv").set_index("group")
    assert table.loc["g", "n_seeds"] == 2 and table.loc["g (concatenated)", "n_seeds"] == 1
    assert "differ in more than the seed" not in capsys.readouterr().err
