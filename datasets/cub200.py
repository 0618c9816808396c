"""``cub200``: CUB200-2011 (Wah et al., "The Caltech-UCSD Birds-200-2011 Dataset", Caltech tech.
report CNS-TR-2011-001, 2011) in the zero-shot DML split of Oh Song et al. (CVPR 2016), as used by
RevisitDML (Roth et al., ICML 2020): classes 1–100 train, 101–200 test.

Layout: ``<source_path>/cub200/images/<NNN.Class_Name>/*.jpg``. Classes are ordered by their numeric
prefix, as in the original. Deviation: any number of class folders is accepted (a subset for quick
runs); the split is always the first half by class id.
"""

from __future__ import annotations

from datasets.base import DATASETS, DatasetError, DatasetSource, Split
from datasets.class_folders import class_folder_splits


def _class_id(folder: str) -> int:
    try:
        return int(folder.split(".", 1)[0])
    except ValueError:
        raise DatasetError(
            f"cub200 class folder {folder!r} does not start with its number ('NNN.Class_Name')"
        ) from None


@DATASETS.register("cub200")
class CUB200(DatasetSource):
    """CUB200-2011 birds: first 100 classes train, last 100 test."""

    def __init__(self, root: str):
        self.root = root

    def load(self) -> dict[str, Split]:
        return class_folder_splits(self.root, "cub200", _class_id)
