"""The diagonal-lines toy of Roth et al., "Revisiting Training Strategies and Generalization
Performance in Deep Metric Learning", ICML 2020 (§5, Fig. 2), rebuilt and quantified.

Four training classes are points on consecutive pieces of the diagonal y = x; four unseen test
classes lie on vertical (x = 0.2) and horizontal (y = 0.2) pieces. A small MLP (2 → 30 → 30 → 2,
ReLU, L2-normalised output) trained with a contrastive loss over every triplet of the batch (pull
d(a, p) + push [m − d(a, n)]₊) needs only one direction to separate the training classes, so it
collapses the embedding onto it and the unseen classes pile up. The ρ-regularised variant swaps
each triplet's negative for its positive with probability ρ and then only pushes (as in the
original toy and the paper's ρ-distance miner): same-class points are pushed apart now and then,
which keeps more directions alive (a flatter singular-value spectrum) and separates the test
classes better.

    python -m toy_experiments.diagonal_lines [--seeds 10] [--rho 0.05] [--out diagonal_lines.png]

draws the 4-panel figure for the first seed (data, base embedding, regularised embedding,
singular-value spectra) and prints, over all seeds, test R@1 and the spectral decay
ρ(Φ) = KL(U ‖ s) of the train embeddings (s: normalised singular values, U: uniform; lower is
flatter, as ``rho_spectrum@1``) for both variants, mean ± std. Runs on a CPU in seconds.

Deviations from the original script: triplets are enumerated with tensors instead of itertools, the
test segments' positions are this module's own choice (the original's are not documented), ρ is a
flag (the original hard-coded 0.001; with 24-point batches that swaps about two of ~2,000
triplets per batch, so the default here is larger), and results are aggregated over seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

TRAIN_SEGMENTS = [(0.10, 0.30), (0.35, 0.55), (0.60, 0.80), (0.85, 1.05)]  # along y = x
#: (fixed coordinate axis, fixed value, range of the other coordinate)
TEST_SEGMENTS = [
    ("x", 0.2, (0.45, 0.65)),
    ("x", 0.2, (0.75, 0.95)),
    ("y", 0.2, (0.45, 0.65)),
    ("y", 0.2, (0.75, 0.95)),
]


def make_data(
    rng: np.random.Generator, per_class: int = 15, n_line: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(train_x (60, 2), train_y, test_x (60, 2), test_y)``: ``per_class`` points drawn from
    ``n_line``-point segments, four classes each."""

    def pick(line: np.ndarray) -> np.ndarray:
        return line[rng.choice(n_line, per_class, replace=False)]

    train = [
        pick(np.stack([t, t], 1)) for t in (np.linspace(a, b, n_line) for a, b in TRAIN_SEGMENTS)
    ]
    test = []
    for axis, fixed, (a, b) in TEST_SEGMENTS:
        t = np.linspace(a, b, n_line)
        line = np.stack(
            [np.full_like(t, fixed), t] if axis == "x" else [t, np.full_like(t, fixed)], 1
        )
        test.append(pick(line))
    labels = np.repeat(np.arange(4), per_class)
    return (
        np.concatenate(train).astype(np.float32),
        labels,
        np.concatenate(test).astype(np.float32),
        labels.copy(),
    )


class MLP(nn.Module):
    """2 → 30 → 30 → 2 with ReLU; the output is L2-normalised (points on the unit circle)."""

    def __init__(self, hidden: int = 30, out: int = 2):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.net(x), dim=-1)


