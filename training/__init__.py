"""The pieces of the training loop that main.py tells as a story."""

from training.epoch import NonFiniteSteps, SkipBudget, train_one_epoch
from training.evaluate_splits import evaluate_splits
from training.optimizer import build_optimizer, build_scheduler
from training.seeding import (
    rng_state,
    seed_everything,
    set_rng_state,
    worker_init,
)
from training.state import TrainState

__all__ = [
    "NonFiniteSteps",
    "SkipBudget",
    "TrainState",
    "build_optimizer",
    "build_scheduler",
    "evaluate_splits",
    "rng_state",
    "seed_everything",
    "set_rng_state",
    "train_one_epoch",
    "worker_init",
]
