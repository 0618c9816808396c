"""From runs to numbers: one value per run and metric under an epoch-selection rule, then mean,
sample std (ddof = 1) and the half-width of the 95 % t-interval per group, and Welch's t-test for
every pair of groups on the same dataset and metric.

Selection rules:
- ``selected`` (default): the epoch the run record chose (on the validation split when the run had
  one; the record states the rule).
- ``last``: the last epoch evaluated on the test split.
- ``test-max``: each metric's maximum over epochs on the test split, what the original
  RevisitDML ``Result_Evaluations.py`` reported (Roth et al., ICML 2020); optimistic, labelled so.
Embedding-space statistics (ρ spectrum, π_intra, π_inter, π_ratio) are read at the chosen epoch (for
``test-max`` at the epoch of the best test value of the first metric, as the original did), on the
training split when the run evaluated it (as the paper did), else on the test split.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import defaultdict

import numpy as np
import pandas as pd
from scipy import stats

from results.runs import Run

SELECTIONS = {
    "selected": "the epoch each run's record selected",
    "last": "the last epoch",
    "test-max": "max over epochs on the test split (optimistic: chosen on the test set)",
}
EMBEDDING_STATS = ["rho_spectrum@2", "dists@intra", "dists@inter", "dists@intra_over_inter"]
# Flags that differ between the runs of one group without making them different setups.
REPLICATE_FLAGS = {
    "seed",
    "fold",
    "savename",
    "group",
    "project",
    "kernels",
    "gpu",
    "device",
    "log_online",
    "source_path",
    "save_path",
    "evaluate_on_gpu",
    "eval_backend",
    "n_epochs_resumed",
    "save_embeddings",
}


def chosen_epoch(run: Run, selection: str, metric: str) -> int | None:
    test = run.history.get("test", {})
    if not test:
        return None
    if selection == "selected":
        return run.selected_epoch if run.selected_epoch in test else None
    if selection == "last":
        return max(test)
    if selection == "test-max":
        values = {e: run.value("test", e, metric) for e in test}
        values = {e: v for e, v in values.items() if not math.isnan(v)}
        return max(values, key=lambda e: (values[e], -e)) if values else None
    raise ValueError(f"unknown selection {selection!r}; allowed: {', '.join(SELECTIONS)}")


def stats_split(run: Run) -> str:
    return "train" if "train" in run.history else "test"


def run_values(run: Run, metrics: list[str], selection: str) -> dict[str, float]:
    """One number per metric (test split) and embedding statistic for ``run``."""
    epoch = chosen_epoch(run, selection, metrics[0])
    out = {"epoch": float(epoch) if epoch is not None else math.nan}
    for metric in metrics:
        if selection == "test-max":
            vals = [run.value("test", e, metric) for e in run.epochs("test")]
            vals = [v for v in vals if not math.isnan(v)]
            out[metric] = max(vals) if vals else math.nan
        else:
            out[metric] = run.value("test", epoch, metric)
    for stat in EMBEDDING_STATS:
        out[stat] = run.value(stats_split(run), epoch, stat)
    return out


def differing_flags(runs: list[Run]) -> list[str]:
    keys = set().union(*(r.config for r in runs)) - REPLICATE_FLAGS
    return sorted(k for k in keys if len({repr(r.config.get(k)) for r in runs}) > 1)


def per_run_table(runs: list[Run], metrics: list[str], selection: str) -> pd.DataFrame:
    """One row per run: group, dataset, run, seed, the reported epoch, the last epoch evaluated
    (where it stopped, early or not), each metric and embedding statistic."""
    rows = [
        {
            "group": r.group,
            "dataset": r.dataset,
            "run": r.name,
            "seed": r.seed,
            "last_epoch": max(r.epochs("test"), default=math.nan),
            **run_values(r, metrics, selection),
        }
        for r in runs
    ]
    columns = ["group", "dataset", "run", "seed", "epoch", "last_epoch", *metrics, *EMBEDDING_STATS]
    return pd.DataFrame(rows, columns=columns)


def ci95(values: np.ndarray) -> float:
    n = len(values)
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))


def summarize(per_run: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per (group, dataset): ``n_seeds`` and ``<metric>_mean/_std/_ci95`` (std with
    ddof = 1, NaN for one run); NaN values of a run are left out of that metric only."""
    rows = []
    for (group, dataset), part in per_run.groupby(["group", "dataset"], sort=True):
        row = {"group": group, "dataset": dataset, "n_seeds": len(part)}
        for metric in [*metrics, *EMBEDDING_STATS, "epoch"]:
            v = part[metric].dropna().to_numpy(float)
            row[f"{metric}_mean"] = float(v.mean()) if len(v) else math.nan
            row[f"{metric}_std"] = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
            row[f"{metric}_ci95"] = ci95(v)
        rows.append(row)
    return pd.DataFrame(rows)


def welch_pairs(per_run: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Welch's t-test (scipy, unequal variances) for every pair of groups on the same dataset and
    metric. Columns: dataset, metric, group_a, group_b, mean_a, mean_b, n_a, n_b, t, p."""
    rows = []
    for dataset, part in per_run.groupby("dataset", sort=True):
        groups = {g: p for g, p in part.groupby("group", sort=True)}
        for metric in metrics:
            for a, b in itertools.combinations(sorted(groups), 2):
                va = groups[a][metric].dropna().to_numpy(float)
                vb = groups[b][metric].dropna().to_numpy(float)
                t, p = math.nan, math.nan
                if len(va) >= 2 and len(vb) >= 2:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)  # equal constant groups
                        res = stats.ttest_ind(va, vb, equal_var=False)
                    t, p = float(res.statistic), float(res.pvalue)
                rows.append(
                    {
                        "dataset": dataset,
                        "metric": metric,
                        "group_a": a,
                        "group_b": b,
                        "mean_a": va.mean() if len(va) else math.nan,
                        "mean_b": vb.mean() if len(vb) else math.nan,
                        "n_a": len(va),
                        "n_b": len(vb),
                        "t": t,
                        "p": p,
                    }
                )
    return pd.DataFrame(
        rows,
        columns=[
            "dataset",
            "metric",
            "group_a",
            "group_b",
            "mean_a",
            "mean_b",
            "n_a",
            "n_b",
            "t",
            "p",
        ],
    )


def best_and_ties(
    summary: pd.DataFrame, pairs: pd.DataFrame, metrics: list[str], alpha: float = 0.05
) -> tuple[set, set]:
    """(best, tied): sets of (group, dataset, metric). Best: the highest mean per dataset, metric;
    tied: groups whose Welch p-value against the best is >= ``alpha`` (not significantly worse)."""
    best, tied = set(), set()
    p_of = {}
    for r in pairs.itertuples():
        p_of[(r.dataset, r.metric, r.group_a, r.group_b)] = r.p
        p_of[(r.dataset, r.metric, r.group_b, r.group_a)] = r.p
    for dataset, part in summary.groupby("dataset"):
        for metric in metrics:
            col = part[f"{metric}_mean"]
            if col.isna().all():
                continue
            top = part.loc[col.idxmax(), "group"]
            best.add((top, dataset, metric))
            for group in part["group"]:
                p = p_of.get((dataset, metric, top, group))
                if group != top and p is not None and not math.isnan(p) and p >= alpha:
                    tied.add((group, dataset, metric))
    return best, tied


def group_runs(runs: list[Run]) -> dict[tuple[str, str], list[Run]]:
    out: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for r in runs:
        out[(r.group, r.dataset)].append(r)
    return dict(out)
