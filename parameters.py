"""Every flag of a run: the core flags of the RevisitDML harness (same names and defaults), the
flags generated from each registered plug-in, and the validation of combinations.

Deviations from the original ``parameters.py`` (Roth et al., ICML 2020 code):
- ``--wandb_key`` is gone: the W&B key is read only from the ``WANDB_API_KEY`` environment variable.
- ``--evaltypes`` (a DiVA multi-head leftover) is gone; ``--no_train_metrics`` works.
- ``--source_path`` defaults to ``./Datasets`` rather than ``../../Datasets``; ``--source`` is an
  alias.
- New: ``--pretrained_weights``, ``--device``, ``--eval_backend``, ``--amp``, ``--iters_per_epoch``,
  ``--eval_every``, ``--selection_split``, ``--grad_clip``.
The namespace is validated once and then frozen: nothing may write into it at run time.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import architectures
import datasets
import evaluation
from architectures import ARCHITECTURES, parse_arch
from architectures.base import check_image_flags
from batch_mining import MINERS
from criteria import LOSSES
from datasampler import SAMPLERS
from datasets import DATASETS
from registry import RegistryError

DEFAULT_METRICS = [
    "e_recall@1",
    "e_recall@2",
    "e_recall@4",
    "nmi",
    "f1",
    "mAP_1000",
    "mAP_lim",
    "mAP_c",
    "mAP_at_r",
    "r_precision",
    "precision_at_1",
    "dists@intra",
    "dists@inter",
    "dists@intra_over_inter",
    "rho_spectrum@0",
    "rho_spectrum@-1",
    "rho_spectrum@1",
    "rho_spectrum@2",
    "rho_spectrum@10",
]


class FrozenNamespace(argparse.Namespace):
    """A namespace that refuses writes once validated."""

    def __setattr__(self, key: str, value: Any) -> None:
        if self.__dict__.get("_frozen"):
            raise AttributeError(
                f"opt is read-only after validation (tried to set {key!r}); "
                "pass run-time values as explicit arguments"
            )
        super().__setattr__(key, value)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "_frozen"}


def _names(registry) -> str:
    return ", ".join(registry.names())


class OneLineParser(argparse.ArgumentParser):
    """Bad input is one line on stderr and exit status 2: argparse's usage block would be a
    hundred lines of flags above it (``--help`` lists them)."""

    def error(self, message: str):
        hint = " (--help lists every flag)" if message.startswith("unrecognized") else ""
        self.exit(2, f"{self.prog}: error: {message}{hint}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="main.py",
        description="dmlbench: train and evaluate a deep metric learning model. Losses, miners, "
        "samplers, architectures and datasets are chosen by name; each one's own flags "
        "are listed in its group below.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="cub200", help=f"one of: {_names(DATASETS)}")
    data.add_argument(
        "--source_path",
        "--source",
        dest="source_path",
        default="Datasets",
        help="folder holding one sub-folder per dataset (<source_path>/<dataset>)",
    )
    data.add_argument(
        "--use_tv_split",
        action="store_true",
        help="hold out part of the training data as a validation split (model "
        "selection then uses it instead of the test split)",
    )
    data.add_argument(
        "--tv_split_by_samples",
        action="store_true",
        help="split train/validation per class by samples instead of by classes",
    )
    data.add_argument(
        "--tv_split_perc",
        type=float,
        default=0.8,
        help="fraction of the training data kept for training",
    )
    data.add_argument(
        "--cv_folds",
        type=int,
        default=0,
        help="cut the training classes into K class-disjoint folds and validate on "
        "fold --fold (the Reality-Check protocol); 0: off",
    )
    data.add_argument("--fold", type=int, default=0, help="the held-out fold of --cv_folds")
    data.add_argument("--augmentation", default="base", choices=["base", "adv", "big", "red"])
    data.add_argument(
        "--rotation_classes",
        type=int,
        default=1,
        choices=list(datasets.ROTATIONS),
        help="train on (class, rotation) pairs: every training image also appears "
        "rotated by multiples of 360/K degrees, each rotation a class of its own "
        "(self-supervised label augmentation, Lee et al. 2020); 1: off",
    )
    data.add_argument("--data_sampler", default="class_random", help=f"one of: {_names(SAMPLERS)}")
    data.add_argument(
        "--samples_per_class",
        type=int,
        default=2,
        help="samples per class in a batch (must divide --bs)",
    )
    data.add_argument("--kernels", type=int, default=6, help="DataLoader worker processes")
    data.add_argument(
        "--prefetch_factor", type=int, default=4, help="batches each loader worker keeps ready"
    )
    data.add_argument(
        "--decoded_cache",
        default="",
        help="folder (e.g. /dev/shm/dmlbench) for a decoded uint8 copy of image-file "
        "datasets, built once and memory-mapped by every worker ('': off)",
    )
    data.add_argument(
        "--decoded_cache_side",
        type=int,
        default=0,
        help="shorter side images are stored at in the decoded cache (0: as decoded, "
        "identical results; the eval resize keeps evaluation identical)",
    )
    data.add_argument(
        "--gpu_decode",
        action="store_true",
        help="decode JPEGs and run the augmentations on the GPU (workers read bytes)",
    )

    train = parser.add_argument_group("training")
    train.add_argument("--lr", type=float, default=1e-5, help="backbone learning rate")
    train.add_argument(
        "--fc_lr",
        type=float,
        default=-1,
        help="learning rate of the embedding layer (< 0: same as --lr)",
    )
    train.add_argument("--decay", type=float, default=4e-4, help="weight decay")
    train.add_argument("--n_epochs", type=int, default=150)
    train.add_argument(
        "--iters_per_epoch",
        type=int,
        default=0,
        help="cap on iterations per epoch (0: one pass of the sampler)",
    )
    train.add_argument("--bs", type=int, default=112, help="batch size")
    train.add_argument("--seed", type=int, default=1)
    train.add_argument("--scheduler", default="step", choices=["step", "cosine", "none"])
    train.add_argument("--gamma", type=float, default=0.3, help="step scheduler decay factor")
    train.add_argument(
        "--tau", type=int, nargs="+", default=[1000], help="step scheduler milestones (epochs)"
    )
    train.add_argument("--optim", default="adam", choices=["adam", "adamw", "sgd", "rmsprop"])
    train.add_argument("--grad_clip", type=float, default=0, help="clip gradient norm (0: off)")
    train.add_argument("--amp", action="store_true", help="mixed precision on CUDA")
    train.add_argument(
        "--amp_dtype",
        default="auto",
        choices=["auto", "bf16", "fp16"],
        help="autocast dtype of --amp; auto: bf16 where the GPU has it (no loss "
        "scaling), else fp16 with a GradScaler",
    )
    train.add_argument(
        "--channels_last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="NHWC weights and inputs on CUDA (tensor-core convolutions)",
    )
    train.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network (needs a C++ compiler for inductor)",
    )
    train.add_argument(
        "--cudnn_benchmark",
        action="store_true",
        help="let cuDNN time its convolution algorithms and keep the fastest (faster on "
        "GPUs; runs are then not bit-reproducible). Off: deterministic kernels",
    )
    train.add_argument(
        "--max_nonfinite_steps",
        type=int,
        default=10,
        help="steps with a NaN/inf loss, gradient or BatchNorm statistic are "
        "skipped; this many in a run stop it",
    )
    train.add_argument("--loss", default="margin", help=f"one of: {_names(LOSSES)}")
    train.add_argument("--batch_mining", default="distance", help=f"one of: {_names(MINERS)}")

    net = parser.add_argument_group("network")
    net.add_argument(
        "--arch",
        default="resnet50_frozen_normalize",
        help=f"one of: {_names(ARCHITECTURES)}, followed by options "
        f"({', '.join('_' + k for k in architectures.ARCH_OPTIONS)}) in any order"
        "; timm:<name>[_frozen][_normalize] for any timm model",
    )
    net.add_argument("--embed_dim", type=int, default=128)
    net.add_argument(
        "--image_size",
        type=int,
        default=0,
        help="side of the square network input in pixels (0: the architecture's own: "
        "224 resnet50/bninception, 227 googlenet, 32 smallnet)",
    )
    net.add_argument(
        "--image_resize",
        type=int,
        default=0,
        help="side images are resized to before the evaluation centre crop (0: the "
        "architecture's ratio to --image_size, 256/224 or 1 for smallnet)",
    )
    net.add_argument("--not_pretrained", action="store_true", help="no ImageNet initialisation")
    net.add_argument(
        "--pretrained_weights",
        default=None,
        help="local file with the backbone's ImageNet weights (else the torch hub cache)",
    )

    ev = parser.add_argument_group("evaluation")
    ev.add_argument(
        "--evaluation_metrics",
        nargs="+",
        default=DEFAULT_METRICS,
        help="metrics computed on every evaluated split; valid: "
        + ", ".join(evaluation.valid_spellings()),
    )
    ev.add_argument(
        "--storage_metrics",
        nargs="+",
        default=["e_recall@1"],
        help="metrics whose improvement on the selection split saves the 'best' "
        "checkpoint (the first one chooses the reported epoch)",
    )
    ev.add_argument(
        "--selection_split",
        default="auto",
        choices=["auto", "val", "test"],
        help="split that chooses the best epoch; auto: val when there is one, else test",
    )
    ev.add_argument(
        "--eval_layer",
        default="head",
        choices=list(architectures.EVAL_LAYERS),
        help="layer whose output is evaluated: head (the trained embedding) or pooled "
        "(the backbone features before the head, as SimCLR/SupCon evaluate)",
    )
    ev.add_argument(
        "--save_embeddings",
        action="store_true",
        help="save the test embeddings of the selected epoch (float16 .npy, and their "
        "labels) in the run folder's embeddings/",
    )
    ev.add_argument("--no_train_metrics", action="store_true", help="skip training-set metrics")
    ev.add_argument("--evaluate_on_gpu", action="store_true", help="neighbour search on the GPU")
    ev.add_argument("--eval_backend", default="torch", choices=["torch", "faiss"])
    ev.add_argument("--eval_every", type=int, default=1, help="evaluate every N epochs (and last)")
    ev.add_argument(
        "--patience",
        type=int,
        default=0,
        help="early stopping: stop once the epoch is more than N epochs past the selected "
        "(best) one, as in A Metric Learning Reality Check (0: train all --n_epochs)",
    )
    ev.add_argument(
        "--evaluate_only",
        action="store_true",
        help="evaluate --checkpoint (network from its run folder) and exit; other "
        "flags given override the run's (--dataset, --source_path, metrics...)",
    )
    ev.add_argument(
        "--checkpoint",
        default=None,
        help="RUN_DIR/checkpoints/<name>.pt to evaluate with --evaluate_only",
    )
    ev.add_argument(
        "--save_retrievals",
        type=int,
        default=0,
        help="at the end, save pictures of N random and N worst test queries with "
        "their top-8 retrievals (retrievals_*.png in the run folder); 0: off",
    )

    setup = parser.add_argument_group("setup and logging")
    setup.add_argument("--gpu", type=int, nargs="+", default=[0], help="CUDA device id(s)")
    setup.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    setup.add_argument(
        "--gpu_share_ranks",
        action="store_true",
        help="under torchrun, let several ranks share a GPU (rank r on GPU r mod "
        "the GPUs available; gloo); without it each rank needs its own GPU",
    )
    setup.add_argument("--save_path", default="Training_Results", help="root of all run folders")
    setup.add_argument(
        "--savename",
        default="group_plus_seed",
        help="run folder name; group_plus_seed gives <group>_s<seed>",
    )
    setup.add_argument(
        "--log_online",
        action="store_true",
        help="also log to Weights & Biases (offline when WANDB_API_KEY is unset)",
    )
    setup.add_argument("--project", default="Sample_Project")
    setup.add_argument("--group", default="Sample_Group")

    for registry in (LOSSES, MINERS, SAMPLERS, ARCHITECTURES, DATASETS):
        registry.add_flags(parser)
    return parser


def validate(opt: argparse.Namespace) -> None:
    """Raise RegistryError/ValueError with one line naming what is wrong and what is allowed."""
    for value, registry in (
        (opt.dataset, DATASETS),
        (opt.loss, LOSSES),
        (opt.batch_mining, MINERS),
        (opt.data_sampler, SAMPLERS),
    ):
        registry.get(value)
    parse_arch(opt.arch)
    check_image_flags(opt.image_size, opt.image_resize)
    if opt.embed_dim < 1:
        raise ValueError(f"--embed_dim must be >= 1, got {opt.embed_dim}")
    if opt.max_nonfinite_steps < 1:
        raise ValueError(f"--max_nonfinite_steps must be >= 1, got {opt.max_nonfinite_steps}")
    if opt.bs <= 0 or opt.samples_per_class <= 0:
        raise ValueError("--bs and --samples_per_class must be positive")
    if opt.bs % opt.samples_per_class:
        raise ValueError(
            f"--bs {opt.bs} is not divisible by --samples_per_class {opt.samples_per_class}"
        )
    allowed = LOSSES.get(opt.loss).allowed_miners()
    if allowed and opt.batch_mining not in allowed:
        raise ValueError(
            f"loss {opt.loss} cannot use miner {opt.batch_mining}; allowed miners: "
            f"{', '.join(allowed)}"
        )
    if opt.pretrained_weights and opt.not_pretrained:
        raise ValueError(
            "--pretrained_weights and --not_pretrained contradict each other; drop one"
        )
    if not 0 < opt.tv_split_perc < 1:
        raise ValueError(f"--tv_split_perc must lie in (0, 1), got {opt.tv_split_perc}")
    if opt.tv_split_by_samples and not opt.use_tv_split:
        raise ValueError("--tv_split_by_samples needs --use_tv_split")
    if opt.selection_split == "val" and not (opt.use_tv_split or opt.cv_folds):
        raise ValueError("--selection_split val needs --use_tv_split or --cv_folds")
    if opt.cv_folds and (opt.use_tv_split or opt.cv_folds < 2 or not 0 <= opt.fold < opt.cv_folds):
        raise ValueError(
            f"--cv_folds {opt.cv_folds} --fold {opt.fold}: needs K >= 2, "
            "0 <= fold < K, and no --use_tv_split"
        )
    if opt.fold and not opt.cv_folds:
        raise ValueError("--fold needs --cv_folds")
    evaluation.check_metric_names(opt.evaluation_metrics)
    missing = [m for m in opt.storage_metrics if m not in opt.evaluation_metrics]
    if missing and not opt.evaluate_only:  # evaluate-only selects nothing
        raise ValueError(
            f"--storage_metrics {' '.join(missing)} must also be in --evaluation_metrics"
        )
    if opt.save_retrievals < 0:
        raise ValueError(f"--save_retrievals must be >= 0 (0: off), got {opt.save_retrievals}")
    if opt.n_epochs < 0 or opt.eval_every < 1 or opt.iters_per_epoch < 0 or opt.kernels < 0:
        raise ValueError(
            "--n_epochs, --iters_per_epoch and --kernels must be >= 0, --eval_every >= 1"
        )
    if opt.patience and opt.patience < opt.eval_every:
        raise ValueError(
            f"--patience {opt.patience} must be 0 (off) or at least --eval_every "
            f"({opt.eval_every}): the run would stop before its next evaluation"
        )
    if opt.prefetch_factor < 1 or opt.decoded_cache_side < 0:
        raise ValueError("--prefetch_factor must be >= 1 and --decoded_cache_side >= 0")
    if opt.gpu_decode and (opt.decoded_cache or opt.rotation_classes > 1 or opt.device == "cpu"):
        raise ValueError(
            "--gpu_decode cannot be combined with --decoded_cache, --rotation_classes "
            "or --device cpu; drop one"
        )
    if opt.device == "cuda" or opt.amp or opt.evaluate_on_gpu or opt.gpu_decode:
        import torch

        if not torch.cuda.is_available():
            raise ValueError(
                "--device cuda, --amp, --evaluate_on_gpu and --gpu_decode need a CUDA "
                "GPU; none is visible"
            )


def defaults() -> dict[str, Any]:
    """Every flag's default, by dest (a run folder written before a flag existed holds none)."""
    return {a.dest: a.default for a in build_parser()._actions if a.dest != "help"}


def namespace(**values: Any) -> argparse.Namespace:
    """Every flag at its default, ``values`` set on top, unvalidated: a namespace for code that
    calls the builders directly (tests, benchmarks) without restating the defaults."""
    return argparse.Namespace(**{**defaults(), **values})


def parse_args(argv: Sequence[str] | None = None) -> FrozenNamespace:
    """Parse, validate and freeze. Bad input exits with status 2 and one line of explanation."""
    parser = build_parser()
    raw = parser.parse_args(argv)
    try:
        validate(raw)
    except (RegistryError, ValueError) as err:
        parser.error(str(err))
    opt = FrozenNamespace(**vars(raw))
    opt._frozen = True
    return opt


if __name__ == "__main__":  # python parameters.py --loss margin ... prints the resolved namespace
    print(json.dumps(parse_args(sys.argv[1:]).as_dict(), indent=1))
