"""Ship a trained embedding model: ONNX or TorchScript, with its preprocessing spec in JSON.

    python -m export --checkpoint RUN/checkpoints/best.pt --format onnx --out model.onnx

The exported graph maps a float32 batch ``images: (B, C, S, S)``, already preprocessed, to
``embeddings: (B, D)`` (unit length when the run's arch has ``_normalize``); the batch axis is
dynamic. The preprocessing spec (:func:`preprocessing_spec`) says how to get from an image file to
that input, exactly as dmlbench's evaluation transforms do: resize the shorter side to ``resize``,
centre-crop ``size``, scale to [0, 1], subtract ``mean`` and divide by ``std`` per RGB channel, and
reverse the channels when ``channel_order`` is BGR (BN-Inception). It is written beside the model
(``<out>.preprocessing.json``) and embedded in it (ONNX ``metadata_props`` key ``preprocessing``;
TorchScript extra file ``preprocessing.json``), so a deployed file explains itself.

ONNX uses PyTorch's TorchScript-based exporter (``dynamo=False``: the dynamo exporter needs
``onnxscript``, which dmlbench does not install); TorchScript uses tracing (the networks have no
data-dependent control flow). The tests check both against PyTorch within 1e-4 on batches of
several sizes.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from architectures.saved import SavedModel

FORMATS = ("onnx", "torchscript")


class Embedder(nn.Module):
    """The network's output at one layer (``head``: the embedding; ``pooled``: the backbone
    features), as a plain ``forward`` for export."""

    def __init__(self, model: nn.Module, layer: str = "head"):
        super().__init__()
        self.model, self.layer = model, layer

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.layer == "head":
            return self.model(images)
        return self.model.represent(images, self.layer)


def preprocessing_spec(saved: SavedModel, layer: str) -> dict[str, Any]:
    """What an exported model expects and returns (JSON-ready)."""
    spec = saved.model.image_spec
    describe = saved.model.describe()
    return {
        "input": {
            "name": "images",
            "layout": "NCHW",
            "dtype": "float32",
            "channels": spec.channels,
            "size": spec.size,
            "resize": spec.eval_resize,
            "channel_order": "BGR" if spec.bgr_255 else ("RGB" if spec.channels == 3 else "L"),
            "mean": list(spec.mean),
            "std": list(spec.std),
            "steps": [
                f"resize the shorter side to {spec.eval_resize} (antialiased bilinear)",
                f"centre-crop {spec.size}x{spec.size}",
                "scale pixel values to [0, 1] (uint8 / 255)",
                "per channel, in RGB order: (x - mean) / std",
                *(["reverse the channel order (RGB -> BGR)"] if spec.bgr_255 else []),
            ],
        },
        "output": {
            "name": "embeddings",
            "layer": layer,
            "dim": describe["embed_dim"] if layer == "head" else describe["feature_dim"],
            "l2_normalized": bool(saved.model.normalize),
        },
        "arch": saved.config.get("arch"),
        "checkpoint": str(saved.checkpoint),
        "epoch": saved.epoch,
        "dataset": saved.config.get("dataset"),
    }


def export(
    saved: SavedModel, fmt: str, out: str | Path, layer: str | None = None, opset: int = 17
) -> tuple[Path, Path]:
    """Write the model to ``out`` and its spec to ``<out>.preprocessing.json``."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r} is not supported; choose one of: {', '.join(FORMATS)}")
    layer = layer or saved.config.get("eval_layer", "head")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    module = Embedder(saved.model.eval(), layer).eval()
    spec = preprocessing_spec(saved, layer)
    spec_text = json.dumps(spec, indent=1)
    example = torch.rand(2, spec["input"]["channels"], spec["input"]["size"], spec["input"]["size"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' deprecation notices, not ours to fix
        if fmt == "onnx":
            torch.onnx.export(
                module,
                (example,),
                str(out),
                input_names=["images"],
                output_names=["embeddings"],
                opset_version=opset,
                dynamo=False,
                dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
            )
            import onnx

            proto = onnx.load(str(out))
            entry = proto.metadata_props.add()
            entry.key, entry.value = "preprocessing", spec_text
            onnx.save(proto, str(out))
        else:
            with torch.no_grad():
                traced = torch.jit.trace(module, example)
            torch.jit.save(traced, str(out), _extra_files={"preprocessing.json": spec_text})
    spec_path = out.with_name(out.name + ".preprocessing.json")
    spec_path.write_text(spec_text + "\n")
    return out, spec_path
