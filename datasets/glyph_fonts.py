"""Fonts, coverage and rasterisation for the built-in ``glyphs`` data set.

The data set imitates Omniglot (Lake, Salakhutdinov & Tenenbaum, "Human-level concept learning
through probabilistic program induction", Science 2015): one class per character, one instance per
"hand". Here the hands are TrueType fonts shipped with matplotlib (plus Debian's Noto fonts when
installed), so nothing is downloaded. A font counts as drawing a character only if its charmap maps
it, the glyph name does not contradict the code point (the BaKoMa Computer Modern fonts use TeX
encodings, e.g. cmmi10 maps "!" to omega), the bitmap is non-empty, fits the canvas and differs from
the font's ``.notdef`` glyph. Characters whose bitmaps coincide in some font (Latin A, Greek Alpha,
Cyrillic A) are merged, keeping the first, so no two classes are the same drawing.
"""

from __future__ import annotations

import hashlib
import unicodedata
from functools import cache
from pathlib import Path

import matplotlib
import numpy as np
from fontTools import agl
from matplotlib.ft2font import FT2Font

#: Placeholder-only (LastResort), TeX extension/symbol encodings and STIX private-use/size variants.
EXCLUDED_PREFIXES = ("LastResortHE", "cmex10", "cmsy10", "STIXNonUni", "STIXSiz")
NOTO_DIR = Path("/usr/share/fonts/truetype/noto")
#: Letters, numbers, symbols, punctuation; never controls, separators or combining marks.
ALLOWED_CATEGORIES = ("L", "N", "S", "P")
#: Em size as a fraction of the canvas; glyph extents (about -0.24 to 0.93 em) then fit with margin.
EM_FRACTION = 0.62
#: Height of the middle of the usual glyph extent above the baseline, in em.
EM_CENTRE = 0.345


def font_files(use_system_fonts: bool = True) -> list[Path]:
    """matplotlib's usable TrueType fonts, plus Noto when ``use_system_fonts`` and it is
    installed."""
    mpl_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    files = [p for p in sorted(mpl_dir.glob("*.ttf")) if not p.name.startswith(EXCLUDED_PREFIXES)]
    if use_system_fonts and NOTO_DIR.is_dir():
        files += sorted(NOTO_DIR.glob("*.tt[fc]"))
    return files


def fonts_digest(files: list[Path]) -> str:
    """Stable identity of a font set (names and sizes), part of the cache key."""
    text = "|".join(f"{p.name}:{p.stat().st_size}" for p in files)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _name_agrees(font: FT2Font, glyph: int, char: str) -> bool:
    name = font.get_glyph_name(glyph)
    decoded = agl.toUnicode(name) if name else ""
    return not decoded or unicodedata.normalize("NFKC", decoded) == unicodedata.normalize(
        "NFKC", char
    )


@cache
def _font(path: str, canvas: int) -> FT2Font:
    font = FT2Font(path)
    font.set_size(EM_FRACTION * canvas, 72)  # 72 dpi: one point is one pixel
    return font


@cache
def _charmap(path: str) -> dict[int, int]:
    return FT2Font(path).get_charmap()


def charmap_candidates(path: Path) -> list[int]:
    """Code points ``path`` maps to a glyph, in an allowed category (``drawn_by`` checks the
    rest)."""
    return [
        code
        for code, glyph in _charmap(str(path)).items()
        if glyph and unicodedata.category(chr(code))[0] in ALLOWED_CATEGORIES
    ]


def _place(bitmap: np.ndarray, baseline_row: int, canvas: int) -> np.ndarray | None:
    cols = np.flatnonzero(bitmap.any(axis=0))
    rows = np.flatnonzero(bitmap.any(axis=1))
    if cols.size == 0:
        return None
    bitmap = bitmap[:, cols[0] : cols[-1] + 1]
    h, w = bitmap.shape
    top = round(canvas / 2 + EM_CENTRE * EM_FRACTION * canvas) - baseline_row
    left = (canvas - w) // 2
    if top + rows[0] < 0 or top + rows[-1] >= canvas or w > canvas:
        return None
    out = np.zeros((canvas, canvas), np.uint8)
    lo = max(top, 0)
    out[lo : top + h, left : left + w] = bitmap[lo - top : canvas - top]
    return out


def render(path: Path, code: int, canvas: int) -> np.ndarray | None:
    """``(canvas, canvas)`` uint8 ink of one character on its baseline.

    Returns ``None`` when the glyph is empty or does not fit the canvas.
    """
    font = _font(str(path), canvas)
    font.set_text(chr(code))
    font.draw_glyphs_to_bitmap()
    bitmap = np.asarray(font.get_image())
    if bitmap.size == 0 or not bitmap.any():
        return None
    return _place(bitmap, bitmap.shape[0] - font.get_descent() // 64, canvas)


def _outline(font: FT2Font, glyph: int) -> bytes:
    font.load_glyph(glyph)
    vertices, codes = font.get_path()
    return vertices.tobytes() + codes.tobytes()


@cache
def _notdef(path: str, canvas: int) -> bytes:
    return _outline(_font(path, canvas), 0)


def drawn_by(code: int, paths: list[Path], canvas: int) -> dict[Path, np.ndarray]:
    """Fonts among ``paths`` that really draw ``code``, with their placed bitmaps.

    Really: mapped, the glyph name agrees with the code point, the outline is not ``.notdef``'s, and
    the bitmap is non-empty and fits the canvas.
    """
    out = {}
    for p in paths:
        font = _font(str(p), canvas)
        glyph = _charmap(str(p)).get(code, 0)
        if not glyph or not _name_agrees(font, glyph, chr(code)):
            continue
        if _outline(font, glyph) == _notdef(str(p), canvas):
            continue
        img = render(p, code, canvas)
        if img is not None:
            out[p] = img
    return out
