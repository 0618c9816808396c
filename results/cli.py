"""``python Result_Evaluations.py RUNS_DIR... [--wandb ENTITY/PROJECT|DIR] [--metrics ...]
[--select selected|last|test-max] [--include_unfinished] [--out DIR]``

Reads every run, groups runs by ``--group`` across seeds (warning when a group's runs differ in more
than the seed), leaves unfinished runs out unless asked, and writes ``results.csv``, ``results.md``,
``results.tex``, ``pairs.csv``, ``per_run.csv`` and the figures (PNG and PDF) into ``--out``.
The successor of the original RevisitDML ``Result_Evaluations.py`` (Roth et al., ICML 2020), which
read one hard-coded W&B project and reported max-over-test numbers.
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

from results import aggregate, ensemble, figures, tables
from results.runs import load_runs

DEFAULT_METRICS = ["e_recall@1", "e_recall@2", "e_recall@4", "nmi", "mAP_at_r"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="Result_Evaluations.py",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "runs_dirs",
        nargs="*",
        metavar="RUNS_DIR",
        help="folders searched for run folders (those holding config.json)",
    )
    p.add_argument(
        "--wandb",
        default=None,
        metavar="ENTITY/PROJECT|DIR",
        help="also read W&B runs: a project through wandb.Api() (key from "
        "WANDB_API_KEY), or a local folder searched for offline W&B runs",
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        default=DEFAULT_METRICS,
        help="test-split metrics to report; the first one drives curves and selection for test-max",
    )
    p.add_argument(
        "--select",
        default="selected",
        choices=list(aggregate.SELECTIONS),
        help="epoch of each run that is reported",
    )
    p.add_argument(
        "--include_unfinished",
        action="store_true",
        help="report unfinished runs too (at their latest evaluated epochs)",
    )
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the marks")
    p.add_argument("--out", default="Results", help="output folder")
    p.add_argument("--no_figures", action="store_true", help="tables only")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.runs_dirs and not args.wandb:
        parser.error("give at least one RUNS_DIR or --wandb")
    say = lambda msg: print(msg, file=sys.stderr)
    try:
        runs, problems = load_runs(args.runs_dirs, args.wandb)
    except ValueError as err:
        parser.error(str(err))
    except Exception as err:
        why = " ".join(str(err).split())[:160]
        parser.error(
            f"could not read W&B project {args.wandb!r} ({type(err).__name__}: {why}); "
            "check WANDB_API_KEY and ENTITY/PROJECT, or pass a folder of offline runs"
        )
    for line in problems:
        say(f"warning: skipped: {line}")
    if not runs:
        parser.error(f"no runs found in {' '.join(args.runs_dirs) or args.wandb}")

    unfinished = [r for r in runs if not r.finished]
    if unfinished:
        verb = (
            "included" if args.include_unfinished else "left out (--include_unfinished keeps them)"
        )
        say(f"{len(unfinished)} unfinished run(s) {verb}:")
        for r in unfinished:
            last = max(r.epochs("test"), default=None)
            say(f"  {r.group}: {r.name} (last evaluated epoch {last}; {r.source})")
        if not args.include_unfinished:
            runs = [r for r in runs if r.finished]
            if not runs:
                parser.error("every run is unfinished; pass --include_unfinished to report them")

    logged = {m for r in runs for epochs in r.history.get("test", {}).values() for m in epochs}
    metrics = [m for m in args.metrics if m in logged]
    for m in args.metrics:
        if m not in logged:
            say(f"warning: no run logged test metric {m!r}; left out")
    if not metrics:
        parser.error(
            f"none of --metrics {' '.join(args.metrics)} was logged on the test split "
            f"(logged: {', '.join(sorted(logged)[:12])})"
        )

    for (group, dataset), members in sorted(aggregate.group_runs(runs).items()):
        diff = aggregate.differing_flags(members)
        if diff:
            say(
                f"warning: the runs of group {group} ({dataset}) differ in more than the seed: "
                f"{', '.join(diff)}"
            )

    os.makedirs(args.out, exist_ok=True)
    per_run = aggregate.per_run_table(runs, metrics, args.select)
    missing = per_run[per_run[metrics[0]].isna()]
    for r in missing.itertuples():
        say(f"warning: run {r.run} has no test value of {metrics[0]} at the chosen epoch")
    concat_rows, notes = ensemble.concatenated_rows(runs, metrics)
    for note in notes:
        say(f"note: {note}")
    if concat_rows:
        per_run = pd.concat([per_run, pd.DataFrame(concat_rows)], ignore_index=True)
    summary = aggregate.summarize(per_run, metrics)
    pairs = aggregate.welch_pairs(per_run, metrics)
    best, tied = aggregate.best_and_ties(summary, pairs, metrics, args.alpha)
    selection_text = f"{args.select} ({aggregate.SELECTIONS[args.select]})"

    tables.write_csv(summary, metrics, os.path.join(args.out, "results.csv"))
    per_run.to_csv(os.path.join(args.out, "per_run.csv"), index=False, float_format="%.6g")
    pairs.to_csv(os.path.join(args.out, "pairs.csv"), index=False, float_format="%.6g")
    md = tables.write_markdown(
        summary, metrics, best, tied, selection_text, os.path.join(args.out, "results.md")
    )
    tables.write_latex(
        summary, metrics, best, tied, selection_text, os.path.join(args.out, "results.tex")
    )
    written = ["results.csv", "results.md", "results.tex", "pairs.csv", "per_run.csv"]
    if not args.no_figures:
        plain = [r for r in runs]
        paths = (
            figures.learning_curves(plain, metrics[0], args.out)
            + figures.correlation_matrix(per_run, metrics, args.out)
            + figures.metric_relation(
                per_run[~per_run["group"].str.endswith(ensemble.SUFFIX)], metrics[0], args.out
            )
        )
        written += [os.path.basename(p) for p in paths]
    print(md)
    print(f"{len(runs)} runs in {len(summary)} groups -> {args.out}/: {', '.join(written)}")
    return 0
