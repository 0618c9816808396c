"""The train state of a run: everything a resumed run needs to continue as if never stopped.

One table (:attr:`TrainState.KEYS`) names each part and how it is saved and restored, so the
checkpoint and the resume can never drift apart key by key. The saved form is plain data only
(tensors, numbers, strings, lists, dicts; selections as dicts, random states as tensors), so every
checkpoint loads with ``torch.load(weights_only=True)``.

``epoch`` is the last *completed* epoch: -1 before the untrained network (epoch 0) is evaluated, so
a resumed run continues at ``epoch + 1`` whatever the point it stopped at.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from runrecord.record import Selection
from training.seeding import rng_state, set_rng_state


def _sampler_state(sampler: Any) -> dict | None:
    """Embedding-store samplers keep embeddings refreshed during training; the rest derive every
    batch from (seed, epoch) and keep nothing."""
    if hasattr(sampler, "state_dict"):
        return sampler.state_dict()
    store = getattr(sampler, "store", None)
    if not getattr(sampler, "needs_embeddings", False) or store is None:
        return None
    return {
        "store": torch.from_numpy(np.ascontiguousarray(store)),
        "filled": torch.from_numpy(np.asarray(sampler.filled, dtype=bool)),
    }


def _load_sampler_state(sampler: Any, state: dict | None) -> None:
    if state is None:
        return
    if hasattr(sampler, "load_state_dict"):
        sampler.load_state_dict(state)
        return
    sampler.store = state["store"].numpy().copy()
    sampler.filled = state["filled"].numpy().copy()


class TrainState:
    """The live objects of a run plus its counters; :meth:`state_dict` / :meth:`load_state_dict`
    move all of them through one key list."""

    def __init__(
        self,
        *,
        model: torch.nn.Module,
        loss: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        miner: Any,
        sampler: Any,
        selections: list[Selection],
        config: dict,
    ) -> None:
        self.model, self.loss, self.optimizer, self.scheduler = model, loss, optimizer, scheduler
        self.miner, self.sampler, self.selections = miner, sampler, selections
        self.config = config
        self.epoch = -1
        self.train_time = 0.0
        self.nonfinite_steps = 0

    @property
    def selection(self) -> Selection:
        """The selection that chooses the reported epoch."""
        return self.selections[0]

    def _table(self) -> dict[str, tuple[Callable[[], Any], Callable[[Any], None]]]:
        def attr(name: str, cast: Callable) -> tuple[Callable, Callable]:
            return (lambda: getattr(self, name)), (lambda v: setattr(self, name, cast(v)))

        return {
            "model": (self.model.state_dict, self.model.load_state_dict),
            "loss": (self.loss.state_dict, self.loss.load_state_dict),
            "optimizer": (self.optimizer.state_dict, self.optimizer.load_state_dict),
            "scheduler": (self.scheduler.state_dict, self.scheduler.load_state_dict),
            "miner": (self.miner.state_dict, self.miner.load_state_dict),
            "sampler": (
                lambda: _sampler_state(self.sampler),
                lambda v: _load_sampler_state(self.sampler, v),
            ),
            "selections": (
                lambda: [s.to_dict() for s in self.selections],
                lambda v: setattr(self, "selections", [Selection.from_dict(d) for d in v]),
            ),
            "epoch": attr("epoch", int),
            "train_time": attr("train_time", float),
            "nonfinite_steps": attr("nonfinite_steps", int),
            "rng": (rng_state, set_rng_state),
            "config": attr("config", dict),
        }

    KEYS = (
        "model",
        "loss",
        "optimizer",
        "scheduler",
        "miner",
        "sampler",
        "selections",
        "epoch",
        "train_time",
        "nonfinite_steps",
        "rng",
        "config",
    )

    def state_dict(self) -> dict:
        table = self._table()
        return {key: table[key][0]() for key in self.KEYS}

    def load_state_dict(self, state: dict) -> None:
        missing = [key for key in self.KEYS if key not in state]
        if missing:
            raise ValueError(
                f"checkpoint lacks {', '.join(missing)} (written by another version of dmlbench)"
            )
        table = self._table()
        for key in self.KEYS:
            table[key][1](state[key])

    def nonfinite_tensors(self) -> list[str]:
        """Names of the model's and loss's parameters and buffers (BatchNorm statistics included)
        that hold a NaN or an infinity."""
        bad = []
        for prefix, module in (("model", self.model), ("loss", self.loss)):
            for name, value in module.state_dict().items():
                if (
                    torch.is_tensor(value)
                    and value.is_floating_point()
                    and not bool(torch.isfinite(value).all())
                ):
                    bad.append(f"{prefix}.{name}")
        return bad

    def nbytes(self) -> int:
        """Bytes of the model's and loss's tensors (sizes the checkpoints)."""
        return sum(
            v.numel() * v.element_size()
            for m in (self.model, self.loss)
            for v in m.state_dict().values()
            if torch.is_tensor(v)
        )
