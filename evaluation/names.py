"""The metric registry and the parser of metric names (``e_recall@4``, ``c_mAP_1000``,
``fnmr@0.001``).

A metric *family* is a registered class (``METRICS``); a metric *name* is a family spelling, an
optional ``@arg`` and an optional ``c_`` prefix that computes the same quantity on L2-normalised
embeddings (cosine ranking, spherical k-means, statistics of directions). Spellings keep the legacy
forms of Roth et al., "Revisiting Training Strategies and Generalization Performance in Deep Metric
Learning", ICML 2020 (``e_recall`` whose cosine form is ``c_recall``, ``mAP_c``, ``mAP_1000``...),
and add Musgrave et al., "A Metric Learning Reality Check", ECCV 2020 (``precision_at_1``,
``r_precision``, ``mAP_at_r``, ``ami``) and Open Metric Learning (``cmc@k``, ``precision@k``,
``map@k``, ``fnmr@fmr``, ``pcf@r``, and its users' requests ``ndcg@k``, ``pr_auc``). Deviation from
the original harness: names are parsed from a fixed table, never by substring tests, so a misspelt
name fails at parse time with the list of valid spellings.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry import Registry, RegistryError

if TYPE_CHECKING:
    from .context import Context

METRICS = Registry("metric", "metric")


class Metric:
    """Base class of a metric family.

    ``kind`` names the shared pass the metric reads from. A *kind* is a direct subclass of
    ``Metric`` that sets ``kind`` and implements ``run(ctx, metrics)``: the one expensive pass
    (neighbour ranks, k-means, pair scores...) computed once for every metric of that kind, and
    the per-category breakdown. Defining such a subclass registers the kind (``KINDS``); so a new
    kind is one file: its class, its pass, its metrics. ``evaluate`` only groups names by kind.
    ``arg`` is ``None`` (no ``@``), ``"int"``, ``"float"`` or a tuple of allowed words.
    """

    spelling: str = ""
    kind: str = ""
    arg: Any = None
    name: str = ""  # the name as requested (``c_recall@4``), set by ``ParsedName.build``
    context_params = ("value", "cosine")

    def __init__(self, value: Any, cosine: bool):
        self.value = value
        self.cosine = cosine

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "kind" in cls.__dict__:
            if cls.kind in KINDS and KINDS[cls.kind] is not cls:
                raise TypeError(
                    f"metric kind {cls.kind!r} is defined twice: "
                    f"{KINDS[cls.kind].__qualname__} and {cls.__qualname__}"
                )
            KINDS[cls.kind] = cls

    @classmethod
    def run(cls, ctx: Context, metrics: list[Metric]) -> dict[str, Any]:
        """Every value of ``metrics`` (all of this kind): ``{name or name/cat=<c>: value}``."""
        raise NotImplementedError(f"{cls.__qualname__} defines no shared pass")


#: kind name → the class whose ``run`` computes every metric of that kind.
KINDS: dict[str, type[Metric]] = {}


@dataclass(frozen=True)
class ParsedName:
    name: str  # exactly as given
    family: str  # registry name
    value: Any  # parsed @arg or None
    cosine: bool

    def build(self) -> Metric:
        m = METRICS.get(self.family)(value=self.value, cosine=self.cosine)
        m.name = self.name
        return m


def _spellings() -> dict[str, tuple[str, bool]]:
    """Spelling (without @arg) → (family, cosine); legacy spellings, registry names, ``c_``
    forms."""
    table: dict[str, tuple[str, bool]] = {}
    for fam in METRICS.names():
        cls = METRICS.get(fam)
        for s in {cls.spelling or fam, fam}:
            table[s] = (fam, False)
            table["c_" + s.removeprefix("e_")] = (fam, True)
    return table


def valid_spellings() -> list[str]:
    out = []
    for fam in METRICS.names():
        cls = METRICS.get(fam)
        s = cls.spelling or fam
        a = cls.arg
        suffix = "" if a is None else "@<" + ("|".join(a) if isinstance(a, tuple) else a) + ">"
        out.append(f"{s}{suffix}")
    return [*out, "(prefix c_ for cosine: c_recall@<int>, c_mAP_c, ...)"]


def parse_name(name: str) -> ParsedName:
    """``"c_recall@4"`` → family ``e_recall``, value 4, cosine. Raises RegistryError when
    unparsable."""
    base, at, raw = name.partition("@")
    found = _spellings().get(base)
    if found is None:
        close = difflib.get_close_matches(base, list(_spellings()), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise RegistryError(f"unknown metric {name!r}; {hint}valid metrics: see --help")
    fam, cosine = found
    spec = METRICS.get(fam).arg
    value: Any = None
    if spec is None and at:
        _fail(name, f"{base} takes no @argument")
    if spec is not None:
        if not at or not raw:
            _fail(name, f"{base} needs an @argument")
        try:
            value = int(raw) if spec == "int" else float(raw) if spec == "float" else raw
        except ValueError:
            _fail(name, f"@{raw} is not a valid {spec}")
        if isinstance(spec, tuple) and value not in spec:
            _fail(name, f"@{raw} is not one of {', '.join(spec)}")
        check = getattr(METRICS.get(fam), "check_value", None)
        if check is not None and (msg := check(value)):
            _fail(name, msg)
    return ParsedName(name, fam, value, cosine)


def _fail(name: str, why: str) -> None:
    """One short line: the name, what is wrong, and how the family is written (the whole list is
    in ``--help``, where a line of every metric belongs)."""
    base = name.partition("@")[0]
    fam, cosine = _spellings()[base]
    spelling = next(
        s for s in valid_spellings() if s.partition("@")[0] == (METRICS.get(fam).spelling or fam)
    )
    if cosine:
        spelling = base + spelling[len(spelling.partition("@")[0]) :]
    raise RegistryError(f"metric {name!r}: {why}; write it as {spelling}")


def check_metric_names(names: list[str] | tuple[str, ...] | str) -> None:
    """Raise RegistryError (one line, listing the valid metric names) for any unparsable name."""
    for n in [names] if isinstance(names, str) else names:
        parse_name(n)
