"""ArcFace: additive angular margin on the target class.

Deng, Guo, Xue & Zafeiriou, "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
CVPR 2019: ``CE(s · [cos θ_j, with cos(θ_y + m) for the target], y)`` where θ_j is the angle
between the normalised embedding and the normalised class weight j. ``cos(θ + m)`` is computed
as ``cos θ cos m − sin θ sin m``, the paper's formula.

Fallback (``--loss_arcface_fallback``, on by default; ``--no-loss_arcface_fallback`` turns it off):
for θ > π − m the target logit is ``cos θ − m·sin m`` instead, as in the authors' InsightFace code.
Without it, cos(θ + m) rises again once θ + m passes π, so there the loss *falls* as a sample moves
further from its class weight; with it the target logit decreases in θ over all of [0, π] (with a
step down at π − m), so the loss never rewards moving away. No "easy margin" variant.

Deviations from the original harness: the margin is on the target logit only (the paper; the
original put it on all logits until commit 703d189); cosines are clamped to ±(1 − 1e-7) only to keep
sin θ differentiable, where the original clamped them to [1e-10, 1 − 1e-10] and so flattened every
negative cosine; embeddings are normalised here; the θ > π − m fallback (the original had none).
Weights stay float32 under AMP.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from criteria.base import LOSSES, Loss, full_precision
from criteria.softmax import class_matrix, cosine_logits


@LOSSES.register("arcface")
class ArcFace(Loss):
    """ArcFace (Deng et al. 2019): angular margin on the target class; uses no miner.

    Args:
        lr: learning rate of the class matrix.
        angular_margin: additive angular margin m, in radians.
        feature_scale: scale s of the logits.
        fallback: use cos θ − m·sin m for θ > π − m, where cos(θ + m) would rise again.
    """

    class_proxies = True
    lr_param = "lr"

    def __init__(
        self,
        lr: float = 5e-4,
        angular_margin: float = 0.5,
        feature_scale: float = 16.0,
        fallback: bool = True,
        *,
        n_classes: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        self.lr, self.angular_margin, self.feature_scale = lr, angular_margin, feature_scale
        self.fallback = fallback
        self.class_map = class_matrix(n_classes, embed_dim)

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) in [0, n_classes) -> scalar."""
        eps = 1e-7
        cos = cosine_logits(embeds, self.class_map).clamp(-1 + eps, 1 - eps)
        cos_y = cos.gather(1, labels[:, None])
        sin_y = (1 - cos_y.pow(2)).sqrt()
        m = self.angular_margin
        target = cos_y * math.cos(m) - sin_y * math.sin(m)
        if self.fallback:  # θ > π − m  <=>  cos θ < cos(π − m)
            target = torch.where(cos_y > math.cos(math.pi - m), target, cos_y - m * math.sin(m))
        logits = cos.scatter(1, labels[:, None], target)
        self.set_logs(cos_target=cos_y.mean(), accuracy=(cos.argmax(1) == labels).float().mean())
        return F.cross_entropy(self.feature_scale * logits, labels)
