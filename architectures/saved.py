"""A trained network back from its run folder: ``<run>/checkpoints/<name>.pt`` plus the run's
``config.json`` (the flags) and ``model.json`` (what the network was).

Used by evaluate-only (``main.py --evaluate_only``), the retrieval pictures
(``python -m evaluation.visualize``) and export (``python -m export``). The architecture and input
spec come from the run record, never from the command line, and the checkpoint is read as plain
data (``torch.load(weights_only=True)``); anything that does not fit (another dmlbench version,
another architecture, a file that is not a checkpoint) is a :class:`SavedRunError` with one line
saying what differs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from architectures import build_model
from architectures.embedding_net import EmbeddingNet

#: Flags that define the network: read from the run's config.json, never overridden.
NETWORK_FLAGS = ("arch", "embed_dim", "image_size", "image_resize")


class SavedRunError(ValueError):
    """A checkpoint or run folder that cannot be turned back into its network."""


@dataclass
class SavedModel:
    model: EmbeddingNet  # in eval mode, on the CPU
    config: dict[str, Any]  # the run's config.json
    run_dir: Path
    checkpoint: Path
    epoch: int | None  # the epoch the checkpoint was written at, when it says


def is_network_flag(name: str) -> bool:
    return name in NETWORK_FLAGS or name.startswith("arch_")


def _read_json(path: Path, what: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError as err:
        raise SavedRunError(
            f"{path} not found: --checkpoint must lie in <run folder>/checkpoints/ "
            f"next to the run's {what}"
        ) from err
    except (OSError, json.JSONDecodeError) as err:
        raise SavedRunError(f"cannot read {path}: {err}") from err


def read_run(checkpoint: str | Path) -> tuple[Path, dict, dict | None]:
    """``(run folder, config.json, model.json or None)`` for a checkpoint inside a run folder."""
    path = Path(checkpoint)
    if not path.is_file():
        raise SavedRunError(f"checkpoint {path} not found; pass RUN_DIR/checkpoints/best.pt")
    run_dir = path.resolve().parent.parent
    config = _read_json(run_dir / "config.json", "config.json")
    model_json = (
        _read_json(run_dir / "model.json", "model.json")
        if (run_dir / "model.json").is_file()
        else None
    )
    return run_dir, config, model_json


def read_state(checkpoint: str | Path) -> dict:
    """The checkpoint as plain data; it must hold the network's state_dict under ``"model"``."""
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors have many types: name the file, keep the cause
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SavedRunError(
            f"checkpoint {checkpoint} is not a plain-data dmlbench checkpoint "
            f"(another version, or not a checkpoint): {first}"
        ) from err
    if not isinstance(state, Mapping) or not isinstance(state.get("model"), Mapping):
        raise SavedRunError(
            f"checkpoint {checkpoint} holds no network state_dict under 'model' "
            "(written by another version of dmlbench?)"
        )
    return dict(state)


def rebuild(config: Mapping[str, Any], model_json: Mapping[str, Any] | None = None) -> EmbeddingNet:
    """The untrained network the run's flags describe, checked against its ``model.json``."""
    try:
        model = build_model(
            config["arch"],
            dict(config),
            embed_dim=config["embed_dim"],
            pretrained=False,
            image_size=config.get("image_size", 0),
            image_resize=config.get("image_resize", 0),
        )
    except KeyError as err:
        raise SavedRunError(
            f"config.json lacks {err} (written by another version of dmlbench?)"
        ) from err
    except Exception as err:  # RegistryError, ValueError, timm's errors: one line either way
        raise SavedRunError(
            f"this version cannot build the run's --arch {config['arch']}: {err}"
        ) from err
    if model_json:
        built = model.describe()
        for key in ("class", "embed_dim", "feature_dim", "image_spec"):
            saved = model_json.get(key)
            now = asdict(model.image_spec) if key == "image_spec" else built[key]
            if saved is not None and json.loads(json.dumps(now)) != saved:
                raise SavedRunError(
                    f"model.json says {key} = {saved}, this version builds {now} "
                    f"for --arch {config['arch']}: written by another version"
                )
    return model


def load_saved_model(checkpoint: str | Path) -> SavedModel:
    """The trained network of ``checkpoint`` in eval mode (SavedRunError when it does not fit)."""
    run_dir, config, model_json = read_run(checkpoint)
    state = read_state(checkpoint)
    model = rebuild(config, model_json)
    own, saved = model.state_dict(), state["model"]
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    wrong = [
        k
        for k, v in saved.items()
        if k in own and (not torch.is_tensor(v) or v.shape != own[k].shape)
    ]
    if missing or unexpected or wrong:
        parts = [
            f"{len(v)} {what} (e.g. {', '.join(v[:2])})"
            for what, v in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches", wrong),
            )
            if v
        ]
        raise SavedRunError(
            f"checkpoint {checkpoint} does not fit --arch {config['arch']}: " + "; ".join(parts)
        )
    model.load_state_dict(saved, strict=True)
    epoch = state.get("epoch")
    return SavedModel(
        model.eval(),
        config,
        run_dir,
        Path(checkpoint),
        int(epoch) if isinstance(epoch, int) else None,
    )
