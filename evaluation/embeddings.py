"""``compute_embeddings``: one no-grad pass of a model over a DataLoader.

Follows the evaluation pass of Roth et al., "Revisiting Training Strategies and Generalization
Performance in Deep Metric Learning", ICML 2020. Deviations: batches are (images, labels, indices)
and the result is ordered by dataset index (the original relied on an unshuffled loader and took
images from ``inp[1]``); embeddings stay torch tensors (float32, CPU) instead of stacked numpy
lists; the model's train/eval mode is restored afterwards. On a GPU the embeddings wait on the
device and come to the host ``HOST_COPY_EVERY`` batches at a time, not one sync per batch.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

HOST_COPY_EVERY = 32  # batches kept on the device between copies to the host


@torch.no_grad()
def compute_embeddings(
    model: torch.nn.Module, loader, device, amp: bool = False, layer: str = "head"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns embeds: (N, D) float32 and labels: (N,) int64 on the CPU, sorted by dataset index.

    ``layer`` other than ``head`` asks the model's ``represent`` for that layer's output (e.g.
    ``pooled``: the backbone features before the embedding head)."""
    was_training = model.training
    model.eval()
    device = torch.device(device)
    feats, pending, labs, idxs = [], [], [], []
    try:
        for images, labels, indices in tqdm(loader, desc="embedding", leave=False, disable=None):
            with torch.autocast(device.type, enabled=amp):
                images = images.to(device, non_blocking=True)
                out = model(images) if layer == "head" else model.represent(images, layer)
            out = out[0] if isinstance(out, (tuple, list)) else out
            pending.append(out.float())
            if len(pending) >= HOST_COPY_EVERY:  # one device-to-host copy (and sync) per chunk
                feats.append(torch.cat(pending).cpu())
                pending = []
            labs.append(torch.as_tensor(labels).long().cpu())
            idxs.append(torch.as_tensor(indices).long().cpu())
        if pending:
            feats.append(torch.cat(pending).cpu())
    finally:
        model.train(was_training)
    order = torch.argsort(torch.cat(idxs))
    return torch.cat(feats)[order], torch.cat(labs)[order]
