"""The ``<root>/<dataset>/images/<class>/<image>`` layout of CUB200-2011 and CARS196.

RevisitDML (Roth et al., ICML 2020) and the papers it follows (Oh Song et al., "Deep Metric Learning
via Lifted Structured Feature Embedding", CVPR 2016) train on the first half of the classes and test
on the second half, by class id. Hidden files (macOS ``._*`` forks) are skipped. Deviation: a
missing or mis-laid folder fails with a message naming the expected layout, and labels are
re-indexed per split (``build_splits``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from datasets.base import DatasetError, Split
from datasets.image_files import is_image


def class_folder_splits(
    root: str, name: str, class_key: Callable[[str], object]
) -> dict[str, Split]:
    """``{"train", "test"}``: classes sorted by ``class_key(folder name)``, first half train."""
    images = Path(root) / name / "images"
    layout = f"expected {images}/<class folder>/<image files>"
    if not images.is_dir():
        raise DatasetError(f"dataset {name!r} not found: {layout}")
    folders = sorted(
        (d for d in images.iterdir() if d.is_dir() and not d.name.startswith(".")),
        key=lambda d: class_key(d.name),
    )
    if len(folders) < 2:
        raise DatasetError(
            f"dataset {name!r}: found {len(folders)} class folders in {images}, "
            f"expected at least 2; {layout}"
        )
    paths, labels = [], []
    for k, folder in enumerate(folders):
        files = sorted(p for p in folder.iterdir() if p.is_file() and is_image(p))
        if not files:
            raise DatasetError(f"dataset {name!r}: class folder {folder} holds no images; {layout}")
        paths += [str(p) for p in files]
        labels += [k] * len(files)
    labels = np.asarray(labels, np.int64)
    whole = Split(
        labels=labels,
        paths=paths,
        class_names={k: d.name for k, d in enumerate(folders)},
        info={"dataset": name, "root": str(images)},
    )
    half = len(folders) // 2
    return {
        "train": whole.subset(np.flatnonzero(labels < half)),
        "test": whole.subset(np.flatnonzero(labels >= half)),
    }
