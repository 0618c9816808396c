"""The Reality-Check ensemble: "concatenated 512-d" (Musgrave, Belongie & Lim, ECCV 2020).

For every group trained with ``--cv_folds K`` and every seed with all K fold runs present, the
fold models' saved test embeddings (``--save_embeddings``, the selected epoch of each run) are
L2-normalised, concatenated (K × D dimensions) and evaluated with the evaluation engine. The
group's plain row is MLRC's "separated" number (mean over the fold models).
"""

from __future__ import annotations

import numpy as np

import evaluation
from results.runs import Run
from runrecord.embeddings import load_embeddings

SUFFIX = " (concatenated)"


def concatenated_rows(runs: list[Run], metrics: list[str]) -> tuple[list[dict], list[str]]:
    """(one row per (group, seed) ensemble, one-line notes on ensembles that could not be built)."""
    rows, notes = [], []
    folds: dict[tuple, dict[int, Run]] = {}
    for r in runs:
        k = int(r.config.get("cv_folds") or 0)
        if k > 1:
            folds.setdefault((r.group, r.dataset, r.seed, k), {})[int(r.config.get("fold", 0))] = r
    for (group, dataset, seed, k), members in sorted(folds.items(), key=lambda kv: str(kv[0])):
        if sorted(members) != list(range(k)):
            notes.append(f"{group} seed {seed}: folds {sorted(members)} of {k}; no ensemble")
            continue
        parts, labels = [], None
        for fold in range(k):
            run = members[fold]
            saved = load_embeddings(run.run_dir) if run.run_dir else None
            if saved is None:
                notes.append(
                    f"{group} seed {seed}: {run.name} saved no test embeddings "
                    "(--save_embeddings); no ensemble"
                )
                break
            emb, lab = saved
            if labels is not None and not np.array_equal(labels, lab):
                notes.append(f"{group} seed {seed}: the folds' test labels differ; no ensemble")
                break
            labels = lab
            parts.append(emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12))
        else:
            embeds = np.concatenate(parts, axis=1)
            known = [m for m in metrics if _valid(m)]
            values = evaluation.evaluate(embeds, labels, known, seed=int(seed or 0))
            rows.append(
                {
                    "group": group + SUFFIX,
                    "dataset": dataset,
                    "run": f"{group}_s{seed}",
                    "seed": seed,
                    **{m: float(values[m]) for m in known if np.ndim(values.get(m)) == 0},
                }
            )
    return rows, notes


def _valid(metric: str) -> bool:
    try:
        evaluation.check_metric_names([metric])
        return True
    except ValueError:
        return False
