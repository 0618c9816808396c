"""Datasets, one module per source; importing a module registers it in ``DATASETS``.

``build_splits(opt, image_spec)`` is the one entry point: it builds the chosen source, checks every
image file up front, makes the validation split and wraps each split in a ``DMLDataset`` with the
transforms the network's ``image_spec`` and ``--augmentation`` ask for. It reads the core flags by
name and nothing else from ``opt`` (the dataset's own flags go through the registry); the work is
done by :func:`raw_splits` and :func:`make_splits`, which take explicit arguments.

It replaces RevisitDML's ``datasets.select`` (Roth et al., "Revisiting Training Strategies and
Generalization Performance in Deep Metric Learning", ICML 2020), which matched the name by substring
and returned ``training``, ``evaluation``, ``testing`` and ``validation``; here names are exact and
bad data fails before training.
"""

from __future__ import annotations

import argparse

from torch.utils.data import Dataset

from datasets import (  # noqa: F401 - registration side effects; the list is the table of contents
    cars196,
    csv_table,
    cub200,
    fashion_mnist,
    glyphs,
    inshop,
    online_products,
)
from datasets.base import DATASETS, DatasetError, DatasetSource, DMLDataset, Split
from datasets.image_files import read_item, scan
from datasets.rotation_classes import ROTATIONS, RotationClasses
from datasets.splitting import by_classes, by_samples, class_folds
from datasets.transforms import AUGMENTATIONS, build_transforms

#: What bad input (flags, files, data) raises while a run, a saved model or its data is built: the
#: command lines turn these into one line and exit status 2. RegistryError and SavedRunError are
#: ValueErrors.
INPUT_ERRORS = (FileNotFoundError, ValueError, DatasetError)

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "INPUT_ERRORS",
    "ROTATIONS",
    "DMLDataset",
    "DatasetError",
    "DatasetSource",
    "RotationClasses",
    "Split",
    "build_splits",
    "load_raw_splits",
    "make_splits",
    "open_source",
    "raw_splits",
    "train_items_with_eval_transforms",
]


def open_source(opt: argparse.Namespace) -> DatasetSource:
    """The ``--dataset`` source, its own flags read through the registry."""
    return DATASETS.build(opt.dataset, opt, root=opt.source_path, seed=opt.seed)


def raw_splits(
    source: DatasetSource,
    name: str,
    *,
    val_fraction: float | None,
    val_by_samples: bool,
    cv_folds: int = 0,
    fold: int = 0,
) -> dict[str, Split]:
    """The raw splits ``train``, ``test`` and, with ``val_fraction`` (the fraction of the training
    data kept for training), ``val``, split by classes or, with ``val_by_samples``, per class by
    samples; with ``cv_folds`` K, ``val`` is class fold ``fold`` of K (Musgrave et al. 2020) and
    the other folds train. Every split must be non-empty and every image file readable."""
    raw = source.load()
    if val_fraction is not None:
        split = by_samples if val_by_samples else by_classes
        raw["train"], raw["val"] = split(raw["train"], val_fraction)
    elif cv_folds:
        raw["train"], raw["val"] = class_folds(raw["train"], cv_folds, fold)
    for part_name, part in raw.items():
        if len(part) == 0:
            raise DatasetError(f"dataset {name!r}: split {part_name!r} is empty")
    paths = [p for part in raw.values() if part.paths is not None for p in part.paths]
    if paths:
        scan(sorted(set(paths)), f"dataset {name!r}")
    return raw


def load_raw_splits(opt: argparse.Namespace) -> tuple[DatasetSource, dict[str, Split]]:
    """The source and its raw splits as the core flags ``--use_tv_split``, ``--tv_split_perc``,
    ``--tv_split_by_samples`` and ``--cv_folds``/``--fold`` ask for."""
    source = open_source(opt)
    return source, raw_splits(
        source,
        opt.dataset,
        val_fraction=opt.tv_split_perc if opt.use_tv_split else None,
        val_by_samples=opt.tv_split_by_samples,
        cv_folds=opt.cv_folds,
        fold=opt.fold,
    )


def make_splits(
    source: DatasetSource,
    raw: dict[str, Split],
    image_spec,
    *,
    augmentation: str,
    rotation_classes: int,
) -> dict[str, Dataset]:
    """``{"train", "train_eval", "test"[, "val"]}`` from raw splits; items are (image (C, H, W),
    label, index). With ``rotation_classes`` K > 1 the ``train`` split holds every image in K
    rotations, each rotation its own class (:class:`RotationClasses`); the others are untouched."""
    train_tf, eval_tf = build_transforms(
        image_spec, augmentation, source.allow_flip, source.min_crop_scale
    )
    splits = {
        "train": DMLDataset(raw["train"], train_tf, read_item),
        "train_eval": DMLDataset(raw["train"], eval_tf, read_item),
        "test": DMLDataset(raw["test"], eval_tf, read_item),
    }
    if "val" in raw:
        splits["val"] = DMLDataset(raw["val"], eval_tf, read_item)
    if rotation_classes > 1:
        splits["train"] = RotationClasses(splits["train"], rotation_classes)
    return splits


def build_splits(opt: argparse.Namespace, image_spec) -> dict[str, Dataset]:
    """The splits of a run, from the core data flags (``--dataset``, ``--source_path``, ``--seed``,
    the ``--tv_split_*`` flags, ``--augmentation``, ``--rotation_classes``; their defaults live in
    ``parameters.py`` only) and the dataset's own flags; see :func:`make_splits`."""
    build_transforms(image_spec, opt.augmentation)  # an unknown preset fails before data is read
    source, raw = load_raw_splits(opt)
    return make_splits(
        source,
        raw,
        image_spec,
        augmentation=opt.augmentation,
        rotation_classes=opt.rotation_classes,
    )


def train_items_with_eval_transforms(splits: dict[str, Dataset]) -> Dataset:
    """The items of ``splits["train"]``, same indices and labels, with eval transforms (what
    embedding-based samplers store): ``train_eval``, rotated like ``train`` if that is rotated."""
    train = splits["train"]
    if isinstance(train, RotationClasses):
        return RotationClasses(splits["train_eval"], train.k)
    return splits["train_eval"]
