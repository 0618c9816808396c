"""``online_products``: Stanford Online Products (Oh Song et al., "Deep Metric Learning via Lifted
Structured Feature Embedding", CVPR 2016) with its official split, as in RevisitDML (Roth et al.,
ICML 2020): 11,318 training classes (59,551 images), 11,316 test classes (60,502 images).

Layout: ``<source_path>/online_products/Info_Files/Ebay_train.txt`` and ``Ebay_test.txt`` (header
``image_id class_id super_class_id path``), images at
``<source_path>/online_products/images/<path>``. The 12 super-classes become ``categories``
(0-based). Deviation: the original ignored its ``datapath`` argument and read ``opt.source_path``;
here the root is the one given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from datasets.base import DATASETS, DatasetError, DatasetSource, Split

COLUMNS = ["image_id", "class_id", "super_class_id", "path"]


@DATASETS.register("online_products")
class OnlineProducts(DatasetSource):
    """Stanford Online Products, official train/test files; super-classes as categories."""

    def __init__(self, root: str):
        self.base = Path(root) / "online_products"

    def _read(self, split: str) -> Split:
        table = self.base / "Info_Files" / f"Ebay_{split}.txt"
        layout = (
            f"expected {self.base}/Info_Files/Ebay_train.txt and Ebay_test.txt "
            f"(columns {' '.join(COLUMNS)}) and images under {self.base}/images/"
        )
        if not table.is_file():
            raise DatasetError(f"dataset 'online_products': {table} not found; {layout}")
        df = pd.read_csv(table, sep=r"\s+")
        if list(df.columns) != COLUMNS:
            raise DatasetError(
                f"dataset 'online_products': {table} has columns {list(df.columns)}; {layout}"
            )
        images = self.base / "images"
        return Split(
            labels=df["class_id"].to_numpy(np.int64) - 1,
            paths=[str(images / p) for p in df["path"]],
            categories=df["super_class_id"].to_numpy(np.int64) - 1,
            info={"dataset": "online_products", "table": str(table)},
        )

    def load(self) -> dict[str, Split]:
        return {"train": self._read("train"), "test": self._read("test")}
