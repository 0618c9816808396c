"""Read the offline run folders W&B writes (``wandb/offline-run-*/run-<id>.wandb``) without a key.

A ``.wandb`` file is W&B's transaction log: a 7-byte header (``:W&B``, magic 0xBEE1, version 0)
then LevelDB-log framing (32 KiB blocks; each chunk has crc32c(4), length(2), type(1): full, first,
middle, last) around protobuf ``wandb.proto.wandb_internal_pb2.Record`` messages. The wandb package
no longer ships a reader for it (its core is in Go since 0.19), so this module frames the chunks and
lets the package's own protobuf classes decode the records. Checksums are not verified: a torn tail
from a killed process simply ends the scan.
"""

from __future__ import annotations

import glob
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

HEADER = b":W&B" + struct.pack("<H", 0xBEE1) + b"\x00"
BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class WandbFileError(ValueError):
    """A file that is not a W&B transaction log."""


def iter_records(path: str) -> Iterator[bytes]:
    """The serialised records of a ``.wandb`` file, in order."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(HEADER):
        raise WandbFileError(f"{path} is not a W&B transaction log (header {data[:7]!r})")
    pos, pending = len(HEADER), b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # the rest of a block too short for a chunk header
            pos += left
            continue
        length, kind = struct.unpack_from("<HB", data, pos + 4)
        if kind == 0 and length == 0:  # zero padding
            pos += left
            continue
        body = data[pos + 7 : pos + 7 + length]
        if len(body) < length:
            break  # torn tail
        pos += 7 + length
        if kind == FULL:
            yield body
        elif kind == FIRST:
            pending = body
        elif kind == MIDDLE:
            pending += body
        elif kind == LAST:
            yield pending + body
            pending = b""
        else:
            break


def _value(item: Any) -> Any:
    value = json.loads(item.value_json)
    return value


def _key(item: Any) -> str:
    return "/".join(item.nested_key) if len(item.nested_key) else item.key


@dataclass
class OfflineRun:
    """What an offline W&B run recorded: identity, config, history rows and final summary."""

    path: str
    run_id: str = ""
    name: str = ""
    group: str = ""
    project: str = ""
    config: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    exited: bool = False


def read_offline_run(path: str) -> OfflineRun:
    """Decode one ``run-<id>.wandb`` file (the path of the file or of its offline-run folder)."""
    from wandb.proto import wandb_internal_pb2 as pb

    if os.path.isdir(path):
        found = glob.glob(os.path.join(path, "run-*.wandb"))
        if not found:
            raise WandbFileError(f"{path} holds no run-*.wandb file")
        path = found[0]
    run = OfflineRun(path=path)
    for raw in iter_records(path):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.run_id, run.name, run.group, run.project = (
                r.run_id,
                r.display_name,
                r.run_group,
                r.project,
            )
            for item in r.config.update:
                run.config[_key(item)] = _value(item)
        elif kind == "config":
            for item in record.config.update:
                run.config[_key(item)] = _value(item)
        elif kind == "history":
            run.history.append({_key(i): _value(i) for i in record.history.item})
        elif kind == "summary":
            for item in record.summary.update:
                run.summary[_key(item)] = _value(item)
        elif kind == "exit":
            run.exited = True
    # wandb wraps each config entry as {"value": v, "desc": ...}
    run.config = {
        k: (v["value"] if isinstance(v, dict) and "value" in v else v)
        for k, v in run.config.items()
        if not k.startswith("_")
    }
    return run


def find_offline_runs(root: str) -> list[str]:
    """Every ``run-*.wandb`` under ``root``; the latest one per run folder's ``wandb/`` (a resumed
    run writes one offline folder per process, each holding the epochs that process logged)."""
    return sorted(
        glob.glob(os.path.join(root, "**", "offline-run-*", "run-*.wandb"), recursive=True)
    )
