"""Exact evaluation of deep metric learning embeddings: metric registry, shared passes, evaluate.

Metric names and definitions follow Roth et al., "Revisiting Training Strategies and Generalization
Performance in Deep Metric Learning", ICML 2020, Musgrave et al., "A Metric Learning Reality Check",
ECCV 2020, and Open Metric Learning; each module states where it deviates from them.

Layout: ``engine.evaluate`` parses names (``names.py``), checks the inputs once (``context.py``),
groups the metrics by *kind* and runs each kind's shared pass once:

- ``retrieval`` (``retrieval.py``): exact ranks of each query's relevant items (``ranks.py``,
  ``knn.py``); metrics in ``retrieval_rank.py``, ``retrieval_topk.py``, ``ndcg.py``;
- ``clustering`` (``clustering.py``): one k-means (``kmeans.py``: faiss or torch); nmi, ami, f1;
- ``space`` (``embedding_space.py``): the embeddings themselves; dists, rho_spectrum, pcf;
- ``pairs`` (``pairs.py``): two sweeps over every query-gallery distance; ``fnmr.py``,
  ``pr_auc.py``.

Adding a metric of an existing kind: one file with a subclass of the kind's base class
(``RetrievalMetric.per_query``, ``ClusteringMetric.score``, ``SpaceMetric.compute``, or
``PairMetric.prepare/consume/finish``), registered with ``@METRICS.register("name")``
(``spelling``, ``arg`` and ``check_value`` give its legacy name and ``@argument``), imported
below, and a hand-computed test. Adding a kind: one file with a direct subclass of
``names.Metric`` that sets ``kind`` and implements ``run(ctx, metrics)`` (one pass for all its
metrics, per-category entries included), plus its metrics. ``--evaluation_metrics`` accepts every
registered name with no further change.
"""

from __future__ import annotations

from . import (  # noqa: F401  (each module registers its kind or metrics)
    clustering,
    embedding_space,
    fnmr,
    ndcg,
    pairs,
    pr_auc,
    retrieval,
    retrieval_rank,
    retrieval_topk,
)
from .embeddings import compute_embeddings
from .engine import evaluate
from .names import METRICS, check_metric_names, parse_name, valid_spellings

__all__ = [
    "METRICS",
    "check_metric_names",
    "compute_embeddings",
    "evaluate",
    "parse_name",
    "valid_spellings",
]
