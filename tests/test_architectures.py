"""Backbones: composite-name parsing, output contract, frozen batch norm, options, weight loading.

Big nets run on tiny 64×64 inputs and are built at most twice each (module-scoped fixtures).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from torch import nn

from architectures import ARCHITECTURES, ArchSpec, ImageSpec, build_model, parse_arch
from architectures.weights import find_weights, load_backbone_weights
from registry import RegistryError

D = 16
BIG = {
    "resnet50": "resnet50_frozen_normalize",
    "googlenet": "googlenet_normalize_frozen",
    "bninception": "bninception_frozen_normalize_double_he",
}
CONV = {
    "resnet50": "conv1.weight",
    "googlenet": "conv1.conv.weight",
    "bninception": "conv1_7x7_s2.weight",
    "smallnet": "0.0.weight",
}


@pytest.fixture(scope="module")
def big(request):
    return {}


def _big(big: dict, base: str) -> nn.Module:
    if base not in big:
        torch.manual_seed(0)
        big[base] = build_model(BIG[base], embed_dim=D, pretrained=False)
    return big[base]


def _bn_grads_after_step(model: nn.Module, images: torch.Tensor) -> tuple[list, list]:
    model.zero_grad(set_to_none=True)
    model(images).sum().backward()
    bns = model.batchnorms()
    return [bn.weight.grad for bn in bns], [bn.weight.requires_grad for bn in bns]


def test_parse_valid_names_and_token_order():
    assert parse_arch("resnet50") == ArchSpec("resnet50")
    assert parse_arch("resnet50_frozen_normalize") == ArchSpec(
        "resnet50", frozen=True, normalize=True
    )
    assert parse_arch("bninception_normalize_frozen") == parse_arch("bninception_frozen_normalize")
    assert parse_arch("bninception_he_double_normalize") == ArchSpec(
        "bninception", normalize=True, double=True, he=True
    )
    assert parse_arch("smallnet_normalize") == ArchSpec("smallnet", normalize=True)


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("resnet18", "unknown architecture"),
        ("resnet50frozen", "unknown architecture"),
        ("resnet50_junk", "unknown option 'junk'"),
        ("resnet50_frozen_300epoch", "unknown option"),
        ("resnet50__normalize", "unknown option ''"),
        ("resnet50_double", "not available for resnet50"),
        ("smallnet_he", "not available for smallnet"),
        ("googlenet_normalize_normalize", "repeated"),
    ],
)
def test_parse_rejects(name, fragment):
    with pytest.raises(RegistryError, match=fragment):
        parse_arch(name)


def test_context_is_not_a_flag_and_flags_reach_the_class():
    assert {p.name for p in ARCHITECTURES.params("resnet50")} == set()
    assert {p.name for p in ARCHITECTURES.params("smallnet")} == {"width", "channels", "grid"}
    model = build_model(
        "smallnet",
        {"arch_smallnet_width": 8, "arch_smallnet_channels": 3},
        embed_dim=D,
        pretrained=True,
    )
    assert model.head.in_features == 32 and model.image_spec.channels == 3
    assert model.weights_source is None  # pretrained=True without a file: nothing to load
    parser = argparse.ArgumentParser()
    ARCHITECTURES.add_flags(parser)
    opt = parser.parse_args(["--arch_smallnet_width", "4"])
    assert build_model("smallnet", opt, embed_dim=D, pretrained=True).head.in_features == 16


def test_smallnet_grid_keeps_a_spatial_map_for_any_input_size():
    model = build_model(
        "smallnet",
        {"arch_smallnet_width": 4, "arch_smallnet_grid": 2},
        embed_dim=D,
        pretrained=False,
    ).eval()
    assert model.head.in_features == 16 * 4  # 4w channels × 2×2 cells
    for side in (28, 32, 45):
        assert model(torch.randn(3, 1, side, side)).shape == (3, D)
        assert model.features(torch.randn(3, 1, side, side)).shape == (3, 16 * 4)
    with pytest.raises(ValueError, match="grid must be >= 1"):
        build_model("smallnet", {"arch_smallnet_grid": 0}, embed_dim=D, pretrained=False)


@pytest.mark.parametrize("base", ["resnet50", "googlenet", "bninception", "smallnet"])
def test_contract_shape_norm_head_frozen(big, base):
    if base == "smallnet":
        torch.manual_seed(0)
        model = build_model("smallnet_frozen_normalize", embed_dim=D, pretrained=False)
    else:
        model = _big(big, base)
    assert set(model.options) >= {"frozen", "normalize"}
    assert isinstance(model.image_spec, ImageSpec)
    images = torch.randn(2, model.image_spec.channels, 64, 64)
    model.train()
    assert model.training
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears[-1] is model.head and model.head.out_features == D
    bns = model.batchnorms()
    assert bns and not any(bn.training for bn in bns)
    stats = bns[0].running_mean.clone()
    out = model(images)
    assert out.shape == (2, D) and out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
    assert torch.equal(bns[0].running_mean, stats)
    grads, requires = _bn_grads_after_step(model, images)
    assert not any(requires) and all(g is None for g in grads)
    assert model.head.weight.grad is not None
    assert model.backbone.state_dict()[CONV[base]].shape[0] > 0
    assert dict(model.backbone.named_parameters())[CONV[base]].grad is not None


def test_unfrozen_batchnorm_trains_and_output_is_unnormalised():
    torch.manual_seed(0)
    model = build_model("smallnet", embed_dim=D, pretrained=False).train()
    bn = model.batchnorms()[0]
    stats = bn.running_mean.clone()
    out = model(torch.randn(4, 1, 32, 32))
    assert bn.training and not torch.equal(bn.running_mean, stats)
    assert not torch.allclose(out.norm(dim=1), torch.ones(4))
    out.sum().backward()
    assert bn.weight.grad is not None


def test_float32_under_autocast():
    model = build_model("smallnet_normalize", embed_dim=D, pretrained=False).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(3, 1, 32, 32))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))


def test_bninception_double_and_he(big):
    model = _big(big, "bninception").eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        fmap = model.backbone.features(images)
        expected = fmap.mean(dim=(2, 3)) + fmap.amax(dim=(2, 3))
        torch.testing.assert_close(model.features(images), expected)
    # Kaiming fan_out: std sqrt(2 / D) ≈ 0.35; nn.Linear's default would be ≈ 1/sqrt(3·1024).
    assert 0.25 < model.head.weight.std().item() < 0.45
    assert torch.count_nonzero(model.head.bias) == 0


def test_image_specs():
    specs = {n: ARCHITECTURES.get(n).image_spec for n in ("resnet50", "googlenet", "bninception")}
    assert specs["resnet50"].size == 224 and specs["resnet50"].mean == (0.485, 0.456, 0.406)
    assert specs["googlenet"].size == 227 and specs["googlenet"].eval_resize == 256
    assert specs["bninception"].bgr_255 and not specs["resnet50"].bgr_255
    import pretrainedmodels

    cfg = pretrainedmodels.pretrained_settings["bninception"]["imagenet"]
    assert cfg["input_space"] == "BGR" and cfg["input_range"] == [0, 255]
    rgb = torch.rand(2, 3, 5, 5)
    bgr_255 = rgb.flip(1) * 255
    mean = torch.tensor(cfg["mean"], dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(cfg["std"], dtype=torch.float32).view(3, 1, 1)
    torch.testing.assert_close(
        specs["bninception"].normalize(rgb), (bgr_255 - mean) / std, rtol=1e-5, atol=1e-3
    )


def _imagenet_like_file(model: nn.Module, base: str, path: Path) -> Path:
    """The backbone's tensors plus a 1000-way classifier, as in a published checkpoint."""
    state = dict(model.backbone.state_dict())
    prefix = model.classifier_prefixes[0]
    state[prefix + "weight"] = torch.randn(1000, model.head.in_features)
    state[prefix + "bias"] = torch.randn(1000)
    if base == "googlenet":
        state["aux1.fc2.weight"] = torch.randn(1000, 1024)
    torch.save(state, path)
    return path


