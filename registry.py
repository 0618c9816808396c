"""The plug-in registry shared by every plug-in folder.

A plug-in is a class registered by name (``@LOSSES.register("margin")``). Its hyper-parameters are
the keyword arguments of ``__init__`` that have defaults; the registry turns each of them into a
command-line flag named ``--<prefix>_<name>_<param>`` (``--loss_margin_beta``), or into the legacy
name an entry declares explicitly (``flags={"lr_multi": "--loss_proxynca_lrmulti"}``).
Arguments without a default, and those listed in the class attribute ``context_params``, are
*context*: values only known at run time (number of classes, the miner, the training labels), which
``build(name, opt, **context)`` passes explicitly. Classes never see ``opt``.

A constructor names only what it uses and may end in ``**context``, which it hands on to its base
class's ``__init__`` (``super().__init__(**context)``): the registry walks that chain of
constructors once per entry, so a base's flags and context (the sampler's labels, batch size and
seed; the miner's seed) need not be restated in every subclass. ``build`` passes each context value
that some constructor in the chain names, and every value when the chain ends in ``**kwargs``;
other values are dropped, so a caller may offer context that some entries do not use.

Help text comes from the class docstring: an ``Args:`` section with ``name: text`` lines.
"""

from __future__ import annotations

import argparse
import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class RegistryError(ValueError):
    """A name or a combination that the registry cannot serve; the message says what is allowed."""


@dataclass(frozen=True)
class Param:
    """One hyper-parameter of a plug-in, seen as a command-line flag."""

    name: str  # keyword argument of the class
    flag: str  # "--loss_margin_beta"
    default: Any
    type: Any  # float, int, str, bool, or list[...] (nargs)
    help: str
    choices: tuple | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-")


def _doc_args(cls: type) -> dict[str, str]:
    """``name: text`` lines of the ``Args:`` section of the class (or ``__init__``) docstring."""
    out: dict[str, str] = {}
    for doc in (cls.__doc__ or "", cls.__init__.__doc__ or ""):
        section = re.split(r"^\s*Args:\s*$", doc, maxsplit=1, flags=re.M)
        if len(section) < 2:
            continue
        current = None
        for line in section[1].splitlines():
            m = re.match(r"^\s{2,}(\w+)\s*(?:\([^)]*\))?:\s*(.*)$", line)
            if m:
                current = m.group(1)
                out[current] = m.group(2).strip()
            elif current and line.strip() and not re.match(r"^\s*\w+:\s*$", line):
                out[current] += " " + line.strip()
            elif not line.strip():
                continue
            else:
                break
    return out


def _first_line(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


@dataclass(frozen=True)
class _Chain:
    """An entry's constructor chain, walked once at registration."""

    inits: tuple[Callable, ...]  # __init__ functions, most derived first
    params: tuple[inspect.Parameter, ...]  # named parameters, first occurrence wins
    context: frozenset[str]  # declared context_params
    open_ended: bool  # the chain ends in **kwargs: any context passes

    @property
    def names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params)

    def is_context(self, p: inspect.Parameter) -> bool:
        return p.default is p.empty or p.name in self.context

    @property
    def required(self) -> list[str]:
        return [p.name for p in self.params if p.default is p.empty]


def _walk(cls: type) -> _Chain:
    """Follow ``__init__`` up the MRO while each one ends in ``**kwargs`` (it forwards them)."""
    inits, params, open_ended = [], {}, False
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass is object:  # the last __init__ keeps its **kwargs (object's takes none)
            break
        inits.append(init)
        sig = list(inspect.signature(init).parameters.values())[1:]
        for p in sig:
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                params.setdefault(p.name, p)
        open_ended = any(p.kind is p.VAR_KEYWORD for p in sig)
        if not open_ended:
            break
    return _Chain(
        tuple(inits),
        tuple(params.values()),
        frozenset(getattr(cls, "context_params", ())),
        open_ended,
    )


def _unwrap_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


