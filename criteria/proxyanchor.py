"""Proxy-Anchor loss.

Kim, Kim, Cho & Kwak, "Proxy Anchor Loss for Deep Metric Learning", CVPR 2020. With cosine
similarities s(x, p) between embeddings and one proxy per class,
``1/|P⁺| Σ_{p∈P⁺} log(1 + Σ_{x∈X_p⁺} exp(−α(s − δ)))``
``+ 1/|P| Σ_{p∈P} log(1 + Σ_{x∈X_p⁻} exp(α(s + δ)))`` where P⁺ are the proxies of the classes
present in the batch. Proxies start Kaiming-normal (fan-out) and learn at ``lr × lrmulti`` (×100 in
the paper's code); they stay float32 under AMP. Not in the original harness.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from criteria.base import LOSSES, Loss, full_precision
from criteria.pairwise import log1p_sum_exp, masked_mean


@LOSSES.register("proxyanchor", flags={"lr_multi": "--loss_proxyanchor_lrmulti"})
class ProxyAnchor(Loss):
    """Proxy-Anchor loss (Kim et al. 2020), one proxy per class; uses no miner.

    Args:
        margin: margin δ.
        alpha: scale α.
        lr_multi: the proxies learn at lr times this factor.
    """

    class_proxies = True
    lr_param = "lr_multi"
    lr_times_base = True

    def __init__(
        self,
        margin: float = 0.1,
        alpha: float = 32.0,
        lr_multi: float = 100.0,
        *,
        n_classes: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        self.margin, self.alpha, self.lr_multi = margin, alpha, lr_multi
        self.proxies = nn.Parameter(torch.empty(n_classes, embed_dim))
        nn.init.kaiming_normal_(self.proxies, mode="fan_out")

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) in [0, n_classes) -> scalar."""
        cos = F.normalize(embeds, dim=1) @ F.normalize(self.proxies, dim=1).T  # (B, C)
        member = F.one_hot(labels, cos.shape[1]).bool()
        pos = log1p_sum_exp(-self.alpha * (cos - self.margin), member, dim=0)  # (C,)
        neg = log1p_sum_exp(self.alpha * (cos + self.margin), ~member, dim=0)
        present = member.any(0)
        loss = pos.sum() / present.sum().clamp_min(1) + neg.mean()
        self.set_logs(cos_pos=masked_mean(cos, member), cos_neg=masked_mean(cos, ~member))
        return loss
