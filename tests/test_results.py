"""results/: run folders -> per-seed numbers (hand-computed), Welch's t-tests (scipy), selection
rules, warnings, tables, figures, and the Reality-Check ensemble of saved fold embeddings."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import evaluation
from results import aggregate, cli
from results.runs import load_runs
from runrecord.embeddings import embeddings_path
from runrecord.files import append_jsonl, write_json_atomic
from runrecord.reader import RunReadError, read_run

# group -> per-seed test R@1 at the selected epoch (epoch 2); epoch 3 is the last epoch.
R1 = {"A": [0.50, 0.52, 0.54], "B": [0.40, 0.41, 0.45], "C": [0.53, 0.57, 0.51]}


def make_run(
    root,
    group,
    seed,
    curve,
    *,
    finished=True,
    selected=2,
    dataset="glyphs",
    extra_config=None,
    name=None,
    stats_value=None,
):
    """A run folder as RunRecord writes it; ``curve``: test R@1 at epochs 0..len-1."""
    path = os.path.join(root, "proj", name or f"{group}_s{seed}")
    os.makedirs(path, exist_ok=True)
    write_json_atomic(
        os.path.join(path, "config.json"),
        {
            "group": group,
            "seed": seed,
            "dataset": dataset,
            "lr": 1e-3,
            "kernels": seed,
            **(extra_config or {}),
        },
    )
    for epoch, r1 in enumerate(curve):
        append_jsonl(
            os.path.join(path, "metrics.jsonl"),
            {"epoch": epoch, "split": "val", "e_recall@1": r1 + 0.1},
        )
        append_jsonl(
            os.path.join(path, "metrics.jsonl"),
            {
                "epoch": epoch,
                "split": "test",
                "e_recall@1": r1,
                "nmi": 0.3 + r1 / 2,
                "rho_spectrum@2": stats_value if stats_value is not None else 1 - r1,
                "dists@intra": 0.2,
                "dists@inter": 0.5 + r1,
                "dists@intra_over_inter": 0.2 / (0.5 + r1),
            },
        )
        if epoch:
            append_jsonl(
                os.path.join(path, "metrics.jsonl"),
                {"epoch": epoch, "split": "train_loop", "loss": 1.0 / epoch},
            )
    write_json_atomic(
        os.path.join(path, "summary.json"),
        {
            "finished": finished,
            "selected_epoch": selected,
            "selection": {"rule": "max e_recall@1 on the val split"},
        },
    )
    return path


def study(root):
    for group, values in R1.items():
        for seed, v in enumerate(values):
            # test-max is at epoch 1 (v + 0.05), the last epoch 3 is v - 0.1
            make_run(root, group, seed, [0.1, v + 0.05, v, v - 0.1])


def test_reader_reads_the_record_and_rejects_a_torn_config(tmp_path):
    path = make_run(tmp_path, "A", 0, [0.1, 0.2, 0.3])
    rec = read_run(path)
    assert rec.finished and rec.selected_epoch == 2 and rec.config["group"] == "A"
    assert rec.history()["test"][2]["e_recall@1"] == 0.3
    assert rec.history()["train_loop"][1]["loss"] == 1.0
    with open(os.path.join(path, "config.json"), "w") as f:
        f.write('{"group": "A", "se')
    with pytest.raises(RunReadError, match=r"config\.json is not valid JSON"):
        read_run(path)


@pytest.mark.parametrize("selection,shift", [("selected", 0.0), ("last", -0.1), ("test-max", 0.05)])
def test_group_mean_std_ci_follow_the_selection_rule(tmp_path, selection, shift):
    study(tmp_path)
    runs, problems = load_runs([str(tmp_path)])
    assert not problems and len(runs) == 9
    per_run = aggregate.per_run_table(runs, ["e_recall@1", "nmi"], selection)
    assert list(per_run.columns[4:7]) == ["epoch", "last_epoch", "e_recall@1"]
    assert set(per_run.last_epoch) == {3}  # where each run stopped
    summary = aggregate.summarize(per_run, ["e_recall@1", "nmi"]).set_index("group")
    for group, values in R1.items():
        v = np.array(values) + shift
        row = summary.loc[group]
        assert row["n_seeds"] == 3
        assert row["e_recall@1_mean"] == pytest.approx(v.mean())
        assert row["e_recall@1_std"] == pytest.approx(math.sqrt(((v - v.mean()) ** 2).sum() / 2))
        half = 4.302652729911275 * row["e_recall@1_std"] / math.sqrt(3)  # t(0.975, 2 dof)
        assert row["e_recall@1_ci95"] == pytest.approx(half)


def test_welch_pairs_match_scipy_and_ties_are_marked(tmp_path):
    study(tmp_path)
    runs, _ = load_runs([str(tmp_path)])
    per_run = aggregate.per_run_table(runs, ["e_recall@1"], "selected")
    pairs = aggregate.welch_pairs(per_run, ["e_recall@1"])
    assert len(pairs) == 3
    ab = pairs[(pairs.group_a == "A") & (pairs.group_b == "B")].iloc[0]
    ref = stats.ttest_ind(R1["A"], R1["B"], equal_var=False)
    assert ab.p == pytest.approx(ref.pvalue) and ab.t == pytest.approx(ref.statistic)
    summary = aggregate.summarize(per_run, ["e_recall@1"])
    best, tied = aggregate.best_and_ties(summary, pairs, ["e_recall@1"])
    # C's mean (0.5367) is the best; A is not significantly different, B is (p < 0.01)
    assert best == {("C", "glyphs", "e_recall@1")}
    assert tied == {("A", "glyphs", "e_recall@1")}
    assert pairs[(pairs.group_a == "B") & (pairs.group_b == "C")].iloc[0].p < 0.05


def test_cli_writes_tables_pairs_figures_and_warns(tmp_path, capsys):
    study(tmp_path / "runs")
    make_run(tmp_path / "runs", "A", 7, [0.1, 0.9], finished=False)  # unfinished
    make_run(tmp_path / "runs", "B", 9, [0.1, 0.4, 0.4], extra_config={"lr": 5.0})  # other lr
    out = tmp_path / "out"
    assert (
        cli.main(
            [str(tmp_path / "runs"), "--out", str(out), "--metrics", "e_recall@1", "nmi", "f1"]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "1 unfinished run(s) left out" in err and "A_s7" in err
    assert "group B (glyphs) differ in more than the seed: lr" in err
    assert "no run logged test metric 'f1'" in err
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns[:9]) == [
        "group",
        "dataset",
        "n_seeds",
        "e_recall@1_mean",
        "e_recall@1_std",
        "e_recall@1_ci95",
        "nmi_mean",
        "nmi_std",
        "nmi_ci95",
    ]
    assert dict(zip(table.group, table.n_seeds)) == {"A": 3, "B": 4, "C": 3}
    tex = (out / "results.tex").read_text()
    assert "\\toprule" in tex and "\\bfseries 53.67 $\\pm$ 3.06" in tex
    assert "52.00 $\\pm$ 2.00$^\\dagger$" in tex and "ddof = 1" in tex and "n = 3--4 runs" in tex
    assert "Epoch selection: selected" in tex
    md = (out / "results.md").read_text()
    assert "| glyphs | C | 3 | **53.67 ± 3.06** |" in md
    assert "| glyphs | A | 3 | 52.00 ± 2.00 †" in md
    assert len(pd.read_csv(out / "pairs.csv")) == 2 * 3  # 3 pairs x 2 metrics
    for name in ("learning_curves_glyphs", "metric_correlation_matrix", "metric_relation"):
        for ext in ("png", "pdf"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000
    assert (
        cli.main(
            [
                str(tmp_path / "runs"),
                "--out",
                str(out),
                "--metrics",
                "e_recall@1",
                "--include_unfinished",
                "--select",
                "test-max",
                "--no_figures",
            ]
        )
        == 0
    )
    assert "test-max (max over epochs on the test split" in (out / "results.md").read_text()
    assert dict(zip(*pd.read_csv(out / "results.csv")[["group", "n_seeds"]].T.values))["A"] == 4


def test_cli_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([str(tmp_path)])
    assert exc.value.code == 2 and "no runs found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([str(tmp_path / "missing")])
    assert "is not a folder" in capsys.readouterr().err


def test_concatenated_ensemble_evaluates_the_normalised_fold_embeddings(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 4)
    folds = []
    for fold in range(2):
        path = make_run(
            tmp_path / "runs",
            "M",
            0,
            [0.1, 0.2, 0.3],
            name=f"M_f{fold}_s0",
            extra_config={"cv_folds": 2, "fold": fold, "savename": f"M_f{fold}_s0"},
        )
        emb = (labels[:, None] == np.arange(6)[None]).astype(np.float32) * (fold + 1)
        emb = (emb + rng.normal(0, 0.8, emb.shape)).astype(np.float16)
        e_path, l_path = embeddings_path(path)
        os.makedirs(os.path.dirname(e_path), exist_ok=True)
        np.save(e_path, emb)
        np.save(l_path, labels)
        folds.append(emb.astype(np.float32))
    out = tmp_path / "out"
    assert (
        cli.main(
            [str(tmp_path / "runs"), "--out", str(out), "--metrics", "e_recall@1", "--no_figures"]
        )
        == 0
    )
    table = pd.read_csv(out / "results.csv").set_index("group")
    both = np.concatenate([f / np.linalg.norm(f, axis=1, keepdims=True) for f in folds], 1)
    want = evaluation.evaluate(both, labels, ["e_recall@1"])["e_recall@1"]
    assert table.loc["M (concatenated)", "e_recall@1_mean"] == pytest.approx(want)
    assert table.loc["M", "n_seeds"] == 2 and table.loc["M (concatenated)", "n_seeds"] == 1
    assert "differ in more than the seed" not in capsys.readouterr().err  # folds are replicates


def test_ensemble_notes_missing_folds(tmp_path, capsys):
    make_run(
        tmp_path / "runs",
        "M",
        0,
        [0.1, 0.2, 0.3],
        name="M_f0_s0",
        extra_config={"cv_folds": 2, "fold": 0},
    )
    assert (
        cli.main(
            [
                str(tmp_path / "runs"),
                "--out",
                str(tmp_path / "o"),
                "--metrics",
                "e_recall@1",
                "--no_figures",
            ]
        )
        == 0
    )
    assert "folds [0] of 2; no ensemble" in capsys.readouterr().err


def test_summary_json_of_an_unfinished_run_may_be_missing(tmp_path):
    path = make_run(tmp_path, "A", 0, [0.1, 0.2])
    os.remove(os.path.join(path, "summary.json"))
    runs, _ = load_runs([str(tmp_path)])
    assert not runs[0].finished and runs[0].selected_epoch is None
    with open(os.path.join(path, "config.json")) as f:
        assert json.load(f)["group"] == "A"