@pytest.mark.parametrize("base", ["resnet50", "googlenet", "bninception"])
def test_weights_from_local_file(big, base, tmp_path):
    source = _big(big, base)
    path = _imagenet_like_file(source, base, tmp_path / f"{base}.pth")
    torch.manual_seed(1)
    loaded = build_model(base, embed_dim=D, pretrained=True, weights_path=str(path))
    assert loaded.weights_source == str(path)
    key = CONV[base]
    torch.testing.assert_close(loaded.backbone.state_dict()[key], source.backbone.state_dict()[key])
    assert not loaded.frozen and all(bn.training for bn in loaded.train().batchnorms())
    if base == "bninception":
        assert loaded.max_pool is None  # no "double": average pooling only


def test_weights_from_hub_cache_and_missing(big, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        build_model("googlenet", embed_dim=D, pretrained=True)
    message = str(err.value)
    assert str(tmp_path / "checkpoints" / "googlenet-1378be20.pth") in message
    assert "pass --pretrained_weights FILE or --not_pretrained" in message
    with pytest.raises(FileNotFoundError, match=r"resnet50-0676ba61\.pth.*resnet50-11ad3fa6\.pth"):
        find_weights("resnet50", ARCHITECTURES.get("resnet50").weight_files, None)
    with pytest.raises(FileNotFoundError, match="--not_pretrained"):
        find_weights("googlenet", (), tmp_path / "nope.pth")
    source = _big(big, "googlenet")
    (tmp_path / "checkpoints").mkdir()
    path = _imagenet_like_file(source, "googlenet", tmp_path / "checkpoints/googlenet-1378be20.pth")
    loaded = build_model("googlenet", embed_dim=D, pretrained=True)
    assert loaded.weights_source == str(path)
    key = CONV["googlenet"]
    torch.testing.assert_close(loaded.backbone.state_dict()[key], source.backbone.state_dict()[key])
    unloaded = build_model("googlenet", embed_dim=D, pretrained=False)
    assert unloaded.weights_source is None
    assert not torch.equal(unloaded.backbone.state_dict()[key], source.backbone.state_dict()[key])


def test_weight_mismatches_fail_clearly(tmp_path):
    net = build_model("smallnet", embed_dim=D, pretrained=False)
    good = {"module." + k: v for k, v in net.backbone.state_dict().items()}
    good["head.weight"] = torch.randn(3, 3)  # the classifier prefix is skipped
    torch.save(good, tmp_path / "good.pth")
    other = build_model(
        "smallnet", embed_dim=D, pretrained=True, weights_path=str(tmp_path / "good.pth")
    )
    torch.testing.assert_close(other.backbone[0][0].weight, net.backbone[0][0].weight)
    torch.manual_seed(2)
    trained = build_model("smallnet", embed_dim=D, pretrained=False)
    torch.save({"epoch": 3, "model": trained.state_dict()}, tmp_path / "checkpoint.pth")
    other = build_model(
        "smallnet", embed_dim=D, pretrained=True, weights_path=str(tmp_path / "checkpoint.pth")
    )
    torch.testing.assert_close(other.backbone[3][0].weight, trained.backbone[3][0].weight)
    assert not torch.equal(other.head.weight, trained.head.weight)
    with pytest.raises(ValueError, match="drop --pretrained_weights or --not_pretrained"):
        build_model(
            "smallnet", embed_dim=D, pretrained=False, weights_path=str(tmp_path / "good.pth")
        )
    (tmp_path / "junk.pth").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="cannot read weights file"):
        load_backbone_weights(net.backbone, tmp_path / "junk.pth", (), "smallnet")
    cases = {
        "missing keys": lambda s: s.pop("module.0.0.weight"),
        "unexpected keys": lambda s: s.update({"module.extra.weight": torch.zeros(1)}),
        "shape mismatches": lambda s: s.update({"module.0.0.weight": torch.zeros(5, 1, 3, 3)}),
    }
    for what, corrupt in cases.items():
        state = dict(good)
        corrupt(state)
        torch.save(state, tmp_path / "bad.pth")
        with pytest.raises(ValueError, match=f"does not fit smallnet: 1 {what}"):
            load_backbone_weights(net.backbone, tmp_path / "bad.pth", ("head.",), "smallnet")


