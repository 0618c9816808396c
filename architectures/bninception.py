"""BN-Inception backbone with a linear embedding head.

Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing Internal
Covariate Shift", ICML 2015; used as in Roth et al., "Revisiting Training Strategies and
Generalization Performance in Deep Metric Learning", ICML 2020 (weights: Cadene's pretrainedmodels
0.7.4, ``bn_inception-52deb4733.pth``).

Input convention (pretrainedmodels' ``pretrained_settings``): BGR channel order, range 0–255, mean
[104, 117, 128] (BGR), std 1. ``image_spec`` encodes it as RGB mean (128, 117, 104)/255 and std
1/255 on [0, 1] tensors, then BGR; the original harness used the rounded (0.502, 0.4588, 0.4078)
and 0.0039, a < 0.6 % difference in scale. The fixed 7×7 average pool becomes adaptive pooling so
any input size works (for 224 crops it is the same). Deviation: ``--not_pretrained`` is honoured
(the original always loaded ImageNet weights).
"""

from __future__ import annotations

import torch
from torch import nn

from architectures.base import ARCHITECTURES, ImageSpec
from architectures.embedding_net import EmbeddingNet


@ARCHITECTURES.register("bninception")
class BNInception(EmbeddingNet):
    """BN-Inception (pretrainedmodels), pooled 1024-d features, Linear(1024 → embed_dim).

    Args:
        embed_dim: embedding size D.
        frozen: batch-norm layers stay in eval mode, their affine parameters are not trained.
        normalize: L2-normalise the embedding.
        double: pool with adaptive average + adaptive max pooling (summed, still 1024-d).
        he: Kaiming-normal (fan_out) initialisation of the head, zero bias.
        pretrained: load ImageNet weights (``weights_path`` or the torch hub cache).
        weights_path: a local state_dict file with pretrainedmodels BN-Inception keys.
    """

    options = ("frozen", "normalize", "double", "he")
    weight_files = ("bn_inception-52deb4733.pth",)
    classifier_prefixes = ("last_linear.",)
    image_spec = ImageSpec(
        size=224,
        resize=256,
        mean=(128 / 255, 117 / 255, 104 / 255),
        std=(1 / 255, 1 / 255, 1 / 255),
        bgr_255=True,
    )

    def __init__(
        self,
        embed_dim: int,
        frozen: bool = False,
        normalize: bool = False,
        double: bool = False,
        he: bool = False,
        pretrained: bool = True,
        weights_path: str | None = None,
    ):
        super().__init__(frozen=frozen, normalize=normalize)
        # pretrainedmodels imports all of its zoo (and the undeclared `six`): only pay for it here.
        from pretrainedmodels.models.bninception import BNInception as _BNInception

        self.backbone = _BNInception(num_classes=1000)
        self.backbone.global_pool = nn.AdaptiveAvgPool2d(1)
        self.backbone.last_linear = nn.Identity()
        self.max_pool = nn.AdaptiveMaxPool2d(1) if double else None
        self.head = nn.Linear(1024, embed_dim)
        if he:
            nn.init.kaiming_normal_(self.head.weight, mode="fan_out")
            nn.init.zeros_(self.head.bias)
        self.finish(pretrained, weights_path)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``images: (B, 3, H, W)`` BGR, 0–255 minus mean → ``(B, 1024)``."""
        fmap = self.backbone.features(images)
        pooled = self.backbone.global_pool(fmap)
        if self.max_pool is not None:
            pooled = pooled + self.max_pool(fmap)
        return pooled.flatten(1)
