"""Batch samplers, one per module; importing a module registers it in ``SAMPLERS``."""

from datasampler import (  # noqa: F401  (each import registers its sampler)
    balance,
    category_balance,
    class_random,
    d2_coreset,
    disthist_batchmatch,
    distinct_category_balance,
    embedding_store,
    fid_batchmatch,
    full_random,
    greedy_coreset,
)
from datasampler.base import SAMPLERS, BatchSampler

__all__ = ["SAMPLERS", "BatchSampler"]
