"""The pieces of the training loop that main.py tells as a story."""
from training.epoch import train_one_epoch
from training.evaluate_splits import evaluate_splits
from training.optimizer import build_optimizer, build_scheduler
from training.seeding import rng_state, seed_everything, set_rng_state, worker_init

__all__ = ["train_one_epoch", "evaluate_splits", "build_optimizer", "build_scheduler",
           "rng_state", "seed_everything", "set_rng_state", "worker_init"]
