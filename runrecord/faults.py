"""Fault injection for the resume tests: die like a ``SIGKILL`` at a named point of a run.

``DMLBENCH_FAULT=<point>:<n>`` makes the ``n``-th pass through ``point(<point>)`` end the process
with ``os._exit(FAULT_EXIT)``: no ``finally`` block, no flush, no atexit handler runs, exactly as
after a kill. The named points sit where an interruption is most likely to tear something: after
each training step, between evaluated splits, after a metric row is appended, after a temporary
file is complete but before its rename, between the two renames that rotate ``last.pt``. Without the
variable ``point`` is a dictionary look-up and a return.
"""

from __future__ import annotations

import os

FAULT_EXIT = 99
_counts: dict[str, int] = {}


def point(name: str) -> None:
    spec = os.environ.get("DMLBENCH_FAULT")
    if not spec:
        return
    target, _, nth = spec.rpartition(":")
    if target != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == int(nth):
        os._exit(FAULT_EXIT)


def reset() -> None:
    """Forget the pass counts (a forked test child starts counting from zero)."""
    _counts.clear()
