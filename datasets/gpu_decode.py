"""JPEG decoding and augmentation on the GPU, behind the loader interface.

Loader workers only read the encoded bytes of each file (no decode, no transform); the loader
of class :class:`DeviceDecodeLoader` decodes a whole batch at once with
``torchvision.io.decode_jpeg(device=...)`` (nvJPEG on CUDA), crops each image to its bounding box,
runs the split's own transform (the same torchvision v2 pipeline as on the CPU: random resized crop,
flip, colour jitter, normalisation) on the device and yields ``(images (B, C, S, S) on the device,
labels (B,), indices (B,))`` — what a DataLoader over the split yields, already moved. The training
loop's ``images.to(device)`` is then a no-op: it cannot tell where decoding ran.

Identical in distribution to the CPU path: the transform objects are the dataset's own; only the
random numbers come from the main process's generator instead of the workers'. nvJPEG's IDCT and
chroma upsampling may differ from libjpeg's by a grey level or two; on the CPU ``decode_jpeg``
gives exactly PIL's pixels (tested). Deviations: only JPEG files (checked up front); bounding boxes
are clipped to the image (PIL's crop would pad with black); rotation-class training stays on the
CPU path.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.io import ImageReadMode, decode_jpeg

from datasets.base import DatasetError, DMLDataset, Split

JPEG_SUFFIXES = (".jpg", ".jpeg")


def read_encoded(split: Split, i: int) -> torch.Tensor:
    """The file bytes of item ``i`` as a (n,) uint8 tensor."""
    with open(split.paths[i], "rb") as f:
        return torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)


def _keep(x: torch.Tensor) -> torch.Tensor:
    return x


def collate_encoded(items: list) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    data, labels, indices = zip(*items)
    return list(data), torch.as_tensor(labels), torch.as_tensor(indices)


def check_gpu_decodable(dataset: Dataset) -> DMLDataset:
    """The :class:`DMLDataset` itself, or DatasetError (one line) saying why not."""
    if not isinstance(dataset, DMLDataset):
        raise DatasetError(
            f"--gpu_decode works on plain dataset splits, not on "
            f"{type(dataset).__name__} (e.g. --rotation_classes); drop one of them"
        )
    paths = dataset.split.paths
    if paths is None:
        raise DatasetError(
            "--gpu_decode needs a dataset of image files; this one is in memory (already decoded)"
        )
    other = next((p for p in paths if Path(p).suffix.lower() not in JPEG_SUFFIXES), None)
    if other is not None:
        raise DatasetError(f"--gpu_decode needs JPEG files; {other} is not one (drop --gpu_decode)")
    return dataset


class DeviceDecodeLoader:
    """Iterable like a DataLoader over ``dataset``; decoding and transforms run on ``device``."""

    def __init__(self, dataset: DMLDataset, device: torch.device, **loader_kwargs) -> None:
        self._decode, self._mode = decode_jpeg, ImageReadMode.RGB
        self.dataset, self.device = check_gpu_decodable(dataset), torch.device(device)
        encoded = copy.copy(dataset)
        encoded.transform, encoded._read = _keep, read_encoded
        self.loader = DataLoader(encoded, collate_fn=collate_encoded, **loader_kwargs)
        self.boxes = dataset.split.boxes

    @property
    def batch_sampler(self):
        return self.loader.batch_sampler

    def __len__(self) -> int:
        return len(self.loader)

    def _crop(self, img: torch.Tensor, i: int) -> torch.Tensor:
        if self.boxes is None or self.boxes[i][0] < 0:
            return img
        x1, y1, x2, y2 = (int(v) for v in np.asarray(self.boxes[i]))
        return img[:, max(y1, 0) : y2, max(x1, 0) : x2]

    def __iter__(self):
        for data, labels, indices in self.loader:
            with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders for
                warnings.simplefilter("ignore", DeprecationWarning)  # TorchCodec's, later
                images = self._decode(data, mode=self._mode, device=self.device)
            out = [
                self.dataset.transform(self._crop(img, i))
                for img, i in zip(images, indices.tolist())
            ]
            yield torch.stack(out), labels, indices
