"""The input pipeline: decoded cache and device decoding give what the file pipeline gives.

Exactly the same tensors where the route only moves work (cache as decoded; decode_jpeg on the
CPU), the same eval output and the same crop statistics where the cache stores resized images.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import parameters
from architectures.base import ImageSpec
from datasets import DatasetError, build_splits
from datasets.decoded_cache import DecodedCache, cache_key, use_decoded_cache
from datasets.pipeline import DeviceDecodeLoader, make_loader

SPEC = ImageSpec(size=24, resize=28)
CPU = torch.device("cpu")


def _smooth_jpeg(path: Path, rng: np.random.Generator, w: int, h: int) -> None:
    """Low-frequency colour fields with mild noise: resampling changes their statistics little."""
    small = Image.fromarray(rng.integers(0, 255, (3, 4, 3), dtype=np.uint8))
    arr = np.asarray(small.resize((w, h), Image.BICUBIC), dtype=np.int16)
    arr = np.clip(arr + rng.integers(-8, 9, arr.shape), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path, quality=92)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    for k in range(4):
        folder = root / "cub200" / "images" / f"{k + 1:03d}.bird_{k}"
        folder.mkdir(parents=True)
        for j in range(5):
            _smooth_jpeg(folder / f"{j}.jpg", rng, 48 + 4 * j, 36 + 2 * k)
    return root


def _splits(root: Path, augmentation: str = "base") -> dict:
    opt = parameters.namespace(dataset="cub200", source_path=str(root), augmentation=augmentation)
    return build_splits(opt, SPEC)


def _items(ds, seed: int, repeats: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.stack([ds[i][0] for _ in range(repeats) for i in range(len(ds))])


def test_cache_as_decoded_gives_identical_items(tree, tmp_path):
    plain, cached = _splits(tree), _splits(tree)
    use_decoded_cache(cached, "cub200", tmp_path)
    assert cached["train"]._read.__self__ is cached["train_eval"]._read.__self__  # one cache
    for name in ("train", "train_eval", "test"):
        assert torch.equal(_items(cached[name], 3), _items(plain[name], 3)), name
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert len(folders) == 2 and all(f.startswith("cub200_") for f in folders)


def test_cache_is_built_once_and_keyed_by_files_and_side(tree, tmp_path):
    split = _splits(tree)["train"].split
    first = DecodedCache.build("cub200", split, tmp_path)
    stamp = os.stat(first.folder / "pixels.u8").st_mtime_ns
    again = DecodedCache.build("cub200", split, tmp_path)
    assert again.folder == first.folder and os.stat(again.folder / "pixels.u8").st_mtime_ns == stamp
    assert first.nbytes == sum(3 * h * w for _, _, h, w in first.index)
    assert cache_key("cub200", split, 28) != cache_key("cub200", split, 0)
    touched = split.paths[0]
    os.utime(touched, ns=(1, 1))
    assert cache_key("cub200", split, 0) != first.folder.name
    with pytest.raises(ValueError, match=">= 0"):
        DecodedCache.build("cub200", split, tmp_path, short_side=-1)


def test_resized_cache_keeps_eval_exact_and_crop_statistics(tree, tmp_path):
    plain, cached = _splits(tree), _splits(tree)
    use_decoded_cache(cached, "cub200", tmp_path, short_side=28)  # the spec's eval resize
    assert torch.equal(_items(cached["test"], 0), _items(plain["test"], 0))
    # 2,000 random crops each; two seeds of the file pipeline differ by up to ~0.015 here
    a, b = _items(plain["train"], 7, repeats=200), _items(cached["train"], 7, repeats=200)
    assert not torch.equal(a, b)  # the stored images really are smaller
    torch.testing.assert_close(b.mean((0, 2, 3)), a.mean((0, 2, 3)), atol=0.05, rtol=0)
    torch.testing.assert_close(b.std((0, 2, 3)), a.std((0, 2, 3)), atol=0, rtol=0.04)


def test_cache_works_in_loader_workers(tree, tmp_path):
    splits = use_decoded_cache(_splits(tree), "cub200", tmp_path)
    loader = make_loader(splits["test"], workers=2, device=CPU, batch_size=5, shuffle=False)
    images = torch.cat([x for x, _, _ in loader])
    assert torch.equal(images, _items(_splits(tree)["test"], 0))


@pytest.mark.parametrize("augmentation", ["base", "adv"])
def test_device_decoding_gives_the_file_pipeline_batches(tree, augmentation):
    ds = _splits(tree, augmentation)["train"]
    plain = make_loader(ds, workers=0, device=CPU, batch_size=4, shuffle=False)
    moved = make_loader(ds, workers=0, device=CPU, batch_size=4, shuffle=False, gpu_decode=True)
    assert isinstance(moved, DeviceDecodeLoader) and len(moved) == len(plain)
    torch.manual_seed(11)
    want = [(x, y, i) for x, y, i in plain]
    torch.manual_seed(11)  # same random stream: same crops, flips, jitter
    got = list(moved)
    for (x, y, i), (gx, gy, gi) in zip(want, got):
        assert torch.equal(gx, x) and torch.equal(gy, y) and torch.equal(gi, i)


def test_device_decoding_refuses_what_it_cannot_decode(tree, tmp_path):
    ds = _splits(tree)["test"]
    png = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(png)
    ds.split.paths[0] = str(png)
    with pytest.raises(DatasetError, match="needs JPEG files") as err:
        DeviceDecodeLoader(ds, CPU, batch_size=2)
    assert "\n" not in str(err.value)
    with pytest.raises(DatasetError, match="not on RotationClasses"):
        from datasets.rotation_classes import RotationClasses

        DeviceDecodeLoader(RotationClasses(_splits(tree)["train"], 4), CPU, batch_size=2)


def test_loader_options_for_a_gpu_node():
    ds = torch.utils.data.TensorDataset(torch.zeros(4, 1))
    loader = make_loader(
        ds, workers=2, device=torch.device("cuda"), prefetch_factor=6, batch_size=2
    )
    assert loader.pin_memory and loader.persistent_workers and loader.prefetch_factor == 6
    loader = make_loader(ds, workers=0, device=CPU, batch_size=2)
    assert not loader.pin_memory and not loader.persistent_workers
    with pytest.raises(ValueError, match="--prefetch_factor must be >= 1"):
        make_loader(ds, workers=2, device=CPU, prefetch_factor=0, batch_size=2)


def test_main_trains_from_the_decoded_cache(tree, tmp_path, capsys):
    import main

    cache = tmp_path / "cache"
    args = [
        "--dataset",
        "cub200",
        "--source_path",
        str(tree),
        "--decoded_cache",
        str(cache),
        "--save_path",
        str(tmp_path / "runs"),
        "--project",
        "p",
        "--group",
        "g",
        "--arch",
        "smallnet_normalize",
        "--not_pretrained",
        "--embed_dim",
        "8",
        "--image_size",
        "24",
        "--bs",
        "4",
        "--samples_per_class",
        "2",
        "--n_epochs",
        "1",
        "--iters_per_epoch",
        "2",
        "--kernels",
        "0",
        "--evaluation_metrics",
        "e_recall@1",
    ]
    assert main.main(args) == 0
    assert "fp32, NCHW" in capsys.readouterr().out  # the step's settings are logged
    assert len(list(cache.glob("cub200_*/pixels.u8"))) == 2  # train and test, built once


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--gpu_decode", "--decoded_cache", "/dev/shm/x"], "cannot be combined"),
        (["--gpu_decode", "--device", "cpu"], "cannot be combined"),
        (["--prefetch_factor", "0"], "--prefetch_factor must be >= 1"),
        (["--decoded_cache_side", "-1"], "--decoded_cache_side >= 0"),
    ],
)
def test_pipeline_flags_fail_at_parse_time(flags, message, capsys):
    import parameters

    with pytest.raises(SystemExit) as err:
        parameters.parse_args(["--dataset", "glyphs", *flags])
    assert err.value.code == 2 and message in capsys.readouterr().err
