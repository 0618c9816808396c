"""Train and eval transforms, built from the network's ``ImageSpec`` and ``--augmentation``.

Presets as in RevisitDML (Roth et al., ICML 2020, ``basic_dataset_scaffold.py``), scaled to
``image_spec.size`` (the paper's 224 crop, resize 256):
``base``: RandomResizedCrop + horizontal flip; ``adv``: base + RandomGrayscale(0.2) +
ColorJitter(0.2 each); ``big``: base at a crop 256/224 larger, also at evaluation; ``red``: Resize +
RandomCrop + flip.
Eval: Resize + CenterCrop.

Deviations: everything runs on uint8/float tensors (no PIL), so in-memory sets stay fast; the
dataset may forbid flips and raise the lower RandomResizedCrop scale (``DatasetSource.allow_flip``,
``min_crop_scale``); images are converted to ``image_spec.channels`` (grey replicated to RGB, RGB
averaged with the ITU-R 601 weights to grey). As in the original, ``mean``/``std`` are given in RGB
order on the 0–1 scale — BN-Inception's 0–255 range comes from its std of 1/255 — and ``bgr_255``
reverses the channel order after the normalisation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms import v2

AUGMENTATIONS = ("base", "adv", "big", "red")


def crop_size(image_spec, augmentation: str) -> int:
    """Side of the network input: ``image_spec.size``, 256/224 larger for ``big``."""
    return round(image_spec.size * 256 / 224) if augmentation == "big" else image_spec.size


class ToSpec:
    """uint8 (C, H, W) → float (spec.channels, H, W) in [0, 1]."""

    def __init__(self, channels: int):
        self.channels = channels

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        img = img.float().div_(255.0)
        if img.shape[0] == self.channels:
            return img
        if self.channels == 1:
            return v2.functional.rgb_to_grayscale(img[:3])
        return img[:1].expand(3, -1, -1).contiguous()


class Normalise:
    """(x - mean) / std in RGB order, then RGB → BGR when ``bgr_255``."""

    def __init__(self, image_spec):
        c = image_spec.channels
        self.bgr_255 = image_spec.bgr_255
        self.mean = torch.tensor(image_spec.mean[:c], dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(image_spec.std[:c], dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if self.mean.device != img.device:  # images decoded on the GPU (datasets.gpu_decode)
            self.mean, self.std = self.mean.to(img.device), self.std.to(img.device)
        img = (img - self.mean) / self.std
        return img.flip(0) if self.bgr_255 else img


def build_transforms(
    image_spec, augmentation: str, allow_flip: bool = True, min_crop_scale: float = 0.08
) -> tuple[Callable, Callable]:
    """(train, eval) callables mapping uint8 (C, H, W) to normalised float (spec.channels, S, S)."""
    if augmentation not in AUGMENTATIONS:
        raise ValueError(
            f"augmentation {augmentation!r} is not allowed; choose one of: "
            + ", ".join(AUGMENTATIONS)
        )
    size = crop_size(image_spec, augmentation)
    resize = image_spec.resize or round(size * 256 / 224)
    if augmentation == "big" and image_spec.resize:
        resize = round(image_spec.resize * 256 / 224)
    flip = [v2.RandomHorizontalFlip(0.5)] if allow_flip else []
    if augmentation == "red":
        train = [v2.Resize(resize, antialias=True), v2.RandomCrop(size), *flip]
    else:
        train = [v2.RandomResizedCrop(size, scale=(min_crop_scale, 1.0), antialias=True), *flip]
    # geometry first, on the stored uint8 channels: cheaper than on a replicated float image
    train.append(ToSpec(image_spec.channels))
    if augmentation == "adv":
        if image_spec.channels == 3:
            train.append(v2.RandomGrayscale(0.2))
        train.append(v2.ColorJitter(0.2, 0.2, 0.2, 0.2 if image_spec.channels == 3 else 0.0))
    evaluation = [
        v2.Resize(resize, antialias=True),
        v2.CenterCrop(size),
        ToSpec(image_spec.channels),
    ]
    return v2.Compose([*train, Normalise(image_spec)]), v2.Compose(
        [*evaluation, Normalise(image_spec)]
    )
