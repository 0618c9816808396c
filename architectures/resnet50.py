"""ResNet-50 backbone with a linear embedding head.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016; used as in Roth et al.,
"Revisiting Training Strategies and Generalization Performance in Deep Metric Learning", ICML 2020.

The original harness took Cadene's pretrainedmodels ``resnet50`` (torchvision's ImageNet checkpoint
``resnet50-19c8e357.pth``); this uses torchvision's model directly, preferring the V1 checkpoint
``resnet50-0676ba61.pth`` (the same ImageNet weights), then the old name, then the V2 recipe
``resnet50-11ad3fa6.pth`` (different, stronger ImageNet weights: note which one ``weights_source``
names when comparing runs). Global average pooling, then Linear(2048 → embed_dim).
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from architectures.base import ARCHITECTURES, ImageSpec
from architectures.embedding_net import EmbeddingNet


@ARCHITECTURES.register("resnet50")
class ResNet50(EmbeddingNet):
    """ResNet-50 (torchvision), average-pooled 2048-d features, Linear(2048 → embed_dim).

    Args:
        embed_dim: embedding size D.
        frozen: batch-norm layers stay in eval mode, their affine parameters are not trained.
        normalize: L2-normalise the embedding.
        pretrained: load ImageNet weights (``weights_path`` or the torch hub cache).
        weights_path: a local state_dict file with torchvision ResNet-50 keys.
    """

    options = ("frozen", "normalize")
    weight_files = ("resnet50-0676ba61.pth", "resnet50-19c8e357.pth", "resnet50-11ad3fa6.pth")
    classifier_prefixes = ("fc.",)
    image_spec = ImageSpec(size=224, resize=256)

    def __init__(
        self,
        embed_dim: int,
        frozen: bool = False,
        normalize: bool = False,
        pretrained: bool = True,
        weights_path: str | None = None,
    ):
        super().__init__(frozen=frozen, normalize=normalize)
        self.backbone = torchvision.models.resnet50(weights=None)
        self.backbone.fc = nn.Identity()
        self.head = nn.Linear(2048, embed_dim)
        self.finish(pretrained, weights_path)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``images: (B, 3, H, W)`` → ``(B, 2048)``."""
        return self.backbone(images)
