"""Normalised softmax (NormSoftmax): cross-entropy over cosine logits with a temperature.

Zhai & Wu, "Classification is a Strong Baseline for Deep Metric Learning", BMVC 2019:
``CE(x̂ Ŵᵀ / T, y)`` with L2-normalised embeddings x̂ and class weights Ŵ. The class matrix learns at
its own lr (``--loss_softmax_lr``), initialised uniformly in ±1/√D as in the original harness.
Deviation from the original harness: embeddings are normalised here (the paper does; the
original relied on the backbone's ``_normalize``). Weights stay float32 under AMP.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from criteria.base import LOSSES, Loss, full_precision


def class_matrix(n_classes: int, embed_dim: int) -> nn.Parameter:
    """A (C, D) class-weight matrix, uniform in ±1/√D."""
    bound = 1.0 / math.sqrt(embed_dim)
    return nn.Parameter(torch.empty(n_classes, embed_dim).uniform_(-bound, bound))


def cosine_logits(embeds: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Cosines between embeddings (B, D) and class weights (C, D) -> (B, C)."""
    return F.normalize(embeds, dim=1) @ F.normalize(weights, dim=1).T


@LOSSES.register("softmax")
class NormSoftmax(Loss):
    """Normalised softmax (Zhai & Wu 2019) over one weight vector per class; uses no miner.

    Args:
        lr: learning rate of the class matrix.
        temperature: temperature T dividing the cosines.
    """

    class_proxies = True
    lr_param = "lr"

    def __init__(
        self, lr: float = 1e-5, temperature: float = 0.05, *, n_classes: int, embed_dim: int
    ) -> None:
        super().__init__()
        self.lr, self.temperature = lr, temperature
        self.class_map = class_matrix(n_classes, embed_dim)

    @full_precision
    def forward(self, embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeds: (B, D), labels: (B,) in [0, n_classes) -> scalar."""
        cos = cosine_logits(embeds, self.class_map)
        self.set_logs(
            cos_target=cos.gather(1, labels[:, None]).mean(),
            accuracy=(cos.argmax(1) == labels).float().mean(),
        )
        return F.cross_entropy(cos / self.temperature, labels)
