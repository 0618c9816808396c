"""Backbones, one per module; importing a module registers it in ``ARCHITECTURES``.

Roth et al., "Revisiting Training Strategies and Generalization Performance in Deep Metric
Learning", ICML 2020: ``--arch`` keeps that harness's composite names
(``resnet50_frozen_normalize``, ``bninception_normalize_frozen``), parsed exactly by
:func:`parse_arch` instead of by substring.
"""

from __future__ import annotations

from typing import Any

from architectures import (  # noqa: F401
    bninception,
    efficientnet_lite0,
    googlenet,
    resnet50,
    smallnet,
    timm_nets,
)
from architectures.base import ARCH_OPTIONS, ARCHITECTURES, ArchSpec, ImageSpec, parse_arch
from architectures.embedding_net import EVAL_LAYERS, EmbeddingNet


def build_model(
    arch: str,
    opt: Any = None,
    *,
    embed_dim: int,
    pretrained: bool,
    weights_path: str | None = None,
    image_size: int = 0,
    image_resize: int = 0,
) -> EmbeddingNet:
    """``--arch`` name → network mapping ``(B, C, H, W)`` images to ``(B, embed_dim)`` embeddings.

    Backbone flags (``--arch_smallnet_width``) are read from ``opt``; the composite-name options,
    the embedding size and the weights travel as context. ``pretrained`` loads ImageNet weights
    from ``weights_path`` or the torch hub cache (never downloads; a missing file is a
    ``FileNotFoundError`` naming the files looked for); smallnet has none and loads nothing.
    ``image_size`` / ``image_resize`` (``--image_size`` / ``--image_resize``; 0 keeps the
    network's own) change the input crop and the eval resize of its ``image_spec``; every net
    pools adaptively, so any size runs (the ImageNet nets need about 32 pixels or more).
    """
    spec = parse_arch(arch)
    model = ARCHITECTURES.build(
        spec.base,
        opt,
        embed_dim=embed_dim,
        frozen=spec.frozen,
        normalize=spec.normalize,
        double=spec.double,
        he=spec.he,
        pretrained=pretrained,
        weights_path=weights_path,
        timm_name=spec.timm_name,
    )
    model.image_spec = model.image_spec.scaled(image_size, image_resize)
    return model


__all__ = [
    "ARCHITECTURES",
    "ARCH_OPTIONS",
    "EVAL_LAYERS",
    "ArchSpec",
    "EmbeddingNet",
    "ImageSpec",
    "build_model",
    "parse_arch",
]
