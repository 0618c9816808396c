"""``python -m export``: ONNX (onnxruntime, CPU) and TorchScript give PyTorch's embeddings within
1e-4 on batches of several sizes; the preprocessing spec is written beside and inside the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import main
from architectures import build_model
from architectures.saved import SavedModel
from export import export
from export.__main__ import main as export_main

BATCHES = (1, 3, 8)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    argv = [
        "--dataset",
        "glyphs",
        "--source_path",
        str(root / "data"),
        "--dataset_glyphs_n_classes",
        "16",
        "--dataset_glyphs_per_class",
        "6",
        "--save_path",
        str(root / "runs"),
        "--project",
        "p",
        "--group",
        "g",
        "--arch",
        "smallnet_normalize",
        "--arch_smallnet_width",
        "8",
        "--not_pretrained",
        "--embed_dim",
        "12",
        "--bs",
        "16",
        "--samples_per_class",
        "4",
        "--n_epochs",
        "1",
        "--iters_per_epoch",
        "2",
        "--kernels",
        "0",
        "--no_train_metrics",
        "--evaluation_metrics",
        "e_recall@1",
    ]
    assert main.main(argv) == 0
    return root / "runs" / "p" / "g_s1" / "checkpoints" / "best.pt"


def _reference(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(x).numpy()


def _check_onnx(path: Path, model: torch.nn.Module, shape: tuple[int, int, int]) -> dict:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b in BATCHES:
        x = torch.rand(b, *shape, generator=torch.Generator().manual_seed(b))
        got = session.run(["embeddings"], {"images": x.numpy()})[0]
        assert got.shape == (b, model.head.out_features)
        np.testing.assert_allclose(got, _reference(model, x), atol=1e-4, rtol=0)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return json.loads(meta["preprocessing"])


def _check_torchscript(path: Path, model: torch.nn.Module, shape: tuple[int, int, int]) -> dict:
    files = {"preprocessing.json": ""}
    scripted = torch.jit.load(str(path), _extra_files=files)
    for b in BATCHES:
        x = torch.rand(b, *shape, generator=torch.Generator().manual_seed(10 + b))
        with torch.no_grad():
            got = scripted(x).numpy()
        np.testing.assert_allclose(got, _reference(model, x), atol=1e-4, rtol=0)
    return json.loads(files["preprocessing.json"])


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_cli_export_matches_pytorch_with_dynamic_batch(run, tmp_path, fmt, capsys):
    out = tmp_path / f"model.{'onnx' if fmt == 'onnx' else 'pt'}"
    assert export_main(["--checkpoint", str(run), "--format", fmt, "--out", str(out)]) == 0
    assert "written" in capsys.readouterr().out
    from architectures.saved import load_saved_model

    model = load_saved_model(run).model
    check = _check_onnx if fmt == "onnx" else _check_torchscript
    inside = check(out, model, (1, 32, 32))
    beside = json.loads(out.with_name(out.name + ".preprocessing.json").read_text())
    assert inside == beside
    spec = beside["input"]
    assert (spec["size"], spec["resize"], spec["channels"], spec["channel_order"]) == (
        32,
        32,
        1,
        "L",
    )
    assert spec["mean"] == [0.5] and spec["std"] == [0.5] and spec["layout"] == "NCHW"
    assert beside["output"] == {
        "name": "embeddings",
        "layer": "head",
        "dim": 12,
        "l2_normalized": True,
    }


def test_pretrained_efficientnet_lite0_exports_to_both(tmp_path):
    torch.manual_seed(0)
    model = build_model(
        "efficientnet_lite0_frozen_normalize", embed_dim=8, pretrained=True, image_size=64
    ).eval()
    saved = SavedModel(
        model, {"arch": "efficientnet_lite0_frozen_normalize"}, tmp_path, tmp_path / "best.pt", 3
    )
    onnx_path, spec_path = export(saved, "onnx", tmp_path / "lite0.onnx")
    spec = _check_onnx(onnx_path, model, (3, 64, 64))
    assert spec["input"]["channel_order"] == "RGB" and spec["input"]["resize"] == 73
    assert spec["epoch"] == 3 and spec_path.is_file()
    ts_path, _ = export(saved, "torchscript", tmp_path / "lite0.pt")
    _check_torchscript(ts_path, model, (3, 64, 64))
    pooled, _ = export(saved, "torchscript", tmp_path / "pooled.pt", layer="pooled")
    assert torch.jit.load(str(pooled))(torch.rand(2, 3, 64, 64)).shape == (2, 1280)


def test_bad_checkpoint_fails_in_one_line(tmp_path, capsys):
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    assert (
        export_main(
            [
                "--checkpoint",
                str(tmp_path / "x.pt"),
                "--format",
                "onnx",
                "--out",
                str(tmp_path / "m.onnx"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("export: error:")
