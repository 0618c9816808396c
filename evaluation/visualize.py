"""Retrieval pictures: each row a query (left) and its top-k gallery items, framed green when they
share the query's class and red when not, with their class and distance.

    python -m evaluation.visualize --checkpoint RUN/checkpoints/best.pt --queries 6 --worst 6 \
        --k 8 --out grid.png [--split test] [--dataset … --source_path … (any main.py flag)]

Queries are drawn at random (seeded), by id (``--query_ids``), or as the worst ones: lowest average
precision over the whole gallery ranking (the standard AP of retrieval, e.g. Musgrave et al., "A
Metric Learning Reality Check", ECCV 2020, for MAP@R's relatives), which show what the model gets
wrong. Distances are Euclidean on the evaluated embeddings, as the retrieval metrics use; the query
itself is never among its own results. ``main.py --save_retrievals N`` calls
:func:`save_run_retrievals` at the end of a run.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

GREEN, RED, BLUE = (40, 160, 60), (215, 40, 40), (40, 90, 200)
INK, GREY, PAPER = (20, 20, 20), (110, 110, 110), (255, 255, 255)


@dataclass
class Ranking:
    """Per query: the top-k gallery items, their distances and the query's average precision."""

    query: np.ndarray  # (Q,) dataset indices of the queries
    topk: np.ndarray  # (Q, k) dataset indices of the retrieved gallery items, nearest first
    dist: np.ndarray  # (Q, k) Euclidean distances
    ap: np.ndarray  # (Q,) average precision over the whole ranking; nan: no positive


def rank(
    embeds: torch.Tensor,
    labels: np.ndarray,
    k: int,
    is_query: np.ndarray | None = None,
    is_gallery: np.ndarray | None = None,
    chunk: int = 512,
) -> Ranking:
    """Exact ranking of the gallery for every query; ``embeds: (N, D)``, ``labels: (N,)``.

    AP = mean over the query's positives of the precision at each positive's rank (the query
    itself excluded). Rows are processed ``chunk`` queries at a time: no N×N matrix is held."""
    n = len(labels)
    labels = np.asarray(labels)
    q_idx = np.flatnonzero(np.ones(n, bool) if is_query is None else is_query)
    g_idx = np.flatnonzero(np.ones(n, bool) if is_gallery is None else is_gallery)
    x = embeds.float()
    gallery, g_lab = x[g_idx], torch.as_tensor(labels[g_idx])
    k = min(k, len(g_idx) - int(np.isin(q_idx, g_idx).any()))
    if k < 1:
        raise ValueError("the gallery has no item to retrieve besides the query itself")
    topk, dist, ap = [], [], []
    for start in range(0, len(q_idx), chunk):
        q = q_idx[start : start + chunk]
        d = torch.cdist(x[q], gallery)
        d[torch.as_tensor(q)[:, None] == torch.as_tensor(g_idx)[None, :]] = math.inf
        d_sorted, order = torch.sort(d, dim=1, stable=True)
        valid = torch.isfinite(d_sorted)
        rel = (g_lab[order] == torch.as_tensor(labels[q])[:, None]) & valid
        hits = rel.cumsum(1).float()
        ranks = torch.arange(1, rel.shape[1] + 1, dtype=torch.float32)
        n_pos = rel.sum(1).float()
        ap.append(((hits / ranks) * rel).sum(1) / n_pos)  # nan where there is no positive
        topk.append(torch.as_tensor(g_idx)[order[:, :k]])
        dist.append(d_sorted[:, :k])
    return Ranking(q_idx, torch.cat(topk).numpy(), torch.cat(dist).numpy(), torch.cat(ap).numpy())


