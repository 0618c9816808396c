"""Clustering metrics from one k-means: ``nmi``, ``ami`` and clustering ``f1``.

NMI: Strehl & Ghosh, "Cluster Ensembles", JMLR 2002, with the arithmetic mean of the entropies
(sklearn's default since 0.22; the original harness left it to the installed sklearn). AMI: Vinh et
al., JMLR 2010, as reported by Musgrave et al., "A Metric Learning Reality Check", ECCV 2020. F1:
the pairwise clustering F-measure used by Oh Song et al., CVPR 2016 and Roth et al., ICML 2020.

Deviations from the original harness (Roth et al., ICML 2020):
- the number of clusters defaults to the number of distinct labels of the evaluated samples; the
  original used the number of *training* classes, which is wrong on class-disjoint test sets;
- k-means uses a fixed seed (faiss' default is used as-is otherwise: niter 20, one point per
  centroid allowed); on a GPU without faiss-gpu a torch k-means runs instead (``kmeans.py``);
- the cosine variants (``c_nmi``, ``c_f1``, ``c_ami``) run spherical k-means on L2-normalised
  embeddings and assign with their *own* centroids (the original normalised the Euclidean
  centroids);
- F1 counts pairs from the contingency table in one vectorised step; labelling each cluster by its
  sample nearest the centroid (as the original did) only renames clusters and leaves F1 unchanged.
The k-means runs over the queries (all samples unless ``is_query`` is given), as in pytorch-metric-
learning.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from .context import Context, key
from .kmeans import kmeans_assign
from .names import METRICS, Metric


class ClusteringMetric(Metric):
    """A score of the labels against one k-means of the queries (per distance and category)."""

    kind = "clustering"

    def score(self, labels: np.ndarray, assign: np.ndarray) -> float:
        raise NotImplementedError

    @classmethod
    def run(cls, ctx: Context, metrics: list[Metric]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        assignments: dict[tuple, np.ndarray] = {}
        for m in metrics:
            for c, mask in ctx.groups:
                sel = ctx.q_idx[mask[ctx.q_idx]]
                if not len(sel):
                    out[key(m.name, c)] = float("nan")
                    continue
                if (m.cosine, c) not in assignments:
                    k = ctx.n_clusters or len(np.unique(ctx.labels[sel]))
                    assignments[m.cosine, c] = kmeans_assign(
                        ctx.rows(sel, m.cosine), k, m.cosine, ctx.seed, ctx.kmeans
                    )
                out[key(m.name, c)] = m.score(ctx.labels[sel], assignments[m.cosine, c])
        return out


@METRICS.register("nmi")
class NMI(ClusteringMetric):
    """Normalised mutual information between labels and k-means clusters (arithmetic mean)."""

    def score(self, labels: np.ndarray, assign: np.ndarray) -> float:
        return float(normalized_mutual_info_score(labels, assign, average_method="arithmetic"))


@METRICS.register("ami")
class AMI(ClusteringMetric):
    """Adjusted mutual information between labels and k-means clusters (arithmetic mean)."""

    def score(self, labels: np.ndarray, assign: np.ndarray) -> float:
        return float(adjusted_mutual_info_score(labels, assign, average_method="arithmetic"))


def _pairs(n: np.ndarray) -> float:
    n = n.astype(np.float64)
    return float((n * (n - 1) / 2).sum())


@METRICS.register("f1")
class F1(ClusteringMetric):
    """Pairwise clustering F1: precision and recall of 'same cluster' over 'same class' pairs."""

    def score(self, labels: np.ndarray, assign: np.ndarray) -> float:
        table = contingency_matrix(labels, assign, sparse=True)
        tp = _pairs(table.data)
        same_cluster = _pairs(np.asarray(table.sum(0)).ravel())
        same_class = _pairs(np.asarray(table.sum(1)).ravel())
        if tp == 0:
            return 0.0
        p, r = tp / same_cluster, tp / same_class
        return float(2 * p * r / (p + r))
