"""SIGINT and SIGTERM end a run cleanly: the checkpoint in progress is completed, then the run
stops with :class:`Interrupted`, which ``main.py`` reports with the command that resumes it.

Slurm pre-emption sends SIGTERM; Ctrl-C sends SIGINT. The handler raises at once, except inside
:func:`critical` (writing an epoch's rows, checkpoints and summary), where it waits for the block
to end: every file a run writes is atomic and a resume starts from the last complete checkpoint,
so stopping anywhere else loses nothing but the epoch in progress.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0
_pending: int | None = None


class Interrupted(BaseException):
    """A SIGINT or SIGTERM arrived (a BaseException, like KeyboardInterrupt, so that no
    ``except Exception`` swallows it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def _handler(signum: int, frame) -> None:
    global _pending
    if _depth:
        _pending = signum
        return
    raise Interrupted(signum)


@contextmanager
def handled() -> Iterator[None]:
    """SIGINT/SIGTERM raise :class:`Interrupted` inside the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # A SIGINT ignored at start-up (a background job of a shell, nohup) stays ignored.
    wanted = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) != signal.SIG_IGN]
    previous = {s: signal.signal(s, _handler) for s in wanted}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def critical() -> Iterator[None]:
    """A signal arriving inside the block takes effect when it ends."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
    if not _depth and _pending is not None:
        signum, _pending = _pending, None
        raise Interrupted(signum)
