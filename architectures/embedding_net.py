"""The module every backbone subclasses: backbone → pooled features → linear head → embedding.

Roth et al., "Revisiting Training Strategies and Generalization Performance in Deep Metric
Learning", ICML 2020: the ``frozen`` and ``normalize`` options of its ``--arch`` names.

Deviations from the original harness: ``frozen`` also freezes the batch-norm affine parameters
(the original kept only the running statistics fixed and still trained γ and β, by monkey-patching
each layer's ``train``; here ``train()`` is overridden); networks return only the embedding, cast
to float32, not ``(embedding, (pooled, feature map))``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from architectures.base import ImageSpec
from architectures.weights import find_weights, load_backbone_weights

#: Layers whose output can be evaluated (``--eval_layer``).
EVAL_LAYERS = ("head", "pooled")


class EmbeddingNet(nn.Module):
    """Backbone ``self.backbone`` → pooled features ``(B, F)`` → ``self.head`` → ``(B, D)``.

    Subclasses build ``backbone`` and ``head``, implement :meth:`features`, then call
    :meth:`finish`. With ``frozen`` every batch-norm layer stays in eval mode even under
    ``model.train()`` (running statistics never update) and its affine parameters get
    ``requires_grad=False``, so no optimiser touches them. The embedding is cast to float32 before
    the optional L2 normalisation, so it is float32 under autocast too.
    """

    options: ClassVar[tuple[str, ...]] = ("frozen", "normalize")
    context_params: ClassVar[tuple[str, ...]] = (
        "embed_dim",
        "frozen",
        "normalize",
        "double",
        "he",
        "pretrained",
        "weights_path",
    )
    #: ImageNet weight files looked up in ``torch.hub.get_dir()/checkpoints``, preferred first.
    weight_files: ClassVar[tuple[str, ...]] = ()
    #: State-dict prefixes of the ImageNet classifier, skipped when loading weights (as is the
    #: ``head.`` of a whole saved dmlbench network, whose ``backbone.`` prefix is dropped).
    classifier_prefixes: ClassVar[tuple[str, ...]] = ()
    image_spec: ImageSpec
    backbone: nn.Module
    head: nn.Linear

    def __init__(self, *, frozen: bool = False, normalize: bool = False):
        super().__init__()
        self.frozen = frozen
        self.normalize = normalize
        self.weights_source: str | None = None  # file the backbone weights came from, if any

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``images: (B, C, H, W)`` → pooled features ``(B, F)``."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images: (B, C, H, W)`` → ``embeds: (B, D)`` float32, unit norm with ``normalize``."""
        embeds = self.head(self.features(images)).float()
        return F.normalize(embeds, dim=-1) if self.normalize else embeds

    def describe(self) -> dict:
        """What the run record keeps about the network (``model.json``)."""
        return {
            "class": type(self).__name__,
            "image_spec": asdict(self.image_spec),
            "weights_source": self.weights_source,
            "frozen": self.frozen,
            "normalize": self.normalize,
            "embed_dim": self.head.out_features,
            "feature_dim": self.head.in_features,
            "parameters": sum(p.numel() for p in self.parameters()),
        }

    def represent(self, images: torch.Tensor, layer: str = "head") -> torch.Tensor:
        """The output of ``layer`` (one of ``EVAL_LAYERS``) as float32, unit norm with
        ``normalize``.

        ``head`` is :meth:`forward`, the embedding the loss trains. ``pooled`` is the backbone's
        pooled features ``(B, F)`` before the head: the representation SimCLR (Chen et al., ICML
        2020) and SupCon (Khosla et al., NeurIPS 2020) evaluate, treating the head as a
        projection that specialises to the training classes.
        """
        if layer == "head":
            return self(images)
        if layer != "pooled":
            raise ValueError(f"layer {layer!r} is not one of: {', '.join(EVAL_LAYERS)}")
        feats = self.features(images).float()
        return F.normalize(feats, dim=-1) if self.normalize else feats

    def finish(self, pretrained: bool, weights_path: str | Path | None) -> None:
        """Load backbone weights when asked, then apply ``frozen``.

        ``pretrained``: ``weights_path`` if given, else the first of ``weight_files`` found in the
        torch hub cache (an error when none is there); a class without ``weight_files`` (smallnet)
        loads nothing without ``weights_path``. ``weights_path`` with ``pretrained=False`` is an
        error rather than silently ignored.
        """
        if weights_path is not None and not pretrained:
            raise ValueError(
                f"weights file {weights_path} given with pretrained=False: "
                "drop --pretrained_weights or --not_pretrained"
            )
        if pretrained and (weights_path is not None or self.weight_files):
            name = getattr(self, "registry_name", type(self).__name__)
            path = find_weights(name, self.weight_files, weights_path)
            skip = (*self.classifier_prefixes, "head.")
            load_backbone_weights(self.backbone, path, skip, name)
            self.weights_source = str(path)
        if self.frozen:
            for bn in self.batchnorms():
                for p in bn.parameters():
                    p.requires_grad_(False)
        self.train(self.training)

    def batchnorms(self) -> list[nn.Module]:
        return [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def train(self, mode: bool = True) -> EmbeddingNet:
        super().train(mode)
        if self.frozen:
            for bn in self.batchnorms():
                bn.eval()
        return self
