"""CosFace: large-margin cosine loss.

Wang, Wang, Zhou, Ji, Gong, Zhou, Li & Liu, "CosFace: Large Margin Cosine Loss for Deep Face
Recognition", CVPR 2018: ``CE(s · (cos θ_j − m·1[j = y]), y)`` with normalised embeddings and class
weights. Defaults m = 0.35, s = 64 follow the paper and pytorch-metric-learning; the class
matrix learns at its own lr, like ArcFace's in the original harness. Weights stay float32 under
AMP. Not in the original harness.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from criteria.base import LOSSES, Loss, full_precision
from criteria.softmax import class_matrix, cosine_logits


@LOSSES.register("cosface")
class CosFace(Loss):
    """CosFace (Wang et al. 2018): cosine margin on the target class; uses no miner.

    Args:
        lr: learning rate of the class matrix.
        margin: cosine margin m subtracted from the target cosine.
        scale: scale s of the logits.
    """

    class_proxies = True
    lr_param = "lr"

    def __init__(
        self,
        lr: float = 5e-4,
        margin: float = 0.35,
        scale: float = 64.0,
        *,
        n_classes: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        self.lr, self.margin, self.scale = lr, margin, scale
        self.class_map = class_matrix(n_classes, embed_dim)

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) in [0, n_classes) -> scalar."""
        cos = cosine_logits(embeds, self.class_map)
        target = F.one_hot(labels, cos.shape[1]).to(cos.dtype)
        self.set_logs(
            cos_target=(cos * target).sum(1).mean(),
            accuracy=(cos.argmax(1) == labels).float().mean(),
        )
        return F.cross_entropy(self.scale * (cos - self.margin * target), labels)
