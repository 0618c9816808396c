"""Reading image files, and the up-front scan that makes bad data fail before training.

RevisitDML (Roth et al., ICML 2020) opened images lazily with PIL, so a missing or corrupt file
stopped a run mid-epoch. Here every file of every split is checked once when the splits are built —
exists, non-empty, a header PIL recognises, and for JPEG/PNG the end-of-image marker (a cheap test
for truncated downloads) — and all bad files are listed in one error. Files are decoded with PIL
(torchvision's decoders are deprecated since 0.29) straight into uint8 tensors.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datasets.base import DatasetError, Split

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_TRAILERS = {".jpg": b"\xff\xd9", ".jpeg": b"\xff\xd9", ".png": b"IEND\xaeB`\x82"}


def is_image(path: Path) -> bool:
    """An image file by suffix; hidden files (macOS ``._*`` forks) are not images."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def problem(path: str) -> str | None:
    """Why ``path`` is unreadable, or None."""
    p = Path(path)
    try:
        if not p.is_file():
            return "missing"
        if p.stat().st_size == 0:
            return "empty"
        with Image.open(p) as img:
            _ = img.size
        trailer = _TRAILERS.get(p.suffix.lower())
        if trailer:
            with open(p, "rb") as f:
                f.seek(max(p.stat().st_size - 64, 0))
                if trailer not in f.read():
                    return "truncated"
    except Exception as e:
        return f"unreadable ({type(e).__name__})"
    return None


def scan(paths: list[str], what: str, workers: int = 8, show: int = 20) -> None:
    """Raise one ``DatasetError`` listing every bad file among ``paths``."""
    with ThreadPoolExecutor(workers) as pool:
        problems = list(pool.map(problem, paths, chunksize=256))
    bad = [f"{p} ({why})" for p, why in zip(paths, problems) if why]
    if bad:
        more = f" … and {len(bad) - show} more" if len(bad) > show else ""
        raise DatasetError(
            f"{what}: {len(bad)} of {len(paths)} image files cannot be used: "
            + "; ".join(bad[:show])
            + more
        )


def read_image(path: str, box: np.ndarray | None = None) -> torch.Tensor:
    """(3, H, W) uint8 RGB, cropped to ``box`` = x_1, y_1, x_2, y_2 when given (and not -1)."""
    with Image.open(path) as img:
        if box is not None and box[0] >= 0:
            img = img.crop(tuple(int(v) for v in box))
        arr = np.asarray(img.convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def read_item(split: Split, i: int) -> torch.Tensor:
    """Item ``i`` of ``split`` as uint8 (C, H, W), from its array or its file."""
    if split.images is not None:
        arr = torch.from_numpy(split.images[i])
        return arr.unsqueeze(0) if arr.ndim == 2 else arr.permute(2, 0, 1)
    return read_image(split.paths[i], None if split.boxes is None else split.boxes[i])
