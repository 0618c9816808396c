"""Images per second of the training data pipeline (DataLoader with workers, train transforms).

Measures the built-in ``glyphs`` set (its one-off generation time too) and a generated folder set in
the CUB200 layout (JPEGs). Run:
``.venv/bin/python benchmarks/bench_data_pipeline.py [--workers 2]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import parameters
from architectures.base import ImageSpec
from datasets import build_splits
from datasets.glyphs import Glyphs


def throughput(dataset, batch_size: int, workers: int, batches: int) -> float:
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
    )
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        try:
            images, _, _ = next(it)
        except StopIteration:
            it = iter(loader)
            images, _, _ = next(it)
        n += len(images)
    return n / (time.perf_counter() - start)


def make_folder_set(root: Path, classes: int, per_class: int, side: int) -> None:
    rng = np.random.default_rng(0)
    for k in range(classes):
        folder = root / "cub200" / "images" / f"{k + 1:03d}.class_{k}"
        folder.mkdir(parents=True)
        for j in range(per_class):
            arr = rng.integers(0, 255, (side, side * 4 // 3, 3), dtype=np.uint8)
            Image.fromarray(arr).save(folder / f"{j}.jpg", quality=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bs", type=int, default=112)
    ap.add_argument("--batches", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        arrays = Glyphs(tmp).arrays()
        n_classes, per = len(arrays["codepoints"]), int(np.bincount(arrays["labels"]).min())
        print(
            f"glyphs generation (default flags): {time.perf_counter() - start:.1f} s, "
            f"{n_classes} classes x {per} instances, {len(arrays['font_names'])} fonts"
        )
        for spec, aug in (
            (ImageSpec(size=32, channels=1, mean=(0.5,), std=(0.5,)), "base"),
            (ImageSpec(size=224), "base"),
            (ImageSpec(size=224), "adv"),
        ):
            opt = parameters.namespace(dataset="glyphs", source_path=tmp, augmentation=aug)
            train = build_splits(opt, spec)["train"]
            ips = throughput(train, args.bs, args.workers, args.batches)
            print(f"glyphs  size {spec.size:3d} ch {spec.channels} {aug:4s}: {ips:8.0f} images/s")
        make_folder_set(Path(tmp), classes=20, per_class=30, side=300)
        for aug in ("base", "adv"):
            opt = parameters.namespace(dataset="cub200", source_path=tmp, augmentation=aug)
            start = time.perf_counter()
            train = build_splits(opt, ImageSpec(size=224))["train"]
            build = time.perf_counter() - start
            ips = throughput(train, args.bs, args.workers, max(args.batches // 5, 3))
            print(
                f"folder  (JPEG 400x300, size 224) {aug:4s}: {ips:8.0f} images/s "
                f"(build_splits with file scan: {build:.2f} s for 600 files)"
            )
    print(f"workers={args.workers} bs={args.bs} torch threads={torch.get_num_threads()}")


if __name__ == "__main__":
    main()
