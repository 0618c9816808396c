"""GoogLeNet (Inception v1, torchvision's variant with batch norm) with a linear embedding head.

Szegedy et al., "Going Deeper with Convolutions", CVPR 2015; listed as a backbone by Roth et al.,
"Revisiting Training Strategies and Generalization Performance in Deep Metric Learning", ICML 2020.

Deviations from the original harness, where this arch crashed (it returned a bare tensor where the
training loop unpacked a tuple) and always downloaded weights: it returns the embedding tensor,
and honours ``--not_pretrained`` and ``frozen``. The original built torchvision's pretrained model,
which switches on ``transform_input`` (re-normalising ImageNet-normalised input to (x − 0.5)/0.5,
the convention of the ported weights); here ``transform_input=False`` and ``image_spec`` asks the
datasets for mean = std = 0.5 directly, so the network sees the same numbers. Crop 227 as in the
original; torchvision's dropout (p = 0.2) before the classifier stays before the head. The
auxiliary classifiers are not built.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from architectures.base import ARCHITECTURES, ImageSpec
from architectures.embedding_net import EmbeddingNet


@ARCHITECTURES.register("googlenet")
class GoogLeNet(EmbeddingNet):
    """GoogLeNet (torchvision, batch-norm variant), pooled 1024-d features, Linear(1024 → D).

    Args:
        embed_dim: embedding size D.
        frozen: batch-norm layers stay in eval mode, their affine parameters are not trained.
        normalize: L2-normalise the embedding.
        pretrained: load ImageNet weights (``weights_path`` or the torch hub cache).
        weights_path: a local state_dict file with torchvision GoogLeNet keys.
    """

    options = ("frozen", "normalize")
    weight_files = ("googlenet-1378be20.pth",)
    classifier_prefixes = ("fc.", "aux1.", "aux2.")
    image_spec = ImageSpec(size=227, resize=256, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

    def __init__(
        self,
        embed_dim: int,
        frozen: bool = False,
        normalize: bool = False,
        pretrained: bool = True,
        weights_path: str | None = None,
    ):
        super().__init__(frozen=frozen, normalize=normalize)
        self.backbone = torchvision.models.googlenet(
            weights=None, aux_logits=False, transform_input=False, init_weights=not pretrained
        )
        self.backbone.fc = nn.Identity()
        self.head = nn.Linear(1024, embed_dim)
        self.finish(pretrained, weights_path)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``images: (B, 3, H, W)`` → ``(B, 1024)``."""
        out = self.backbone(images)
        # Scripted torchvision GoogLeNet returns a namedtuple; keep a plain tensor either way.
        return out[0] if isinstance(out, tuple) else out
