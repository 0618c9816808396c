"""Evaluate a saved network: ``main.py --evaluate_only --checkpoint RUN/checkpoints/best.pt``.

The network (architecture, embedding size, input spec) comes from the run's ``config.json`` and
``model.json`` (:mod:`architectures.saved`); every other flag is the run's own unless given on the
command line, so ``--dataset``, ``--source_path``, ``--evaluation_metrics``, ``--eval_layer``,
``--no_train_metrics``… evaluate the same network elsewhere (``--save_retrievals N`` also draws N
random and N worst test queries beside the checkpoint). Each evaluated split (the run's: train
unless ``--no_train_metrics``, val with ``--use_tv_split``, test) is written to
``eval_<dataset>_<split>.json`` beside the checkpoint, and a table is printed. On the run's own data
and metrics the figures equal the run record's at the checkpoint's epoch: the same embedding pass
and metric engine (:func:`training.evaluate_splits`) with the same seed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import datasets
import parameters
from architectures.saved import (
    SavedModel,
    SavedRunError,
    is_network_flag,
    load_saved_model,
)
from runrecord.files import write_json_atomic
from runrecord.report import PREFERRED
from training.evaluate_splits import evaluate_splits
from training.seeding import worker_init

#: Flags of this mode itself, never compared with or taken from the run.
OWN_FLAGS = ("evaluate_only", "checkpoint", "save_retrievals")


def explicit_flags(argv: Sequence[str]) -> set[str]:
    """Names (``dest``) of the flags actually given in ``argv``, defaults left out."""
    parser = parameters.build_parser()
    for action in parser._actions:  # argparse has no public way to drop every default
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(list(argv))))


def run_namespace(saved: SavedModel, opt: Any, given: set[str]) -> argparse.Namespace:
    """The run's flags, current defaults for flags the run predates, ``given`` flags from ``opt``.

    Network-defining flags (``--arch``, ``--embed_dim``, ``--image_size``, ``--arch_*``) come
    from the run; giving a different value is a SavedRunError."""
    clash = sorted(
        f for f in given if is_network_flag(f) and getattr(opt, f) != saved.config.get(f)
    )
    if clash:
        raise SavedRunError(
            f"--evaluate_only takes the network from the run "
            f"({saved.run_dir / 'config.json'}); drop --{' --'.join(clash)}"
        )
    defaults = vars(parameters.build_parser().parse_args([]))
    merged = {**defaults, **saved.config}
    merged.update({k: getattr(opt, k) for k in given if k not in OWN_FLAGS})
    merged.update({k: getattr(opt, k, None) for k in OWN_FLAGS})
    merged["storage_metrics"] = []  # nothing is selected here
    ns = argparse.Namespace(**merged)
    parameters.validate(ns)
    return ns


def eval_loaders(ns: argparse.Namespace, model: torch.nn.Module) -> dict[str, Any]:
    """One DataLoader per split the run evaluated (train unless --no_train_metrics, val, test)."""
    splits = datasets.build_splits(ns, model.image_spec)
    chosen = {} if ns.no_train_metrics else {"train": splits["train_eval"]}
    chosen.update({name: splits[name] for name in ("val", "test") if name in splits})
    return {
        name: torch.utils.data.DataLoader(
            ds, batch_size=ns.bs, shuffle=False, num_workers=ns.kernels, worker_init_fn=worker_init
        )
        for name, ds in chosen.items()
    }


def format_results(results: dict[str, dict], metrics: Sequence[str]) -> str:
    """Split × metric table: the usual short names first, then the other asked-for metrics."""
    short = dict(PREFERRED)
    floats = [m for m in metrics if any(isinstance(v.get(m), float) for v in results.values())]
    columns = [m for m, _ in PREFERRED if m in floats] + [m for m in floats if m not in short]
    columns = columns[:10]
    names = [short.get(m, m) for m in columns]
    widths = [max(9, len(n) + 2) for n in names]
    head = "split".ljust(8) + "".join(n.rjust(w) for n, w in zip(names, widths))
    lines = [head, "-" * len(head)]
    for split, values in results.items():
        cells = "".join(
            (f"{values[m]:.4f}" if isinstance(values.get(m), float) else "-").rjust(w)
            for m, w in zip(columns, widths)
        )
        lines.append(split.ljust(8) + cells)
    return "\n".join(lines)


def evaluate_checkpoint(
    opt: Any, argv: Sequence[str]
) -> tuple[dict[str, dict], argparse.Namespace]:
    """Evaluate ``opt.checkpoint``; write one ``eval_<dataset>_<split>.json`` per split beside it.
    Returns ``({split: {metric: value}}, the namespace used)``."""
    if not getattr(opt, "checkpoint", None):
        raise SavedRunError("--evaluate_only needs --checkpoint RUN_DIR/checkpoints/best.pt")
    saved = load_saved_model(opt.checkpoint)
    ns = run_namespace(saved, opt, explicit_flags(argv))
    use_cuda = ns.device != "cpu" and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    model = saved.model.to(device)
    loaders = eval_loaders(ns, model)
    results = evaluate_splits(
        model,
        loaders,
        ns.evaluation_metrics,
        device,
        backend=ns.eval_backend,
        on_gpu=ns.evaluate_on_gpu and use_cuda,
        amp=ns.amp and use_cuda,
        seed=ns.seed,
        layer=ns.eval_layer,
    )
    folder = Path(opt.checkpoint).parent
    for split, values in results.items():
        write_json_atomic(
            str(folder / f"eval_{ns.dataset}_{split}.json"),
            {
                "checkpoint": str(Path(opt.checkpoint).resolve()),
                "epoch": saved.epoch,
                "run_dir": str(saved.run_dir),
                "arch": ns.arch,
                "dataset": ns.dataset,
                "source_path": ns.source_path,
                "split": split,
                "eval_layer": ns.eval_layer,
                "n_items": len(loaders[split].dataset),
                "metrics": values,
            },
        )
    if getattr(opt, "save_retrievals", 0):
        from evaluation.visualize import pictures

        files = pictures(
            saved,
            ns,
            folder / f"retrievals_{ns.dataset}.png",
            random=opt.save_retrievals,
            worst=opt.save_retrievals,
            seed=ns.seed,
        )
        print("retrieval pictures: " + ", ".join(map(str, files)))
    return results, ns


def main(opt: Any, argv: Sequence[str] | None = None) -> int:
    """``main.py --evaluate_only``: evaluate, print the table; bad input → one line, status 2."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        results, ns = evaluate_checkpoint(opt, argv)
    except datasets.INPUT_ERRORS as err:
        print(f"main.py: error: {err}", file=sys.stderr)
        return 2
    print(f"evaluated {opt.checkpoint}")
    print(format_results(results, ns.evaluation_metrics))
    print(
        "written: "
        + ", ".join(
            str(Path(opt.checkpoint).parent / f"eval_{ns.dataset}_{s}.json") for s in results
        )
    )
    return 0
