"""Losses, one per module; importing a module registers it in ``LOSSES``.

Tuple losses (need a miner): triplet, margin, contrastive, quadruplet, snr (triplets); npair,
angular (npair); lifted (lifted). Pair losses with built-in weighting: multisimilarity, histogram,
fastap, circle, ntxent, supcon. Proxy/classifier losses with their own parameters: proxynca,
softmax, arcface, cosface, softtriplet, proxyanchor.
"""

from criteria import (  # noqa: F401  (each import registers one loss)
    angular,
    arcface,
    circle,
    contrastive,
    cosface,
    fastap,
    histogram,
    lifted,
    margin,
    multisimilarity,
    npair,
    ntxent,
    proxyanchor,
    proxynca,
    quadruplet,
    snr,
    softmax,
    softtriplet,
    supcon,
    triplet,
)
from criteria.base import LOSSES, Loss, zero_loss

__all__ = ["LOSSES", "Loss", "zero_loss"]
