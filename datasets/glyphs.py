"""``glyphs``: a generated, Omniglot-like data set that needs no download.

Omniglot: Lake, Salakhutdinov & Tenenbaum, "Human-level concept learning through probabilistic
program induction", Science 2015. Each class is one character, each instance that character drawn by
another font with a small affine distortion (``glyph_generator``, ``glyph_fonts``). Generated once
and cached as ``<root>/glyphs/glyphs_v<version>_<key>.npz`` (key: every generation parameter and the
font set).

Split as RevisitDML splits CUB200 (Roth et al., ICML 2020): the first half of the classes (by class
id) train, the second half test. Images are black ink on white paper, one channel, ``image_size``
square. Training augmentation never flips (a mirrored character is another character, or none) and
crops mildly (RandomResizedCrop scale 0.7–1) so no stroke is lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Literal

import numpy as np

from datasets import glyph_fonts, glyph_generator
from datasets.base import DATASETS, DatasetSource, Split

#: Bump when the rendering or the class table changes, so stale caches are not reused.
VERSION = 1


@DATASETS.register("glyphs")
class Glyphs(DatasetSource):
    """Generated Omniglot-like characters rendered from matplotlib's (and Noto's) fonts.

    Args:
        n_classes: number of characters (the first half trains, the second half tests).
        per_class: instances per character (distinct fonts while there are enough, then
            distortions).
        image_size: side of the generated images in pixels.
        min_fonts: a character is used only if at least this many fonts really draw it.
        distortion: strength of the random affine distortion (0: none; 1: rotation up to 15 degrees,
            scale 0.87-1.15, shear 0.25, shift 8% of the half-side).
        data_seed: seed of the font order and distortions; fixed across run seeds so that seeds vary
            only the training, as on a real benchmark.
        class_order: "shuffled" mixes scripts in both halves; "codepoint" keeps them together, so
            train and test differ in script like Omniglot's background/evaluation alphabets.
        use_system_fonts: also use Debian's Noto fonts (/usr/share/fonts/truetype/noto) if
            installed.
    """

    allow_flip = False
    min_crop_scale = 0.7

    def __init__(
        self,
        root: str,
        n_classes: int = 400,
        per_class: int = 12,
        image_size: int = 32,
        min_fonts: int = 8,
        distortion: float = 1.0,
        data_seed: int = 0,
        class_order: Literal["shuffled", "codepoint"] = "shuffled",
        use_system_fonts: bool = True,
    ):
        if n_classes < 2 or per_class < 1 or image_size < 8:
            raise ValueError("glyphs needs n_classes >= 2, per_class >= 1 and image_size >= 8")
        self.root = Path(root)
        self.params = dict(
            n_classes=n_classes,
            per_class=per_class,
            image_size=image_size,
            min_fonts=min_fonts,
            distortion=distortion,
            data_seed=data_seed,
            class_order=class_order,
            use_system_fonts=use_system_fonts,
        )
        self.fonts = glyph_fonts.font_files(use_system_fonts)

    @property
    def cache_path(self) -> Path:
        key = json.dumps(
            {**self.params, "fonts": glyph_fonts.fonts_digest(self.fonts), "version": VERSION},
            sort_keys=True,
        )
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        return self.root / "glyphs" / f"glyphs_v{VERSION}_{digest}.npz"

    def generate(self) -> dict[str, np.ndarray]:
        """Render every image (no cache); adds ``seconds``, the generation time."""
        p = self.params
        start = time.perf_counter()
        table = glyph_generator.class_table(
            p["n_classes"], p["image_size"], p["min_fonts"], self.fonts
        )
        table = glyph_generator.order_classes(table, p["class_order"])
        arrays = glyph_generator.generate(table, p["per_class"], p["data_seed"], p["distortion"])
        arrays["n_fonts_per_class"] = np.asarray([len(g.fonts) for g in table], np.int64)
        arrays["seconds"] = np.float64(time.perf_counter() - start)
        return arrays

    def arrays(self) -> dict[str, np.ndarray]:
        """The cached arrays, generating and writing the cache (atomically) on first use."""
        path = self.cache_path
        if path.is_file():
            with np.load(path, allow_pickle=False) as f:
                return dict(f)
        arrays = self.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, **arrays)
            os.replace(tmp, path)  # atomic: concurrent ranks never read a half-written cache
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return arrays

    def load(self) -> dict[str, Split]:
        a = self.arrays()
        paper = 255 - a["images"]  # ink on white, like Omniglot's scans
        n_train = len(a["codepoints"]) // 2
        info = {
            "dataset": "glyphs",
            **self.params,
            "cache": str(self.cache_path),
            "generation_seconds": round(float(a["seconds"]), 3),
            "fonts": a["font_names"].tolist(),
            "noto_installed": glyph_fonts.NOTO_DIR.is_dir(),
        }
        names = {k: f"U+{c:04X} {chr(c)}" for k, c in enumerate(a["codepoints"].tolist())}
        return {
            name: Split(labels=a["labels"][keep], images=paper[keep], class_names=names, info=info)
            for name, keep in (("train", a["labels"] < n_train), ("test", a["labels"] >= n_train))
        }
