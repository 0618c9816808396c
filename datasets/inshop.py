"""``inshop``: DeepFashion In-Shop Clothes Retrieval (Liu et al., "DeepFashion: Powering Robust
Clothes Recognition and Retrieval with Rich Annotations", CVPR 2016), official partition: 3,997
train items (25,882 images); test = 14,218 query and 12,612 gallery images of 3,985 items.

Layout: ``<source_path>/inshop/list_eval_partition.txt`` (a count line, a header line
``image_name item_id evaluation_status``, then one row per image with status train/query/gallery)
and the images at ``<source_path>/inshop/<image_name>`` (``img/WOMEN/Dresses/id_…/…jpg``). The test
split holds query and gallery images with ``is_query`` / ``is_gallery`` masks; ``categories`` are
the clothing types (``WOMEN/Dresses``), numbered in sorted order. Not in RevisitDML; it follows the
MLRC (Musgrave et al., ECCV 2020) and OML conventions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from datasets.base import DATASETS, DatasetError, DatasetSource, Split

COLUMNS = ["image_name", "item_id", "evaluation_status"]


@DATASETS.register("inshop")
class InShop(DatasetSource):
    """DeepFashion In-Shop: train items, and query/gallery test items; clothing types as categories."""  # noqa: E501 - --help shows only this first line

    def __init__(self, root: str):
        self.base = Path(root) / "inshop"

    def load(self) -> dict[str, Split]:
        table = self.base / "list_eval_partition.txt"
        layout = (
            f"expected {table} (count line, header '{' '.join(COLUMNS)}', rows with status "
            f"train/query/gallery) and images at {self.base}/<image_name>"
        )
        if not table.is_file():
            raise DatasetError(f"dataset 'inshop': {table} not found; {layout}")
        df = pd.read_csv(table, sep=r"\s+", skiprows=1)
        status = set(df.get("evaluation_status", pd.Series(dtype=str)))
        if list(df.columns) != COLUMNS or not status <= {"train", "query", "gallery"}:
            raise DatasetError(f"dataset 'inshop': {table} is not in the expected format; {layout}")
        types = df["image_name"].str.split("/").str[1:3].str.join("/")
        type_names, categories = np.unique(types.to_numpy(str), return_inverse=True)
        item_names, labels = np.unique(df["item_id"].to_numpy(str), return_inverse=True)
        info = {"dataset": "inshop", "table": str(table), "category_names": type_names.tolist()}
        whole = Split(
            labels=labels.astype(np.int64).reshape(-1),
            paths=[str(self.base / p) for p in df["image_name"]],
            categories=categories.astype(np.int64).reshape(-1),
            is_query=(df["evaluation_status"] == "query").to_numpy(),
            is_gallery=(df["evaluation_status"] == "gallery").to_numpy(),
            class_names=dict(enumerate(item_names.tolist())),
            info=info,
        )
        train = np.flatnonzero(df["evaluation_status"] == "train")
        test = np.flatnonzero(df["evaluation_status"] != "train")
        return {"train": whole.subset(train).with_masks(None, None), "test": whole.subset(test)}
