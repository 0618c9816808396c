"""Runs from any source as one ``Run``: local run folders, offline W&B folders, the W&B API.

Every source gives the same fields: the run's name, group, seed, full config, per-split per-epoch
metrics, whether it finished, and the epoch its record selected. Local folders are read through
``runrecord.reader`` (the one definition of the record); W&B runs through the keys the W&B sink
writes (``<split>/<metric>`` per epoch, ``selected_epoch`` and ``finished`` in the summary).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from runrecord.reader import TRAIN_LOOP, RunReadError, find_run_dirs, read_run

_SEED_SUFFIX = re.compile(r"_s\d+$")


@dataclass
class Run:
    name: str
    group: str
    config: dict
    history: dict[str, dict[int, dict]]  # {split: {epoch: {metric: value}}}
    finished: bool
    selected_epoch: int | None = None
    selection_rule: str = ""
    source: str = ""  # folder or W&B path
    run_dir: str | None = None  # local run folder (embeddings live there)
    extra: dict = field(default_factory=dict)

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    @property
    def dataset(self) -> str:
        return str(self.config.get("dataset", "?"))

    def epochs(self, split: str) -> list[int]:
        return sorted(self.history.get(split, {}))

    def value(self, split: str, epoch: int | None, metric: str) -> float:
        v = self.history.get(split, {}).get(epoch, {}).get(metric) if epoch is not None else None
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def from_folder(path: str) -> Run:
    rec = read_run(path)
    history = {s: e for s, e in rec.history().items() if s != TRAIN_LOOP}
    group = rec.config.get("group") or _SEED_SUFFIX.sub("", rec.name)
    return Run(
        name=rec.name,
        group=str(group),
        config=rec.config,
        history=history,
        finished=rec.finished,
        selected_epoch=rec.selected_epoch,
        selection_rule=rec.selection_rule,
        source=path,
        run_dir=path,
    )


def _history_from_rows(rows: Iterable[dict]) -> dict[str, dict[int, dict]]:
    """W&B history rows (``{"epoch": e, "test/e_recall@1": v}``) to ``{split: {epoch: ...}}``."""
    out: dict[str, dict[int, dict]] = {}
    for row in rows:
        epoch = row.get("epoch")
        if not isinstance(epoch, (int, float)) or isinstance(epoch, bool):
            continue
        for key, value in row.items():
            if "/" not in key or key.startswith("_") or not isinstance(value, (int, float)):
                continue
            split, metric = key.split("/", 1)
            if split in ("selected", TRAIN_LOOP):
                continue
            out.setdefault(split, {}).setdefault(int(epoch), {})[metric] = value
    return out


def _from_wandb_fields(
    name: str, group: str, config: dict, rows: Iterable[dict], summary: dict, source: str
) -> Run:
    config = dict(config)
    group = group or str(config.get("group") or _SEED_SUFFIX.sub("", name))
    sel = summary.get("selected_epoch")
    return Run(
        name=name,
        group=group,
        config=config,
        history=_history_from_rows(rows),
        finished=bool(summary.get("finished")),
        selected_epoch=int(sel) if isinstance(sel, (int, float)) else None,
        selection_rule=str(summary.get("selection_rule", "")),
        source=source,
    )


def from_offline_wandb(path: str) -> Run:
    """One offline W&B run (``run-<id>.wandb`` or its folder), as written by ``--log_online``."""
    from results.wandb_offline import read_offline_run

    r = read_offline_run(path)
    run = _from_wandb_fields(r.name, r.group, r.config, r.history, r.summary, r.path)
    parts = os.path.normpath(r.path).split(os.sep)
    if len(parts) >= 4 and parts[-3] == "wandb":  # <run folder>/wandb/offline-run-*/run-*.wandb
        run.run_dir = os.sep.join(parts[:-3])
    return run


def _merge(first: Run, later: Run) -> Run:
    """One run logged by several processes (a resumed run): later epochs and summary win."""
    for split, epochs in later.history.items():
        first.history.setdefault(split, {}).update(epochs)
    if later.finished or later.selected_epoch is not None:
        first.finished, first.selected_epoch = later.finished, later.selected_epoch
        first.selection_rule = later.selection_rule or first.selection_rule
    return first


def from_wandb_api(project_path: str, api: Any = None) -> list[Run]:
    """Every run of ``ENTITY/PROJECT`` through ``wandb.Api()`` (the key from the environment)."""
    if api is None:
        import wandb

        api = wandb.Api(timeout=30)
    runs = []
    for r in api.runs(project_path):
        config = {k: v for k, v in dict(r.config).items() if not k.startswith("_")}
        rows = list(r.scan_history())
        runs.append(
            _from_wandb_fields(
                r.name, r.group or "", config, rows, dict(r.summary), f"wandb:{project_path}/{r.id}"
            )
        )
    return runs


def load_runs(
    runs_dirs: Iterable[str] = (), wandb: str | None = None
) -> tuple[list[Run], list[str]]:
    """Runs of every folder under ``runs_dirs`` and of ``wandb`` (``ENTITY/PROJECT``, or a local
    folder searched for offline W&B runs). Returns (runs, one line per unreadable run)."""
    from results.wandb_offline import WandbFileError, find_offline_runs

    runs, problems = [], []
    for root in runs_dirs:
        for path in find_run_dirs(root):
            try:
                runs.append(from_folder(path))
            except RunReadError as err:
                problems.append(str(err))
    if wandb:
        if os.path.isdir(wandb):
            merged: dict[tuple, Run] = {}
            for path in find_offline_runs(wandb):  # sorted: offline-run-<time>, oldest first
                try:
                    run = from_offline_wandb(path)
                except (WandbFileError, OSError) as err:
                    problems.append(str(err))
                    continue
                key = (run.run_dir, run.name)
                merged[key] = _merge(merged[key], run) if key in merged else run
            runs += list(merged.values())
        else:
            runs += from_wandb_api(wandb)
    return runs, problems
