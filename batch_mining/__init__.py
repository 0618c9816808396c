"""Tuple miners, one per module; importing a module registers it in ``MINERS``."""

from batch_mining import (  # noqa: F401  (each import registers its miner)
    all_triplets,
    distance,
    hard_triplets,
    intra_random,
    lifted,
    memory_bank,
    n_hard_triplets,
    npair,
    parametric,
    random_distance,
    random_triplets,
    rho_distance,
    semihard,
    softhard,
)
from batch_mining.base import MINERS, Lifted, Miner, NPairs, Triplets

__all__ = ["MINERS", "Lifted", "Miner", "NPairs", "Triplets"]
