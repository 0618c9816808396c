"""The contract every dataset follows.

``DATASETS`` holds dataset sources: registered classes whose ``load()`` returns raw :class:`Split`
records (``"train"`` and ``"test"``; original labels, image arrays or file paths). ``build_splits``
(in ``datasets/__init__.py``) turns them into :class:`DMLDataset` splits: ``train`` (train
transforms), ``train_eval`` (the training images with eval transforms), ``test`` and, with a
validation split, ``val``. A split item is ``(image (C, H, W) float tensor, label int, index int)``.

Deviation from RevisitDML (Roth et al., "Revisiting Training Strategies and Generalization
Performance in Deep Metric Learning", ICML 2020): items are ``(image, label, index)`` instead of
``(label, image, index)``, and labels are always re-indexed to 0..C-1 within a split (the original
kept CUB test labels at 100..199 and shifted SOP validation labels to start at -1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from registry import Registry

DATASETS = Registry("dataset", "dataset")


class DatasetError(RuntimeError):
    """A dataset that is missing, laid out wrongly or unreadable; the message says what was
    expected."""


@dataclass
class Split:
    """One raw split: images (an in-memory array or file paths) and their original labels.

    ``images``: (N, H, W) or (N, H, W, C) uint8; ``paths``: N absolute paths; ``boxes``: (N, 4)
    x_1, y_1, x_2, y_2 crop boxes (-1: whole image); masks and categories: (N,); ``class_names``:
    original label → readable name (folder, character), reported for the classes a split holds.
    """

    labels: np.ndarray
    images: np.ndarray | None = None
    paths: list[str] | None = None
    boxes: np.ndarray | None = None
    categories: np.ndarray | None = None
    is_query: np.ndarray | None = None
    is_gallery: np.ndarray | None = None
    class_names: dict[Any, str] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray, **info: Any) -> Split:
        """The items ``idx`` (in that order), with ``info`` added."""
        pick = lambda a: None if a is None else a[idx]
        return replace(
            self,
            labels=self.labels[idx],
            images=pick(self.images),
            paths=None if self.paths is None else [self.paths[i] for i in idx],
            boxes=pick(self.boxes),
            categories=pick(self.categories),
            is_query=pick(self.is_query),
            is_gallery=pick(self.is_gallery),
            info={**self.info, **info},
        )

    def with_masks(self, is_query: np.ndarray | None, is_gallery: np.ndarray | None) -> Split:
        """The same items with query/gallery masks (None: every item is both)."""
        return replace(self, is_query=is_query, is_gallery=is_gallery)


class DatasetSource:
    """A registered dataset: hyper-parameters in ``__init__``, ``load()`` gives
    ``{"train", "test"}``.

    ``allow_flip`` and ``min_crop_scale`` adapt the training augmentation to the content (a mirrored
    character is another character; a tiny crop of a 28-pixel image is noise).
    """

    allow_flip: bool = True
    min_crop_scale: float = 0.08
    context_params = ("root",)

    def load(self) -> dict[str, Split]:
        raise NotImplementedError


class DMLDataset(Dataset):
    """A split ready for a DataLoader; labels re-indexed to 0..C-1.

    Attributes: ``labels`` (N,) int64, ``categories`` (N,) or None, ``is_query`` / ``is_gallery``
    (N,) bool or None, ``info`` (JSON-serialisable), ``n_classes``.
    """

    def __init__(
        self,
        split: Split,
        transform: Callable[[torch.Tensor], torch.Tensor],
        read: Callable[[Split, int], torch.Tensor],
    ):
        classes, self.labels = np.unique(split.labels, return_inverse=True)
        self.labels = self.labels.astype(np.int64).reshape(-1)
        self.n_classes = len(classes)
        self.categories = split.categories
        self.is_query = None if split.is_query is None else split.is_query.astype(bool)
        self.is_gallery = None if split.is_gallery is None else split.is_gallery.astype(bool)
        self.info = {
            **split.info,
            "n_items": len(split),
            "n_classes": self.n_classes,
            "original_labels": [_jsonable(c) for c in classes],
        }
        if split.class_names is not None:
            self.info["class_names"] = [split.class_names[_jsonable(c)] for c in classes]
        self.split = split
        self.transform = transform
        self._read = read

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        return self.transform(self._read(self.split, i)), int(self.labels[i]), i


def _jsonable(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x
