"""The tiny glyphs run the end-to-end tests share: 24 classes of 16-pixel glyphs, smallnet, a few
steps an epoch; seconds on a CPU."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

GLYPHS_TINY = shlex.split(
    "--dataset_glyphs_n_classes 24 --dataset_glyphs_per_class 8 --dataset_glyphs_image_size 16"
)


def glyphs_args(
    root: str | Path,
    *extra: str,
    epochs: int = 2,
    iters: int = 3,
    seed: int = 0,
    metrics: Sequence[str] = ("e_recall@1", "nmi", "mAP_at_r"),
    model: str = "--loss margin --batch_mining distance",
) -> list[str]:
    """``main.py`` flags of a tiny run with its data under ``root/data`` and its record under
    ``root/runs/p/g_s<seed>``; ``extra`` flags come last."""
    root = Path(root)
    return [
        *["--dataset", "glyphs", "--source_path", str(root / "data"), *GLYPHS_TINY],
        *["--save_path", str(root / "runs"), "--project", "p", "--group", "g"],
        *shlex.split(
            f"--seed {seed} --arch smallnet_normalize --not_pretrained --embed_dim 16 {model} "
            f"--bs 32 --samples_per_class 4 --lr 1e-3 --n_epochs {epochs} "
            f"--iters_per_epoch {iters} --kernels 0 --use_tv_split"
        ),
        *["--evaluation_metrics", *metrics],
        *extra,
    ]