def all_triplets(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index tensors (a, p, n) of every triplet: a ≠ p of one class, n of another."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    return torch.nonzero((same & ~eye)[:, :, None] & ~same[:, None, :], as_tuple=True)


def triplet_loss(
    embeds: torch.Tensor,
    labels: torch.Tensor,
    margin: float,
    rho: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Contrastive loss over all triplets (a, p, n) of the batch: d(a, p) + [m − d(a, n)]₊.

    With probability ``rho`` a triplet's negative is replaced by its positive and only the push
    term is kept: [m − d(a, p)]₊ pushes two samples of one class apart (ρ-regularisation)."""
    d = torch.cdist(embeds, embeds)
    a, p, n = all_triplets(labels)
    swap = torch.rand(len(a), generator=generator) < rho
    d_ap, d_an = d[a, p], d[a, n]
    base = d_ap + torch.relu(margin - d_an)
    regular = torch.relu(margin - d_ap)
    return torch.where(swap, regular, base).mean()


def train(
    x: np.ndarray,
    y: np.ndarray,
    seed: int,
    rho: float,
    iters: int = 200,
    batch_per_class: int = 6,
    lr: float = 0.03,
    margin: float = 0.1,
    embed_dim: int = 2,
) -> MLP:
    """Adam, ``iters`` steps of ``4 * batch_per_class`` points (the same classes every batch)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = MLP(out=embed_dim)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(iters):
        idx = np.concatenate(
            [
                rng.choice(np.flatnonzero(y == c), batch_per_class, replace=False)
                for c in np.unique(y)
            ]
        )
        loss = triplet_loss(model(xs[idx]), ys[idx], margin, rho, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def recall_at_1(embeds: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out: the fraction of points whose nearest other point shares their class."""
    d = np.linalg.norm(embeds[:, None] - embeds[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return float((labels[d.argmin(1)] == labels).mean())


def spectrum(embeds: np.ndarray) -> np.ndarray:
    """Singular values of the (uncentred) embedding matrix, normalised to sum to 1."""
    s = np.linalg.svd(embeds.astype(np.float64), compute_uv=False)
    return s / s.sum()


def spectral_decay(embeds: np.ndarray) -> float:
    """ρ(Φ) = KL(U ‖ s): 0 for a flat spectrum, large when one direction dominates."""
    s = np.clip(spectrum(embeds), 1e-12, None)
    u = np.full_like(s, 1 / len(s))
    return float(np.sum(u * np.log(u / s)))


@dataclass
class Outcome:
    seed: int
    variant: str
    test_recall_at_1: float
    train_recall_at_1: float
    spectral_decay: float


def run_seed(
    seed: int, rho: float, iters: int = 200, margin: float = 0.1, embed_dim: int = 2
) -> tuple[list[Outcome], dict]:
    """Both variants on one seed's data; also returns what the figure needs."""
    tx, ty, sx, sy = make_data(np.random.default_rng(seed))
    out, drawn = [], {"train": (tx, ty), "test": (sx, sy)}
    for variant, r in (("base", 0.0), ("regularised", rho)):
        model = train(tx, ty, seed, r, iters, margin=margin, embed_dim=embed_dim)
        with torch.no_grad():
            e_tr, e_te = model(torch.from_numpy(tx)).numpy(), model(torch.from_numpy(sx)).numpy()
        out.append(
            Outcome(
                seed, variant, recall_at_1(e_te, sy), recall_at_1(e_tr, ty), spectral_decay(e_tr)
            )
        )
        drawn[variant] = (e_tr, e_te)
    return out, drawn


def summarise(outcomes: list[Outcome]) -> dict[str, dict[str, tuple[float, float]]]:
    """``{variant: {measure: (mean, std)}}`` over seeds (std with ddof = 1)."""
    table: dict[str, dict[str, tuple[float, float]]] = {}
    for variant in dict.fromkeys(o.variant for o in outcomes):
        rows = [o for o in outcomes if o.variant == variant]
        table[variant] = {}
        for key in ("test_recall_at_1", "train_recall_at_1", "spectral_decay"):
            v = np.array([getattr(o, key) for o in rows])
            table[variant][key] = (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0)
    return table


def draw(drawn: dict, rho: float, path: str) -> None:
    """Data, base embedding, regularised embedding, singular-value spectra."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    test_colours = ["tab:purple", "tab:brown", "tab:pink", "tab:cyan"]
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.8))
    (tx, ty), (sx, sy) = drawn["train"], drawn["test"]
    ax = axes[0]
    for c in range(4):
        ax.scatter(*tx[ty == c].T, c=colours[c], s=18, label=f"train {c}")
        ax.scatter(*sx[sy == c].T, c=test_colours[c], s=22, marker="x", label=f"test {c}")
    ax.set_title(
        "data: 4 train classes on the diagonal (•), 4 unseen test classes (×)", fontsize=10
    )
    ax.set_aspect("equal")
    ax.legend(fontsize=7, ncol=2, loc="center right")
    for ax, variant in zip(axes[1:3], ("base", "regularised")):
        e_tr, e_te = drawn[variant]
        measured = f"test R@1 {recall_at_1(e_te, sy):.2f}\nρ(Φ) {spectral_decay(e_tr):.3f}"
        where = "on the unit circle"
        if e_tr.shape[1] > 2:  # onto the train embeddings' two main directions
            basis = np.linalg.svd(e_tr, full_matrices=False)[2][:2].T
            e_tr, e_te = e_tr @ basis, e_te @ basis
            where = f"of {basis.shape[0]}-d, projected"
        else:
            circle = np.linspace(0, 2 * np.pi, 200)
            ax.plot(np.cos(circle), np.sin(circle), c="0.85", lw=1, zorder=0)
        for c in range(4):
            ax.scatter(*e_tr[ty == c].T, c=colours[c], s=18)
            ax.scatter(*e_te[sy == c].T, c=test_colours[c], s=30, marker="x")
        label = "base" if variant == "base" else f"ρ-regularised (ρ = {rho:g})"
        ax.set_title(f"{label}: embedding {where} (zoomed)", fontsize=10)
        ax.text(
            0.03,
            0.97,
            measured,
            transform=ax.transAxes,
            va="top",
            fontsize=9,
            bbox={"facecolor": "white", "edgecolor": "0.8"},
        )
        # the embeddings cover a short arc: zoom onto it, keeping the aspect ratio
        both = np.concatenate([e_tr, e_te])
        centre = (both.max(0) + both.min(0)) / 2
        half = max(float((both.max(0) - both.min(0)).max()) / 2 * 1.25, 0.05)
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_aspect("equal")
    ax = axes[3]
    width = 0.38
    for i, (variant, colour) in enumerate((("base", "0.4"), ("regularised", "tab:green"))):
        s = spectrum(drawn[variant][0])
        ax.bar(
            np.arange(len(s)) + (i - 0.5) * width,
            s,
            width,
            color=colour,
            label="base" if variant == "base" else "ρ-regularised",
        )
    ax.axhline(1 / len(s), c="0.6", ls=":", lw=1, label="flat")
    ax.set_xticks(range(len(s)), [f"σ{i + 1}" for i in range(len(s))])
    ax.set_ylim(0, 1)
    ax.set_title("normalised singular values of the train embeddings", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m toy_experiments.diagonal_lines", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (the figure: seed 0)")
    parser.add_argument(
        "--rho",
        type=float,
        default=0.05,
        help="probability of swapping a triplet's negative for its positive",
    )
    parser.add_argument("--margin", type=float, default=0.1, help="push margin m")
    parser.add_argument(
        "--embed_dim",
        type=int,
        default=2,
        help="output dimension (the paper's figure: 2; larger ones are drawn "
        "projected onto their two main directions)",
    )
    parser.add_argument("--iters", type=int, default=200, help="training iterations per model")
    parser.add_argument("--out", default="diagonal_lines.png", help="figure file")
    parser.add_argument("--json", default="", help="also write every seed's outcome here")
    args = parser.parse_args(argv)
    if args.seeds < 1 or not 0 <= args.rho <= 1 or args.iters < 1 or args.embed_dim < 2:
        parser.error("--seeds and --iters must be >= 1, --embed_dim >= 2, --rho within [0, 1]")
    torch.set_num_threads(1)  # 24-point batches: threads only add overhead
    start = time.perf_counter()
    outcomes: list[Outcome] = []
    for seed in range(args.seeds):
        rows, drawn = run_seed(seed, args.rho, args.iters, args.margin, args.embed_dim)
        outcomes += rows
        if seed == 0:
            draw(drawn, args.rho, args.out)
    table = summarise(outcomes)
    print(
        f"{args.seeds} seeds, ρ = {args.rho:g}, {args.iters} iterations "
        f"({time.perf_counter() - start:.1f} s); figure: {args.out}"
    )
    print(f"{'variant':<13}{'test R@1':>17}{'train R@1':>17}{'ρ(Φ) (lower: flatter)':>26}")
    for variant, row in table.items():
        cells = "".join(f"{m:>11.3f} ± {s:.3f}" for m, s in row.values())
        print(f"{variant:<13}{cells}")
    base = [o for o in outcomes if o.variant == "base"]
    reg = [o for o in outcomes if o.variant == "regularised"]
    better = sum(r.test_recall_at_1 > b.test_recall_at_1 for b, r in zip(base, reg))
    flatter = sum(r.spectral_decay < b.spectral_decay for b, r in zip(base, reg))
    print(
        f"regularised beats base on test R@1 in {better}/{args.seeds} seeds, "
        f"has the flatter spectrum in {flatter}/{args.seeds}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"rho": args.rho, "outcomes": [asdict(o) for o in outcomes], "summary": table},
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