class Registry:
    """Name → plug-in class, with flag generation and building from a namespace.

    Args:
        kind: what the entries are, for messages ("loss", "miner").
        prefix: flag prefix ("loss" gives ``--loss_<name>_<param>``).
    """

    def __init__(self, kind: str, prefix: str):
        self.kind = kind
        self.prefix = prefix
        self._entries: dict[str, type] = {}
        self._flags: dict[str, dict[str, str]] = {}
        self._chains: dict[str, _Chain] = {}
        self._params: dict[str, list[Param]] = {}  # filled on first use (hints resolve late)

    # ----------------------------------------------------------------------------- registration
    def register(self, name: str, *, flags: dict[str, str] | None = None) -> Callable[[type], type]:
        """Class decorator. ``flags`` maps a keyword argument to a legacy flag name."""
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise RegistryError(f"{self.kind} name {name!r} must be lower-case letters, digits, _")

        def deco(cls: type) -> type:
            if name in self._entries and self._entries[name] is not cls:
                raise RegistryError(f"{self.kind} {name!r} is registered twice")
            chain = _walk(cls)
            for kw in flags or {}:
                if kw not in chain.names:
                    raise RegistryError(
                        f"{cls.__name__} has no argument {kw!r} for its legacy flag"
                    )
            self._entries[name], self._chains[name] = cls, chain
            self._flags[name] = dict(flags or {})
            self._params.pop(name, None)
            cls.registry_name = name
            return cls

        return deco

    # ----------------------------------------------------------------------------- lookup
    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> type:
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    # ----------------------------------------------------------------------------- parameters
    def params(self, name: str) -> list[Param]:
        """The flags of one entry, in constructor-chain order (the class's own first)."""
        if name in self._params:
            return self._params[name]
        cls, chain = self.get(name), self._chains[name]
        hints: dict[str, Any] = {}
        for init in reversed(chain.inits):  # a subclass's annotation wins over its base's
            hints.update(typing.get_type_hints(init))
        docs = _doc_args(cls)
        out = []
        for p in chain.params:
            if chain.is_context(p):
                continue
            tp = _unwrap_optional(hints.get(p.name, type(p.default)))
            choices = None
            if typing.get_origin(tp) is typing.Literal:
                choices = typing.get_args(tp)
                tp = type(choices[0])
            if tp is tuple or typing.get_origin(tp) in (list, tuple):
                args = [a for a in typing.get_args(tp) if a is not Ellipsis]
                tp = list[args[0] if args else str]
            flag = self._flags[name].get(p.name, f"--{self.prefix}_{name}_{p.name}")
            out.append(Param(p.name, flag, p.default, tp, docs.get(p.name, ""), choices))
        self._params[name] = out
        return out

    def context_names(self, name: str) -> list[str]:
        """Run-time arguments of one entry (no default, or declared in ``context_params``)."""
        self.get(name)
        return [p.name for p in self._chains[name].params if self._chains[name].is_context(p)]

    def add_flags(
        self, parser: argparse.ArgumentParser, seen: dict[str, Param] | None = None
    ) -> None:
        """One argument group per entry, holding that entry's flags (shared flags appear once)."""
        seen = {} if seen is None else seen
        for name in self.names():
            params = self.params(name)
            summary = _first_line(self.get(name))
            extra = getattr(self.get(name), "help_extra", None)
            desc = summary + (f" {extra() if callable(extra) else extra}" if extra else "")
            group = parser.add_argument_group(f"{self.kind} '{name}'", desc or None)
            for p in params:
                if p.dest in seen:
                    if seen[p.dest].default != p.default:
                        raise RegistryError(
                            f"flag {p.flag} is shared with different defaults "
                            f"({seen[p.dest].default!r} vs {p.default!r})"
                        )
                    continue
                seen[p.dest] = p
                group.add_argument(p.flag, **_argparse_kwargs(p))

    def values(self, name: str, opt: argparse.Namespace | dict) -> dict[str, Any]:
        """Keyword arguments for ``name`` read from ``opt`` (missing flags keep the class
        default)."""
        table = opt if isinstance(opt, dict) else vars(opt)
        return {p.name: table.get(p.dest, p.default) for p in self.params(name)}

    def build(self, name: str, opt: argparse.Namespace | dict | None = None, **context: Any) -> Any:
        """Instantiate ``name`` with its flags from ``opt`` and the context its chain accepts."""
        cls, chain = self.get(name), self._chains[name]
        kwargs = self.values(name, opt or {})
        kwargs.update({k: v for k, v in context.items() if chain.open_ended or k in chain.names})
        missing = [c for c in chain.required if c not in kwargs]
        if missing:
            raise RegistryError(f"{self.kind} {name!r} needs {', '.join(missing)} to be built")
        return cls(**kwargs)


def _argparse_kwargs(p: Param) -> dict[str, Any]:
    # the parser's ArgumentDefaultsHelpFormatter appends the default
    help_text = (p.help or "").replace("%", "%%")
    if p.type is bool:
        if p.default:
            return {"action": argparse.BooleanOptionalAction, "default": True, "help": help_text}
        return {"action": "store_true", "default": False, "help": help_text}
    if typing.get_origin(p.type) is list:
        (inner,) = typing.get_args(p.type)
        default = list(p.default) if p.default is not None else None
        return {"nargs": "+", "type": inner, "default": default, "help": help_text}
    kwargs: dict[str, Any] = {"type": p.type, "default": p.default, "help": help_text}
    if p.choices:
        kwargs["choices"] = p.choices
    return kwargs
