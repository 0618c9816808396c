"""Optional second sink: Weights & Biases.

The local run record is the source of truth. W&B runs offline when ``WANDB_API_KEY`` is not set,
the key is read only from the environment, and any W&B failure (missing package, network, quota)
disables the sink with one warning instead of breaking the run.
"""
from __future__ import annotations

import hashlib
import os
import sys
import warnings
from typing import Any

import numpy as np


class WandbSink:
    def __init__(self, run_dir: str, project: str, group: str, name: str, config: dict) -> None:
        self.run = None
        try:
            import wandb
            mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
            run_id = hashlib.sha1(os.path.abspath(run_dir).encode()).hexdigest()[:16]
            self._wandb = wandb
            self.run = wandb.init(project=project, group=group, name=name, id=run_id,
                                  resume="allow", dir=run_dir, config=config, mode=mode,
                                  reinit=True, settings=wandb.Settings(silent=True))
        except Exception as err:  # noqa: BLE001 - W&B must never break a run
            self._disable(err)

    def _disable(self, err: Exception) -> None:
        warnings.warn(f"W&B logging disabled: {type(err).__name__}: {err}", stacklevel=3)
        print(f"[dmlbench] W&B logging disabled: {err}", file=sys.stderr)
        self.run = None

    def log(self, epoch: int, split: str, values: dict[str, Any]) -> None:
        if self.run is None:
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
        except Exception as err:  # noqa: BLE001
            self._disable(err)

    def finish(self, summary: dict | None = None) -> None:
        if self.run is None:
            return
        try:
            if summary:
                self.run.summary.update({k: v for k, v in summary.items()
                                         if isinstance(v, (int, float, str))})
            self.run.finish()
        except Exception as err:  # noqa: BLE001
            self._disable(err)
