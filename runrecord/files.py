"""Atomic file writes: a crash never leaves a half-written config, summary or checkpoint.

Every ``OSError`` raised while touching a run folder becomes a :class:`RunFolderError` whose message
is one line naming the path and the errno's meaning (``read-only file system (EROFS)``), so that
``main.py`` can print it instead of a traceback. Atomic writes create their temporary file with the
permissions an ordinary ``open`` would give under the process umask (``mkstemp`` alone gives 0600).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from runrecord import faults


class RunFolderError(OSError):
    """An operating-system error on a run folder, with a one-line message for the user."""

    def __str__(self) -> str:
        return str(self.strerror)


def meaning(err: OSError) -> str:
    """The errno's meaning and name: ``read-only file system (EROFS)``."""
    code = err.errno
    text = os.strerror(code).lower() if code else str(err)
    return text + (f" ({errno.errorcode[code]})" if code in errno.errorcode else "")


def explain(err: OSError, path: str, action: str = "write") -> RunFolderError:
    """``OSError`` → one line naming what was done, the path, and the errno's meaning and name."""
    return RunFolderError(err.errno, f"cannot {action} {path}: {meaning(err)}")


def disk_full(path: str) -> RunFolderError:
    return explain(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # 0-d torch tensor
        return value.item()
    return value


_UMASK: int | None = None


def file_mode() -> int:
    """0666 less the process umask: the mode ``open(path, "w")`` would create a file with."""
    global _UMASK
    if _UMASK is None:  # reading the umask means setting it; do it once per process
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return 0o666 & ~_UMASK


def write_atomic(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename over ``path`` (same folder, so the rename is atomic).

    OS errors come out as :class:`RunFolderError` naming ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_" + os.path.basename(path))
        os.close(fd)
        os.chmod(tmp, file_mode())
        write(tmp)
        faults.point("atomic_written")
        os.replace(tmp, path)
    except OSError as err:
        _remove_quietly(tmp)
        raise err if isinstance(err, RunFolderError) else explain(err, path) from err
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: str | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            os.remove(path)


def write_bytes(tmp: str, data: bytes) -> None:
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_json_atomic(path: str, obj: Any) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(_jsonable(obj), f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())

    write_atomic(path, write)


def write_lines_atomic(path: str, rows: list[dict]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.writelines(json.dumps(_jsonable(row), sort_keys=True) + "\n" for row in rows)
            f.flush()
            os.fsync(f.fileno())

    write_atomic(path, write)


def append_jsonl(path: str, row: dict) -> None:
    try:
        with open(path, "a") as f:
            f.write(json.dumps(_jsonable(row), sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise explain(err, path) from err


def read_json(path: str) -> Any:
    """The parsed file; ``ValueError`` with one line when it is torn or not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON (torn or edited: {err.msg} at line {err.lineno})"
        ) from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not valid JSON (binary content)") from None
    except OSError as err:
        raise explain(err, path, "read") from err


def read_jsonl(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    rows = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:  # a torn last line from a crash
                        break
    except OSError as err:
        raise explain(err, path, "read") from err
    return rows
