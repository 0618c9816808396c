"""Class table and image generation for the built-in ``glyphs`` data set (see ``glyph_fonts``).

Like Omniglot (Lake et al., Science 2015) a class is a character and its instances are different
"hands"; here a hand is a font plus a small random affine distortion (rotation, scale, shear,
translation), since beyond ASCII the fonts drawing a character are mostly weight/slant variants of
DejaVu and STIX. The class table (which characters, which fonts draw them) depends only on the
generation parameters and the installed fonts; ``data_seed`` fixes the font order per class and the
distortions. Instances come from distinct fonts while the class has enough, then from further
distortions of the same fonts.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from datasets import glyph_fonts
from datasets.base import DatasetError

#: Work at twice the target size, then average-pool: cheap anti-aliasing for the distortion.
SUPERSAMPLE = 2


@dataclass
class GlyphClass:
    code: int
    fonts: list[Path]  # fonts that really draw the character, sorted by name
    bitmaps: list[np.ndarray]  # (S*SUPERSAMPLE, S*SUPERSAMPLE) uint8 each, aligned with fonts


def _group(code: int) -> str:
    """Script of a letter (first word of its Unicode name), else its general category."""
    char = chr(code)
    category = unicodedata.category(char)
    return unicodedata.name(char, "?").split()[0] if category[0] == "L" else category


def class_table(
    n_classes: int, image_size: int, min_fonts: int, fonts: list[Path]
) -> list[GlyphClass]:
    """The ``n_classes`` characters drawn by the most fonts.

    Among characters with equally many fonts, scripts take turns (Latin, Greek, Cyrillic, ... and
    the symbol and punctuation categories), so the set holds several alphabets as Omniglot does.

    A character is kept if at least ``min_fonts`` fonts really draw it and none of its bitmaps
    equals a bitmap of an already kept character in the same font. Raises ``DatasetError`` when
    fewer exist.
    """
    canvas = image_size * SUPERSAMPLE
    holders: dict[int, list[Path]] = {}
    for path in fonts:
        for code in glyph_fonts.charmap_candidates(path):
            holders.setdefault(code, []).append(path)
    counts = Counter({c: len(p) for c, p in holders.items() if len(p) >= min_fonts})
    group_rank: dict[int, int] = {}
    seen_in_group: Counter = Counter()
    for code in sorted(counts):
        group = _group(code)
        group_rank[code] = seen_in_group[(counts[code], group)]
        seen_in_group[(counts[code], group)] += 1
    ranked = sorted(counts, key=lambda c: (-counts[c], group_rank[c], c))
    seen: set[tuple[Path, bytes]] = set()
    table: list[GlyphClass] = []
    for code in ranked:
        drawn = glyph_fonts.drawn_by(code, holders[code], canvas)
        keys = {(p, img.tobytes()) for p, img in drawn.items()}
        if len(drawn) < min_fonts or keys & seen:
            continue
        seen |= keys
        names = sorted(drawn, key=lambda p: p.name)
        table.append(GlyphClass(code, names, [drawn[p] for p in names]))
        if len(table) == n_classes:
            return table
    raise DatasetError(
        f"only {len(table)} characters are drawn by at least {min_fonts} fonts at size "
        f"{image_size}; lower n_classes or min_fonts"
    )


def order_classes(table: list[GlyphClass], class_order: str) -> list[GlyphClass]:
    """``codepoint``: scripts stay together (train and test differ in script, like Omniglot's
    background/evaluation alphabets); ``shuffled``: a fixed permutation mixes scripts in both
    halves."""
    table = sorted(table, key=lambda g: g.code)
    if class_order == "shuffled":
        table = [table[i] for i in np.random.default_rng(0).permutation(len(table))]
    return table


def distortions(n: int, rng: np.random.Generator, strength: float) -> np.ndarray:
    """(n, 5) rotation (rad), log-scale, shear, shift x, shift y (fractions of the half-side)."""
    limits = np.array([math.radians(15), math.log(1.15), 0.25, 0.08, 0.08]) * strength
    return (rng.uniform(-1, 1, size=(n, 5)) * limits).astype(np.float32)


def warp(bitmaps: np.ndarray, params: np.ndarray) -> np.ndarray:
    """bitmaps: (N, 2S, 2S) uint8, params: (N, 5) → (N, S, S) uint8, distorted and downsampled."""
    p = torch.from_numpy(params).double()
    cos, sin, scale = torch.cos(p[:, 0]), torch.sin(p[:, 0]), torch.exp(p[:, 1])
    forward = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shear = torch.eye(2, dtype=torch.float64).repeat(len(p), 1, 1)
    shear[:, 0, 1] = p[:, 2]
    forward = forward @ shear * scale.view(-1, 1, 1)
    inverse = torch.linalg.inv(forward)
    # affine_grid maps output to input coordinates: x_in = A^-1 (x_out - t)
    theta = torch.cat([inverse, -(inverse @ p[:, 3:5, None])], dim=2).float()
    out = []
    for lo in range(0, len(p), 1024):
        x = torch.from_numpy(bitmaps[lo : lo + 1024]).float().unsqueeze(1)
        grid = F.affine_grid(theta[lo : lo + 1024], list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out.append(F.avg_pool2d(x, SUPERSAMPLE).squeeze(1).round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out).numpy()


def generate(
    table: list[GlyphClass], per_class: int, data_seed: int, strength: float
) -> dict[str, np.ndarray]:
    """images (N, S, S) uint8 ink, labels (N,), font_ids (N,) into font_names, params (N, 5)."""
    rng = np.random.default_rng(data_seed)
    fonts = sorted({p for g in table for p in g.fonts}, key=lambda p: p.name)
    font_id = {p: i for i, p in enumerate(fonts)}
    stack, labels, font_ids = [], [], []
    for label, g in enumerate(table):
        order = rng.permutation(len(g.fonts))
        for j in range(per_class):
            k = order[j % len(order)]
            stack.append(g.bitmaps[k])
            labels.append(label)
            font_ids.append(font_id[g.fonts[k]])
    params = distortions(len(stack), rng, strength)
    return {
        "images": warp(np.stack(stack), params),
        "labels": np.asarray(labels, np.int64),
        "font_ids": np.asarray(font_ids, np.int64),
        "params": params,
        "codepoints": np.asarray([g.code for g in table], np.int64),
        "font_names": np.asarray([p.name for p in fonts]),
    }
