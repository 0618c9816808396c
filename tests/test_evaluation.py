"""Tests of the evaluation engine: hand-computed cases for every metric, splits, ties, backends."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import evaluation
from evaluation import METRICS, check_metric_names, compute_embeddings, evaluate, knn
from evaluation.clustering import F1
from registry import RegistryError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Set A, 1-D, every sample is query and gallery, self excluded:
#   idx: 0     1     2     3     4
#   x:   0     1     3     6     10
#   lab: a     b     a     b     a
# Rankings (distance, then index) and the 0-based ranks of the relevant items:
#   q0: 1(b,1) 2(a,3) 3(b,6) 4(a,10)          → [1, 3]   R=2
#   q1: 0(a,1) 2(a,2) 3(b,5) 4(a,9)           → [2]      R=1
#   q2: 1(b,2) 0(a,3) 3(b,3) 4(a,7)   tie 0~3 → [1, 3]   R=2  (index 0 before 3)
#   q3: 2(a,3) 4(a,4) 1(b,5) 0(a,6)           → [2]      R=1
#   q4: 3(b,4) 2(a,7) 1(b,9) 0(a,10)          → [1, 3]   R=2
XA = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]], np.float32)
LA = np.array([0, 1, 0, 1, 0])
EXPECTED_A = {
    "e_recall@1": 0.0,
    "e_recall@2": 3 / 5,
    "e_recall@3": 1.0,
    "cmc@2": 3 / 5,
    "precision_at_1": 0.0,
    "mrr": (1 / 2 + 1 / 3 + 1 / 2 + 1 / 3 + 1 / 2) / 5,
    # R-precision: q0 1/2, q1 0, q2 1/2, q3 0, q4 1/2
    "r_precision": 1.5 / 5,
    # MAP@R: q0 (1/2)/2, q1 0, q2 1/4, q3 0, q4 1/4
    "mAP_at_r": 0.75 / 5,
    # class-averaged: class a (q0, q2, q4) 1/4, class b (q1, q3) 0
    "mAP_c": 0.125,
    # full AP: q0 (1/2 + 2/4)/2 = 1/2, q1 1/3, q2 1/2, q3 1/3, q4 1/2
    "mAP": 13 / 30,
    "mAP_1000": 13 / 30,
    "mAP_lim": 13 / 30,
    "map@4": 13 / 30,
    # map@2 / min(2, R): q0 (1/2)/2, q1 0, q2 1/4, q3 0, q4 1/4
    "map@2": 0.15,
    # precision@2 / min(2, R): q0 1/2, q1 0/1, q2 1/2, q3 0, q4 1/2
    "precision@2": 0.3,
    # precision@3 / min(3, R): q0 1/2, q1 1/1, q2 1/2, q3 1, q4 1/2
    "precision@3": 0.7,
    "n_queries_without_positive": 0.0,
}


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_hand_computed_retrieval(backend):
    out = evaluate(XA, LA, list(EXPECTED_A)[:-1], backend=backend)
    for k, v in EXPECTED_A.items():
        assert out[k] == pytest.approx(v, abs=1e-12), k


def test_ties_broken_by_index():
    # q2 has a (b) and 0 (a) at distance 3; index 0 first: recall@2 counts q2. If the tie went the
    # other way recall@2 would be 2/5. Duplicates: all items at one point, the lower index wins.
    assert evaluate(XA, LA, ["e_recall@2"])["e_recall@2"] == pytest.approx(3 / 5)
    x = np.zeros((4, 2), np.float32)
    # q0: 1(b) 2(a) 3(b) → rank 1; q1: 0(a) 2(a) 3(b) → 2; q2: 0(a) 1(b) 3(b) → 0; q3: 0 1 2 → 1
    out = evaluate(x, [0, 1, 0, 1], ["mrr", "e_recall@1"])
    assert out["mrr"] == pytest.approx((1 / 2 + 1 / 3 + 1 + 1 / 2) / 4)
    assert out["e_recall@1"] == pytest.approx(1 / 4)


# Set B, query/gallery split: gallery = {1, 2, 3}
#   idx: 0     1     2     3     4
#   x:   0     1     2     4     9
#   lab: a     b     a     b     c
#   Q    Q     Q     -     -     Q        G: -  G  G  G  -
#   q0: 1(b) 2(a) 3(b) → [1];  q1 (self excluded): 2(a) 3(b) → [1];  q4: no c in gallery → lone
XB = np.array([[0.0], [1.0], [2.0], [4.0], [9.0]], np.float32)
LB = np.array([0, 1, 0, 1, 2])
QB = np.array([1, 1, 0, 0, 1], bool)
GB = np.array([0, 1, 1, 1, 0], bool)


def test_query_gallery_self_exclusion_and_lone_queries():
    out = evaluate(XB, LB, ["e_recall@1", "e_recall@2", "mrr"], is_query=QB, is_gallery=GB)
    assert out["n_queries_without_positive"] == 1.0
    assert out["e_recall@1"] == 0.0 and out["e_recall@2"] == 1.0 and out["mrr"] == 0.5


def test_ignore_ids():
    # q0 shares id 7 with 2, its only positive → lone; q1 keeps 3 at rank 1
    out = evaluate(XB, LB, ["e_recall@2"], is_query=QB, is_gallery=GB, ignore_ids=[7, 0, 7, 1, 2])
    assert out["n_queries_without_positive"] == 2.0 and out["e_recall@2"] == 1.0
    # q0 shares id 5 with 1 (a negative at rank 0): q0 now ranks 2(a) first
    out = evaluate(XB, LB, ["e_recall@1"], is_query=QB, is_gallery=GB, ignore_ids=[5, 5, 6, 7, 8])
    assert out["e_recall@1"] == 0.5


def test_categories_breakdown():
    # categories x x y y x: recall@2 per query (Set A) is 1 0 1 0 1
    out = evaluate(XA, LA, ["e_recall@2", "dists@intra"], categories=np.array(list("xxyyx")))
    assert out["e_recall@2/cat=x"] == pytest.approx(2 / 3)
    assert out["e_recall@2/cat=y"] == pytest.approx(1 / 2)
    assert out["n_queries_without_positive/cat=y"] == 0.0
    assert "dists@intra/cat=x" in out and "dists@intra/cat=y" in out


def _naive(x, lab, ks):
    """Loop-by-loop reference over a float64 full ranking sorted by (distance, index)."""
    n = len(x)
    res = {f"e_recall@{k}": [] for k in ks} | {"mAP_at_r": [], "mAP": [], "mrr": [], "map@5": []}
    for i in range(n):
        d = ((x - x[i]) ** 2).sum(1).astype(np.float64)
        order = [j for j in np.lexsort((np.arange(n), d)) if j != i]
        rel = np.array([lab[j] == lab[i] for j in order], float)
        r = int(rel.sum())
        if r == 0:
            continue
        prec = np.cumsum(rel) / np.arange(1, n)
        for k in ks:
            res[f"e_recall@{k}"].append(float(rel[:k].any()))
        res["mAP_at_r"].append((prec[:r] * rel[:r]).sum() / r)
        res["mAP"].append((prec * rel).sum() / r)
        res["mrr"].append(1 / (1 + int(np.argmax(rel))))
        res["map@5"].append((prec[:5] * rel[:5]).sum() / min(5, r))
    return {k: float(np.mean(v)) for k, v in res.items()}


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_random_data_matches_naive_reference(backend, monkeypatch):
    monkeypatch.setattr(knn, "CHUNK_ELEMENTS", 97)  # one or two queries per chunk
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, size=(60, 3)).astype(np.float32)  # small integers: many exact ties
    lab = rng.integers(0, 8, 60)
    ref = _naive(x, lab, (1, 4, 20))
    out = evaluate(x, lab, list(ref), backend=backend)
    for k, v in ref.items():
        assert out[k] == pytest.approx(v, abs=1e-12), k


@pytest.mark.parametrize("backend", ["torch", "faiss"])
@pytest.mark.parametrize("cap_from", [0, 4096])
def test_each_metric_alone_ranks_only_as_deep_as_it_needs_and_matches_reference(
    backend, cap_from, monkeypatch
):
    # few large classes and many ties: each metric alone runs a shallower pass (first item only,
    # top-k, top-R) than the full ranking mAP forces, with rows cut at the limit (cap_from 0) or
    # sorted up to their farthest positive; every depth must give the reference value
    from evaluation import ranks

    monkeypatch.setattr(knn, "CHUNK_ELEMENTS", 150)
    monkeypatch.setattr(ranks, "SORT_CAP_FROM", cap_from)
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, size=(70, 2)).astype(np.float32)
    lab = rng.integers(0, 3, 70)
    ref = _naive(x, lab, (1, 4, 20))
    for name, value in ref.items():
        assert evaluate(x, lab, [name], backend=backend)[name] == pytest.approx(value, abs=1e-12), (
            name
        )


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_capped_and_uncapped_rows_in_one_chunk_match_reference(backend, monkeypatch):
    # tight integer clusters (ties); classes 0 and 1 each have one far-away member, so their queries
    # list nearly the whole gallery (rows cut at the limit-th item) while classes 2 and 3 list a
    # few items (rows sorted whole), interleaved within each 10-row chunk
    from evaluation import ranks

    monkeypatch.setattr(knn, "CHUNK_ELEMENTS", 800)
    monkeypatch.setattr(ranks, "SORT_CAP_FROM", 30)
    rng = np.random.default_rng(5)
    lab = rng.permutation(np.repeat(np.arange(4), 20))
    x = (np.array([[0, 0], [40, 0], [0, 40], [40, 40]])[lab] + rng.integers(-2, 3, (80, 2))).astype(
        np.float32
    )
    for c in (0, 1):
        x[np.flatnonzero(lab == c)[0]] = [200 + 50 * c, 200]
    counts, cap_rows = [], ranks._cap_rows

    def spy(d, tau, mask, *args):
        counts.append(mask.sum(1))
        return cap_rows(d, tau, mask, *args)

    monkeypatch.setattr(ranks, "_cap_rows", spy)
    ref = _naive(x, lab, (1,))
    for name in ("map@5", "mAP_at_r"):
        assert evaluate(x, lab, [name], backend=backend)[name] == pytest.approx(
            ref[name], abs=1e-12
        ), name
    mixed = [int((n > 30).sum()) for n in counts]
    assert any(0 < m < 10 for m in mixed), mixed  # some chunk held both kinds of row


def test_torch_faiss_and_chunking_agree(monkeypatch):
    rng = np.random.default_rng(1)
    x, lab = rng.normal(size=(80, 16)).astype(np.float32), rng.integers(0, 10, 80)
    names = [
        "e_recall@1",
        "e_recall@8",
        "c_recall@2",
        "mAP_c",
        "mAP_1000",
        "c_mAP",
        "r_precision",
        "precision@3",
        "mrr",
        "fnmr@0.1",
        "c_fnmr@0.01",
    ]
    a = evaluate(x, lab, names)
    b = evaluate(x, lab, names, backend="faiss")
    monkeypatch.setattr(knn, "CHUNK_ELEMENTS", 1)
    c = evaluate(x, lab, names)
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-12) and a[k] == pytest.approx(c[k], abs=1e-12), k


def test_device_code_path_on_the_cpu_gives_the_same_values(monkeypatch):
    # with numpy's CPU shortcuts off, the CPU runs exactly the torch code a GPU runs: every
    # retrieval value must be the same, with rows cut at the limit and sorted whole
    from evaluation import ranks

    rng = np.random.default_rng(6)
    x, lab = rng.integers(-2, 3, size=(90, 3)).astype(np.float32), rng.integers(0, 4, 90)
    names = [
        "e_recall@1",
        "e_recall@8",
        "c_recall@2",
        "mAP_c",
        "map@5",
        "mAP",
        "r_precision",
        "precision@3",
        "mrr",
        "ndcg@4",
        "c_ndcg@10",
        "pr_auc",
        "fnmr@0.1",
    ]
    monkeypatch.setattr(knn, "CHUNK_ELEMENTS", 700)
    monkeypatch.setattr(ranks, "SORT_CAP_FROM", 20)
    a = evaluate(x, lab, names, categories=lab % 2)
    monkeypatch.setattr(ranks, "NUMPY_ON_CPU", False)
    b = evaluate(torch.from_numpy(x), lab, names, categories=lab % 2)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a), (a, b)


def test_cosine_equals_euclidean_on_normalised_inputs():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(80, 6)).astype(np.float32)
    lab = rng.integers(0, 6, 80)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    names = ["e_recall@1", "e_recall@4", "mAP_at_r", "mAP", "mrr", "rho_spectrum@2", "pcf@0.9"]
    cos = evaluate(
        x,
        lab,
        [
            "c_recall@1",
            "c_recall@4",
            "c_mAP_at_r",
            "c_mAP",
            "c_mrr",
            "c_rho_spectrum@2",
            "c_pcf@0.9",
        ],
    )
    euc = evaluate(xn, lab, names)
    for n in names:
        c = "c_recall" + n[len("e_recall") :] if n.startswith("e_") else "c_" + n
        assert cos[c] == pytest.approx(euc[n], abs=1e-9), n
    assert evaluate(x, lab, ["c_dists@intra"])["c_dists@intra"] == pytest.approx(
        evaluate(x, lab, ["dists@intra"])["dists@intra"]
    )


def test_fnmr_hand_computed():
    # Set A, ordered pairs. Positive distances: 3 3 5 5 7 7 10 10. Negatives (12, sorted):
    # 1 1 2 2 3 3 4 4 6 6 9 9. FMR 0.5: position 5.5 → T = 3.5 → 6/8 positives ≥ T.
    # FMR 1: T = 9 → 2/8. FMR 0.1: position 1.1 → T = 1.1 → 8/8.
    out = evaluate(XA, LA, ["fnmr@0.5", "fnmr@1", "fnmr@0.1"])
    assert out["fnmr@0.5"] == pytest.approx(0.75)
    assert out["fnmr@1"] == pytest.approx(0.25)
    assert out["fnmr@0.1"] == pytest.approx(1.0)


def test_fnmr_matches_numpy_quantile():
    rng = np.random.default_rng(3)
    x, lab = rng.normal(size=(70, 4)).astype(np.float32), rng.integers(0, 5, 70)
    d = np.sqrt(((x[:, None].astype(np.float64) - x[None]) ** 2).sum(-1))
    same, off = lab[:, None] == lab[None], ~np.eye(70, dtype=bool)
    pos, neg = d[same & off], d[~same]
    for f in (0.001, 0.05, 0.3):
        want = float((pos >= np.quantile(neg, f)).mean())
        assert evaluate(x, lab, [f"fnmr@{f}"])[f"fnmr@{f}"] == pytest.approx(want, abs=1e-6)


def test_clustering_hand_computed():
    # blobs A (4 points, label 0), B and C (2 points each, label 1), n_clusters = 3 → clusters A|B|C
    # pairs: same cluster 6+1+1 = 8, same class 6+6 = 12, both 8 → P = 1, R = 2/3, F1 = 0.8
    # NMI: H(labels) = ln 2, H(clusters) = 1.5 ln 2, MI = ln 2 → ln 2 / (1.25 ln 2) = 0.8
    # (blobs sit 45° apart, so the cosine variants see the same three groups; seed 1 starts one
    # centroid in each blob — k-means with one restart can settle in a local minimum otherwise)
    rng = np.random.default_rng(4)
    centres = np.array([[7, 7]] * 4 + [[10, 0]] * 2 + [[0, 10]] * 2, np.float32)
    x = centres + 0.01 * rng.normal(size=centres.shape).astype(np.float32)
    lab = [0, 0, 0, 0, 1, 1, 1, 1]
    out = evaluate(x, lab, ["f1", "nmi", "ami"], n_clusters=3, seed=1)
    assert out["f1"] == pytest.approx(0.8) and out["nmi"] == pytest.approx(0.8)
    assert 0 <= out["ami"] < out["nmi"]
    # default n_clusters = distinct labels; three labels on three blobs → perfect
    perfect = evaluate(x, [0, 0, 0, 0, 1, 1, 2, 2], ["f1", "nmi", "ami", "c_nmi", "c_f1"], seed=1)
    assert all(v == pytest.approx(1.0) for v in perfect.values())


def test_f1_contingency():
    # classes 0 0 0 1 1, clusters 0 0 1 1 1: same cluster 1+3 = 4, same class 3+1 = 4, both 1+1 = 2
    assert (
        F1(value=None, cosine=False).score(np.array([0, 0, 0, 1, 1]), np.array([0, 0, 1, 1, 1]))
        == 0.5
    )


def test_dists_hand_computed():
    # class a: (1,0),(0,1) → cos 0 → 1; class b: (1,0),(2,0) → 0; class c alone → left out
    # intra = 0.5. Normalised class means: a (1,1)/√2, b (1,0), c (-1,0):
    # distances 1 - 1/√2, 1 + 1/√2, 2 → inter = 4/3
    x = np.array([[1, 0], [0, 1], [1, 0], [2, 0], [-1, 0]], np.float32)
    out = evaluate(x, [0, 0, 1, 1, 2], ["dists@intra", "dists@inter", "dists@intra_over_inter"])
    assert out["dists@intra"] == pytest.approx(0.5)
    assert out["dists@inter"] == pytest.approx(4 / 3)
    assert out["dists@intra_over_inter"] == pytest.approx(0.375)


def test_rho_spectrum_hand_computed():
    # singular values of diag(4, 3, 1): 4 3 1. @2 drops 4 → s = (3/4, 1/4)
    # KL(U‖s) = ½ ln(½ / ¾) + ½ ln(½ / ¼) = ½ ln(4/3); KL(s‖U) = ¾ ln(3/2) + ¼ ln(1/2)
    x = np.diag([4.0, 3.0, 1.0]).astype(np.float32)
    out = evaluate(
        x, [0, 1, 2], ["rho_spectrum@2", "rho_spectrum@-2", "rho_spectrum@1", "rho_spectrum@0"]
    )
    assert out["rho_spectrum@2"] == pytest.approx(0.5 * math.log(4 / 3))
    assert out["rho_spectrum@-2"] == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    s = np.array([4, 3, 1]) / 8
    assert out["rho_spectrum@1"] == pytest.approx(float(np.sum(np.log(1 / 3) - np.log(s)) / 3))
    assert isinstance(out["rho_spectrum@0"], np.ndarray)
    np.testing.assert_allclose(out["rho_spectrum@0"], s)


def test_pcf_hand_computed():
    # centred points (±3,0,0), (0,±1,0): variances 18 and 2 → shares 0.9, 1.0, 1.0 (D = 3)
    x = np.array([[3, 0, 0], [-3, 0, 0], [0, 1, 0], [0, -1, 0]], np.float32)
    out = evaluate(x, [0, 0, 1, 1], ["pcf@0.5", "pcf@0.9", "pcf@0.95", "pcf@1"])
    assert out["pcf@0.5"] == pytest.approx(1 / 3) and out["pcf@0.9"] == pytest.approx(1 / 3)
    assert out["pcf@0.95"] == pytest.approx(2 / 3) and out["pcf@1"] == pytest.approx(2 / 3)


def test_every_registered_metric_has_a_hand_case():
    covered = {
        "e_recall",
        "cmc",
        "precision_at_1",
        "mrr",
        "map_full",
        "r_precision",
        "map_at_r",
        "map_c",
        "map_1000",
        "map_lim",
        "map",
        "precision",
        "fnmr",
        "nmi",
        "ami",
        "f1",
        "dists",
        "rho_spectrum",
        "pcf",
        "ndcg",
        "pr_auc",
    }
    assert set(METRICS.names()) == covered


@pytest.mark.parametrize(
    ("bad", "hint"),
    [
        ("e_recal@1", "did you mean e_recall"),
        ("e_recall", "write it as e_recall@<int>"),
        ("e_recall@x", "write it as e_recall@<int>"),
        ("e_recall@0", "write it as e_recall@<int>"),
        ("c_recall@x", "write it as c_recall@<int>"),
        ("nmi@3", "write it as nmi"),
        ("dists@outer", "write it as dists@<intra|inter|intra_over_inter>"),
        ("fnmr@2", "write it as fnmr@<float>"),
        ("c_", "valid metrics: see --help"),
    ],
)
def test_check_metric_names_errors(bad, hint):
    """One short line: the bad name, what is wrong and how to write it (the full list of metrics
    is in --help, not in the error)."""
    with pytest.raises(RegistryError) as err:
        check_metric_names(["e_recall@1", bad])
    msg = str(err.value)
    assert "\n" not in msg and repr(bad) in msg and hint in msg and len(msg) < 130, msg


def test_help_lists_every_metric():
    import parameters

    text = parameters.build_parser().format_help()
    for spelling in evaluation.valid_spellings():
        assert spelling.split(" ")[0] in text


def test_check_metric_names_accepts_legacy_and_modern():
    check_metric_names(
        [
            "e_recall@4",
            "c_recall@1",
            "nmi",
            "c_nmi",
            "f1",
            "mAP_c",
            "c_mAP_1000",
            "mAP_lim",
            "mAP",
            "dists@intra_over_inter",
            "rho_spectrum@-1",
            "rho_spectrum@0",
            "fnmr@0.001",
            "precision_at_1",
            "r_precision",
            "mAP_at_r",
            "ami",
            "cmc@5",
            "precision@5",
            "map@10",
            "pcf@0.9",
            "mrr",
            "ndcg@10",
            "c_ndcg@1",
            "pr_auc",
            "c_pr_auc",
        ]
    )


def test_cli(tmp_path):
    np.save(tmp_path / "e.npy", XA)
    np.save(tmp_path / "l.npy", LA)
    cmd = [
        sys.executable,
        "-m",
        "evaluation",
        "--embeddings",
        str(tmp_path / "e.npy"),
        "--labels",
        str(tmp_path / "l.npy"),
        "--metrics",
        "e_recall@2",
        "rho_spectrum@0",
        "--json",
        str(tmp_path / "o.json"),
    ]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert "e_recall@2" in run.stdout
    res = json.loads((tmp_path / "o.json").read_text())
    assert res["e_recall@2"] == pytest.approx(0.6) and isinstance(res["rho_spectrum@0"], list)


def test_cli_main_rejects_bad_input(tmp_path, capsys):
    from evaluation.__main__ import main

    np.save(tmp_path / "e.npy", XA)
    np.save(tmp_path / "l.npy", LA[:3])
    args = [
        "--embeddings",
        str(tmp_path / "e.npy"),
        "--labels",
        str(tmp_path / "l.npy"),
        "--metrics",
        "nmi",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "labels" in err
    assert main([*args[:3], str(tmp_path / "missing.npy"), *args[4:]]) == 2
    np.save(tmp_path / "l.npy", LA)
    assert main([*args[:-1], "nope@1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "valid metrics" in err


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_embeddings_are_refused_in_one_line(bad):
    x = np.repeat(XA, 2, axis=1)
    x[3, 1] = bad
    x[4, 0] = bad
    for metrics in (["e_recall@1"], ["nmi"], ["pr_auc"], ["dists@intra"]):
        with pytest.raises(ValueError) as err:
            evaluate(x, LA, metrics)
        assert str(err.value).count("\n") == 0 and "2 of 5 rows" in str(err.value)
        assert "first: row 3" in str(err.value)
    with pytest.raises(ValueError, match="1 of 4 rows"):  # torch input is checked alike
        evaluate(torch.from_numpy(x[:4]), LA[:4], ["mrr"])


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"device": "gpu"}, "device must be cpu, cuda or cuda:N"),
        ({"kmeans": "sklearn"}, "kmeans must be one of"),
        ({"backend": "annoy"}, "backend must be"),
        ({"n_clusters": 0}, "n_clusters must be at least 1"),
    ],
)
def test_bad_options_are_one_line(kw, message):
    with pytest.raises(ValueError, match=message) as err:
        evaluate(XA, LA, ["nmi"], **kw)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_without_a_gpu_is_one_line():
    with pytest.raises(ValueError, match="no CUDA GPU is visible"):
        evaluate(XA, LA, ["e_recall@1"], device="cuda")


def test_cli_refuses_non_finite_embeddings(tmp_path, capsys):
    from evaluation.__main__ import main

    x = XA.copy()
    x[2, 0] = np.nan
    np.save(tmp_path / "e.npy", x)
    np.save(tmp_path / "l.npy", LA)
    args = [
        "--embeddings",
        str(tmp_path / "e.npy"),
        "--labels",
        str(tmp_path / "l.npy"),
        "--metrics",
    ]
    assert main([*args, "e_recall@1"]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "e.npy" in err and "1 of 5 rows" in err and "first: row 2" in err
    )
    # the real command line with nmi (faiss used to raise a traceback there)
    run = subprocess.run(
        [sys.executable, "-m", "evaluation", *args, "nmi"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and run.stdout == ""
    assert (
        run.stderr.count("\n") == 1
        and "Traceback" not in run.stderr
        and "1 of 5 rows" in run.stderr
    )


class _Indexed(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i], i


@pytest.mark.parametrize("chunk", [1, 2, 32])  # host copies every 1, 2 batches, or once at the end
def test_compute_embeddings_orders_by_index_and_restores_mode(monkeypatch, chunk):
    import evaluation.embeddings

    monkeypatch.setattr(evaluation.embeddings, "HOST_COPY_EVERY", chunk)
    torch.manual_seed(0)
    x, y = torch.randn(10, 3), torch.arange(10)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5))
    model.train()
    loader = torch.utils.data.DataLoader(_Indexed(x, y), batch_size=3, shuffle=True)
    emb, lab = compute_embeddings(model, loader, "cpu")
    assert model.training
    assert emb.dtype == torch.float32 and lab.dtype == torch.int64 and emb.shape == (10, 4)
    assert torch.equal(lab, y)
    model.eval()
    torch.testing.assert_close(emb, model(x))


def test_package_exports():
    assert {"METRICS", "evaluate", "compute_embeddings", "check_metric_names"} <= set(
        evaluation.__all__
    )


# ---- ndcg@k (binary relevance) -------------------------------------------------------------------
# Set A, ranks of the relevant items (0-based) from the table at the top: q0, q2, q4 [1, 3] (R 2),
# q1, q3 [2] (R 1). The gain of rank r is 1/log2(r + 2); IDCG@k sums 1/log2(i + 1), i ≤ min(k, R).
L3, L5 = 1 / math.log2(3), 1 / math.log2(5)
EXPECTED_NDCG_A = {
    "ndcg@1": 0.0,  # no query has a relevant item first
    "ndcg@2": 3 * (L3 / (1 + L3)) / 5,  # q1, q3: their item at rank 2 is out
    "ndcg@3": (3 * (L3 / (1 + L3)) + 2 * 0.5) / 5,  # q1, q3: 1/log2(4) / 1
    "ndcg@10": (3 * ((L3 + L5) / (1 + L3)) + 2 * 0.5) / 5,
}


def test_ndcg_hand_computed():
    out = evaluate(XA, LA, list(EXPECTED_NDCG_A))
    for k, v in EXPECTED_NDCG_A.items():
        assert out[k] == pytest.approx(v, abs=1e-12), k
    # q2's nearest a-item ties with a b-item at distance 3 and wins on its lower index; the other
    # way round q2's gain would be 1/log2(4) and ndcg@2 would drop by (L3 / (1 + L3)) / 5
    # Set B (query/gallery split): q0 ranks 2(a) at 1 (R 1), q1 ranks 3(b) at 1 (itself excluded),
    # q4 has no c in the gallery and is left out
    out = evaluate(XB, LB, ["ndcg@1", "ndcg@2", "c_ndcg@2"], is_query=QB, is_gallery=GB)
    assert out["ndcg@1"] == 0.0 and out["ndcg@2"] == pytest.approx(L3)
    assert out["n_queries_without_positive"] == 1.0


def _sklearn_rows(x, lab, isq, isg, ign=None, cosine=False):
    """Per valid query: (relevance, similarity) over its gallery, self and ignored items removed."""
    x = x.astype(np.float64)
    if cosine:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    rows = []
    for i in np.flatnonzero(isq):
        g = [j for j in np.flatnonzero(isg) if j != i and (ign is None or ign[j] != ign[i])]
        d = 1 - x[g] @ x[i] if cosine else np.linalg.norm(x[g] - x[i], axis=1)
        rel = (lab[g] == lab[i]).astype(float)
        if rel.sum():
            rows.append((rel, -d))
    return rows


@pytest.mark.parametrize("split", [False, True])
def test_ndcg_matches_sklearn(split):
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(11)
    x, lab = rng.normal(size=(50, 4)).astype(np.float32), rng.integers(0, 6, 50)
    isq = rng.random(50) < 0.6 if split else np.ones(50, bool)
    isg = rng.random(50) < 0.7 if split else np.ones(50, bool)
    for cosine in (False, True):
        rows = _sklearn_rows(x, lab, isq, isg, cosine=cosine)
        for k in (1, 3, 10, 50):
            # rows differ in length with a split: score them one by one
            want = np.mean([ndcg_score(r[None], s[None], k=k) for r, s in rows])
            name = f"{'c_' if cosine else ''}ndcg@{k}"
            got = evaluate(x, lab, [name], is_query=isq, is_gallery=isg)[name]
            assert got == pytest.approx(want, abs=1e-12), name


# ---- pr_auc (average precision over all query-gallery pairs) ------------------------------------
def test_pr_auc_hand_computed():
    # Set A, unordered pairs (the ordered ones double both counts, AP is unchanged):
    # positives at 3 5 7 10, negatives at 1 2 3 4 6 9. Precision at each positive, the tie at 3
    # retrieved together: 1/(1+3), 2/(2+4), 3/(3+5), 4/(4+6) → AP = 163/480
    out = evaluate(XA, LA, ["pr_auc", "fnmr@0.5"])
    assert out["pr_auc"] == pytest.approx(163 / 480, abs=1e-12)
    assert out["fnmr@0.5"] == pytest.approx(0.75)  # computed in the same shared pass
    # one positive pair, nearer than every negative → 1; no positive pair anywhere → nan
    x = np.array([[0.0], [0.1], [5.0], [9.0]], np.float32)
    assert evaluate(x, [0, 0, 1, 2], ["pr_auc"])["pr_auc"] == 1.0
    assert math.isnan(evaluate(x, [0, 1, 2, 3], ["pr_auc"])["pr_auc"])


@pytest.mark.parametrize("integer", [False, True])
def test_pr_auc_matches_sklearn_on_flattened_pairs(integer, monkeypatch):
    from sklearn.metrics import average_precision_score

    monkeypatch.setattr(knn, "CHUNK_ELEMENTS", 211)  # a few queries per block
    rng = np.random.default_rng(12)
    n = 60
    lab, ign = rng.integers(0, 5, n), rng.integers(0, 25, n)
    isq = rng.random(n) < 0.6
    if integer:
        # small integers: exact float32 distances with many ties between positives and negatives
        # (grouped alike by both); every sample both query and gallery, or overlapping sides
        x = rng.integers(-2, 3, size=(n, 3)).astype(np.float32)
        cases = [
            ({}, None),
            ({"is_query": isq, "is_gallery": rng.random(n) < 0.8, "ignore_ids": ign}, ign),
        ]
    else:
        # disjoint sides: a pair (i, j) and its twin (j, i) are exact ties in float64 but may
        # differ by an ulp in float32, which splits their threshold (a 1e-5 effect on AP)
        x = rng.normal(size=(n, 5)).astype(np.float32)
        cases = [({"is_query": isq, "is_gallery": ~isq}, None)]
    for cosine in (False,) if integer else (False, True):
        name = "c_pr_auc" if cosine else "pr_auc"
        for kw, ids in cases:
            rows = _sklearn_rows(
                x,
                lab,
                kw.get("is_query", np.ones(n, bool)),
                kw.get("is_gallery", np.ones(n, bool)),
                ids,
                cosine,
            )
            want = average_precision_score(
                np.concatenate([r for r, _ in rows]), np.concatenate([s for _, s in rows])
            )
            for backend in ("torch", "faiss"):
                got = evaluate(x, lab, [name], backend=backend, **kw)[name]
                assert got == pytest.approx(want, abs=1e-12), (name, kw.keys(), backend)


def test_pr_auc_per_category_is_the_category_alone():
    rng = np.random.default_rng(13)
    x, lab = rng.normal(size=(40, 3)).astype(np.float32), rng.integers(0, 4, 40)
    cats = rng.integers(0, 2, 40)
    out = evaluate(x, lab, ["pr_auc"], categories=cats)
    for c in (0, 1):
        # the category's queries against the whole gallery
        alone = evaluate(x, lab, ["pr_auc"], is_query=cats == c)["pr_auc"]
        assert out[f"pr_auc/cat={c}"] == pytest.approx(alone, abs=1e-12)


# ---- the metric-kind protocol --------------------------------------------------------------------
def test_a_new_kind_is_one_class_with_its_pass():
    from evaluation.context import key
    from evaluation.names import KINDS, Metric

    class Counting(Metric):
        kind = "test_counting"
        calls = 0

        @classmethod
        def run(cls, ctx, metrics):
            cls.calls += 1  # one shared pass for every metric of the kind
            return {
                key(m.name, c): float(mask.sum() * m.value)
                for m in metrics
                for c, mask in ctx.groups
            }

    try:
        METRICS.register("test_count")(type("Count", (Counting,), {"arg": "int"}))
        out = evaluate(
            XA, LA, ["test_count@1", "test_count@2", "e_recall@1"], categories=list("xxyyx")
        )
        assert out["test_count@2"] == 10.0 and out["test_count@1/cat=y"] == 2.0
        assert out["e_recall@1"] == 0.0 and Counting.calls == 1
        with pytest.raises(TypeError, match="defined twice"):
            type("Again", (Metric,), {"kind": "test_counting"})
    finally:
        METRICS._entries.pop("test_count", None)
        METRICS._flags.pop("test_count", None)
        KINDS.pop("test_counting", None)


def test_every_metric_belongs_to_a_kind_with_a_pass():
    from evaluation.names import KINDS

    assert set(KINDS) >= {"retrieval", "clustering", "space", "pairs"}
    for name in METRICS.names():
        cls = METRICS.get(name)
        assert cls.kind in KINDS and issubclass(cls, KINDS[cls.kind]), name


def test_n_pos_is_computed_once(monkeypatch):
    from evaluation import context

    calls = []
    real = context.n_relevant
    monkeypatch.setattr(context, "n_relevant", lambda *a: calls.append(1) or real(*a))
    evaluate(
        XA,
        LA,
        ["e_recall@1", "mAP_at_r", "fnmr@0.1", "pr_auc", "c_fnmr@0.1", "nmi"],
        categories=list("xxyyx"),
    )
    assert len(calls) == 1


def test_new_metric_names_pass_the_command_line_validation():
    import parameters

    opt = parameters.parse_args(
        [
            "--dataset",
            "glyphs",
            "--arch",
            "smallnet_normalize",
            "--evaluation_metrics",
            "e_recall@1",
            "ndcg@10",
            "pr_auc",
            "c_pr_auc",
            "c_ndcg@5",
        ]
    )
    assert "pr_auc" in opt.evaluation_metrics
    with pytest.raises(RegistryError, match="k must be at least 1"):
        check_metric_names(["ndcg@0"])
    with pytest.raises(RegistryError, match="takes no @argument"):
        check_metric_names(["pr_auc@1"])


# ---- the torch k-means (GPU clustering without faiss-gpu; same code on the CPU) ---------------
def _blobs(seed, spread, k=20, n=800):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, 16)) * spread
    lab = rng.integers(0, k, n)
    return (centres[lab] + rng.normal(size=(n, 16))).astype(np.float32), lab


def test_torch_kmeans_agrees_with_faiss_on_clustered_data():
    # six well-separated blobs: faiss' random start falls into a local minimum for some seeds
    # (NMI 0.90), so compare with its best seed, the true partition; greedy k-means++ finds it
    # from every seed
    names = ["nmi", "c_nmi", "f1"]
    x, lab = _blobs(0, 6.0, k=6, n=600)
    runs = [evaluate(x, lab, names, kmeans="faiss", seed=s) for s in range(3)]
    best = {n: max(r[n] for r in runs) for n in names}
    assert best["nmi"] == pytest.approx(1.0)
    for seed in range(3):
        t = evaluate(x, lab, names, kmeans="torch", seed=seed)
        for n in names:
            assert t[n] == pytest.approx(best[n], abs=0.01), (n, seed, t, best)
    # overlapping blobs: both have local minima; over seeds torch is not worse than faiss
    x, lab = _blobs(1, 2.5)
    mean = {
        km: np.mean([evaluate(x, lab, ["nmi"], kmeans=km, seed=s)["nmi"] for s in range(3)])
        for km in ("faiss", "torch")
    }
    assert mean["torch"] >= mean["faiss"] - 0.02, mean


def test_torch_kmeans_is_seeded_and_hand_case_holds():
    from evaluation.kmeans import resolve, torch_kmeans

    x, _ = _blobs(2, 2.5)
    a, ca = torch_kmeans(torch.from_numpy(x), 20, False, seed=3)
    b, cb = torch_kmeans(torch.from_numpy(x), 20, False, seed=3)
    assert torch.equal(a, b) and torch.equal(ca, cb)
    assert not torch.equal(a, torch_kmeans(torch.from_numpy(x), 20, False, seed=4)[0])
    xn = torch.nn.functional.normalize(torch.from_numpy(x), dim=1)
    _, c = torch_kmeans(xn, 20, True, seed=3)
    torch.testing.assert_close(c.norm(dim=1), torch.ones(20))  # spherical: unit centroids
    # the clustering hand case (see test_clustering_hand_computed) with the torch k-means
    rng = np.random.default_rng(4)
    centres = np.array([[7, 7]] * 4 + [[10, 0]] * 2 + [[0, 10]] * 2, np.float32)
    x = centres + 0.01 * rng.normal(size=centres.shape).astype(np.float32)
    out = evaluate(
        x, [0, 0, 0, 0, 1, 1, 1, 1], ["f1", "nmi", "c_nmi"], n_clusters=3, kmeans="torch"
    )
    assert out["f1"] == pytest.approx(0.8) and out["nmi"] == pytest.approx(0.8)
    assert out["c_nmi"] == pytest.approx(0.8)
    # auto: faiss on the CPU; on CUDA torch unless faiss has GPUs
    assert resolve("auto", torch.device("cpu")) == "faiss"
    assert resolve("torch", torch.device("cpu")) == "torch"
    with pytest.raises(ValueError, match="kmeans must be one of"):
        evaluate(x, [0] * 8, ["nmi"], kmeans="sklearn")
