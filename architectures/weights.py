"""Finding and loading ImageNet backbone weights from local files; nothing is ever downloaded.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016; Szegedy et al., "Going Deeper
with Convolutions", CVPR 2015; Ioffe & Szegedy, "Batch Normalization", ICML 2015 — the ImageNet
checkpoints are torchvision's and Cadene's pretrainedmodels' files, looked up under their standard
names.

Deviation from the original harness: it downloaded weights through torchvision/pretrainedmodels at
start-up; here a missing file is an error that says which files were looked for. The classifier
(``fc``, ``last_linear``, GoogLeNet's ``aux1``/``aux2``, a dmlbench ``head``) is skipped; every
other key must match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn


def find_weights(arch: str, file_names: Sequence[str], weights_path: str | Path | None) -> Path:
    """``weights_path`` if given, else the first of ``file_names`` in the torch hub cache."""
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"weights file for {arch} not found: {path}; "
                "pass --pretrained_weights FILE or --not_pretrained"
            )
        return path
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    for name in file_names:
        if (folder / name).is_file():
            return folder / name
    looked = ", ".join(str(folder / n) for n in file_names)
    raise FileNotFoundError(
        f"no ImageNet weights for {arch} (looked for {looked}); "
        "pass --pretrained_weights FILE or --not_pretrained"
    )


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file (``torch.save`` or ``.safetensors``), wrappers unwrapped."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"cannot read weights file {path}: {err}") from err
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise ValueError(f"weights file {path} holds a {type(obj).__name__}, not a state_dict")
    # DataParallel / DDP checkpoints carry "module."; a whole dmlbench network carries "backbone."
    # (its "head." keys are skipped by the caller).
    return {
        k.removeprefix("module.").removeprefix("backbone."): v
        for k, v in obj.items()
        if torch.is_tensor(v)
    }


def load_backbone_weights(
    module: nn.Module, path: str | Path, skip_prefixes: Sequence[str], arch: str
) -> None:
    """Copy the tensors of the state_dict at ``path`` into ``module``, all or nothing.

    Keys under ``skip_prefixes`` (the ImageNet classifier) are ignored. Missing keys, unexpected
    keys and shape mismatches raise ``ValueError`` naming a few of each. BatchNorm
    ``num_batches_tracked`` may be absent (checkpoints older than PyTorch 0.4.1), and a tensor
    whose shape differs only by singleton dimensions (old BN-Inception ports store ``(1, C)``) is
    reshaped.
    """
    path = Path(path)
    source = {
        k: v
        for k, v in read_state_dict(path).items()
        if not any(k.startswith(p) for p in skip_prefixes)
    }
    target = module.state_dict()
    missing = [k for k in target if k not in source and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in source if k not in target]
    wrong = []
    for k in set(source) & set(target):
        s, t = source[k], target[k]
        if s.shape != t.shape:
            if s.numel() == t.numel() and s.squeeze().shape == t.squeeze().shape:
                source[k] = s.reshape(t.shape)
            else:
                wrong.append(f"{k} {tuple(s.shape)} vs {tuple(t.shape)}")
    if missing or unexpected or wrong:
        parts = [
            f"{len(v)} {what} (e.g. {', '.join(sorted(v)[:3])})"
            for what, v in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches", wrong),
            )
            if v
        ]
        raise ValueError(f"weights file {path} does not fit {arch}: " + "; ".join(parts))
    module.load_state_dict(source, strict=False)  # strictness was checked above
