"""The contract every backbone follows, and the parsing of legacy composite arch names.

Roth et al., "Revisiting Training Strategies and Generalization Performance in Deep Metric
Learning", ICML 2020 (the harness whose ``--arch`` names this keeps).

A network is an ``nn.Module`` mapping images ``(B, C, H, W)`` to embeddings ``(B, D)``
(:class:`architectures.embedding_net.EmbeddingNet`). It exposes ``head`` (the final embedding layer,
which gets ``--fc_lr``) and ``image_spec`` (input size, channels, normalisation, and the
BN-Inception BGR/0–255 convention), which the datasets read to build their transforms.
``--arch resnet50_frozen_normalize`` is parsed from a fixed token set into
``ArchSpec(base="resnet50", frozen=True, normalize=True)``; unknown tokens are errors.

Deviation from the original harness: option tokens are parsed exactly (the original matched
substrings anywhere, so ``resnet50_junk`` or ``…_300epoch`` were accepted and ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from registry import Registry, RegistryError

ARCHITECTURES = Registry("architecture", "arch")

#: Composite-name options and what they mean.
ARCH_OPTIONS = {
    "frozen": "batch-norm layers stay in eval mode (statistics and affine parameters frozen)",
    "normalize": "L2-normalise the embedding",
    "double": "concatenate-free sum of adaptive average and max pooling (bninception)",
    "he": "Kaiming initialisation of the embedding layer (bninception)",
}


def check_image_flags(size: int, resize: int) -> None:
    """``--image_size`` / ``--image_resize`` no network can use raise ValueError (0: its own)."""
    if size < 0 or resize < 0:
        raise ValueError(
            f"--image_size {size} and --image_resize {resize} must be >= 0 "
            "(0 keeps the architecture's own)"
        )
    if 0 < resize < size:
        raise ValueError(
            f"--image_resize {resize} is smaller than --image_size {size}: "
            "the evaluation centre crop would not fit; give a resize >= the size"
        )


@dataclass(frozen=True)
class ImageSpec:
    """What a network expects of its input images.

    ``mean`` and ``std`` always apply to RGB (or grayscale) tensors in [0, 1], i.e. the output of
    ``ToTensor``, in RGB order. BN-Inception's 0–255 range is encoded by ``std = 1/255``;
    ``bgr_255`` then only asks for the channel order to be reversed *after* normalisation, which
    gives exactly pretrainedmodels' ``input_space='BGR'``, ``input_range=[0, 255]``, mean
    ``[104, 117, 128]`` convention. :meth:`normalize` applies all of it.
    """

    size: int = 224  # square crop fed to the network
    channels: int = 3
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    bgr_255: bool = False  # BN-Inception: BGR channel order, pixel range 0-255
    resize: int | None = None  # eval resize before the centre crop (None: size * 256/224)

    @property
    def eval_resize(self) -> int:
        return self.resize if self.resize is not None else round(self.size * 256 / 224)

    def scaled(self, size: int = 0, resize: int = 0) -> ImageSpec:
        """This spec at input side ``size`` (0: unchanged) with eval ``resize`` (0: the same ratio
        to the crop as now, e.g. 256/224 for the ImageNet nets, 1 for smallnet)."""
        check_image_flags(size, resize)
        new_size = size or self.size
        new_resize = resize or round(new_size * self.eval_resize / self.size)
        check_image_flags(new_size, new_resize)
        return replace(self, size=new_size, resize=new_resize)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``images: (..., C, H, W)`` RGB in [0, 1] → network input ``(..., C, H, W)``."""
        shape = (len(self.mean), 1, 1)
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(shape)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(shape)
        out = (images - mean) / std
        return out.flip(-3) if self.bgr_255 else out


@dataclass(frozen=True)
class ArchSpec:
    base: str
    frozen: bool = False
    normalize: bool = False
    double: bool = False
    he: bool = False
    timm_name: str = ""  # base "timm": the timm model name of ``timm:<name>``


def _parse_timm(name: str) -> ArchSpec:
    """``timm:<model>[_frozen][_normalize]``: option tokens are peeled off the end (timm names
    contain underscores but none ends in an option token), the rest must be a timm model."""
    rest = name[len("timm:") :]
    flags: dict[str, bool] = {}
    while True:
        head, _, tail = rest.rpartition("_")
        if not head or tail not in ("frozen", "normalize"):
            break
        if tail in flags:
            raise RegistryError(f"option {tail!r} repeated in --arch {name}")
        flags[tail], rest = True, head
    import timm

    if not rest or not timm.is_model(rest):
        near = timm.list_models(f"*{rest}*")[:5] if rest else []
        hint = f" (similar: {', '.join(near)})" if near else ""
        raise RegistryError(
            f"--arch {name}: {rest!r} is not a timm model{hint}; see timm.list_models()"
        )
    return ArchSpec("timm", timm_name=rest, **flags)


def parse_arch(name: str) -> ArchSpec:
    """Parse a composite name: ``"bninception_normalize_frozen"`` → ``ArchSpec("bninception",
    frozen=True, normalize=True)``.

    ``timm:<name>`` selects any timm model (:func:`_parse_timm`). The base name comes first; option
    tokens follow in any order, each at most once, and must be among the base class's ``options``.
    Anything else raises ``RegistryError`` naming the choices.
    """
    if name.startswith("timm:"):
        return _parse_timm(name)
    if name == "timm" or name.startswith("timm_"):
        raise RegistryError(
            f"--arch {name}: name the timm model, --arch timm:<name>[_frozen]"
            "[_normalize], e.g. timm:resnet18_normalize"
        )
    bases = sorted(ARCHITECTURES.names(), key=len, reverse=True)
    base = next((b for b in bases if name == b or name.startswith(b + "_")), None)
    if base is None:
        raise RegistryError(
            f"unknown architecture {name!r}; choose one of: "
            f"{', '.join(ARCHITECTURES.names())}, optionally followed by "
            f"_{'/_'.join(ARCH_OPTIONS)}"
        )
    tokens = name[len(base) :].split("_")[1:]
    supported = getattr(ARCHITECTURES.get(base), "options", ("frozen", "normalize"))
    flags = {}
    for t in tokens:
        if t not in ARCH_OPTIONS:
            raise RegistryError(
                f"unknown option {t!r} in --arch {name}; allowed options: {', '.join(ARCH_OPTIONS)}"
            )
        if t not in supported:
            raise RegistryError(
                f"option {t!r} is not available for {base}; it supports: {', '.join(supported)}"
            )
        if t in flags:
            raise RegistryError(f"option {t!r} repeated in --arch {name}")
        flags[t] = True
    return ArchSpec(base, **flags)
