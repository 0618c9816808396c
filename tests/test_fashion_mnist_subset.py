"""``--dataset_fashion_mnist_per_class N`` keeps the first N images of each class."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from datasets import DATASETS, DatasetError


def _idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">i4").tobytes()
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_per_class_keeps_the_first_images_of_every_class(tmp_path):
    labels = np.tile(np.arange(10), 6)  # 6 images per class, interleaved
    images = np.arange(60, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    for part, (imgs, labs) in {
        "train": (images[:40], labels[:40]),
        "t10k": (images[40:], labels[40:]),
    }.items():
        _idx(tmp_path / f"{part}-images-idx3-ubyte.gz", imgs)
        _idx(tmp_path / f"{part}-labels-idx1-ubyte.gz", labs)
    opt = {"dataset_fashion_mnist_path": str(tmp_path), "dataset_fashion_mnist_per_class": 2}
    splits = DATASETS.build("fashion_mnist", opt, root="unused", seed=0).load()
    assert np.bincount(splits["train"].labels).tolist() == [2] * 5
    assert np.bincount(splits["test"].labels, minlength=10).tolist() == [0] * 5 + [2] * 5
    # the first two of class 7 are images 7 and 17
    assert splits["test"].images[splits["test"].labels == 7][:, 0, 0].tolist() == [7, 17]
    full = DATASETS.build(
        "fashion_mnist", {"dataset_fashion_mnist_path": str(tmp_path)}, root="unused", seed=0
    ).load()
    assert len(full["train"]) + len(full["test"]) == 60
    with pytest.raises(DatasetError, match="per_class must be >= 0"):
        DATASETS.build("fashion_mnist", {"dataset_fashion_mnist_per_class": -1}, root="x", seed=0)
