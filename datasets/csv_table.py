"""``csv``: any image retrieval set described by one table, in the format of Open Metric Learning
(OML-Team, open-metric-learning, ``oml/utils/dataframe_format.py``).

Columns: ``label``, ``path`` (relative to the images root), ``split`` (``train`` / ``validation``),
``is_query``, ``is_gallery``; optional ``category`` and an optional bounding box
``x_1, x_2, y_1, y_2`` (all four, pixels; empty cells mean the whole image). ``train`` rows train;
``validation`` rows are the test split, queried against the gallery rows (a row may be both).
Deviations: the optional ``sequence`` column is not supported; categories are numbered in sorted
order (names in ``info``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from datasets.base import DATASETS, DatasetError, DatasetSource, Split

REQUIRED = ["label", "path", "split", "is_query", "is_gallery"]
BBOX = ["x_1", "x_2", "y_1", "y_2"]


def _as_bool(column: pd.Series, name: str, table: Path) -> np.ndarray:
    text = column.astype(str).str.strip().str.lower()
    ok = text.isin(["1", "0", "true", "false", "1.0", "0.0"])
    if not ok.all():
        rows = (np.flatnonzero(~ok.to_numpy()) + 2).tolist()[:10]
        raise DatasetError(
            f"csv {table}: column {name} must be 0/1 or True/False (bad rows {rows})"
        )
    return text.isin(["1", "true", "1.0"]).to_numpy()


@DATASETS.register("csv")
class CSVDataset(DatasetSource):
    """A dataset given as an OML-style CSV table (label, path, split, is_query, is_gallery, ...).

    Args:
        file: the CSV file, relative to the images root unless absolute.
        images_root: folder the ``path`` column is relative to ("" means --source_path).
    """

    def __init__(self, root: str, file: str = "df.csv", images_root: str = ""):
        self.base = Path(images_root or root)
        self.table = Path(file) if Path(file).is_absolute() else self.base / file

    def load(self) -> dict[str, Split]:
        table = self.table
        layout = (
            f"expected a CSV with columns {', '.join(REQUIRED)} [, category] [, {', '.join(BBOX)}]"
        )
        if not table.is_file():
            raise DatasetError(f"dataset 'csv': {table} not found; {layout}")
        df = pd.read_csv(table)
        missing = [c for c in REQUIRED if c not in df.columns]
        partial_box = [c for c in BBOX if c not in df.columns]
        if missing or 0 < len(partial_box) < len(BBOX):
            raise DatasetError(
                f"csv {table}: missing columns {', '.join(missing + partial_box)}; {layout}"
            )
        bad = sorted(set(df["split"]) - {"train", "validation"})
        if bad:
            raise DatasetError(f"csv {table}: split must be 'train' or 'validation', found {bad}")
        labels = df["label"].to_numpy()
        integer = np.issubdtype(labels.dtype, np.integer)
        labels = labels.astype(np.int64) if integer else labels.astype(str)
        info = {"dataset": "csv", "table": str(table)}
        categories = None
        if "category" in df.columns:
            names, categories = np.unique(
                df["category"].astype(str).to_numpy(), return_inverse=True
            )
            categories = categories.astype(np.int64).reshape(-1)
            info["category_names"] = names.tolist()
        boxes = None
        if not partial_box:
            box = df[["x_1", "y_1", "x_2", "y_2"]].to_numpy(float)
            boxes = np.where(np.isnan(box).any(axis=1, keepdims=True), -1, box).astype(np.int64)
        whole = Split(
            labels=labels,
            paths=[str(self.base / p) for p in df["path"]],
            boxes=boxes,
            categories=categories,
            info=info,
        )
        train = np.flatnonzero((df["split"] == "train").to_numpy())
        test = np.flatnonzero((df["split"] == "validation").to_numpy())
        val = df.iloc[test]
        return {
            "train": whole.subset(train),
            "test": whole.subset(test).with_masks(
                _as_bool(val["is_query"], "is_query", table),
                _as_bool(val["is_gallery"], "is_gallery", table),
            ),
        }
