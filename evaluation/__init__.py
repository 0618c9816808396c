"""Exact evaluation of deep metric learning embeddings: metric registry, neighbour pass, ``evaluate``.

Metric names and definitions follow Roth et al., "Revisiting Training Strategies and Generalization
Performance in Deep Metric Learning", ICML 2020, Musgrave et al., "A Metric Learning Reality Check",
ECCV 2020, and Open Metric Learning; each module states where it deviates from them.
"""
from __future__ import annotations

from . import (  # noqa: F401  (each module registers its kind or metrics)
    clustering, embedding_space, fnmr, ndcg, pairs, pr_auc, retrieval, retrieval_rank,
    retrieval_topk)
from .embeddings import compute_embeddings
from .engine import evaluate
from .names import METRICS, check_metric_names, parse_name, valid_spellings

__all__ = ["METRICS", "evaluate", "compute_embeddings", "check_metric_names", "parse_name", "valid_spellings"]
