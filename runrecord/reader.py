"""The one reader of run folders: what ``RunRecord`` writes, read back for analysis.

A run folder holds ``config.json`` (every flag), ``metrics.jsonl`` (one row per evaluated epoch and
split; epoch 0 is the untrained network) and ``summary.json`` (``finished``, the selected epoch and
the rule that chose it). ``results/`` and any other consumer read folders only through this module,
so the record has one definition. Reading never writes: a torn or missing ``summary.json`` makes
the run unfinished, a torn ``config.json`` is a one-line ``RunReadError``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from runrecord.files import read_jsonl

# Rows of metrics.jsonl with this split hold training-loop logs (loss, lr, time), not evaluation.
TRAIN_LOOP = "train_loop"


class RunReadError(ValueError):
    """A folder that does not hold a readable run record."""


@dataclass
class RunFolder:
    path: str
    config: dict
    rows: list[dict]
    summary: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return os.path.basename(os.path.normpath(self.path))

    @property
    def finished(self) -> bool:
        return bool(self.summary.get("finished"))

    @property
    def selected_epoch(self) -> int | None:
        epoch = self.summary.get("selected_epoch")
        return epoch if isinstance(epoch, int) and epoch >= 0 else None

    @property
    def selection_rule(self) -> str:
        return str(self.summary.get("selection", {}).get("rule", ""))

    def history(self) -> dict[str, dict[int, dict]]:
        """``{split: {epoch: {metric: value}}}`` of the evaluation rows (the last row wins when a
        resumed run logged an epoch twice)."""
        out: dict[str, dict[int, dict]] = {}
        for row in self.rows:
            split = row.get("split")
            if split is None or "epoch" not in row:
                continue
            values = {k: v for k, v in row.items() if k not in ("epoch", "split")}
            out.setdefault(split, {})[int(row["epoch"])] = values
        return out


def _read_json(path: str, required: bool) -> dict:
    if not os.path.exists(path):
        if required:
            raise RunReadError(f"{path} is missing: not a run folder")
        return {}
    try:
        with open(path) as f:
            value = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        if required:
            why = err.msg if hasattr(err, "msg") else err
            raise RunReadError(
                f"{path} is not valid JSON ({why}); restore it or delete the run folder"
            ) from None
        return {}
    if not isinstance(value, dict):
        raise RunReadError(f"{path} holds a {type(value).__name__}, expected a JSON object")
    return value


def read_run(path: str) -> RunFolder:
    """The run record in ``path`` (a folder holding ``config.json``)."""
    return RunFolder(
        path=path,
        config=_read_json(os.path.join(path, "config.json"), required=True),
        rows=read_jsonl(os.path.join(path, "metrics.jsonl")),
        summary=_read_json(os.path.join(path, "summary.json"), required=False),
    )


def find_run_dirs(root: str) -> Iterator[str]:
    """Every folder under ``root`` (``root`` included) that holds a ``config.json``, sorted; W&B's
    and checkpoint sub-folders are not searched."""
    if not os.path.isdir(root):
        raise RunReadError(f"{root} is not a folder")
    for folder, subdirs, files in os.walk(root):
        subdirs[:] = sorted(
            d
            for d in subdirs
            if d not in ("wandb", "checkpoints", "embeddings") and not d.startswith(".")
        )
        if "config.json" in files:
            subdirs[:] = []  # a run folder holds no other runs
            yield folder
