"""Training throughput against the hardware's own ceiling (issue 13).

Three figures from one run, in images per second:

(a) compute ceiling: forward + loss + backward + optimiser step on one batch already on the device,
    no data loading (full precision and with AMP; the median step);
(b) input pipeline alone: batches of the training split through the project's loader
    (``datasets.pipeline.make_loader`` with the run's sampler): JPEG files decoded by workers, the
    decoded uint8 cache (``--decoded_cache``), and on CUDA decoding on the GPU (``--gpu_decode``);
(c) the full training step through the project's own loop (``training.train_one_epoch``), data
    from each pipeline, with and without AMP (best of ``--repeats`` runs of ``--steps`` steps);
    printed as a fraction of (a) at the same precision;
(d) on CUDA, the host syncs per training step (``torch.cuda.set_sync_debug_mode``), counted over a
    few steps of the loop: with a fused optimiser the expected one is the miner's ``nonzero``.

The data is a synthetic CUB-like JPEG tree generated in a temporary folder (``cub200`` layout,
400×300 photos of smooth colour fields with noise); the network is ``--arch`` without pretrained
weights, trained with margin loss + distance mining (the paper's default), ``--bs`` of 2 per class.

    .venv/bin/python benchmarks/bench_train_step.py --device cpu          # < 2 minutes
    python benchmarks/bench_train_step.py --device cuda --workers 12      # the issue's setting
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import parameters
from architectures import build_model
from batch_mining import MINERS
from criteria import LOSSES
from datasampler import SAMPLERS
from datasets import build_splits, pipeline
from training import acceleration, build_optimizer, seed_everything, train_one_epoch, worker_init

SPC = 2


def write_tree(
    root: Path, classes: int, per_class: int, width: int = 400, height: int = 300
) -> int:
    """``classes`` folders of ``per_class`` JPEGs in the CUB200 layout; returns bytes written."""

    def one(k: int) -> int:
        rng = np.random.default_rng(k)
        folder = root / "cub200" / "images" / f"{k + 1:03d}.bird_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        size = 0
        for j in range(per_class):
            small = Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8))
            arr = np.asarray(small.resize((width, height), Image.BICUBIC), dtype=np.int16)
            arr = np.clip(arr + rng.integers(-12, 13, arr.shape), 0, 255).astype(np.uint8)
            path = folder / f"{j:04d}.jpg"
            Image.fromarray(arr).save(path, quality=90)
            size += path.stat().st_size
        return size

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        return sum(pool.map(one, range(classes)))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def timer(device: torch.device):
    sync(device)
    out = {"s": 0.0}
    start = time.perf_counter()
    yield out
    sync(device)
    out["s"] = time.perf_counter() - start


def build(args, device: torch.device, n_classes: int):
    """Network, loss, optimiser, scaler as main.py builds them (fresh, same seed each time)."""
    torch.manual_seed(0)
    model = build_model(args.arch, embed_dim=128, pretrained=False, image_size=args.image_size)
    model = acceleration.use_channels_last(model.to(device), device, not args.no_channels_last)
    miner = MINERS.build("distance", None, seed=0)
    loss = LOSSES.build("margin", None, miner=miner, n_classes=n_classes).to(device)
    optimizer = build_optimizer(parameters.namespace(optim=args.optim, lr=1e-5), model, loss)
    return model, acceleration.compile_model(model, args.compile), loss, optimizer


def compute_ceiling(args, device, n_classes: int, dtype) -> float:
    """(a): images/s of the bare step on one resident batch."""
    model, net, loss_fn, optimizer = build(args, device, n_classes)
    images = torch.randn(
        args.bs,
        model.image_spec.channels,
        model.image_spec.size,
        model.image_spec.size,
        device=device,
    )
    labels = torch.arange(args.bs // SPC, device=device).repeat_interleave(SPC)
    scaler = acceleration.grad_scaler(dtype, device)
    model.train()

    def step() -> None:
        with acceleration.autocast(device, dtype):
            embeds = net(images)
        loss = loss_fn(embeds.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):  # the median step: robust to a busy machine's stalls
        with timer(device) as t:
            step()
        times.append(t["s"])
    return args.bs / float(np.median(times))


def train_split(args, source: Path, spec):
    return build_splits(parameters.namespace(dataset="cub200", source_path=str(source)), spec)


def loader_for(args, splits, route: str, device, cache_dir: Path):
    train = splits["train"]
    if route == "decoded cache":
        pipeline.use_decoded_cache(
            {"train": train}, "cub200-bench", cache_dir, workers=max(args.workers, 1)
        )
    sampler = SAMPLERS.build(
        "class_random", None, labels=train.labels, batch_size=args.bs, samples_per_class=SPC, seed=0
    )
    loader = pipeline.make_loader(
        train,
        workers=args.workers,
        device=device,
        gpu_decode=route == "gpu decode",
        prefetch_factor=args.prefetch_factor,
        worker_init_fn=worker_init,
        batch_sampler=sampler,
    )
    return loader, sampler


def pipeline_rate(loader, sampler, device, batches: int) -> float:
    """(b): images/s delivered (after the first batch, which pays the workers' start)."""
    n, epoch = 0, 0
    it = iter(loader)
    next(it)
    with timer(device) as t:
        while n < batches * loader_batch(loader):
            try:
                images, _, _ = next(it)
            except StopIteration:
                epoch += 1
                sampler.set_epoch(epoch)
                it = iter(loader)
                continue
            n += len(images)
    return n / t["s"]


def loader_batch(loader) -> int:
    return len(next(iter(loader.batch_sampler)))


def full_step(args, splits, route, device, n_classes, dtype, cache_dir) -> float:
    """(c): images/s of training.train_one_epoch with the data of ``route``."""
    loader, sampler = loader_for(args, splits, route, device, cache_dir)
    _, net, loss_fn, optimizer = build(args, device, n_classes)
    scaler = acceleration.grad_scaler(dtype, device)
    common = {"amp": dtype, "scaler": scaler, "show_progress": False}
    # warm-up epoch: worker start-up, cuDNN autotuning, compilation
    train_one_epoch(net, loader, loss_fn, optimizer, device, epoch=0, iters=args.warmup, **common)
    iters, best = min(args.steps, len(loader)), 0.0
    for epoch in range(1, args.repeats + 1):  # the best of a few: stalls only slow down
        sampler.set_epoch(epoch)
        with timer(device):
            logs = train_one_epoch(
                net, loader, loss_fn, optimizer, device, epoch=epoch, iters=iters, **common
            )
        best = max(best, logs["iterations"] * args.bs / logs["time_s"])
    return best


def syncs_per_step(args, splits, route, device, n_classes, dtype, cache_dir) -> float:
    """(d): CUDA synchronisations per step of training.train_one_epoch (after a warm-up)."""
    import warnings

    loader, _ = loader_for(args, splits, route, device, cache_dir)
    _, net, loss_fn, optimizer = build(args, device, n_classes)
    common = {"amp": dtype, "scaler": acceleration.grad_scaler(dtype, device)}
    train_one_epoch(
        net, loader, loss_fn, optimizer, device, epoch=0, iters=2, show_progress=False, **common
    )

    def syncs(steps: int) -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                train_one_epoch(
                    net,
                    loader,
                    loss_fn,
                    optimizer,
                    device,
                    epoch=1,
                    iters=steps,
                    show_progress=False,
                    read_every_s=float("inf"),  # the ledger's one read at the end
                    **common,
                )
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)

    # the difference of two epoch lengths: the reads at an epoch's end cancel out
    short, long = 2, max(min(args.steps, len(loader)), 4)
    return (syncs(long) - syncs(short)) / (long - short)


