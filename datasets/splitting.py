"""The train/validation split of the training classes (``--use_tv_split``).

As in RevisitDML (Roth et al., ICML 2020): by classes, the first ``tv_split_perc`` of the training
classes (sorted by original label) train and the rest validate; by samples
(``--tv_split_by_samples``), every class keeps ``tv_split_perc`` of its items, chosen evenly spaced
in file order (the original's CUB rule; its CARS rule was a random choice, and both crashed for lack
of a numpy import). Deviation: no seed is involved, so every run seed validates on the same items,
and SOP is split like every other set (the original split SOP inside each super-class and
mislabelled it).

Cross-validation (``--cv_folds K --fold k``), as in Musgrave, Belongie & Lim, "A Metric Learning
Reality Check" (ECCV 2020; powerful-benchmarker's ``MLRCSplitManager``): the training classes (the
first half of all classes), sorted by label, are cut into K class-disjoint folds of
``n_classes // K`` classes; fold k validates and the other classes train. The ``n_classes % K``
classes left over at the end always train, which gives MLRC's counts (CUB 75/25, Cars 74/24,
SOP 8488/2829 for K = 4). Folds are contiguous label ranges, not a seeded shuffle, so every seed and
every loss sees the same folds.
"""

from __future__ import annotations

import numpy as np

from datasets.base import DatasetError, Split


def by_classes(train: Split, perc: float) -> tuple[Split, Split]:
    classes = np.unique(train.labels)
    n_keep = int(len(classes) * perc)
    if not 0 < n_keep < len(classes):
        raise DatasetError(
            f"--tv_split_perc {perc} leaves no class for train or validation "
            f"({len(classes)} training classes)"
        )
    keep = np.isin(train.labels, classes[:n_keep])
    return (
        train.subset(np.flatnonzero(keep), tv_split="by_classes"),
        train.subset(np.flatnonzero(~keep), tv_split="by_classes"),
    )


def by_samples(train: Split, perc: float) -> tuple[Split, Split]:
    order = np.argsort(train.labels, kind="stable")
    sorted_labels = train.labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, sizes)
    keep_sorted = np.floor((rank + 1) * perc) > np.floor(rank * perc)
    keep_sorted |= np.repeat(sizes, sizes) == 1  # a single item stays in train
    keep = np.zeros(len(order), bool)
    keep[order] = keep_sorted
    if keep.all() or not keep.any():
        raise DatasetError(f"--tv_split_perc {perc} leaves no item for train or validation")
    return (
        train.subset(np.flatnonzero(keep), tv_split="by_samples"),
        train.subset(np.flatnonzero(~keep), tv_split="by_samples"),
    )


def class_folds(train: Split, n_folds: int, fold: int) -> tuple[Split, Split]:
    """(train, val) for fold ``fold`` of ``n_folds`` class-disjoint folds of ``train``'s classes."""
    classes = np.unique(train.labels)
    per_fold = len(classes) // n_folds
    if n_folds < 2 or per_fold < 1:
        raise DatasetError(
            f"--cv_folds {n_folds} needs at least 2 folds and at least one class "
            f"per fold ({len(classes)} training classes)"
        )
    if not 0 <= fold < n_folds:
        raise DatasetError(f"--fold {fold} is outside 0..{n_folds - 1} (--cv_folds {n_folds})")
    held_out = classes[fold * per_fold : (fold + 1) * per_fold]
    val = np.isin(train.labels, held_out)
    info = {"cv_folds": n_folds, "fold": fold}
    return (
        train.subset(np.flatnonzero(~val), tv_split="class_folds", **info),
        train.subset(np.flatnonzero(val), tv_split="class_folds", **info),
    )
