"""``cars196``: Stanford Cars (Krause et al., "3D Object Representations for Fine-Grained
Categorization", ICCV Workshops 2013) in the zero-shot DML split of Oh Song et al. (CVPR 2016), as
used by RevisitDML (Roth et al., ICML 2020): classes 1–98 train, 99–196 test.

Layout: ``<source_path>/cars196/images/<class name>/*.jpg``. As in the original, classes are ordered
by folder name; this equals the official class-id order only for folder names that sort that way
(the authors' tarball does). Deviation: any number of class folders is accepted.
"""

from __future__ import annotations

from datasets.base import DATASETS, DatasetSource, Split
from datasets.class_folders import class_folder_splits


@DATASETS.register("cars196")
class Cars196(DatasetSource):
    """Stanford Cars: first 98 classes train, last 98 test (folders in name order)."""

    def __init__(self, root: str):
        self.root = root

    def load(self) -> dict[str, Split]:
        return class_folder_splits(self.root, "cars196", str)
