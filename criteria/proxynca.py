"""ProxyNCA: neighbourhood component analysis against one learnable proxy per class.

Movshovitz-Attias, Toshev, Leung, Ioffe & Singh, "No Fuss Distance Metric Learning using
Proxies", ICCV 2017: ``−log(exp(−d(x, p_y)) / Σ_{z≠y} exp(−d(x, p_z)))`` with squared Euclidean
distances, averaged over the batch. As in the original harness, embeddings and proxies are
L2-normalised and scaled (×3 there, the ``scale`` flag here), proxies start as ``randn / 8`` and
learn at ``lr × lrmulti``. Deviations: the scale is a flag rather than a magic constant; vectorised
over labels; proxies stay float32 under AMP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from criteria.base import LOSSES, Loss, full_precision
from criteria.pairwise import masked_logsumexp, masked_mean, sq_dist_matrix


@LOSSES.register("proxynca", flags={"lr_multi": "--loss_proxynca_lrmulti"})
class ProxyNCA(Loss):
    """ProxyNCA (Movshovitz-Attias et al. 2017), one proxy per class; uses no miner.

    Args:
        lr_multi: the proxies learn at lr times this factor.
        scale: norm that embeddings and proxies are scaled to before the distances.
    """

    class_proxies = True
    lr_param = "lr_multi"
    lr_times_base = True

    def __init__(
        self, lr_multi: float = 50.0, scale: float = 3.0, *, n_classes: int, embed_dim: int
    ) -> None:
        super().__init__()
        self.lr_multi, self.scale = lr_multi, scale
        self.proxies = nn.Parameter(torch.randn(n_classes, embed_dim) / 8)

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) in [0, n_classes) -> scalar."""
        x = self.scale * F.normalize(embeds, dim=1)
        proxies = self.scale * F.normalize(self.proxies, dim=1)
        dists = sq_dist_matrix(x, proxies)  # (B, C)
        target = F.one_hot(labels, len(proxies)).bool()
        d_target = dists.gather(1, labels[:, None]).squeeze(1)  # no boolean index: no host sync
        losses = d_target + masked_logsumexp(-dists, ~target, dim=1)
        self.set_logs(d_pos=d_target.mean(), d_neg=masked_mean(dists, ~target))
        return losses.mean()
