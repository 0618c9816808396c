"""The study's figures (matplotlib, PNG and PDF), after Roth et al., ICML 2020 (its
``Result_Evaluations.py`` figures ``comp_metric_relation`` and ``metric_correlation_matrix``):

- ``learning_curves_<dataset>``: one panel per evaluated split (validation, test): the first metric
  per epoch, mean over each group's runs with a ±1 std band;
- ``metric_correlation_matrix``: Pearson correlation between the metrics, per dataset, across
  group means when there are at least 4 groups, else across runs;
- ``metric_relation``: the first metric against ρ(Φ) (``rho_spectrum@2``), π_intra, π_inter and
  π_ratio, per dataset: every run as a dot, each group's mean ± std as a cross, a least-squares line
  and Pearson's r over the runs.
"""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from results.runs import Run
from results.tables import metric_label

STAT_LABELS = {
    "rho_spectrum@2": "ρ(Φ)  (rho_spectrum@2)",
    "dists@intra": "π_intra",
    "dists@inter": "π_inter",
    "dists@intra_over_inter": "π_ratio = π_intra / π_inter",
}
SPLIT_TITLES = {"val": "validation split", "test": "test split", "train": "training split"}


def _save(fig: plt.Figure, out_dir: str, name: str) -> list[str]:
    paths = [os.path.join(out_dir, f"{name}.{ext}") for ext in ("png", "pdf")]
    for p in paths:
        fig.savefig(p, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def _colors(groups: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20")
    return {g: cmap(i % cmap.N) for i, g in enumerate(groups)}


def learning_curves(runs: list[Run], metric: str, out_dir: str) -> list[str]:
    paths = []
    for dataset in sorted({r.dataset for r in runs}):
        ds_runs = [r for r in runs if r.dataset == dataset]
        splits = [s for s in ("val", "test") if any(s in r.history for r in ds_runs)]
        if not splits:
            continue
        groups = sorted({r.group for r in ds_runs})
        colors = _colors(groups)
        fig, axes = plt.subplots(
            1, len(splits), figsize=(5.2 * len(splits), 3.8), squeeze=False, sharex=True
        )
        for ax, split in zip(axes[0], splits):
            for group in groups:
                members = [r for r in ds_runs if r.group == group and split in r.history]
                epochs = sorted(set().union(*(r.history[split] for r in members)))
                if not epochs:
                    continue
                mean, std = [], []
                for e in epochs:
                    v = np.array([r.value(split, e, metric) for r in members])
                    v = v[~np.isnan(v)]
                    mean.append(v.mean() if len(v) else np.nan)
                    std.append(v.std(ddof=1) if len(v) > 1 else 0.0)
                mean, std = 100 * np.array(mean), 100 * np.array(std)
                ax.plot(
                    epochs, mean, color=colors[group], lw=1.8, label=f"{group} (n={len(members)})"
                )
                ax.fill_between(
                    epochs, mean - std, mean + std, color=colors[group], alpha=0.18, lw=0
                )
            ax.set_title(SPLIT_TITLES.get(split, split))
            ax.set_xlabel("epoch (0: untrained)")
            ax.set_ylabel(f"{metric_label(metric)} (%)")
            ax.grid(alpha=0.3)
        axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=9)
        fig.suptitle(
            f"{dataset}: {metric_label(metric)} per epoch, mean ± std over seeds", fontsize=11
        )
        fig.tight_layout()
        paths += _save(fig, out_dir, f"learning_curves_{dataset}")
    return paths


def correlation_matrix(per_run: pd.DataFrame, metrics: list[str], out_dir: str) -> list[str]:
    datasets = sorted(per_run["dataset"].unique())
    present = [m for m in metrics if per_run[m].notna().any()]
    if len(present) < 2 or not datasets:
        return []
    k = len(present)
    fig, axes = plt.subplots(
        1,
        len(datasets),
        figsize=(1.0 * k + 2.6 + (len(datasets) - 1) * (1.0 * k + 1.2), 0.9 * k + 1.6),
        squeeze=False,
    )
    image = None
    for ax, dataset in zip(axes[0], datasets):
        part = per_run[per_run["dataset"] == dataset]
        groups = part.groupby("group")[present].mean()
        data, unit = (groups, "group means") if len(groups) >= 4 else (part[present], "runs")
        data = data.dropna()
        corr = np.corrcoef(data.to_numpy(float).T) if len(data) >= 3 else np.full((k, k), np.nan)
        image = ax.imshow(corr, vmin=-1, vmax=1, cmap="RdBu_r")
        labels = [metric_label(m) for m in present]
        ax.set_xticks(range(k), labels, rotation=45, ha="right")
        ax.set_yticks(range(k), labels)
        for i in range(k):
            for j in range(k):
                if not math.isnan(corr[i, j]):
                    ax.text(
                        j,
                        i,
                        f"{corr[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=9,
                        color="white" if abs(corr[i, j]) > 0.6 else "black",
                    )
        ax.set_title(f"{dataset}\n(across {len(data)} {unit})", fontsize=10)
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="Pearson r")
    return _save(fig, out_dir, "metric_correlation_matrix")


def metric_relation(per_run: pd.DataFrame, metric: str, out_dir: str) -> list[str]:
    stats_present = [s for s in STAT_LABELS if per_run[s].notna().any()]
    datasets = sorted(per_run["dataset"].unique())
    if not stats_present or not datasets:
        return []
    fig, axes = plt.subplots(
        len(datasets),
        len(stats_present),
        figsize=(3.6 * len(stats_present), 3.3 * len(datasets)),
        squeeze=False,
    )
    for row, dataset in zip(axes, datasets):
        part = per_run[per_run["dataset"] == dataset]
        groups = sorted(part["group"].unique())
        colors = _colors(groups)
        for ax, stat in zip(row, stats_present):
            ok = part[[stat, metric]].notna().all(axis=1)
            x, y = part.loc[ok, stat].to_numpy(float), 100 * part.loc[ok, metric].to_numpy(float)
            for group in groups:
                g = part[ok & (part["group"] == group)]
                gx, gy = g[stat].to_numpy(float), 100 * g[metric].to_numpy(float)
                if not len(g):
                    continue
                ax.scatter(gx, gy, s=14, color=colors[group], alpha=0.55)
                ax.errorbar(
                    gx.mean(),
                    gy.mean(),
                    xerr=gx.std(ddof=1) if len(g) > 1 else 0,
                    yerr=gy.std(ddof=1) if len(g) > 1 else 0,
                    fmt="X",
                    ms=8,
                    color=colors[group],
                    mec="black",
                    mew=0.6,
                    capsize=2,
                    label=group,
                )
            if len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
                slope, icept = np.polyfit(x, y, 1)
                xs = np.linspace(x.min(), x.max(), 50)
                ax.plot(xs, slope * xs + icept, "k--", lw=1)
                r, p = stats.pearsonr(x, y)
                ax.set_title(f"Pearson r = {r:.2f}  (p = {p:.2g}, {len(x)} runs)", fontsize=9.5)
            ax.margins(x=0.08, y=0.12)
            ax.set_xlabel(STAT_LABELS[stat])
            ax.grid(alpha=0.3)
        row[0].set_ylabel(f"{dataset}\n{metric_label(metric)} (%)")
        row[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=9)
    fig.suptitle(
        f"{metric_label(metric)} against embedding-space statistics "
        "(dots: runs; crosses: group mean ± std; dashed: least squares)",
        fontsize=11,
    )
    fig.tight_layout()
    return _save(fig, out_dir, "metric_relation")
