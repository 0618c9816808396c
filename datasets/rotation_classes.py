"""``--rotation_classes K``: every training image also appears rotated, each rotation its own class.

Lee, Hwang & Shin, "Self-supervised Label Augmentation via Input Transformations", ICML 2020 (SLA):
training on the joint label (class, rotation) instead of the class alone keeps the network from
discarding what rotation-sensitive features it needs, and transfers better. Here an image of class
``c`` rotated by ``r · 360/K`` degrees has label ``c · K + r``: the sampler, miner and loss see
``K`` times as many classes, each as large as the original one. Only the training split is wrapped;
``train_eval``, ``val`` and ``test`` stay unrotated with their original labels. Where a turned
picture is another class's picture (6 and 9, n and u), the two labels compete; choose ``K`` with
that in mind. Not in RevisitDML or Open Metric Learning.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.base import DMLDataset

ROTATIONS = (1, 2, 4)


class RotationClasses(Dataset):
    """``K · N`` items: item ``r · N + j`` is item ``j`` of ``base`` rotated by ``r · 360/K``
    degrees.

    Attributes as ``DMLDataset``: ``labels`` ``c · K + r``; ``categories`` those of the original
    class (category samplers still group the rotations of one class family); no query/gallery masks.
    """

    def __init__(self, base: DMLDataset, k: int):
        if k not in ROTATIONS:
            raise ValueError(
                f"--rotation_classes {k} is not allowed; choose one of: "
                + ", ".join(map(str, ROTATIONS))
            )
        self.base, self.k, self.n = base, k, len(base)
        rotations = np.repeat(np.arange(k), self.n)
        self.labels = (np.tile(base.labels, k) * k + rotations).astype(np.int64)
        self.categories = None if base.categories is None else np.tile(base.categories, k)
        self.is_query = self.is_gallery = None
        self.n_classes = base.n_classes * k
        self.info = {
            **base.info,
            "rotation_classes": k,
            "n_items": len(self.labels),
            "n_classes": self.n_classes,
        }

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        r, j = divmod(int(i), self.n)
        image, _, _ = self.base[j]
        quarter_turns = r * 4 // self.k
        return torch.rot90(image, quarter_turns, dims=(-2, -1)), int(self.labels[i]), int(i)
