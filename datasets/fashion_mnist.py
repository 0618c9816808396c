"""``fashion_mnist``: Fashion-MNIST (Xiao, Rasul & Vollgraf, "Fashion-MNIST: a Novel Image Dataset
for Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017) as a small zero-shot DML set.

All 70,000 images (the official train and t10k files together); classes 0–4 (T-shirt, trouser,
pullover, dress, coat) train, classes 5–9 (sandal, shirt, sneaker, bag, ankle boot) test — the
class-disjoint split of the DML benchmarks, not the paper's classification split. Files are IDX
(``train-images-idx3-ubyte`` …), gzipped or raw, looked for in ``--dataset_fashion_mnist_path``,
else ``<source_path>/fashion_mnist``, else Debian's ``dataset-fashion-mnist`` folder
(``/usr/share/datasets/fashion-mnist``) or any ``/usr/share/*fashion*mnist*`` folder. Flips are kept
(clothes are mirror-symmetric); crops are mild (28 pixels).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from datasets.base import DATASETS, DatasetError, DatasetSource, Split

DEBIAN_FOLDER = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
#: The ten classes, in label order (Xiao et al. 2017, Table 1).
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (gzip or raw): magic 0x0000 | dtype byte | rank byte, rank big-endian int32
    dims."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _DTYPES:
        raise DatasetError(f"{path} is not an IDX file")
    rank = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, ">i4", rank, offset=4))
    body = np.frombuffer(data, _DTYPES[data[2]], offset=4 + 4 * rank)
    if body.size != int(np.prod(shape)):
        raise DatasetError(f"{path}: IDX header says {shape} but holds {body.size} values")
    return body.reshape(shape)


@DATASETS.register("fashion_mnist")
class FashionMNIST(DatasetSource):
    """Fashion-MNIST, classes 0-4 train, 5-9 test (all 70k images).

    Args:
        path: folder with the IDX files ("" looks in <source_path>/fashion_mnist, then
            /usr/share/datasets/fashion-mnist, then /usr/share/*fashion*mnist*).
        per_class: keep only the first N images of each class (0: all 7,000), for small budgets
            (the ImageNet nets are slow on a CPU).
    """

    min_crop_scale = 0.5

    def __init__(self, root: str, path: str = "", per_class: int = 0):
        if per_class < 0:
            raise DatasetError(f"fashion_mnist: per_class must be >= 0 (0: all), got {per_class}")
        self.per_class = per_class
        guesses = (
            [Path(path)]
            if path
            else [
                Path(root) / "fashion_mnist",
                DEBIAN_FOLDER,
                *sorted(Path("/usr/share").glob("*fashion*mnist*")),
            ]
        )
        self.folders = guesses

    def _find(self, stem: str) -> Path | None:
        for folder in self.folders:
            for name in (stem, stem + ".gz"):
                hits = sorted(folder.rglob(name)) if folder.is_dir() else []
                if hits:
                    return hits[0]
        return None

    def load(self) -> dict[str, Split]:
        stems = [s for pair in FILES.values() for s in pair]
        found = {s: self._find(s) for s in stems}
        if not all(found.values()):
            missing = [s for s, p in found.items() if p is None]
            raise DatasetError(
                f"fashion_mnist: {', '.join(missing)} (raw or .gz) not found in "
                f"{', '.join(map(str, self.folders))}; set --dataset_fashion_mnist_path"
            )
        images = np.concatenate([read_idx(found[FILES[k][0]]) for k in FILES]).astype(np.uint8)
        labels = np.concatenate([read_idx(found[FILES[k][1]]) for k in FILES]).astype(np.int64)
        if images.ndim != 3 or len(images) != len(labels):
            raise DatasetError(
                f"fashion_mnist: images {images.shape} and labels {labels.shape} differ"
            )
        if self.per_class:
            keep = np.concatenate(
                [np.flatnonzero(labels == c)[: self.per_class] for c in np.unique(labels)]
            )
            keep.sort()
            images, labels = images[keep], labels[keep]
        info = {
            "dataset": "fashion_mnist",
            "per_class": self.per_class,
            "files": {s: str(p) for s, p in found.items()},
        }
        names = dict(enumerate(CLASS_NAMES))
        return {
            "train": Split(
                labels=labels[labels < 5], images=images[labels < 5], info=info, class_names=names
            ),
            "test": Split(
                labels=labels[labels >= 5], images=images[labels >= 5], info=info, class_names=names
            ),
        }