def pick_rows(
    ranking: Ranking,
    *,
    random: int = 0,
    worst: int = 0,
    query_ids: Sequence[int] = (),
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Rows of ``ranking`` to draw: ``{"ids"|"random"|"worst": row indices}``.

    ``random``: seeded, without replacement, among queries with a positive; ``worst``: lowest AP
    first (ties by dataset index); ``query_ids``: dataset indices, which must be queries."""
    out: dict[str, np.ndarray] = {}
    if query_ids:
        where = {int(q): r for r, q in enumerate(ranking.query)}
        bad = [q for q in query_ids if q not in where]
        if bad:
            raise ValueError(
                f"--query_ids {' '.join(map(str, bad))} are not queries of this split "
                f"(ids run from 0 to {len(where) - 1 if where else -1})"
            )
        out["ids"] = np.array([where[q] for q in query_ids])
    has_pos = np.flatnonzero(np.isfinite(ranking.ap))
    if random:
        rng = np.random.default_rng(seed)
        out["random"] = np.sort(rng.choice(has_pos, min(random, len(has_pos)), replace=False))
    if worst:
        order = has_pos[np.lexsort((ranking.query[has_pos], ranking.ap[has_pos]))]
        out["worst"] = order[:worst]
    return out


def short_name(name: str, width: int = 1000) -> str:
    """A readable class name: CUB's ``"001.Black_footed_Albatross"`` → ``"Black footed
    Albatross"``, cut with an ellipsis past ``width`` characters."""
    name = str(name)
    if re.match(r"^\d+\.", name):  # a numbered class folder: underscores stand for spaces
        name = re.sub(r"^\d+\.", "", name).replace("_", " ")
    return name if len(name) <= width else name[: width - 1] + "…"


def fit(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, pixels: int) -> str:
    """``text`` cut with an ellipsis so that it is at most ``pixels`` wide in ``font``."""
    if font.getlength(text) <= pixels:
        return text
    while text and font.getlength(text + "…") > pixels:
        text = text[:-1]
    return text + "…"


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _thumb(image: torch.Tensor | np.ndarray, side: int) -> Image.Image:
    """uint8 ``(C, H, W)`` → RGB thumbnail fitting ``side``×``side``, letterboxed on white.
    Small images (glyphs, Fashion-MNIST) are enlarged by whole pixels so they stay sharp."""
    arr = np.asarray(image)
    arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    img = Image.fromarray(arr.astype(np.uint8)).convert("RGB")
    scale = side / max(img.size)
    small = max(img.size) * 2 <= side
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    img = img.resize(size, Image.Resampling.NEAREST if small else Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (side, side), PAPER)
    canvas.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return canvas


def draw_grid(
    ranking: Ranking,
    rows: np.ndarray,
    labels: np.ndarray,
    read: Callable[[int], torch.Tensor],
    names: Sequence[str] | None = None,
    title: str = "",
    cell: int = 112,
) -> Image.Image:
    """The picture: one row per entry of ``rows``; query left, then its top-k results.

    ``labels``: (N,) class per dataset index; ``read(i)``: uint8 (C, H, W) image of item i;
    ``names``: class name per label."""
    pad, border, gap = 8, 5, 24
    font, small, big = _font(13), _font(12), _font(15)
    text_h = 36
    k = ranking.topk.shape[1]
    width = pad + (cell + pad) * (k + 1) + gap
    top = 30 + (18 if title else 0)
    height = top + len(rows) * (cell + text_h + pad) + pad
    sheet = Image.new("RGB", (width, height), PAPER)
    pen = ImageDraw.Draw(sheet)
    name_of = (lambda c: short_name(names[c])) if names is not None else str
    if title:
        pen.text((pad, 6), title, fill=INK, font=big)
    x0 = pad + cell + pad + gap
    pen.text((pad, top - 20), "query", fill=INK, font=font)
    pen.text(
        (x0, top - 20),
        f"top {k} (nearest first): green = same class, red = other class",
        fill=INK,
        font=font,
    )
    for r, row in enumerate(rows):
        y = top + r * (cell + text_h + pad)
        q = int(ranking.query[row])
        q_label = int(labels[q])
        _framed(sheet, pen, read(q), pad, y, cell, border, BLUE)
        ap = ranking.ap[row]
        pen.text((pad, y + cell + 3), fit(name_of(q_label), font, cell), fill=INK, font=font)
        pen.text((pad, y + cell + 19), f"#{q}  AP {ap:.2f}", fill=GREY, font=small)
        for j in range(k):
            g = int(ranking.topk[row, j])
            same = int(labels[g]) == q_label
            x = x0 + j * (cell + pad)
            _framed(sheet, pen, read(g), x, y, cell, border, GREEN if same else RED)
            # a tick or cross as well as the colour, for readers who do not tell red from green
            label = fit(("✓ " if same else "✗ ") + name_of(int(labels[g])), font, cell)
            pen.text((x, y + cell + 3), label, fill=INK if same else RED, font=font)
            pen.text((x, y + cell + 19), f"d {ranking.dist[row, j]:.3f}", fill=GREY, font=small)
        if r:
            pen.line(
                [(pad, y - pad // 2 - 1), (width - pad, y - pad // 2 - 1)], fill=(225, 225, 225)
            )
    return sheet


def _framed(
    sheet: Image.Image,
    pen: ImageDraw.ImageDraw,
    image: torch.Tensor,
    x: int,
    y: int,
    cell: int,
    border: int,
    colour: tuple[int, int, int],
) -> None:
    pen.rectangle([x, y, x + cell - 1, y + cell - 1], fill=colour)
    sheet.paste(_thumb(image, cell - 2 * border), (x + border, y + border))


def pictures(
    saved,
    ns: argparse.Namespace,
    out: str | Path,
    *,
    split: str = "test",
    random: int = 0,
    worst: int = 0,
    query_ids: Sequence[int] = (),
    k: int = 8,
    seed: int = 0,
) -> list[Path]:
    """Embed ``split`` with the saved network, rank, draw the chosen rows; returns the files.

    One picture per kind asked for: ``out`` itself when there is one, else ``<out
    stem>_<kind>.png`` (kinds: ids, random, worst)."""
    import datasets
    from evaluation.embeddings import compute_embeddings

    model = saved.model
    splits = datasets.build_splits(ns, model.image_spec)
    key = "train_eval" if split == "train" else split
    if key not in splits:
        have = ["train", *(s for s in ("val", "test") if s in splits)]
        raise ValueError(
            f"--split {split} is not in this run's data; choose one of: {', '.join(have)}"
        )
    ds = splits[key]
    loader = torch.utils.data.DataLoader(ds, batch_size=ns.bs, shuffle=False, num_workers=0)
    embeds, labels = compute_embeddings(model, loader, "cpu", layer=ns.eval_layer)
    ranking = rank(embeds, labels.numpy(), k, ds.is_query, ds.is_gallery)
    chosen = pick_rows(ranking, random=random, worst=worst, query_ids=query_ids, seed=seed)
    if not chosen:
        raise ValueError("no queries asked for: give --queries N, --worst N or --query_ids")
    names = ds.info.get("class_names") or [str(c) for c in ds.info["original_labels"]]
    read = lambda i: datasets.read_item(ds.split, i)
    epoch = f", epoch {saved.epoch}" if saved.epoch is not None else ""
    what = {
        "ids": "chosen queries",
        "random": f"random queries (seed {seed})",
        "worst": "worst queries (lowest AP)",
    }
    out = Path(out)
    written = []
    for kind, rows in chosen.items():
        title = (
            f"{ns.dataset} {split} · {ns.arch}{epoch} · {what[kind]} · "
            f"mean AP of all queries {np.nanmean(ranking.ap):.3f}"
        )
        path = out if len(chosen) == 1 else out.with_name(f"{out.stem}_{kind}{out.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        draw_grid(ranking, rows, labels.numpy(), read, names, title).save(path)
        written.append(path)
    return written


def save_run_retrievals(run_dir: str | Path, n: int, k: int = 8) -> list[Path]:
    """``--save_retrievals N``: N random and N worst test queries of the run's ``best``
    checkpoint, as ``retrievals_random.png`` and ``retrievals_worst.png`` in the run folder."""
    import argparse as _argparse

    import parameters
    from architectures.saved import load_saved_model

    saved = load_saved_model(Path(run_dir) / "checkpoints" / "best.pt")
    ns = _argparse.Namespace(**{**vars(parameters.build_parser().parse_args([])), **saved.config})
    return pictures(
        saved, ns, Path(run_dir) / "retrievals.png", random=n, worst=n, k=k, seed=ns.seed
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.visualize",
        description="Draw queries and their top-k retrievals for a saved run. Any other main.py "
        "flag (--dataset, --source_path, --dataset_<name>_...) overrides the run's.",
    )
    parser.add_argument("--checkpoint", required=True, help="RUN_DIR/checkpoints/best.pt")
    parser.add_argument("--queries", type=int, default=0, help="N random queries (seeded)")
    parser.add_argument("--worst", type=int, default=0, help="N queries of lowest AP")
    parser.add_argument(
        "--query_ids",
        type=int,
        nargs="+",
        default=[],
        help="dataset indices of the queries to draw (instead of --queries)",
    )
    parser.add_argument("--k", type=int, default=8, help="retrieved items per query")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--seed", type=int, default=0, help="seed of the random queries")
    parser.add_argument("--out", default="retrievals.png", help="picture file (.png)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import datasets
    import parameters
    from architectures.saved import load_saved_model
    from training.evaluate_only import explicit_flags, run_namespace

    parser = build_parser()
    vis, rest = parser.parse_known_args(argv)
    if vis.k < 1 or vis.queries < 0 or vis.worst < 0:
        parser.error("--k must be >= 1, --queries and --worst >= 0")
    if vis.query_ids and vis.queries:
        parser.error("--queries and --query_ids exclude each other; give one")
    if not (vis.queries or vis.worst or vis.query_ids):
        vis.queries = 6
    try:
        opt = parameters.parse_args([*rest, "--evaluate_only", "--checkpoint", vis.checkpoint])
        saved = load_saved_model(vis.checkpoint)
        ns = run_namespace(saved, opt, explicit_flags(rest))
        files = pictures(
            saved,
            ns,
            vis.out,
            split=vis.split,
            random=vis.queries,
            worst=vis.worst,
            query_ids=vis.query_ids,
            k=vis.k,
            seed=vis.seed,
        )
    except datasets.INPUT_ERRORS as err:
        print(f"visualize: error: {err}", file=sys.stderr)
        return 2
    print("written: " + ", ".join(map(str, files)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
