"""A tiny CUB-layout tree of generated pictures (``images/NNN.Class_Name/*.jpg``), for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

BIRDS = [
    "Black_footed_Albatross",
    "Laysan_Albatross",
    "Sooty_Albatross",
    "Groove_billed_Ani",
    "Crested_Auklet",
    "Least_Auklet",
    "Parakeet_Auklet",
    "Rhinoceros_Auklet",
]


def make_cub_tree(root: Path, n_classes: int = 8, per_class: int = 6, seed: int = 0) -> Path:
    """``root/cub200/images/00k.<bird>/<i>.jpg``: each class a colour and a shape on a coloured
    ground, in varied sizes and aspect ratios (landscape and portrait, like photographs)."""
    rng = np.random.default_rng(seed)
    for c in range(n_classes):
        folder = root / "cub200" / "images" / f"{c + 1:03d}.{BIRDS[c % len(BIRDS)]}"
        folder.mkdir(parents=True, exist_ok=True)
        colour = tuple(int(v) for v in rng.integers(30, 230, 3))
        for i in range(per_class):
            w, h = (int(rng.integers(90, 160)), int(rng.integers(70, 150)))
            ground = tuple(int(v) for v in rng.integers(150, 256, 3))
            img = Image.new("RGB", (w, h), ground)
            pen = ImageDraw.Draw(img)
            x, y = int(rng.integers(5, w // 3)), int(rng.integers(5, h // 3))
            box = [x, y, x + w // 2, y + h // 2]
            (pen.ellipse if c % 2 else pen.rectangle)(box, fill=colour)
            if c % 4 >= 2:
                pen.polygon(
                    [(x, y + h // 2), (x + w // 4, y), (x + w // 2, y + h // 2)],
                    fill=tuple(255 - v for v in colour),
                )
            img.save(folder / f"{i}.jpg", quality=90)
    return root
