"""Optimiser and learning-rate schedule of a run.

Parameter groups follow the original harness: the backbone at ``--lr``; the embedding layer at
``--fc_lr`` when it is >= 0; each loss's own parameters (proxies, β, centres) at the learning rates
the loss declares, without weight decay.

Adam, AdamW and SGD use PyTorch's fused kernels on the CPU and CUDA: one launch per step, and a
``found_inf`` input with which the training loop skips a non-finite step on the device, without a
host sync (:mod:`training.epoch`). RMSprop has no fused kernel; with it the loop reads the finite
flag each step. SGD's momentum buffers start at zero: with dampening 0 that is the first step's
``buf = grad``, and a skipped first step cannot leave the buffers uninitialised.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

FUSED_DEVICES = ("cpu", "cuda")


def build_optimizer(opt: Any, model: nn.Module, loss: nn.Module) -> torch.optim.Optimizer:
    head = getattr(model, "head", None)
    head_ids = (
        {id(p) for p in head.parameters()} if (head is not None and opt.fc_lr >= 0) else set()
    )
    backbone = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups: list[dict] = [
        {"params": backbone, "lr": opt.lr, "weight_decay": opt.decay, "name": "backbone"}
    ]
    if head_ids:
        groups.append(
            {
                "params": [p for p in head.parameters() if p.requires_grad],
                "lr": opt.fc_lr,
                "weight_decay": opt.decay,
                "name": "embedding",
            }
        )
    for i, group in enumerate(loss.param_groups(opt.lr)):
        groups.append({"weight_decay": 0.0, "name": f"loss{i}", **group})
    groups = [g for g in groups if len(list(g["params"]))]
    params = [p for g in groups for p in g["params"]]
    fused = bool(params) and all(p.device.type in FUSED_DEVICES for p in params)
    if opt.optim == "adam":
        return torch.optim.Adam(groups, fused=fused or None)
    if opt.optim == "adamw":
        return torch.optim.AdamW(groups, fused=fused or None)
    if opt.optim == "rmsprop":  # the Reality-Check protocol (Musgrave et al., ECCV 2020)
        return torch.optim.RMSprop(groups, momentum=0.9)
    sgd = torch.optim.SGD(groups, momentum=0.9, fused=fused or None)
    for p in params:
        sgd.state[p]["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return sgd


def build_scheduler(opt: Any, optimizer: torch.optim.Optimizer):
    """Stepped once per epoch; ``none`` keeps the learning rates constant."""
    if opt.scheduler == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=opt.tau, gamma=opt.gamma)
    if opt.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(opt.n_epochs, 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
