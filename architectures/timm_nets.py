"""Any timm model by name as a backbone: ``--arch timm:<name>[_frozen][_normalize]`` with weights
from a local file (``--pretrained_weights``), and :class:`TimmNet`, the base of every timm-built
network here (``efficientnet_lite0`` too).

Wightman, "PyTorch Image Models" (timm) is the backbone zoo; Open Metric Learning users pick
backbones from it by name in the same way. The classifier is dropped (``reset_classifier(0)``):
pooled features → Linear(→ D); the input spec (size, mean, std, crop ratio) comes from the model's
timm configuration. Nothing is ever downloaded: a pretrained ``timm:<name>`` needs
``--pretrained_weights`` (a timm state_dict, ``.pth``/``.bin`` or ``.safetensors``), or
``--not_pretrained``.
"""

from __future__ import annotations

import torch
from torch import nn

from architectures.base import ARCHITECTURES, ImageSpec
from architectures.embedding_net import EmbeddingNet

#: ``--arch`` prefix selecting any timm model by name.
TIMM_PREFIX = "timm:"


class TimmNet(EmbeddingNet):
    """A timm backbone without its classifier, pooled features, Linear(features → D)."""

    options = ("frozen", "normalize")
    context_params = (*EmbeddingNet.context_params, "timm_name")

    def _build(self, timm_name: str, embed_dim: int) -> None:
        import timm  # importing timm costs about a second: only when a timm net is built

        try:
            self.backbone = timm.create_model(timm_name, pretrained=False)
        except RuntimeError as err:  # timm's "Unknown model" error
            raise ValueError(f"timm cannot build {timm_name!r}: {err}") from err
        self.backbone.reset_classifier(0)
        self.timm_name = timm_name
        self.head = nn.Linear(self.backbone.num_features, embed_dim)
        cfg = getattr(self.backbone, "pretrained_cfg", None) or {}
        _, size, _ = cfg.get("input_size", (3, 224, 224))
        self.image_spec = ImageSpec(
            size=size,
            channels=3,
            mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
            std=tuple(cfg.get("std", (0.229, 0.224, 0.225))),
            resize=round(size / cfg.get("crop_pct", 0.875)),
        )

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``images: (B, 3, H, W)`` → pooled ``(B, num_features)``."""
        return self.backbone(images)

    def describe(self) -> dict:
        return {**super().describe(), "timm_name": self.timm_name}


@ARCHITECTURES.register("timm")
class AnyTimm(TimmNet):
    """Any timm model by name: ``--arch timm:<name>[_frozen][_normalize]`` (e.g.
    ``timm:resnet18_normalize``); ImageNet weights only from ``--pretrained_weights FILE``.

    Args:
        embed_dim: embedding size D.
        timm_name: the timm model name (``timm.list_models()``).
        frozen: batch-norm layers stay in eval mode, their affine parameters are not trained.
        normalize: L2-normalise the embedding.
        pretrained: load ``weights_path`` (required: nothing is downloaded).
        weights_path: a timm state_dict for this model (the classifier is skipped).
    """

    def __init__(
        self,
        embed_dim: int,
        timm_name: str = "",
        frozen: bool = False,
        normalize: bool = False,
        pretrained: bool = True,
        weights_path: str | None = None,
    ):
        super().__init__(frozen=frozen, normalize=normalize)
        if not timm_name:
            raise ValueError(
                "--arch timm needs a model name: --arch timm:<name>, e.g. timm:resnet18"
            )
        self._build(timm_name, embed_dim)
        if pretrained and weights_path is None:
            raise FileNotFoundError(
                f"timm:{timm_name} is never downloaded: pass "
                "--pretrained_weights FILE (a timm state_dict) or "
                "--not_pretrained"
            )
        self.registry_name = f"timm:{timm_name}"
        cfg = getattr(self.backbone, "pretrained_cfg", None) or {}
        classifier = cfg.get("classifier", "classifier")
        names = classifier if isinstance(classifier, (list, tuple)) else (classifier,)
        self.classifier_prefixes = tuple(f"{n}." for n in names)
        self.finish(pretrained, weights_path)
