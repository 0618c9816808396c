"""The Registry: registration, lookup errors, flags generated from keyword arguments, building."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Literal

import pytest

from registry import Registry, RegistryError


def make_registry() -> Registry:
    reg = Registry("widget", "widget")

    @reg.register("spring", flags={"stiffness": "--legacy_stiffness"})
    class Spring:
        """A spring.

        Args:
            stiffness: how hard it pushes back,
                in newtons per metre.
            damped: whether it is damped.
            modes: resonance modes.
            shape: coil shape.
            limit: optional cap.
        """

        context_params = ("owner",)

        def __init__(
            self,
            n_coils: int,
            stiffness: float = 1.5,
            damped: bool = False,
            modes: list[int] = (1, 2),
            shape: Literal["round", "flat"] = "round",
            limit: float | None = None,
            owner: str = "nobody",
            loud: bool = True,
        ):
            self.__dict__.update(locals())

    @reg.register("bolt")
    class Bolt:
        """A bolt."""

        def __init__(self, length: float = 2.0):
            self.length = length

    return reg


def test_names_get_and_unknown_name_lists_valid_ones():
    reg = make_registry()
    assert reg.names() == ["bolt", "spring"]
    assert "bolt" in reg and len(reg) == 2
    with pytest.raises(RegistryError, match=r"unknown widget 'nut'; choose one of: bolt, spring"):
        reg.get("nut")


def test_params_follow_signature_types_defaults_and_docstring():
    params = {p.name: p for p in make_registry().params("spring")}
    # n_coils has no default and owner is declared context: neither becomes a flag
    assert set(params) == {"stiffness", "damped", "modes", "shape", "limit", "loud"}
    assert params["stiffness"].flag == "--legacy_stiffness"
    assert params["damped"].flag == "--widget_spring_damped"
    assert params["stiffness"].help == "how hard it pushes back, in newtons per metre."
    assert params["limit"].type is float and params["limit"].default is None
    assert params["shape"].choices == ("round", "flat")


def test_flags_parse_and_build_passes_context():
    reg = make_registry()
    parser = argparse.ArgumentParser()
    reg.add_flags(parser)
    opt = parser.parse_args(
        [
            "--legacy_stiffness",
            "3",
            "--widget_spring_damped",
            "--widget_spring_modes",
            "4",
            "5",
            "--widget_spring_shape",
            "flat",
            "--no-widget_spring_loud",
        ]
    )
    spring = reg.build("spring", opt, n_coils=7, owner="me", unrelated="ignored")
    assert (spring.stiffness, spring.damped, spring.modes, spring.shape) == (
        3.0,
        True,
        [4, 5],
        "flat",
    )
    assert spring.loud is False and spring.n_coils == 7 and spring.owner == "me"
    with pytest.raises(SystemExit):
        parser.parse_args(["--widget_spring_shape", "square"])


def test_build_without_namespace_uses_defaults_and_reports_missing_context():
    reg = make_registry()
    assert reg.build("bolt").length == 2.0
    with pytest.raises(RegistryError, match="needs n_coils"):
        reg.build("spring", {})


def test_shared_flag_with_conflicting_defaults_is_an_error():
    reg = Registry("widget", "w")

    @reg.register("a", flags={"size": "--shared_size"})
    class A:
        def __init__(self, size: int = 1):
            pass

    @reg.register("b", flags={"size": "--shared_size"})
    class B:
        def __init__(self, size: int = 2):
            pass

    with pytest.raises(RegistryError, match="--shared_size is shared with different defaults"):
        reg.add_flags(argparse.ArgumentParser())


def test_bad_names_and_double_registration_are_rejected():
    reg = make_registry()
    with pytest.raises(RegistryError):
        reg.register("Bad-Name")
    with pytest.raises(RegistryError, match="registered twice"):

        @reg.register("bolt")
        class Other:
            pass


def make_chain_registry() -> Registry:
    """A base that owns the context and a flag; subclasses name only their own arguments."""
    reg = Registry("gadget", "gadget")

    class Base:
        """Args:
        speed: shared speed flag.
        """

        context_params = ("seed",)

        def __init__(self, labels, seed: int = 0, speed: float = 1.0):
            self.labels, self.seed, self.speed = labels, seed, speed

    @reg.register("plain")
    class Plain(Base):
        """No arguments of its own."""

        def __init__(self, **context):
            super().__init__(**context)

    @reg.register("tuned", flags={"speed": "--legacy_speed"})
    class Tuned(Plain):
        """Args:
        gain: its own flag.
        """

        def __init__(self, gain: int = 3, **context):
            super().__init__(**context)
            self.gain = gain

    @reg.register("sink")
    class Sink:
        """Keeps every context value it is offered."""

        def __init__(self, size: int = 1, **context):
            self.size, self.context = size, context

    return reg


def test_context_passes_through_the_constructor_chain():
    reg = make_chain_registry()
    assert [p.name for p in reg.params("tuned")] == ["gain", "speed"]
    assert [p.flag for p in reg.params("tuned")] == ["--gadget_tuned_gain", "--legacy_speed"]
    assert reg.context_names("tuned") == ["labels", "seed"]
    tuned = reg.build(
        "tuned",
        {"gadget_tuned_gain": 5, "legacy_speed": 2.5},
        labels=[1, 2],
        seed=9,
        unrelated="dropped",
    )
    assert (tuned.gain, tuned.speed, tuned.labels, tuned.seed) == (5, 2.5, [1, 2], 9)
    plain = reg.build("plain", {}, labels=[0])
    assert (plain.speed, plain.seed) == (1.0, 0)
    with pytest.raises(RegistryError, match="gadget 'plain' needs labels"):
        reg.build("plain", {}, seed=1)
    # a chain that ends in **kwargs receives every context value
    assert reg.build("sink", {}, a=1, b=2).context == {"a": 1, "b": 2}


def test_legacy_flag_may_name_an_argument_of_a_base_but_not_an_unknown_one():
    reg = make_chain_registry()
    with pytest.raises(RegistryError, match="has no argument 'nope'"):

        @reg.register("bad", flags={"nope": "--nope"})
        class Bad:
            def __init__(self, size: int = 1):
                pass


def test_signature_is_walked_once_per_entry(monkeypatch):
    import registry

    calls = []
    real = registry.inspect.signature
    monkeypatch.setattr(registry.inspect, "signature", lambda f: calls.append(f) or real(f))
    reg = make_chain_registry()
    walked = len(calls)
    assert walked == 2 + 3 + 1  # plain: Plain, Base; tuned: Tuned, Plain, Base; sink
    for _ in range(3):
        reg.params("tuned"), reg.context_names("tuned")
        reg.build("tuned", {}, labels=[1])
        reg.add_flags(argparse.ArgumentParser())
    assert len(calls) == walked


# -------------------------------------------------------------------------- every module registers
def unregistered_modules(
    package: str, base: type, registry: Registry, bases_only: frozenset[str] = frozenset()
) -> list[str]:
    """Modules of ``package``, found by listing its folder, that define a subclass of ``base`` but
    had no entry in ``registry`` once the package was imported (left out of its ``__init__.py``)."""
    pkg = importlib.import_module(package)
    registered = {registry.get(n).__module__ for n in registry.names()}
    missing = []
    for path in sorted(Path(pkg.__file__).parent.glob("*.py")):
        module = f"{package}.{path.stem}"
        if path.stem.startswith("__") or module in bases_only:
            continue
        mod = importlib.import_module(module)
        defines = [
            c
            for c in vars(mod).values()
            if isinstance(c, type)
            and issubclass(c, base)
            and c is not base
            and c.__module__ == module
        ]
        if defines and module not in registered:
            missing.append(module)
    return missing


def plugin_folders():
    from architectures import ARCHITECTURES
    from architectures.embedding_net import EmbeddingNet
    from batch_mining.base import MINERS, Miner
    from criteria.base import LOSSES, Loss
    from datasampler.base import SAMPLERS, BatchSampler
    from datasets.base import DATASETS, DatasetSource
    from evaluation.names import METRICS, Metric

    return [
        ("criteria", Loss, LOSSES),
        ("batch_mining", Miner, MINERS),
        ("datasampler", BatchSampler, SAMPLERS),
        ("architectures", EmbeddingNet, ARCHITECTURES),
        ("datasets", DatasetSource, DATASETS),
        ("evaluation", Metric, METRICS),
    ]


#: Modules that hold only abstract intermediate bases, never registered themselves.
# modules that hold only the base class of a family (a metric kind's shared pass, the embedding
# store of the batch-match samplers): they define plug-in subclasses that are abstract
BASES_ONLY = frozenset({"datasampler.embedding_store", "evaluation.pairs", "evaluation.retrieval"})


def test_every_plugin_module_registers_an_entry():
    """A loss (miner, sampler, net, dataset, metric) module left out of its folder's __init__.py
    would be silently unregistered; helpers (pairwise.py, base.py...) define no plug-in class."""
    for package, base, registry in plugin_folders():
        assert len(registry) > 0, package
        assert unregistered_modules(package, base, registry, BASES_ONLY) == [], package
    for module in BASES_ONLY:  # the exemption list stays honest
        assert Path(importlib.import_module(module).__file__).exists()


def test_a_module_left_out_of_init_is_caught(tmp_path, monkeypatch):
    pkg = tmp_path / "toyplugins"
    pkg.mkdir()
    (pkg / "base.py").write_text(
        "from registry import Registry\nTOYS = Registry('toy', 'toy')\nclass Toy:\n    pass\n"
    )
    body = (
        "from toyplugins.base import TOYS, Toy\n@TOYS.register('{0}')\nclass {1}(Toy):\n    pass\n"
    )
    (pkg / "listed.py").write_text(body.format("listed", "Listed"))
    (pkg / "forgotten.py").write_text(body.format("forgotten", "Forgotten"))
    (pkg / "helpers.py").write_text("def helper():\n    return 1\n")
    (pkg / "__init__.py").write_text("from toyplugins import listed  # noqa: F401\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    base = importlib.import_module("toyplugins.base")
    assert unregistered_modules("toyplugins", base.Toy, base.TOYS) == ["toyplugins.forgotten"]
