"""Optional second sink: Weights & Biases.

The local run record is the source of truth. A run logs to the W&B project ``--project``, grouped by
``--group`` and named like its run folder (``<group>_s<seed>``), with the full config, per-epoch
metrics keyed by split (``test/e_recall@1``, x-axis ``epoch``) and, in the run summary, the selected
epoch's metrics (``selected/test/e_recall@1``), the epoch and the rule that chose it, so W&B's group
view compares groups over seeds directly.

Mode: ``WANDB_MODE`` (online, offline, disabled) wins when set; otherwise online with a
``WANDB_API_KEY`` in the environment (the only place the key is read from) and offline without. An
unreachable server costs at most ``WANDB_INIT_TIMEOUT`` seconds (default 15, W&B's own is 90): the
sink then logs offline into the run folder, to be uploaded later with ``wandb sync``. Any other W&B
failure (missing package, quota) disables the sink with one warning instead of breaking the run.

A resumed run replays the epoch it was killed in, and W&B keeps whatever reached it: the sink notes
each (epoch, split) row it sent in ``wandb/sent.jsonl`` and does not send it twice (the replay's
values are the same: a resume is bit-identical). A run that starts afresh (``continues=False``:
a new folder, or one taken over by other settings) clears that note.
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from typing import Any

import numpy as np

from runrecord.files import append_jsonl, read_jsonl

MODES = {
    "online": "online",
    "run": "online",
    "offline": "offline",
    "dryrun": "offline",
    "disabled": "disabled",
}


def wandb_mode() -> str:
    """The mode the environment asks for (see the module docstring)."""
    if os.environ.get("WANDB_DISABLED", "").lower() in ("1", "true", "yes"):
        return "disabled"
    asked = os.environ.get("WANDB_MODE", "").strip().lower()
    if asked:
        if asked not in MODES:
            warnings.warn(
                f"WANDB_MODE={asked!r} is not one of {', '.join(MODES)}; using offline",
                stacklevel=2,
            )
            return "offline"
        return MODES[asked]
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def init_timeout() -> float:
    try:
        return max(1.0, float(os.environ.get("WANDB_INIT_TIMEOUT", "15")))
    except ValueError:
        return 15.0


def flatten_summary(summary: dict) -> dict[str, Any]:
    """The run record's summary as W&B summary keys: ``selected/<split>/<metric>`` and friends."""
    if "selected" not in summary:  # already flat
        return {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}
    out: dict[str, Any] = {
        "selected_epoch": summary.get("selected_epoch"),
        "last_epoch": summary.get("last_epoch"),
        "selection_rule": summary.get("selection", {}).get("rule"),
        "finished": bool(summary.get("finished")),
    }
    for split, values in summary.get("selected", {}).items():
        for metric, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"selected/{split}/{metric}"] = value
    if isinstance(summary.get("train_time_s"), (int, float)):
        out["train_time_s"] = summary["train_time_s"]
    return {k: v for k, v in out.items() if v is not None}


class WandbSink:
    def __init__(
        self,
        run_dir: str,
        project: str,
        group: str,
        name: str,
        config: dict,
        continues: bool = False,
    ) -> None:
        self.run = None
        self.mode = wandb_mode()
        if self.mode == "disabled":
            return
        self.sent_path = os.path.join(run_dir, "wandb", "sent.jsonl")
        self.sent = self._read_sent() if continues else set()
        try:
            if not continues and os.path.exists(self.sent_path):
                os.remove(self.sent_path)  # the note of an earlier run in this folder
            os.makedirs(os.path.dirname(self.sent_path), exist_ok=True)
            import wandb

            self._wandb = wandb
            run_id = hashlib.sha1(os.path.abspath(run_dir).encode()).hexdigest()[:16]
            kwargs = {
                "project": project,
                "group": group,
                "name": name,
                "id": run_id,
                "resume": "allow",
                "dir": run_dir,
                "config": config,
                "reinit": True,
            }
            try:
                self.run = wandb.init(
                    mode=self.mode,
                    **kwargs,
                    settings=wandb.Settings(
                        silent=True, console="off", init_timeout=init_timeout()
                    ),
                )
            except Exception as err:
                if self.mode != "online":
                    raise
                why = " ".join(str(err).split())[:120]
                print(
                    f"[dmlbench] W&B unreachable ({type(err).__name__}: {why}); "
                    f"logging offline under {run_dir}/wandb, upload later with `wandb sync`",
                    file=sys.stderr,
                )
                self.mode = "offline"
                wandb.teardown()  # the failed attempt still holds the run id in W&B's service
                self.run = wandb.init(
                    mode="offline", **kwargs, settings=wandb.Settings(silent=True, console="off")
                )
            define = getattr(self.run, "define_metric", None)
            if define is not None:  # plot every metric against the epoch, not the log step
                define("epoch")
                define("*", step_metric="epoch")
        except Exception as err:
            self._disable(err)

    def _disable(self, err: Exception) -> None:
        warnings.warn(f"W&B logging disabled: {type(err).__name__}: {err}", stacklevel=3)
        print(f"[dmlbench] W&B logging disabled: {err}", file=sys.stderr)
        self.run = None

    def _read_sent(self) -> set[tuple[int, str]]:
        try:
            return {(r.get("epoch"), r.get("split")) for r in read_jsonl(self.sent_path)}
        except (OSError, ValueError):  # no note (or an unreadable one): send everything
            return set()

    def log(self, epoch: int, split: str, values: dict[str, Any]) -> None:
        if self.run is None or (epoch, split) in self.sent:
            return
        try:
            row = {}
            for key, value in values.items():
                if isinstance(value, np.ndarray):
                    row[f"{split}/{key}"] = self._wandb.Histogram(value)
                elif isinstance(value, (int, float)):
                    row[f"{split}/{key}"] = value
            row["epoch"] = epoch
            self.run.log(row)
            self.sent.add((epoch, split))
            append_jsonl(self.sent_path, {"epoch": epoch, "split": split})
        except Exception as err:
            self._disable(err)

    def finish(self, summary: dict | None = None) -> None:
        """Write the run record's ``summary`` (or a flat dict) into the W&B summary and close."""
        if self.run is None:
            return
        try:
            if summary:
                self.run.summary.update(flatten_summary(summary))
            self.run.finish()
        except Exception as err:
            self._disable(err)
