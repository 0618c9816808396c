"""dmlbench: one deep-metric-learning run, told top to bottom.

    python main.py --dataset glyphs --arch smallnet_normalize --loss margin --batch_mining distance

parse → seed, device, processes → network, data, sampler, miner, loss, optimiser (everything
checked before anything is written) → run folder (lock, then resume, extend or skip) → epochs: the
untrained network is epoch 0, every later epoch trains, evaluates and ends with one checkpoint →
summary. Re-running the same command after any interruption continues from the last checkpoint
to the same numbers; re-running it with a larger ``--n_epochs`` extends a finished run.
The successor of the training script of Roth et al., "Revisiting Training Strategies and
Generalization Performance in Deep Metric Learning" (ICML 2020); see parameters.py for the flags.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import datasets
import distributed
import evaluation
import parameters
import training
from architectures import build_model
from batch_mining import MINERS
from criteria import LOSSES
from datasampler import SAMPLERS
from datasets import pipeline
from runrecord import (
    RunConflict,
    RunFolderError,
    RunRecord,
    WandbSink,
    command_line,
    run_name,
    selections_for,
)
from runrecord.embeddings import save_selected_embeddings
from runrecord.report import format_table
from training import acceleration, interrupts


class StartupError(ValueError):
    """Bad data or settings found while building the run (one line, exit status 2)."""


@dataclass
class Parts:
    """What a run is made of."""

    model: torch.nn.Module
    net: torch.nn.Module  # the model as trained (DDP-wrapped under torchrun)
    splits: dict
    train_loader: Any
    eval_loaders: dict
    sampler: Any
    miner: Any
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    amp: torch.dtype | None  # the autocast dtype of --amp
    n_classes: int


def make_loader(dataset, opt, device, **kwargs) -> torch.utils.data.DataLoader:
    return pipeline.make_loader(
        dataset,
        workers=opt.kernels,
        device=device,
        gpu_decode=opt.gpu_decode,
        prefetch_factor=opt.prefetch_factor,
        worker_init_fn=training.worker_init,
        **kwargs,
    )


def build_parts(opt, ctx, device) -> Parts:
    """Network, data, sampler, miner, loss and optimiser; writes nothing."""
    try:
        model = build_model(
            opt.arch,
            opt,
            embed_dim=opt.embed_dim,
            pretrained=not opt.not_pretrained,
            weights_path=opt.pretrained_weights,
            image_size=opt.image_size,
            image_resize=opt.image_resize,
        )
        splits = datasets.build_splits(opt, model.image_spec)
        if opt.decoded_cache:  # rank 0 decodes while the others wait, then they map its copy
            if not ctx.is_main:
                distributed.barrier(ctx)
            try:
                pipeline.use_decoded_cache(
                    splits,
                    opt.dataset,
                    opt.decoded_cache,
                    opt.decoded_cache_side,
                    workers=max(opt.kernels, 1),
                )
            finally:  # a failure on rank 0 must not leave the other ranks waiting forever
                if ctx.is_main:
                    distributed.barrier(ctx)
        train_set = splits["train"]
        sampler = SAMPLERS.build(
            opt.data_sampler,
            opt,
            labels=train_set.labels,
            batch_size=opt.bs,
            samples_per_class=opt.samples_per_class,
            seed=opt.seed,
            categories=train_set.categories,
            rank=ctx.rank,
            world_size=ctx.world_size,
        )
        n_classes = len(np.unique(train_set.labels))
        # one seed on every rank: each rank mines the same tuples from the gathered global batch
        miner = MINERS.build(opt.batch_mining, opt, seed=opt.seed)
        loss_fn = LOSSES.build(
            opt.loss, opt, miner=miner, n_classes=n_classes, embed_dim=opt.embed_dim
        ).to(device)
        amp = acceleration.amp_dtype(device, opt.amp_dtype) if opt.amp else None
        acceleration.check_compile(opt.compile)
    except datasets.INPUT_ERRORS as err:
        raise StartupError(str(err)) from None
    eval_splits = {"train": splits["train_eval"]} if not opt.no_train_metrics else {}
    eval_splits.update({name: splits[name] for name in ("val", "test") if name in splits})
    model = acceleration.use_channels_last(model.to(device), device, opt.channels_last)
    optimizer = training.build_optimizer(opt, model, loss_fn)
    return Parts(
        model=model,
        splits=splits,
        net=acceleration.compile_model(distributed.wrap(model, ctx, device), opt.compile),
        train_loader=make_loader(train_set, opt, device, batch_sampler=sampler),
        eval_loaders={
            name: make_loader(ds, opt, device, batch_size=opt.bs, shuffle=False)
            for name, ds in eval_splits.items()
        },
        sampler=sampler,
        miner=miner,
        loss_fn=loss_fn,
        optimizer=optimizer,
        scheduler=training.build_scheduler(opt, optimizer),
        scaler=acceleration.grad_scaler(amp, device),
        amp=amp,
        n_classes=n_classes,
    )


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    argv = sys.argv[1:] if argv is None else list(argv)
    opt = parameters.parse_args(argv)
    if opt.evaluate_only:
        from training.evaluate_only import main as evaluate_only

        return evaluate_only(opt, argv)
    try:
        ctx, device = distributed.start(opt.device, opt.gpu, share_ranks=opt.gpu_share_ranks)
    except distributed.DeviceError as err:
        return error(err, 2)
    training.seed_everything(opt.seed, opt.cudnn_benchmark)
    log = print if ctx.is_main else (lambda *a, **k: None)
    record = RunRecord(opt, is_main=ctx.is_main, defaults=parameters.defaults())
    try:
        with interrupts.handled():
            # ---------------------------------------------------------- a finished run is skipped
            done = record.finished_summary()
            if finished_already(done, opt):
                log(f"run already finished: {record.dir}\n" + format_table(done))
                return 0
            # ---------------------------------------------------------- build; nothing written yet
            parts = build_parts(opt, ctx, device)
            state = training.TrainState(
                model=parts.model,
                loss=parts.loss_fn,
                optimizer=parts.optimizer,
                scheduler=parts.scheduler,
                miner=parts.miner,
                sampler=parts.sampler,
                selections=selections_for(opt, parts.splits),
                config=opt.as_dict(),
            )
            try:
                record.preflight(need_bytes=state.nbytes() * 12 + 2**24)  # last, prev, tmp, best
            except RunFolderError as err:
                raise StartupError(str(err)) from None
            # ---------------------------------------------------------- the run folder
            checkpoint = open_run_folder(record, opt, parts, command_line(argv), done, log)
            sink = (
                WandbSink(
                    record.dir,
                    opt.project,
                    opt.group,
                    run_name(opt),
                    opt.as_dict(),
                    continues=record.continues,
                )
                if (opt.log_online and ctx.is_main)
                else None
            )
            log(
                f"dataset {opt.dataset} ({len(parts.splits['train'])} train images, "
                f"{parts.n_classes} classes) | arch {opt.arch} | loss {opt.loss} | miner "
                f"{opt.batch_mining} | sampler {opt.data_sampler} | device {device} "
                f"({acceleration.describe(parts.amp, opt.channels_last, opt.compile, device)}) "
                f"| run {record.dir}"
            )
            # ---------------------------------------------------------- epochs
            if checkpoint is not None:
                state.load_state_dict(checkpoint)  # the random state too: nothing may run after
            elif parts.sampler.needs_embeddings:
                fill_embedding_store(parts, opt, device)
            budget = training.SkipBudget(opt.max_nonfinite_steps, state.nonfinite_steps)
            stopped_early = None
            for epoch in range(state.epoch + 1, opt.n_epochs + 1):
                stopped_early = stops_early(opt, state, ctx, device, log)
                if stopped_early:
                    break
                run_epoch(epoch, opt, parts, state, record, sink, ctx, device, budget, log)
            # ---------------------------------------------------------- summary
            finish_run(opt, parts, state, record, sink, ctx, device, log, stopped_early)
            log(f"done in {time.perf_counter() - started:.0f} s")
            return 0
    except (StartupError, RunConflict) as err:
        return error(err, 2)
    except (RunFolderError, training.NonFiniteSteps) as err:
        return error(err, 1)
    except (interrupts.Interrupted, KeyboardInterrupt) as err:
        return interrupted(err, record, command_line(argv))
    finally:
        record.close()
        distributed.cleanup(ctx)


def error(message: Any, status: int) -> int:
    print(f"main.py: error: {message}", file=sys.stderr)
    return status


def interrupted(err: BaseException, record: RunRecord, command: str) -> int:
    """SIGINT / SIGTERM: say what was kept and the command that resumes (status 128 + signal)."""
    name = err.args[0] if isinstance(err, interrupts.Interrupted) else "SIGINT"
    epoch = record.saved_epoch
    saved = (
        f"checkpoint of epoch {epoch} in {record.path('checkpoints')}"
        if epoch >= 0
        else "no epoch completed yet"
    )
    return error(
        f"stopped by {name} ({saved}); resume with: {command}", 128 + getattr(err, "signum", 2)
    )


def open_run_folder(record: RunRecord, opt, parts: Parts, command: str, done, log) -> dict | None:
    """Lock the folder, check it holds this run, cut its log back to the last checkpoint (which is
    returned, None on a fresh start) and write what the run is made of."""
    record.lock(command)
    checkpoint = record.load_checkpoint("last")
    record.open(checkpoint)
    record.truncate_log(checkpoint["epoch"] if checkpoint else -1)
    record.write_json("splits.json", {n: ds.info for n, ds in parts.splits.items()})
    record.write_json("model.json", parts.model.describe())
    for note in record.notes:
        log(f"note: {note}")
    if checkpoint is not None:
        verb = "extending" if done is not None else "resuming"
        log(f"{verb} {record.dir} after epoch {checkpoint['epoch']} (to epoch {opt.n_epochs})")
    return checkpoint


def finished_already(done: dict | None, opt) -> bool:
    """A finished run folder needs nothing more: it reached --n_epochs, or stopped early with a
    --patience no larger than this one."""
    if done is None:
        return False
    early = done.get("stopped_early") or {}
    return (done.get("last_epoch") or 0) >= opt.n_epochs or (
        0 < opt.patience <= early.get("patience", 0)
    )


def stops_early(opt, state, ctx, device, log) -> dict | None:
    """--patience: stop once the last epoch is more than N past the selected one (rank 0, the
    one that evaluates, decides for all); what to put in the summary, or None."""
    sel = state.selection
    if not opt.patience or not distributed.rank0_decides(
        sel.stale(state.epoch, opt.patience), ctx, device
    ):
        return None
    log(
        f"early stop after epoch {state.epoch}: {sel.rule} last improved at epoch "
        f"{sel.best_epoch} (--patience {opt.patience})"
    )
    return {"epoch": state.epoch, "best_epoch": sel.best_epoch, "patience": opt.patience}


def finish_run(
    opt, parts: Parts, state, record: RunRecord, sink, ctx, device, log, stopped_early=None
) -> None:
    """The final summary (and W&B's), the table, and what --save_embeddings and
    --save_retrievals ask for."""
    if opt.save_embeddings and ctx.is_main:
        save_test_embeddings(opt, parts, state, record, device)
    extra = {"stopped_early": stopped_early} if stopped_early else {}
    summary = record.summary(state.selection, finished=True, train_time_s=state.train_time, **extra)
    if sink:
        sink.finish(summary)
    log(format_table(summary))
    if opt.save_retrievals and ctx.is_main:
        from evaluation.visualize import save_run_retrievals

        pictures = save_run_retrievals(record.dir, opt.save_retrievals)
        log("retrieval pictures: " + ", ".join(map(str, pictures)))


def fill_embedding_store(parts: Parts, opt, device) -> None:
    """Coreset / batch-match samplers start from the embeddings of the whole train set."""
    loader = make_loader(
        datasets.train_items_with_eval_transforms(parts.splits), opt, device, batch_size=opt.bs
    )
    embeds, _ = evaluation.compute_embeddings(parts.model, loader, device, amp=opt.amp)
    parts.sampler.update_embeddings(np.arange(len(embeds)), embeds)


def save_test_embeddings(opt, parts: Parts, state, record: RunRecord, device) -> None:
    """The selected epoch's test embeddings as float16 ``.npy`` in the run folder (the
    Reality-Check study concatenates its fold models' embeddings from them)."""
    best = record.load_checkpoint("best")
    save_selected_embeddings(
        record.dir,
        parts.model,
        {"test": parts.eval_loaders["test"]},
        device,
        state_dict=best["model"] if best else None,
        epoch=state.selection.best_epoch,
        rule=state.selection.rule,
        amp=opt.amp,
        layer=opt.eval_layer,
    )


def run_epoch(
    epoch: int, opt, parts: Parts, state, record: RunRecord, sink, ctx, device, budget, log
) -> None:
    """Epoch 0 evaluates the untrained network; later ones train first. Each ends with its rows,
    checkpoints and summary written as one uninterruptible block."""
    logs = None
    if epoch > 0:
        parts.sampler.set_epoch(epoch)
        logs = training.train_one_epoch(
            parts.net,
            parts.train_loader,
            distributed.global_batch_loss(parts.loss_fn, ctx),
            parts.optimizer,
            device,
            epoch=epoch,
            iters=opt.iters_per_epoch,
            amp=parts.amp,
            scaler=parts.scaler,
            grad_clip=opt.grad_clip,
            sampler=distributed.share_embeddings(parts.sampler, ctx),
            show_progress=ctx.is_main,
            after_backward=lambda: distributed.average_gradients(parts.loss_fn, ctx),
            budget=budget,
            log=log,
        )
        parts.scheduler.step()
        logs["lr"] = parts.optimizer.param_groups[0]["lr"]
        bad = state.nonfinite_tensors()
        if bad:
            raise training.NonFiniteSteps(
                f"training diverged: {', '.join(bad[:3])} became non-finite in epoch {epoch}; "
                f"last.pt keeps epoch {state.epoch}; lower --lr or check the loss flags"
            )
    results = {}
    if ctx.is_main and (epoch == 0 or epoch % opt.eval_every == 0 or epoch == opt.n_epochs):
        results = training.evaluate_splits(
            parts.model,
            parts.eval_loaders,
            opt.evaluation_metrics,
            device,
            backend=opt.eval_backend,
            on_gpu=opt.evaluate_on_gpu,
            amp=opt.amp,
            seed=opt.seed,
            layer=opt.eval_layer,
        )
    with interrupts.critical():
        if logs is not None:
            state.train_time += logs["time_s"]
            state.nonfinite_steps = budget.count
            record.log(epoch, "train_loop", logs)
        for name, values in results.items():
            record.log(epoch, name, values)
            if sink:
                sink.log(epoch, name, values)
        for i, sel in enumerate(state.selections):
            if sel.update(epoch, results):
                extra = {} if i else {"loss": parts.loss_fn.state_dict()}
                record.save_checkpoint(
                    "best" if i == 0 else f"best_{sel.metric}",
                    {"model": parts.model.state_dict(), "epoch": epoch, **extra},
                )
        state.epoch = epoch
        record.save_checkpoint("last", state.state_dict(), keep_previous=True)
        record.summary(state.selection, finished=False, train_time_s=state.train_time)
    line = " | ".join(
        f"{name} "
        + ", ".join(
            f"{m}={values[m]:.4f}"
            for m in opt.evaluation_metrics[:4]
            if isinstance(values.get(m), float)
        )
        for name, values in results.items()
    )
    if line:
        log(f"epoch {epoch}: {line}")
    distributed.barrier(ctx)


if __name__ == "__main__":
    sys.exit(main())
