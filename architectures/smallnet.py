"""A small convolutional embedding network for CPU-scale experiments on small images.

Not from a paper: four conv–BN–ReLU blocks (max-pooling in the first three) in the spirit of the
small CNNs of Hadsell, Chopra & LeCun, "Dimensionality Reduction by Learning an Invariant Mapping",
CVPR 2006, sized so that the built-in ``glyphs`` set (32×32 grayscale) trains to a useful
embedding on a 2-core CPU in minutes.

There are no published weights: ``pretrained=True`` without ``weights_path`` loads nothing and is
not an error (``--not_pretrained`` defaults to off for every arch). A ``weights_path`` (a smallnet
state_dict, e.g. of a network from an earlier run) is loaded like for the big nets.
"""

from __future__ import annotations

import torch
from torch import nn

from architectures.base import ARCHITECTURES, ImageSpec
from architectures.embedding_net import EmbeddingNet


def _block(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    # Pooling before BN + ReLU (not after) runs those two on a 4x smaller map: on a CPU they, not
    # the convolutions, dominate the step time at 32x32.
    pool_layer = [nn.MaxPool2d(2)] if pool else []
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        *pool_layer,
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


@ARCHITECTURES.register("smallnet")
class SmallNet(EmbeddingNet):
    """Four conv-(pool)-BN-ReLU blocks (w, 2w, 4w, 4w channels), pooling, Linear(→ D).

    Args:
        embed_dim: embedding size D.
        frozen: batch-norm layers stay in eval mode, their affine parameters are not trained.
        normalize: L2-normalise the embedding.
        pretrained: load ``weights_path`` if given; without it nothing is loaded (no ImageNet
            weights exist), which is not an error.
        weights_path: a smallnet state_dict to start from (the head is not loaded).
        width: channels of the first block, w (w=32: about 260k parameters with D=128).
        channels: input channels (1 grayscale, 3 RGB).
        grid: side of the final average pooling: 1 (global, Linear(4w → D)) or g > 1 (a g×g map is
            flattened, Linear(4w·g² → D), keeping where things are, as the flattened conv maps of
            Hadsell et al. did).
    """

    options = ("frozen", "normalize")

    def __init__(
        self,
        embed_dim: int,
        frozen: bool = False,
        normalize: bool = False,
        pretrained: bool = False,
        weights_path: str | None = None,
        width: int = 32,
        channels: int = 1,
        grid: int = 1,
    ):
        super().__init__(frozen=frozen, normalize=normalize)
        if grid < 1:
            raise ValueError(f"smallnet grid must be >= 1, got {grid}")
        w = width
        self.backbone = nn.Sequential(
            _block(channels, w, True),
            _block(w, 2 * w, True),
            _block(2 * w, 4 * w, True),
            _block(4 * w, 4 * w, False),
            nn.AdaptiveAvgPool2d(grid),
            nn.Flatten(),
        )
        # channels_last roughly doubles CPU throughput (oneDNN kernels); .to(device) keeps it.
        self.backbone.to(memory_format=torch.channels_last)
        self.head = nn.Linear(4 * w * grid * grid, embed_dim)
        # 32×32 input (--image_size changes it; any size works: adaptive pooling). Eval uses the
        # whole image (resize == size): small glyphs have no border to spare.
        self.image_spec = ImageSpec(
            size=32, channels=channels, mean=(0.5,) * channels, std=(0.5,) * channels, resize=32
        )
        self.finish(pretrained, weights_path)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``images: (B, channels, H, W)`` → ``(B, 4 * width * grid²)``."""
        return self.backbone(images.contiguous(memory_format=torch.channels_last))
