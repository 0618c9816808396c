"""``python -m export --checkpoint RUN/checkpoints/best.pt --format onnx|torchscript --out F``."""

from __future__ import annotations

import argparse
import sys

from architectures.saved import SavedRunError, load_saved_model
from export import FORMATS, export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a run's network with its preprocessing "
        "spec (<out>.preprocessing.json, also embedded in the file).",
    )
    parser.add_argument("--checkpoint", required=True, help="RUN_DIR/checkpoints/best.pt")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--out", required=True, help="output file (.onnx / .pt)")
    parser.add_argument(
        "--layer",
        choices=["head", "pooled"],
        default=None,
        help="exported output (default: the run's --eval_layer)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset")
    args = parser.parse_args(argv)
    try:
        saved = load_saved_model(args.checkpoint)
        model_path, spec_path = export(saved, args.format, args.out, args.layer, args.opset)
    except (SavedRunError, ValueError, OSError) as err:
        print(f"export: error: {err}", file=sys.stderr)
        return 2
    print(f"written: {model_path} ({args.format}), {spec_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