def main() -> None:
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if cuda else "cpu", choices=["cuda", "cpu"])
    ap.add_argument(
        "--arch",
        default="",
        help="network (default: resnet50_frozen_normalize on cuda, smallnet_normalize "
        "on cpu, where a resnet50 step takes seconds)",
    )
    ap.add_argument(
        "--image_size", type=int, default=0, help="network input side (0: 224 on cuda, 64 on cpu)"
    )
    ap.add_argument("--bs", type=int, default=0, help="batch size (0: 112 on cuda, 32 on cpu)")
    ap.add_argument("--steps", type=int, default=0, help="timed steps (0: 30 cuda, 4 cpu)")
    ap.add_argument("--warmup", type=int, default=0, help="untimed steps (0: 3 cuda, 1 cpu)")
    ap.add_argument("--repeats", type=int, default=2, help="timed loop runs for (c), best kept")
    ap.add_argument(
        "--workers",
        type=int,
        default=-1,
        help="loader workers (-1: min(12, cores - 2) on cuda, 2 on cpu)",
    )
    ap.add_argument("--prefetch_factor", type=int, default=4)
    ap.add_argument(
        "--classes", type=int, default=0, help="synthetic classes (0: 200 cuda, 40 cpu)"
    )
    ap.add_argument(
        "--per_class",
        type=int,
        default=0,
        help="JPEGs per class (0: 60 cuda, 8 cpu; CUB has about 59)",
    )
    ap.add_argument("--amp_dtype", default="auto", choices=acceleration.AMP_CHOICES)
    ap.add_argument("--no_channels_last", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument(
        "--optim",
        default="adam",
        choices=["adam", "adamw", "sgd", "rmsprop"],
        help="as main.py's (rmsprop has no fused kernel: one host read per step)",
    )
    ap.add_argument("--cudnn_benchmark", action="store_true", help="as main.py's flag")
    ap.add_argument(
        "--cache_dir",
        default="",
        help="where the decoded cache goes (default: /dev/shm if present, else temp)",
    )
    args = ap.parse_args()
    on_gpu = args.device == "cuda"
    if on_gpu and not cuda:
        sys.exit(
            "bench_train_step.py: error: --device cuda but no CUDA GPU is visible; use --device cpu"
        )
    args.arch = args.arch or ("resnet50_frozen_normalize" if on_gpu else "smallnet_normalize")
    args.image_size = args.image_size or (224 if on_gpu else 64)
    args.bs = args.bs or (112 if on_gpu else 32)
    args.steps = args.steps or (30 if on_gpu else 4)
    args.warmup = args.warmup or (3 if on_gpu else 1)
    args.workers = (
        args.workers
        if args.workers >= 0
        else (min(12, max((os.cpu_count() or 4) - 2, 1)) if on_gpu else 2)
    )
    args.classes = args.classes or (200 if on_gpu else 40)
    args.per_class = args.per_class or (60 if on_gpu else 8)
    if args.bs % SPC or args.bs // SPC > args.classes // 2:
        sys.exit(
            f"bench_train_step.py: error: --bs {args.bs} needs {args.bs // SPC} training "
            f"classes of {SPC}; --classes {args.classes} gives {args.classes // 2}"
        )
    device = torch.device(args.device)
    seed_everything(0, args.cudnn_benchmark)
    dtype = acceleration.amp_dtype(device, args.amp_dtype)
    precisions = [
        ("fp32", None),
        (acceleration.describe(dtype, False, False, device).split(",")[0], dtype),
    ]
    routes = ["files", "decoded cache"] + (["gpu decode"] if on_gpu else [])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        shm = Path("/dev/shm")
        cache_root = (
            Path(args.cache_dir)
            if args.cache_dir
            else (shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tmp))
        )
        cache_dir = Path(tempfile.mkdtemp(prefix="dmlbench-bench-", dir=cache_root))
        try:
            t0 = time.perf_counter()
            size = write_tree(Path(tmp), args.classes, args.per_class)
            n_images = args.classes * args.per_class
            print(
                f"data: {n_images} JPEGs 400x300 in {args.classes} classes "
                f"({size / n_images / 1024:.0f} KiB each), written in "
                f"{time.perf_counter() - t0:.1f} s"
            )
            probe = build_model(
                args.arch, embed_dim=128, pretrained=False, image_size=args.image_size
            )
            splits = train_split(args, Path(tmp), probe.image_spec)
            n_classes = splits["train"].n_classes
            print(
                f"{args.device} | {args.arch} at {args.image_size}px | bs {args.bs} | "
                f"{args.steps} timed steps | {args.workers} workers | train split "
                f"{len(splits['train'])} images | torch threads {torch.get_num_threads()} | "
                f"{args.optim} | cudnn {'benchmark' if args.cudnn_benchmark else 'deterministic'}"
            )

            ceiling = {}
            for name, dt in precisions:
                ceiling[name] = compute_ceiling(args, device, n_classes, dt)
                print(f"(a) compute ceiling, {name:14s}: {ceiling[name]:8.1f} images/s")
            for route in routes:
                splits = train_split(args, Path(tmp), probe.image_spec)
                t0 = time.perf_counter()
                loader, sampler = loader_for(args, splits, route, device, cache_dir)
                setup = time.perf_counter() - t0
                rate = pipeline_rate(loader, sampler, device, max(args.steps, 3))
                extra = f" (cache built in {setup:.1f} s)" if route == "decoded cache" else ""
                print(f"(b) input pipeline, {route:13s}: {rate:8.1f} images/s{extra}")
            for route in routes:
                for name, dt in precisions:
                    splits = train_split(args, Path(tmp), probe.image_spec)
                    rate = full_step(args, splits, route, device, n_classes, dt, cache_dir)
                    print(
                        f"(c) training loop, {route:13s}, {name:14s}: {rate:8.1f} images/s "
                        f"= {rate / ceiling[name]:5.1%} of (a)"
                    )
            if on_gpu:
                splits = train_split(args, Path(tmp), probe.image_spec)
                name, dt = precisions[-1]
                syncs = syncs_per_step(args, splits, routes[1], device, n_classes, dt, cache_dir)
                print(f"(d) host syncs per training step, {routes[1]}, {name}: {syncs:.2f}")
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)
    print(f"benchmark took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
