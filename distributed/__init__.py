"""Multi-process training through ``torchrun`` and DistributedDataParallel.

``start`` picks this process's device (one GPU per rank, ``distributed.devices``) and joins the
process group (``distributed.process``); ``global_batch_loss`` makes the loss see every rank's
embeddings, so N processes train the same method as one process on the global batch
(``distributed.gather``); ``share_embeddings`` does the same for embedding-store samplers.

Multi-node: ``torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint
host0:29500 --rdzv_id run1 main.py …`` on every node (see the README).
"""

from distributed.devices import DeviceError, resolve_device
from distributed.gather import (
    GlobalBatchLoss,
    gather_rows,
    gather_with_grad,
    global_batch_loss,
    share_embeddings,
)
from distributed.process import (
    DistContext,
    average_gradients,
    backend_for,
    barrier,
    cleanup,
    rank0_decides,
    setup,
    start,
    wrap,
)

__all__ = [
    "DeviceError",
    "DistContext",
    "GlobalBatchLoss",
    "average_gradients",
    "backend_for",
    "barrier",
    "cleanup",
    "gather_rows",
    "gather_with_grad",
    "global_batch_loss",
    "rank0_decides",
    "resolve_device",
    "setup",
    "share_embeddings",
    "start",
    "wrap",
]
