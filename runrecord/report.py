"""The small table a run prints at its end: key metrics before training, at the selected epoch
and at the last epoch."""

from __future__ import annotations

PREFERRED = [
    ("e_recall@1", "R@1"),
    ("e_recall@2", "R@2"),
    ("e_recall@4", "R@4"),
    ("nmi", "NMI"),
    ("mAP_at_r", "MAP@R"),
    ("r_precision", "RP"),
    ("precision_at_1", "P@1"),
]


def format_table(summary: dict, split: str | None = None) -> str:
    sel = summary.get("selection", {})
    split = split or ("test" if "test" in summary.get("last", {}) else sel.get("split", "test"))
    rows = [
        ("untrained (epoch 0)", summary.get("untrained", {}).get(split, {})),
        (
            f"selected (epoch {summary.get('selected_epoch')})",
            summary.get("selected", {}).get(split, {}),
        ),
        (f"last (epoch {summary.get('last_epoch')})", summary.get("last", {}).get(split, {})),
    ]
    present = set().union(*(r.keys() for _, r in rows))
    columns = [(k, short) for k, short in PREFERRED if k in present]
    if not columns:
        columns = [(k, k) for k in sorted(present) if not k.endswith("_time_s")][:6]
    width = max(len(label) for label, _ in rows) + 2
    head = f"{split} split".ljust(width) + "".join(f"{short:>9}" for _, short in columns)
    lines = [head, "-" * len(head)]
    for label, values in rows:
        cells = "".join(
            f"{values[k]:9.4f}" if isinstance(values.get(k), (int, float)) else f"{'-':>9}"
            for k, _ in columns
        )
        lines.append(label.ljust(width) + cells)
    lines.append(
        f"selection rule: {sel.get('rule', '?')} → epoch {summary.get('selected_epoch')}"
        f"; run folder: {summary.get('run_dir')}"
    )
    return "\n".join(lines)
