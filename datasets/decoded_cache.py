"""A decoded uint8 copy of a dataset, built once, memory-mapped by every loader worker.

Decoding JPEGs is most of the CPU cost of an image pipeline (a 400×300 JPEG: ~2 ms in PIL, the
random crop from uint8 after it: ~0.5 ms), and it is the same work every epoch. The cache decodes
every image of a split once (threads), streams all pixels into one flat ``pixels.u8`` — with
its ``index.npy`` of (offset, C, H, W) per item — and serves ``read(split, i)`` as a view into a
memory map. Put it in shared memory (``/dev/shm``) and every worker of every rank reads the same
pages of RAM; the random augmentations then run on the cached uint8 exactly as on a decoded file.

Keys: one folder per (dataset, image list with sizes and dates, crop boxes, stored side), so a
changed file, another dataset or another ``--image_size`` never reads stale pixels; folders
appear atomically (built under a temporary name, then renamed), so concurrent ranks may race.

``short_side`` 0 (the default) stores images as decoded: the pipeline's output is bit-identical
to reading the files. ``short_side`` S > 0 stores them resized so the shorter side is S (the
antialiased resize of the eval transform): the eval output stays bit-identical when S is the image
spec's ``resize`` (its Resize is then the identity), and train crops keep the same geometry
distribution (RandomResizedCrop works in fractions of the image) but are resampled from S-sided
images, so they are slightly softer when S is small against the crop. Memory: 3·H·W bytes an image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import v2

from datasets.base import DatasetError, DMLDataset, Split
from datasets.image_files import read_item

FORMAT = 1


def cache_key(name: str, split: Split, short_side: int) -> str:
    """Folder name for ``split``: changes with the files (paths, sizes, dates), boxes and side."""
    h = hashlib.sha1(f"{FORMAT}|{name}|{short_side}|{len(split)}".encode())
    if split.paths is not None:
        for p in split.paths:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    else:
        h.update(np.ascontiguousarray(split.images).tobytes())
    if split.boxes is not None:
        h.update(np.ascontiguousarray(split.boxes).tobytes())
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return f"{safe}_{h.hexdigest()[:16]}"


class DecodedCache:
    """The decoded uint8 images of one split in ``folder``; ``read(split, i)`` -> (C, H, W)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.index = np.load(self.folder / "index.npy")  # (N, 4): offset, C, H, W
        self._pixels: np.ndarray | None = None  # opened in each process

    def __getstate__(self) -> dict:
        return {"folder": self.folder, "index": self.index, "_pixels": None}

    def __len__(self) -> int:
        return len(self.index)

    @property
    def nbytes(self) -> int:
        return int((self.index[:, 1] * self.index[:, 2] * self.index[:, 3]).sum())

    def image(self, i: int) -> torch.Tensor:
        if self._pixels is None:
            self._pixels = np.memmap(self.folder / "pixels.u8", dtype=np.uint8, mode="r")
        offset, c, h, w = (int(v) for v in self.index[i])
        # a copy: the transforms may write in place, and the map is read-only
        return torch.from_numpy(np.array(self._pixels[offset : offset + c * h * w])).view(c, h, w)

    def read(self, split: Split, i: int) -> torch.Tensor:
        """The ``read`` function of :class:`DMLDataset` (``split`` is the one cached)."""
        return self.image(i)

    @classmethod
    def build(
        cls, name: str, split: Split, root: str | Path, short_side: int = 0, workers: int = 8
    ) -> DecodedCache:
        """The cache of ``split`` under ``root``, decoded now unless a folder with its key
        exists."""
        if short_side < 0:
            raise ValueError(f"decoded cache side must be >= 0 (0: as decoded), got {short_side}")
        root = Path(root)
        folder = root / cache_key(name, split, short_side)
        if (folder / "index.npy").is_file():
            return cls(folder)
        resize = v2.Resize(short_side, antialias=True) if short_side else None

        def decode(i: int) -> torch.Tensor:
            img = read_item(split, i)
            return resize(img) if resize is not None else img

        try:
            root.mkdir(parents=True, exist_ok=True)
            tmp = Path(f"{folder}.tmp-{os.getpid()}")
            tmp.mkdir(exist_ok=True)
            index = np.zeros((len(split), 4), dtype=np.int64)
            offset = 0
            # streamed to disk in item order: the cache may be larger than free RAM
            with ThreadPoolExecutor(workers) as pool, open(tmp / "pixels.u8", "wb") as out:
                for i, img in enumerate(pool.map(decode, range(len(split)), chunksize=16)):
                    c, h, w = img.shape
                    index[i] = offset, c, h, w
                    offset += c * h * w
                    out.write(img.contiguous().numpy().tobytes())
            np.save(tmp / "index.npy", index)
            (tmp / "meta.json").write_text(
                json.dumps(
                    {
                        "dataset": name,
                        "items": len(split),
                        "short_side": short_side,
                        "bytes": int(offset),
                        "format": FORMAT,
                    }
                )
            )
            try:
                os.rename(tmp, folder)
            except OSError:  # another process finished first: use its copy
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as err:
            raise DatasetError(
                f"decoded cache {folder}: cannot write ({err.strerror or err}); "
                "choose another --decoded_cache folder with enough space"
            ) from None
        return cls(folder)


def use_decoded_cache(
    splits: dict, name: str, root: str | Path, short_side: int = 0, workers: int = 8
) -> dict:
    """``splits`` with every :class:`DMLDataset` (also inside a rotation wrapper) reading from a
    decoded cache; splits sharing their raw images (``train``, ``train_eval``) share one cache.
    Only file-backed splits are cached: in-memory arrays are already decoded."""
    caches: dict[int, DecodedCache] = {}
    for ds in splits.values():
        base = getattr(ds, "base", ds)
        if not isinstance(base, DMLDataset) or base.split.paths is None:
            continue
        key = id(base.split)
        if key not in caches:
            caches[key] = DecodedCache.build(name, base.split, root, short_side, workers)
        base._read = caches[key].read
    return splits
