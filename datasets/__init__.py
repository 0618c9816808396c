"""Datasets, one module per source; importing a module registers it in ``DATASETS``.

``build_splits(opt, image_spec)`` is the one entry point: it builds the chosen source, checks every
image file up front, makes the validation split and wraps each split in a ``DMLDataset`` with the
transforms the network's ``image_spec`` and ``--augmentation`` ask for. It replaces RevisitDML's
``datasets.select`` (Roth et al., "Revisiting Training Strategies and Generalization Performance in
Deep Metric Learning", ICML 2020), which matched the name by substring and returned ``training``,
``evaluation``, ``testing`` and ``validation``; here names are exact and bad data fails before training.
"""
from __future__ import annotations

import argparse

from torch.utils.data import Dataset

from datasets import (  # noqa: F401 - registration side effects; the list is the table of contents
    cars196, csv_table, cub200, fashion_mnist, glyphs, inshop, online_products)
from datasets.base import DATASETS, DatasetError, DatasetSource, DMLDataset, Split
from datasets.image_files import read_item, scan
from datasets.rotation_classes import ROTATIONS, RotationClasses
from datasets.splitting import by_classes, by_samples, class_folds
from datasets.transforms import AUGMENTATIONS, build_transforms

__all__ = ["DATASETS", "AUGMENTATIONS", "ROTATIONS", "DatasetError", "DatasetSource", "DMLDataset",
           "RotationClasses", "Split", "build_splits", "load_raw_splits",
           "train_items_with_eval_transforms"]


def load_raw_splits(opt: argparse.Namespace) -> tuple[DatasetSource, dict[str, Split]]:
    """The source and its raw splits ``train``, ``test`` and, with ``--use_tv_split``, ``val``."""
    source = DATASETS.build(opt.dataset, opt, root=opt.source_path, seed=opt.seed)
    raw = source.load()
    if getattr(opt, "use_tv_split", False):
        split = by_samples if getattr(opt, "tv_split_by_samples", False) else by_classes
        raw["train"], raw["val"] = split(raw["train"], getattr(opt, "tv_split_perc", 0.8))
    elif getattr(opt, "cv_folds", 0):
        raw["train"], raw["val"] = class_folds(raw["train"], opt.cv_folds, opt.fold)
    for name, part in raw.items():
        if len(part) == 0:
            raise DatasetError(f"dataset {opt.dataset!r}: split {name!r} is empty")
    paths = [p for part in raw.values() if part.paths is not None for p in part.paths]
    if paths:
        scan(sorted(set(paths)), f"dataset {opt.dataset!r}")
    return source, raw


def build_splits(opt: argparse.Namespace, image_spec) -> dict[str, Dataset]:
    """``{"train", "train_eval", "test"[, "val"]}``; items are (image (C, H, W), label, index).

    With ``--rotation_classes K`` > 1 the ``train`` split holds every image in ``K`` rotations, each
    rotation its own class (:class:`RotationClasses`); the other splits are untouched."""
    augmentation = getattr(opt, "augmentation", "base")
    build_transforms(image_spec, augmentation)   # an unknown preset fails before any data is read
    source, raw = load_raw_splits(opt)
    train_tf, eval_tf = build_transforms(image_spec, augmentation, source.allow_flip,
                                         source.min_crop_scale)
    splits = {"train": DMLDataset(raw["train"], train_tf, read_item),
              "train_eval": DMLDataset(raw["train"], eval_tf, read_item),
              "test": DMLDataset(raw["test"], eval_tf, read_item)}
    if "val" in raw:
        splits["val"] = DMLDataset(raw["val"], eval_tf, read_item)
    rotations = getattr(opt, "rotation_classes", 1)
    if rotations > 1:
        splits["train"] = RotationClasses(splits["train"], rotations)
    return splits


def train_items_with_eval_transforms(splits: dict[str, Dataset]) -> Dataset:
    """The items of ``splits["train"]``, same indices and labels, with eval transforms (what
    embedding-based samplers store): ``train_eval``, rotated like ``train`` if that is rotated."""
    train = splits["train"]
    if isinstance(train, RotationClasses):
        return RotationClasses(splits["train_eval"], train.k)
    return splits["train_eval"]