def test_smallnet_trains():
    torch.manual_seed(0)
    model = build_model("smallnet_normalize", embed_dim=D, pretrained=False).train()
    labels = torch.arange(4).repeat_interleave(8)
    images = torch.randn(4, 1, 32, 32)[labels] + 0.5 * torch.randn(32, 1, 32, 32)
    same = labels[:, None] == labels[None, :]

    def loss() -> torch.Tensor:
        embeds = model(images)
        sims = embeds @ embeds.T
        return sims[~same].mean() - sims[same].mean()

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = loss().item()
    for _ in range(15):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    assert loss().item() < before - 0.5


def test_image_size_flags_rescale_crop_and_eval_resize():
    resnet = ARCHITECTURES.get("resnet50").image_spec
    assert (resnet.scaled(64).size, resnet.scaled(64).eval_resize) == (64, 73)  # 64 · 256/224
    assert resnet.scaled(64, 80).eval_resize == 80 and resnet.scaled().eval_resize == 256
    assert resnet.scaled(0, 300) == ImageSpec(size=224, resize=300)
    small = build_model("smallnet", embed_dim=D, pretrained=False, image_size=28).image_spec
    assert (small.size, small.eval_resize, small.channels) == (28, 28, 1)  # whole image kept
    with pytest.raises(ValueError, match="smaller than --image_size 64"):
        resnet.scaled(64, 60)
    with pytest.raises(ValueError, match="must be >= 0"):
        resnet.scaled(-1)


def test_image_size_reaches_the_transforms():
    from datasets.transforms import build_transforms

    spec = build_model("smallnet", embed_dim=D, pretrained=False, image_size=20).image_spec
    train, evaluation = build_transforms(spec, "base")
    image = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    assert train(image).shape == evaluation(image).shape == (1, 20, 20)


@pytest.mark.parametrize("normalize", [False, True])
def test_pooled_layer_is_the_features_before_the_head(normalize):
    from evaluation import compute_embeddings

    torch.manual_seed(0)
    model = ARCHITECTURES.get("smallnet")(embed_dim=D, normalize=normalize, width=4).eval()
    images = torch.randn(6, 1, 32, 32)
    with torch.no_grad():
        feats = model.features(images)
        pooled = model.represent(images, "pooled")
        head = model.represent(images, "head")
    assert pooled.shape == (6, 16) and head.shape == (6, D)  # 4w channels, D
    expected = torch.nn.functional.normalize(feats, dim=1) if normalize else feats
    torch.testing.assert_close(pooled, expected)
    torch.testing.assert_close(head, model(images))
    loader = [
        (images[:4], torch.zeros(4), torch.arange(4)),
        (images[4:], torch.ones(2), torch.arange(4, 6)),
    ]
    embeds, _ = compute_embeddings(model, loader, "cpu", layer="pooled")
    torch.testing.assert_close(embeds, pooled)
    with pytest.raises(ValueError, match="not one of: head, pooled"):
        model.represent(images, "logits")
