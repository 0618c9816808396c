"""The study's tables: ``results.csv`` (every number), ``results.md`` and ``results.tex``.

Display tables show test-split metrics in percent as mean ± sample std (ddof = 1), one row per
(dataset, group); the best mean per dataset and metric is bold and groups not significantly worse
than it (Welch's t-test, p ≥ 0.05) carry a dagger. The LaTeX comes from pandas' ``Styler.to_latex``
with booktabs rules; its caption states the selection rule, n and the std convention.
"""

from __future__ import annotations

import math
import re

import pandas as pd

NAMES = {
    "nmi": "NMI",
    "f1": "F1",
    "mAP_at_r": "MAP@R",
    "r_precision": "RP",
    "precision_at_1": "P@1",
    "mAP_c": "mAP_c",
    "mAP_1000": "mAP@1000",
    "mAP_lim": "mAP_lim",
}


def metric_label(metric: str) -> str:
    m = re.fullmatch(r"(c_)?e_recall@(\d+)", metric)
    if m:
        return f"{'c-' if m.group(1) else ''}R@{m.group(2)}"
    return NAMES.get(metric, metric)


def write_csv(summary: pd.DataFrame, metrics: list[str], path: str) -> pd.DataFrame:
    """``group, dataset, n_seeds`` and ``<metric>_mean/_std/_ci95`` for each metric, then the same
    for the embedding statistics and the chosen epoch."""
    lead = ["group", "dataset", "n_seeds"]
    cols = lead + [f"{m}_{s}" for m in metrics for s in ("mean", "std", "ci95")]
    rest = [c for c in summary.columns if c not in cols]
    out = summary[cols + rest]
    out.to_csv(path, index=False, float_format="%.6g")
    return out


def _cells(
    summary: pd.DataFrame,
    metrics: list[str],
    best: set,
    tied: set,
    bold: tuple[str, str],
    dagger: str,
) -> pd.DataFrame:
    rows = []
    for r in summary.sort_values(["dataset", "group"]).to_dict("records"):
        row = {"Dataset": r["dataset"], "Group": r["group"], "n": r["n_seeds"]}
        for m in metrics:
            mean, std = r[f"{m}_mean"], r[f"{m}_std"]
            if math.isnan(mean):
                text = "–"
            else:
                text = f"{100 * mean:.2f}" + ("" if math.isnan(std) else f" ± {100 * std:.2f}")
            key = (r["group"], r["dataset"], m)
            if key in best:
                text = f"{bold[0]}{text}{bold[1]}"
            elif key in tied:
                text += dagger
            row[metric_label(m)] = text
        rows.append(row)
    return pd.DataFrame(rows)


def caption(selection_text: str, ns: list[int]) -> str:
    n = (
        f"n = {ns[0]} runs per group"
        if len(set(ns)) == 1
        else f"n = {min(ns)}–{max(ns)} runs per group (column n)"
    )
    return (
        f"Test-split metrics in percent, mean ± sample standard deviation (ddof = 1) over the "
        f"runs of each group; {n}. Epoch selection: {selection_text}. Bold: best mean per "
        "dataset; † not significantly different from the best (Welch's t-test, p ≥ 0.05)."
    )


def write_markdown(
    summary: pd.DataFrame, metrics: list[str], best: set, tied: set, selection_text: str, path: str
) -> str:
    table = _cells(summary, metrics, best, tied, ("**", "**"), " †")
    header = "| " + " | ".join(table.columns) + " |"
    rule = (
        "|" + "|".join("---" if c in ("Dataset", "Group") else "---:" for c in table.columns) + "|"
    )
    lines = [header, rule] + [
        "| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    text = "\n".join(lines) + "\n\n" + caption(selection_text, summary["n_seeds"].tolist()) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return text


def _latex_escape(text: str) -> str:
    return (
        text.replace("\\", r"\textbackslash{}")
        .replace("_", r"\_")
        .replace("%", r"\%")
        .replace("&", r"\&")
        .replace("#", r"\#")
    )


def write_latex(
    summary: pd.DataFrame, metrics: list[str], best: set, tied: set, selection_text: str, path: str
) -> str:
    table = _cells(summary, metrics, best, tied, ("", ""), "\u2020")
    for col in table.columns:
        table[col] = table[col].map(
            lambda v: (
                _latex_escape(str(v))
                .replace("±", r"$\pm$")
                .replace("\u2020", r"$^\dagger$")
                .replace("–", "--")
            )
        )
    table.columns = [_latex_escape(c) for c in table.columns]
    labels = [_latex_escape(metric_label(m)) for m in metrics]
    flags = {(r["group"], r["dataset"], m) for r in summary.to_dict("records") for m in metrics}
    ordered = summary.sort_values(["dataset", "group"]).reset_index(drop=True)

    def bold(col: pd.Series) -> list[str]:
        if col.name not in labels:
            return [""] * len(col)
        m = metrics[labels.index(col.name)]
        return [
            "bfseries: ;"
            if (ordered.loc[i, "group"], ordered.loc[i, "dataset"], m) in best
            and (ordered.loc[i, "group"], ordered.loc[i, "dataset"], m) in flags
            else ""
            for i in range(len(col))
        ]

    styler = table.style.hide(axis="index").apply(bold, axis=0)
    text = styler.to_latex(
        hrules=True,
        column_format="ll" + "r" * (len(table.columns) - 2),
        position="t",
        position_float="centering",
        label="tab:results",
        caption=_latex_escape(caption(selection_text, summary["n_seeds"].tolist()))
        .replace("±", r"$\pm$")
        .replace("≥", r"$\geq$")
        .replace("†", r"$^\dagger$")
        .replace("–", "--"),
    )
    with open(path, "w") as f:
        f.write("% needs \\usepackage{booktabs}\n" + text)
    return text
