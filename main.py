"""dmlbench: one deep-metric-learning run, told top to bottom.

    python main.py --dataset glyphs --arch smallnet_normalize --loss margin --batch_mining distance

parse → seed, device, processes → run folder (resume or skip) → network, data, sampler, miner, loss,
optimiser → evaluate the untrained network → epochs of training and evaluation → summary.
The successor of the training script of Roth et al., "Revisiting Training Strategies and
Generalization Performance in Deep Metric Learning" (ICML 2020); see parameters.py for the flags.
"""
from __future__ import annotations

import sys
import time

import numpy as np

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
from registry import RegistryError
from runrecord import RunConflict, RunRecord, Selection, WandbSink, run_name
from runrecord.embeddings import save_selected_embeddings
from runrecord.report import format_table
from training import acceleration


def make_loader(dataset, opt, device, **kwargs):
    return pipeline.make_loader(dataset, workers=opt.kernels, device=device,
                                gpu_decode=opt.gpu_decode, prefetch_factor=opt.prefetch_factor,
                                worker_init_fn=training.worker_init, **kwargs)


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    opt = parameters.parse_args(argv)
    if opt.evaluate_only:
        from training.evaluate_only import main as evaluate_only
        return evaluate_only(opt, argv)
    try:
        ctx, device = distributed.start(opt.device, opt.gpu, share_ranks=opt.gpu_share_ranks)
    except distributed.DeviceError as err:
        print(f"main.py: error: {err}", file=sys.stderr)
        return 2
    training.seed_everything(opt.seed)
    log = print if ctx.is_main else (lambda *a, **k: None)

    # ------------------------------------------------------------------ the run folder
    record = RunRecord(opt, is_main=ctx.is_main)
    try:
        record.open()
    except RunConflict as err:
        print(f"main.py: error: {err}", file=sys.stderr)
        return 2
    if record.finished():
        log(f"run already finished: {record.dir}\n" + format_table(record.summary_from_disk()))
        return 0

    # ------------------------------------------------------------------ what the run is made of
    try:
        model = build_model(opt.arch, opt, embed_dim=opt.embed_dim,
                            pretrained=not opt.not_pretrained, weights_path=opt.pretrained_weights,
                            image_size=opt.image_size, image_resize=opt.image_resize)
        splits = datasets.build_splits(opt, model.image_spec)
        if opt.decoded_cache:   # rank 0 decodes while the others wait, then they map its copy
            if not ctx.is_main:
                distributed.barrier(ctx)
            pipeline.use_decoded_cache(splits, opt.dataset, opt.decoded_cache,
                                       opt.decoded_cache_side, workers=max(opt.kernels, 1))
            if ctx.is_main:
                distributed.barrier(ctx)
        train_set = splits["train"]
        sampler = SAMPLERS.build(opt.data_sampler, opt, labels=train_set.labels, batch_size=opt.bs,
                                 samples_per_class=opt.samples_per_class, seed=opt.seed,
                                 categories=train_set.categories, rank=ctx.rank,
                                 world_size=ctx.world_size)
        amp = acceleration.amp_dtype(device, opt.amp_dtype) if opt.amp else None
        acceleration.check_compile(opt.compile)
    except (FileNotFoundError, ValueError, RegistryError, datasets.DatasetError) as err:
        print(f"main.py: error: {err}", file=sys.stderr)
        return 2
    record.write_json("splits.json", {name: ds.info for name, ds in splits.items()})
    record.write_json("model.json", model.describe())
    n_classes = int(len(np.unique(train_set.labels)))
    train_loader = make_loader(train_set, opt, device, batch_sampler=sampler)
    eval_splits = {"train": splits["train_eval"]} if not opt.no_train_metrics else {}
    eval_splits.update({name: splits[name] for name in ("val", "test") if name in splits})
    eval_loaders = {name: make_loader(ds, opt, device, batch_size=opt.bs, shuffle=False)
                    for name, ds in eval_splits.items()}

    # one seed on every rank: each rank mines the same tuples from the gathered global batch
    miner = MINERS.build(opt.batch_mining, opt, seed=opt.seed)
    loss_fn = LOSSES.build(opt.loss, opt, miner=miner, n_classes=n_classes,
                           embed_dim=opt.embed_dim).to(device)
    model = acceleration.use_channels_last(model.to(device), device, opt.channels_last)
    optimizer = training.build_optimizer(opt, model, loss_fn)
    scheduler = training.build_scheduler(opt, optimizer)
    scaler = acceleration.grad_scaler(amp, device)     # fp16 only; bf16 needs no loss scaling
    net = acceleration.compile_model(distributed.wrap(model, ctx, device), opt.compile)

    split = opt.selection_split if opt.selection_split != "auto" else \
        ("val" if "val" in splits else "test")
    selection = Selection(split, opt.storage_metrics[0])
    extra_best = {m: Selection(split, m) for m in opt.storage_metrics[1:]}

    # ------------------------------------------------------------------ resume from `last`
    start_epoch, train_time = 0, 0.0
    state = record.load_checkpoint("last")
    if state is not None:
        model.load_state_dict(state["model"])
        loss_fn.load_state_dict(state["loss"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        selection, extra_best = state["selection"], state["extra_best"]
        start_epoch, train_time = state["epoch"], state["train_time"]
        training.set_rng_state(state["rng"])
        miner.load_state_dict(state["miner"])
        record.truncate_log(start_epoch)
        log(f"resuming {record.dir} after epoch {start_epoch}")

    wandb = WandbSink(record.dir, opt.project, opt.group, run_name(opt),
                      opt.as_dict()) if (opt.log_online and ctx.is_main) else None
    log(f"dataset {opt.dataset} ({len(train_set)} train images, {n_classes} classes) | "
        f"arch {opt.arch} | loss {opt.loss} | miner {opt.batch_mining} | sampler "
        f"{opt.data_sampler} | device {device} "
        f"({acceleration.describe(amp, opt.channels_last, opt.compile, device)}) | run {record.dir}")

    def evaluate_and_record(epoch: int, train_logs: dict | None) -> None:
        results = {}
        if ctx.is_main:
            results = training.evaluate_splits(
                model, eval_loaders, opt.evaluation_metrics, device, backend=opt.eval_backend,
                on_gpu=opt.evaluate_on_gpu, amp=opt.amp, seed=opt.seed, layer=opt.eval_layer)
            if train_logs:
                record.log(epoch, "train_loop", train_logs)
            for name, values in results.items():
                record.log(epoch, name, values)
                if wandb:
                    wandb.log(epoch, name, values)
            for sel in extra_best.values():
                if sel.update(epoch, results):
                    record.save_checkpoint(f"best_{sel.metric}", {"model": model.state_dict(),
                                                                  "epoch": epoch})
            if selection.update(epoch, results):
                record.save_checkpoint("best", {"model": model.state_dict(),
                                                "loss": loss_fn.state_dict(), "epoch": epoch})
            line = " | ".join(f"{name} " + ", ".join(
                f"{m}={values[m]:.4f}" for m in opt.evaluation_metrics[:4]
                if isinstance(values.get(m), float)) for name, values in results.items())
            log(f"epoch {epoch}: {line}")

    def checkpoint(epoch: int) -> None:
        record.save_checkpoint("last", {
            "model": model.state_dict(), "loss": loss_fn.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "selection": selection, "extra_best": extra_best, "epoch": epoch,
            "train_time": train_time, "rng": training.rng_state(),
            "miner": miner.state_dict()})
        record.summary(selection, finished=False, train_time_s=train_time)
        distributed.barrier(ctx)

    if sampler.needs_embeddings:  # coreset / batch-match samplers start from the whole train set
        store_loader = make_loader(datasets.train_items_with_eval_transforms(splits), opt, device,
                                   batch_size=opt.bs)
        embeds, _ = evaluation.compute_embeddings(model, store_loader, device, amp=opt.amp)
        sampler.update_embeddings(np.arange(len(embeds)), embeds)

    if start_epoch == 0:
        evaluate_and_record(0, None)
        checkpoint(0)

    # ------------------------------------------------------------------ epochs
    for epoch in range(start_epoch + 1, opt.n_epochs + 1):
        sampler.set_epoch(epoch)
        logs = training.train_one_epoch(
            net, train_loader, distributed.global_batch_loss(loss_fn, ctx), optimizer, device,
            epoch=epoch, iters=opt.iters_per_epoch, amp=amp, scaler=scaler,
            grad_clip=opt.grad_clip, sampler=distributed.share_embeddings(sampler, ctx),
            show_progress=ctx.is_main,
            after_backward=lambda: distributed.average_gradients(loss_fn, ctx))
        scheduler.step()
        train_time += logs["time_s"]
        logs["lr"] = optimizer.param_groups[0]["lr"]
        if epoch % opt.eval_every == 0 or epoch == opt.n_epochs:
            evaluate_and_record(epoch, logs)
        else:
            record.log(epoch, "train_loop", logs)
        checkpoint(epoch)

    if opt.save_embeddings and ctx.is_main:
        best = record.load_checkpoint("best")
        save_selected_embeddings(record.dir, model, {"test": eval_loaders["test"]}, device,
                                 state_dict=best["model"] if best else None,
                                 epoch=selection.best_epoch, rule=selection.rule, amp=opt.amp,
                                 layer=opt.eval_layer)
    summary = record.summary(selection, finished=True, train_time_s=train_time)
    if wandb:
        wandb.finish(summary)
    log(format_table(summary))
    if opt.save_retrievals and ctx.is_main:
        from evaluation.visualize import save_run_retrievals
        log("retrieval pictures: " + ", ".join(
            map(str, save_run_retrievals(record.dir, opt.save_retrievals))))
    log(f"done in {time.perf_counter() - started:.0f} s")
    distributed.cleanup(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
