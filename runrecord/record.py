"""What a run leaves behind, and how a re-run of the same command resumes, extends or skips it.

``<save_path>/<project>/<run name>/`` holds ``config.json`` (every flag), ``metrics.jsonl`` (one
line per evaluated epoch and split; epoch 0 is the untrained network), ``summary.json`` (the
selected epoch, the rule that chose it, the metrics at that epoch, at the last epoch and before
training), ``splits.json`` (what each data split holds), ``model.json``, and ``checkpoints/``:
``last.pt`` (the train state after the last complete epoch), ``last.prev.pt`` (the one before it,
kept as a fallback when ``last.pt`` is unreadable) and ``best.pt`` / ``best_<metric>.pt``.

The checkpoint is the one source of truth of where a run stands. A run folder without a checkpoint
holds a run that has not started (its config may be replaced by another command's); on resume the
metric log is cut back to the checkpoint's epoch before anything is appended, so no epoch is ever
counted twice. Checkpoints hold plain data only (tensors, numbers, strings, lists, dicts) and are
loaded with ``torch.load(weights_only=True)``: a crafted ``last.pt`` cannot run code. Each one is
read back and compared after writing. An ``fcntl`` lock on ``<run folder>/.lock`` keeps a second
process off a folder in use. Every OS error on the folder is a one-line :class:`RunFolderError`.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import math
import os
import pickle
import socket
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from runrecord import faults
from runrecord.files import (
    RunFolderError,
    append_jsonl,
    disk_full,
    explain,
    meaning,
    read_json,
    read_jsonl,
    write_atomic,
    write_bytes,
    write_json_atomic,
    write_lines_atomic,
)

# Flags that may change between a run and its resumption without making it another run.
RESUMABLE_DIFFERENCES = {
    "kernels",
    "gpu",
    "device",
    "log_online",
    "evaluate_on_gpu",
    "eval_backend",
    "source_path",
    "save_path",
    "n_epochs",
    "patience",
    "max_nonfinite_steps",
    "prefetch_factor",
    "decoded_cache",
    "decoded_cache_side",
    "gpu_decode",
    "gpu_share_ranks",
    "compile",
    "channels_last",
    "cudnn_benchmark",
    "save_embeddings",
    "save_retrievals",
    "evaluate_only",
    "checkpoint",
}


def run_name(opt: Any) -> str:
    return f"{opt.group}_s{opt.seed}" if opt.savename == "group_plus_seed" else opt.savename


def config_differences(saved: dict, current: dict, defaults: dict | None = None) -> list[str]:
    """Flags that make ``current`` another run than ``saved``. A flag the saved config does not
    hold (it was written by an older version) counts only when its current value is not the
    flag's default (``defaults``, the parser's)."""
    current = json.loads(json.dumps(current))
    defaults = json.loads(json.dumps(defaults or {}))
    keys = (set(saved) | set(current)) - RESUMABLE_DIFFERENCES
    absent = object()
    return sorted(
        k
        for k in keys
        if saved.get(k) != current.get(k)
        and not (k not in saved and k in defaults and current.get(k, absent) == defaults[k])
    )


class RunConflict(RuntimeError):
    """The run folder cannot be used by this command (other settings, another process, no
    readable checkpoint)."""


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

    def stale(self, epoch: int, patience: int) -> bool:
        """Early stopping, MLRC's rule (powerful-benchmarker): ``epoch - best_epoch > patience``
        (``patience`` 0: never). Epochs without an evaluation count too."""
        return patience > 0 and self.best_epoch >= 0 and epoch - self.best_epoch > patience

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict) -> Selection:
        return cls(**state)


def selections_for(opt: Any, split_names: Any) -> list[Selection]:
    """One selection per ``--storage_metrics`` entry on the selection split (``auto``: val when
    there is one, never test unless there is nothing else); the first one chooses the reported
    epoch."""
    split = opt.selection_split
    if split == "auto":
        split = "val" if "val" in split_names else "test"
    return [Selection(split, metric) for metric in opt.storage_metrics]


def _first_line(err: BaseException, limit: int = 120) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RunRecord:
    def __init__(self, opt: Any, is_main: bool = True, defaults: dict | None = None) -> None:
        self.dir = os.path.join(opt.save_path, opt.project, run_name(opt))
        self.is_main = is_main
        self.opt = opt
        self.defaults = defaults or {}  # the parser's defaults: flags newer than a saved config
        self.notes: list[str] = []  # one-line notices for the user (fallbacks, repairs)
        self.continues = False  # set by open(): the folder holds this same run
        self._lock_fd: int | None = None
        self.saved_epoch = -1  # epoch of the newest `last` checkpoint on disk

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    # ------------------------------------------------------------------ before anything is written
    def finished_summary(self) -> dict | None:
        """The summary of a finished run, or None (no summary, unfinished, or unreadable: the
        checkpoint then decides, and the summary is written again)."""
        path = self.path("summary.json")
        if not os.path.exists(path):
            return None
        try:
            summary = read_json(path)
        except (ValueError, OSError) as err:
            self.notes.append(f"{_first_line(err)}; it is rebuilt from the metric log")
            return None
        if not (isinstance(summary, dict) and summary.get("finished")):
            return None
        try:
            self._check_same_run(read_json(self.path("config.json")))
        except (ValueError, OSError):  # torn or missing: the checkpoint decides
            return None
        return summary

    def _check_same_run(self, reference: dict) -> None:
        current = json.loads(json.dumps(self.opt.as_dict()))
        reference = json.loads(json.dumps(reference))  # a checkpoint's copy may hold tuples
        diffs = config_differences(reference, current, self.defaults)
        if diffs:
            shown = ", ".join(f"{k}: {reference.get(k)!r} -> {current.get(k)!r}" for k in diffs[:4])
            raise RunConflict(
                f"{self.dir} holds a run with other settings ({shown}); "
                "choose another --group, --seed or --savename"
            )

    def preflight(self, need_bytes: int) -> None:
        """Check, without leaving anything behind, that the run folder can be created and
        written and that its file system has ``need_bytes`` free."""
        if not self.is_main:
            return
        folder = os.path.abspath(self.dir)
        existing = folder
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        try:
            if not os.path.isdir(existing):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            fd, probe = tempfile.mkstemp(dir=existing, prefix=".dmlbench_probe_")
            os.close(fd)
            os.remove(probe)
            free = os.statvfs(existing)
        except OSError as err:
            where = "" if existing == folder else f" ({existing} is the nearest existing path)"
            raise RunFolderError(
                err.errno, f"cannot write the run folder {folder}{where}: {meaning(err)}"
            ) from None
        available = free.f_bavail * free.f_frsize
        if available < need_bytes:
            raise RunFolderError(
                errno.ENOSPC,
                f"cannot write {folder}: no space left on device "
                f"(ENOSPC): {available / 2**20:.0f} MiB free, checkpoints need "
                f"about {need_bytes / 2**20:.0f} MiB",
            )

    # ------------------------------------------------------------------ the folder: lock and config
    def lock(self, command: str) -> None:
        """Hold an advisory ``fcntl`` lock on the run folder until :meth:`close` or exit; a folder
        locked by another process raises RunConflict naming it (pid, host, command)."""
        if not self.is_main:
            return
        path = self.path(".lock")
        try:
            os.makedirs(self.path("checkpoints"), exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise explain(err, self.dir, "create the run folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 65536, 0).decode() or "{}")
            except ValueError:
                holder = {}
            os.close(fd)
            raise RunConflict(
                f"{self.dir} is in use by another process (pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')}, since {holder.get('since', '?')}: "
                f"{holder.get('command', '?')}); wait for it to end or stop it"
            ) from None
        except OSError as err:  # e.g. ENOLCK on a file system without locks: run unguarded
            self.notes.append(
                f"no lock on {self.dir} ({os.strerror(err.errno).lower()}); "
                "do not start this command twice"
            )
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError as err:
            os.close(fd)
            raise explain(err, path) from None
        self._lock_fd = fd

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def open(self, checkpoint: dict | None) -> None:
        """Check that the folder holds this same run, or one that never completed an epoch (no
        ``checkpoint``: nothing worth keeping, so any settings may take it over), and write the
        config. A torn ``config.json`` is compared through the copy inside the checkpoint.
        Sets ``continues``: whether this is the run the folder held (resumed, or restarted with
        the same settings), so what it already sent to W&B stands."""
        self.continues = False
        if not self.is_main:
            return
        current = json.loads(json.dumps(self.opt.as_dict()))
        path = self.path("config.json")
        saved = None
        if os.path.exists(path):
            try:
                saved = read_json(path)
            except ValueError as err:
                self.notes.append(f"{_first_line(err)}; rewritten from the current settings")
        if checkpoint is not None:
            self._check_same_run(saved if saved is not None else checkpoint.get("config", {}))
            self.continues = True
        elif saved is not None and not config_differences(saved, current, self.defaults):
            self.continues = True
        elif saved is not None:
            self.notes.append(
                f"{self.dir} held a run that never completed its first epoch; "
                "starting it over with the current settings"
            )
        if saved != current:
            write_json_atomic(path, current)

    # ------------------------------------------------------------------ metrics
    def log(self, epoch: int, split: str, values: dict[str, Any]) -> None:
        if self.is_main:
            append_jsonl(self.path("metrics.jsonl"), {"epoch": epoch, "split": split, **values})
            faults.point("row_appended")

    def metric_rows(self) -> list[dict]:
        return read_jsonl(self.path("metrics.jsonl"))

    def truncate_log(self, last_epoch: int) -> None:
        """Keep the rows of epochs <= ``last_epoch`` (the checkpoint's; -1: none) and drop a torn
        last line: the one place where a resume decides what the log holds."""
        path = self.path("metrics.jsonl")
        if not self.is_main or not os.path.exists(path):
            return
        rows = self.metric_rows()
        kept = [r for r in rows if isinstance(r.get("epoch"), int) and r["epoch"] <= last_epoch]
        try:
            with open(path, errors="replace") as f:
                intact = len(rows) == sum(1 for line in f if line.strip())
        except OSError as err:
            raise explain(err, path, "read") from None
        if len(kept) != len(rows) or not intact:
            write_lines_atomic(path, kept)

    def write_json(self, name: str, obj: Any) -> None:
        if self.is_main:
            write_json_atomic(self.path(name), obj)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, name: str, state: dict, keep_previous: bool = False) -> None:
        """Write ``checkpoints/<name>.pt`` atomically and read it back; with ``keep_previous`` the
        file it replaces becomes ``<name>.prev.pt``. ``state`` must be plain data (checked by
        loading it with ``weights_only=True`` before anything is written)."""
        if not self.is_main:
            return
        path = self.path("checkpoints", f"{name}.pt")
        buffer = io.BytesIO()
        torch.save(state, buffer)  # in memory: a full disk is then an OSError, not a zip error
        data = buffer.getvalue()
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)

        def write(tmp: str) -> None:
            write_bytes(tmp, data)
            faults.point("checkpoint_written")
            with open(tmp, "rb") as f:
                if f.read() != data:
                    raise OSError(errno.EIO, "checkpoint read back differs from what was written")
            if keep_previous and os.path.exists(path):
                os.replace(path, self.path("checkpoints", f"{name}.prev.pt"))
                faults.point("checkpoint_rotated")

        try:
            write_atomic(path, write)
            if name == "last":
                self.saved_epoch = int(state["epoch"])
        except RunFolderError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise disk_full(path) from None
            raise

    def load_checkpoint(self, name: str = "last") -> dict | None:
        """The newest readable of ``<name>.pt`` and ``<name>.prev.pt`` (a note says when the older
        one is used), None when neither exists; RunConflict when none is readable."""
        problems = []
        for candidate in (f"{name}.pt", f"{name}.prev.pt"):
            path = self.path("checkpoints", candidate)
            if not os.path.exists(path):
                continue
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                if not isinstance(state, dict) or "epoch" not in state:
                    raise ValueError("not a dmlbench train state")
            except pickle.UnpicklingError as err:
                if "weights only" in str(err).lower() and zipfile.is_zipfile(path):
                    problems.append(
                        f"{candidate} holds objects other than plain data (not "
                        "loaded: crafted, or from an older dmlbench)"
                    )
                else:
                    problems.append(f"{candidate} is unreadable (not a checkpoint file)")
                continue
            except OSError as err:
                if isinstance(err, FileNotFoundError):
                    continue
                raise explain(err, path, "read") from None
            except Exception as err:
                problems.append(f"{candidate} is unreadable ({_first_line(err, 80)})")
                continue
            if problems:
                self.notes.append(
                    f"{problems[0]}; resuming from {candidate} (epoch {state['epoch']})"
                )
            elif candidate != f"{name}.pt":
                self.notes.append(
                    f"resuming from {candidate} (epoch {state['epoch']}): the run "
                    f"stopped while replacing {name}.pt"
                )
            self.saved_epoch = int(state["epoch"])
            return state
        if problems:
            raise RunConflict(
                f"no readable checkpoint in {self.path('checkpoints')}: "
                f"{'; '.join(problems)}; delete it to start the run over"
            )
        return None

    # ------------------------------------------------------------------ summary
    def summary(self, selection: Selection, finished: bool, **extra: Any) -> dict:
        rows = self.metric_rows()
        by_epoch: dict[int, dict[str, dict]] = {}
        for row in rows:
            by_epoch.setdefault(row["epoch"], {})[row["split"]] = {
                k: v
                for k, v in row.items()
                if k not in ("epoch", "split") and not isinstance(v, list)
            }
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


def command_line(argv: list[str] | None) -> str:
    """The command that re-runs (and so resumes) this run, quoted for a shell."""
    import shlex

    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", "main.py", *args])
