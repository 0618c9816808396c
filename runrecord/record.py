"""What a run leaves behind, and how a re-run of the same command resumes or skips it.

``<save_path>/<project>/<run name>/`` holds ``config.json`` (every flag), ``metrics.jsonl`` (one line
per evaluated epoch and split; epoch 0 is the untrained network), ``summary.json`` (the selected
epoch, the rule that chose it, the metrics at that epoch, at the last epoch and before training),
``splits.json`` (what each data split holds) and ``checkpoints/last.pt`` and ``checkpoints/best.pt``.
All files except the append-only metric log are written atomically; the log is cut back to the last
checkpoint on resume so no epoch is counted twice.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from runrecord.files import append_jsonl, read_jsonl, write_atomic, write_json_atomic, \
    write_lines_atomic


# Flags that may change between a run and its resumption without making it another run.
RESUMABLE_DIFFERENCES = {"kernels", "gpu", "device", "log_online", "evaluate_on_gpu",
                         "eval_backend", "source_path", "save_path", "n_epochs"}


def run_name(opt: Any) -> str:
    return f"{opt.group}_s{opt.seed}" if opt.savename == "group_plus_seed" else opt.savename


def config_differences(saved: dict, current: dict) -> list[str]:
    current = json.loads(json.dumps(current))
    keys = (set(saved) | set(current)) - RESUMABLE_DIFFERENCES
    return sorted(k for k in keys if saved.get(k) != current.get(k))


class RunConflict(RuntimeError):
    """The run folder holds a run made with other settings."""


@dataclass
class Selection:
    """Model selection: the best value of one metric on one split, and its epoch."""

    split: str
    metric: str
    best_value: float = -math.inf
    best_epoch: int = -1
    history: list = field(default_factory=list)

    @property
    def rule(self) -> str:
        return f"max {self.metric} on the {self.split} split"

    def update(self, epoch: int, results: dict[str, dict]) -> bool:
        value = results.get(self.split, {}).get(self.metric)
        if value is None or isinstance(value, np.ndarray) or not math.isfinite(value):
            return False
        self.history.append([epoch, float(value)])
        if value > self.best_value:
            self.best_value, self.best_epoch = float(value), epoch
            return True
        return False


class RunRecord:
    def __init__(self, opt: Any, is_main: bool = True) -> None:
        self.dir = os.path.join(opt.save_path, opt.project, run_name(opt))
        self.is_main = is_main
        self.opt = opt

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    # ------------------------------------------------------------------ state of the folder
    def finished(self) -> bool:
        path = self.path("summary.json")
        if not os.path.exists(path):
            return False
        with open(path) as f:
            return bool(json.load(f).get("finished"))

    def summary_from_disk(self) -> dict:
        with open(self.path("summary.json")) as f:
            return json.load(f)

    def open(self) -> None:
        """Create the folder, or check that an existing one holds this same run."""
        config = self.path("config.json")
        if os.path.exists(config):
            with open(config) as f:
                saved = json.load(f)
            diffs = config_differences(saved, self.opt.as_dict())
            if diffs:
                shown = ", ".join(f"{k}: {saved.get(k)!r} -> {getattr(self.opt, k, None)!r}"
                                  for k in diffs[:4])
                raise RunConflict(f"{self.dir} holds a run with other settings ({shown}); "
                                  "choose another --group, --seed or --savename")
        elif self.is_main:
            os.makedirs(self.path("checkpoints"), exist_ok=True)
            write_json_atomic(config, self.opt.as_dict())

    # ------------------------------------------------------------------ metrics
    def log(self, epoch: int, split: str, values: dict[str, Any], **extra: Any) -> None:
        if self.is_main:
            append_jsonl(self.path("metrics.jsonl"), {"epoch": epoch, "split": split,
                                                      **extra, **values})

    def metric_rows(self) -> list[dict]:
        return read_jsonl(self.path("metrics.jsonl"))

    def truncate_log(self, last_epoch: int) -> None:
        rows = [r for r in self.metric_rows() if r["epoch"] <= last_epoch]
        if self.is_main:
            write_lines_atomic(self.path("metrics.jsonl"), rows)

    def write_json(self, name: str, obj: Any) -> None:
        if self.is_main:
            write_json_atomic(self.path(name), obj)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, name: str, state: dict) -> None:
        if self.is_main:
            write_atomic(self.path("checkpoints", f"{name}.pt"), lambda tmp: torch.save(state, tmp))

    def load_checkpoint(self, name: str = "last") -> dict | None:
        path = self.path("checkpoints", f"{name}.pt")
        if not os.path.exists(path):
            return None
        return torch.load(path, map_location="cpu", weights_only=False)

    # ------------------------------------------------------------------ summary
    def summary(self, selection: Selection, finished: bool, **extra: Any) -> dict:
        rows = self.metric_rows()
        by_epoch: dict[int, dict[str, dict]] = {}
        for row in rows:
            by_epoch.setdefault(row["epoch"], {})[row["split"]] = {
                k: v for k, v in row.items() if k not in ("epoch", "split")
                and not isinstance(v, list)}
        last = max(by_epoch) if by_epoch else None
        out = {
            "finished": finished,
            "run_dir": self.dir,
            "selection": {**asdict(selection), "rule": selection.rule},
            "selected_epoch": selection.best_epoch,
            "selected": by_epoch.get(selection.best_epoch, {}),
            "last_epoch": last,
            "last": by_epoch.get(last, {}) if last is not None else {},
            "untrained": by_epoch.get(0, {}),
            **extra,
        }
        out["selection"].pop("history", None)
        self.write_json("summary.json", out)
        return out
