"""The Registry: registration, lookup errors, flags generated from keyword arguments, building."""
from __future__ import annotations

import argparse
from typing import Literal, Optional

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

        def __init__(self, n_coils: int, stiffness: float = 1.5, damped: bool = False,
                     modes: list[int] = (1, 2), shape: Literal["round", "flat"] = "round",
                     limit: Optional[float] = None, owner: str = "nobody", loud: bool = True):
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
    opt = parser.parse_args(["--legacy_stiffness", "3", "--widget_spring_damped",
                             "--widget_spring_modes", "4", "5", "--widget_spring_shape", "flat",
                             "--no-widget_spring_loud"])
    spring = reg.build("spring", opt, n_coils=7, owner="me", unrelated="ignored")
    assert (spring.stiffness, spring.damped, spring.modes, spring.shape) == (3.0, True, [4, 5], "flat")
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
