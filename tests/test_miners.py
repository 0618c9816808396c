"""Invariants of every registered miner (batch_mining/), on tiny CPU batches."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from scipy.stats import chisquare

from batch_mining import MINERS, Lifted, NPairs, Triplets

ALL = MINERS.names()
TRIPLET = [n for n in ALL if MINERS.get(n).produces == "triplets"]
# Ablations whose "negatives" deliberately share the anchor's label (or ignore the labels).
ABLATIONS = {"intra_random", "random_distance", "rho_distance"}


def batch(n_classes: int = 4, per_class: int = 4, dim: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    return torch.randn(n_classes * per_class, dim, generator=g), labels


def run(miner, embeds, labels):
    embeds, labels = miner.augment(embeds, labels)
    return embeds, labels, miner(embeds, labels)


@pytest.mark.parametrize("name", ALL)
def test_output_types_and_ranges(name):
    miner = MINERS.build(name, {}, seed=3)
    embeds, labels, out = run(miner, *batch())
    kinds = {"triplets": Triplets, "npair": NPairs, "lifted": Lifted}
    assert isinstance(out, kinds[miner.produces])
    assert len(out[0]) > 0 and miner.last_count == len(out[0])
    for t in out:
        assert t.dtype == torch.long and t.device == embeds.device and t.shape == out[0].shape
        assert int(t.min()) >= 0 and int(t.max()) < len(labels)


@pytest.mark.parametrize("name", sorted(set(TRIPLET) - ABLATIONS))
def test_triplets_respect_labels(name):
    miner = MINERS.build(name, {}, seed=0)
    _, labels, (a, p, n) = run(miner, *batch(n_classes=5, per_class=3))
    assert (labels[a] == labels[p]).all() and (labels[a] != labels[n]).all()
    assert (a != p).all()


@pytest.mark.parametrize("name", sorted(set(ALL) - {"random_distance"}))
def test_anchors_without_positive_are_skipped(name):
    embeds, labels = batch(n_classes=3, per_class=3)
    labels = torch.cat([labels, torch.tensor([7])])  # sample 9 is alone in its class
    embeds = torch.cat([embeds, torch.randn(1, embeds.shape[1])])
    miner = MINERS.build(name, {}, seed=0)
    out = run(miner, embeds, labels)[2]
    assert len(out[0]) > 0 and 9 not in out[0].tolist()


def test_npair_and_lifted_tuples():
    embeds, labels = batch(n_classes=5, per_class=3)
    a, p = MINERS.build("npair", {}, seed=0)(embeds, labels)
    assert (labels[a] == labels[p]).all() and (a != p).all() and len(a) == len(labels)
    (anchors,) = MINERS.build("lifted", {}, seed=0)(embeds[:13], labels[:13])
    assert anchors.tolist() == list(range(12))  # sample 12 is alone in its class


def test_ablation_semantics():
    embeds, labels = batch()
    a, p, n = MINERS.build("intra_random", {}, seed=0)(embeds, labels)
    assert (labels[a] == labels[p]).all() and (labels[a] == labels[n]).all()
    a, p, n = MINERS.build("rho_distance", {"miner_rho_distance_cp": 1.0}, seed=0)(embeds, labels)
    assert (a == p).all() and (labels[n] == labels[a]).all() and (n != a).all()
    plain = MINERS.build("rho_distance", {"miner_rho_distance_cp": 0.0}, seed=0)
    a, p, n = plain(embeds, labels)
    assert plain.last_push == 0 and (labels[a] != labels[n]).all()
    a, p, n = MINERS.build("random_distance", {}, seed=0)(embeds, labels)
    assert len(a) == len(labels) and (a != p).all()


@pytest.mark.parametrize("name", ALL)
def test_deterministic_for_a_seed(name):
    outs = []
    for _ in range(2):
        miner = MINERS.build(name, {}, seed=7)
        outs.append([run(miner, *batch(seed=s))[2] for s in range(3)])
    for first, second in zip(*outs):
        for x, y in zip(first, second):
            assert torch.equal(x, y)


@pytest.mark.parametrize("name", ALL)
def test_no_positive_gives_empty_output(name):
    miner = MINERS.build(name, {}, seed=0)
    embeds = torch.randn(6, 4)
    _, _, out = run(miner, embeds, torch.arange(6))
    assert all(t.numel() == 0 and t.dtype == torch.long for t in out) and miner.last_count == 0


def naive_dist(e, i, j):
    return float((e[i] - e[j]).norm())


def test_hard_triplets_are_hardest():
    embeds, labels = batch(n_classes=3, per_class=4, seed=5)
    a, p, n = MINERS.build("hard_triplets", {})(embeds, labels)
    for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist()):
        pos = [j for j in range(len(labels)) if labels[j] == labels[ai] and j != ai]
        neg = [j for j in range(len(labels)) if labels[j] != labels[ai]]
        assert math.isclose(
            naive_dist(embeds, ai, pi), max(naive_dist(embeds, ai, j) for j in pos), rel_tol=1e-5
        )
        assert math.isclose(
            naive_dist(embeds, ai, ni), min(naive_dist(embeds, ai, j) for j in neg), rel_tol=1e-5
        )


def test_n_hard_triplets_ranges():
    embeds, labels = batch(n_classes=3, per_class=4, seed=2)
    miner = MINERS.build(
        "n_hard_triplets",
        {"miner_n_hard_triplets_n_positive": [2], "miner_n_hard_triplets_n_negative": [2, 3]},
    )
    a, _p, n = miner(embeds, labels)
    assert len(a) == len(labels) * 2 * 2
    for ai in range(len(labels)):
        neg = sorted((naive_dist(embeds, ai, j), j) for j in range(12) if labels[j] != labels[ai])
        got = {int(x) for x in n[a == ai]}
        assert got == {neg[1][1], neg[2][1]}


def test_all_triplets_enumerates_and_caps():
    embeds, labels = batch(n_classes=3, per_class=3)
    a, p, n = MINERS.build("all_triplets", {})(embeds, labels)
    expected = {
        (i, j, k)
        for i, j, k in itertools.product(range(9), repeat=3)
        if labels[i] == labels[j] and i != j and labels[k] != labels[i]
    }
    assert set(zip(a.tolist(), p.tolist(), n.tolist())) == expected and len(a) == len(expected)
    capped = MINERS.build("all_triplets", {"miner_all_triplets_max_triplets": 10})(embeds, labels)
    assert len(capped[0]) == 10 and set(zip(*(t.tolist() for t in capped))) <= expected


def test_semihard_negatives_lie_in_the_band():
    embeds, labels = batch(n_classes=4, per_class=4, dim=2, seed=1)
    margin = 0.5
    miner = MINERS.build("semihard", {"miner_semihard_margin": margin}, seed=0)
    a, p, n = miner(embeds, labels)
    in_band = 0
    for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist()):
        d_ap = naive_dist(embeds, ai, pi)
        band = [
            j
            for j in range(16)
            if labels[j] != labels[ai] and d_ap < naive_dist(embeds, ai, j) < d_ap + margin
        ]
        if band:
            in_band += 1
            assert ni in band
    assert in_band > 0


def test_softhard_prefers_violators():
    embeds, labels = batch(n_classes=4, per_class=4, dim=2, seed=4)
    a, p, n = MINERS.build("softhard", {}, seed=0)(embeds, labels)
    for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist()):
        d = [naive_dist(embeds, ai, j) for j in range(16)]
        pos = [j for j in range(16) if labels[j] == labels[ai] and j != ai]
        neg = [j for j in range(16) if labels[j] != labels[ai]]
        if any(d[j] > min(d[k] for k in neg) for j in pos):
            assert d[pi] > min(d[k] for k in neg)
        if any(d[k] < max(d[j] for j in pos) for k in neg):
            assert d[ni] < max(d[j] for j in pos)


def sphere_points(dim: int, angles: list[float]) -> torch.Tensor:
    pts = torch.zeros(len(angles), dim)
    pts[:, 0] = torch.tensor(angles).cos()
    pts[:, 1] = torch.tensor(angles).sin()
    return pts


def test_distance_miner_follows_its_weights():
    dim, n_anchor = 5, 400
    neg_d = [0.3, 0.7, 1.0, 1.3, 1.6]  # 0.3 is clamped to 0.5; 1.6 is beyond the cut-off
    angles = [2 * math.asin(d / 2) for d in neg_d]
    embeds = torch.cat([sphere_points(dim, [0.0] * n_anchor), sphere_points(dim, angles)])
    labels = torch.tensor([0] * n_anchor + [1] * len(neg_d))
    miner = MINERS.build("distance", {}, seed=0)
    counts = torch.zeros(len(neg_d))
    for _ in range(5):
        a, _, n = miner(embeds, labels)
        counts += torch.bincount(n[a < n_anchor] - n_anchor, minlength=len(neg_d)).float()

    def w(d):  # Wu et al. 2017: 1 / q(d), q(d) ∝ d^(n-2) (1 - d²/4)^((n-3)/2)
        d = max(d, 0.5)
        return 0.0 if d > 1.4 else d ** (2 - dim) * (1 - d * d / 4) ** (-(dim - 3) / 2)

    weights = torch.tensor([w(d) for d in neg_d], dtype=torch.float64)
    assert counts[-1] == 0
    expected = weights[:-1] / weights.sum() * counts.sum()
    assert chisquare(counts[:-1].double().numpy(), expected.numpy()).pvalue > 1e-3


def test_distance_miner_falls_back_to_uniform_beyond_cutoff():
    embeds = torch.cat([sphere_points(4, [0.0] * 50), sphere_points(4, [math.pi * 0.9, math.pi])])
    labels = torch.tensor([0] * 50 + [1, 1])
    a, _, n = MINERS.build("distance", {}, seed=0)(embeds, labels)
    assert set(n[a < 50].tolist()) == {50, 51}


def test_parametric_hards_stay_in_support():
    embeds = torch.cat([sphere_points(4, [0.0] * 20), sphere_points(4, [0.3, 0.4, 2.5, 3.0])])
    labels = torch.tensor([0] * 20 + [1] * 4)
    miner = MINERS.build("parametric", {"miner_parametric_mode": "hards"}, seed=0)
    a, _, n = miner(embeds, labels)
    assert set(n[a < 20].tolist()) <= {20, 21}  # distances 0.30 and 0.40 only


def test_memory_bank_serves_memory_and_respects_size():
    miner = MINERS.build("memory_bank", {"miner_memory_bank_size": 10}, seed=0)
    first = sphere_points(4, [0.05, 0.06, 1.0, 1.1])  # stored, close to next anchors
    e1, _l1 = miner.augment(first, torch.tensor([1, 1, 2, 2]))
    assert len(e1) == 4
    second = sphere_points(4, [0.0, 0.01, 3.0, 3.01, 2.0, 2.02, 1.5, 1.51])
    e2, l2 = miner.augment(second, torch.tensor([0, 0, 3, 3, 4, 4, 5, 5]))
    assert len(e2) == 12 and torch.equal(e2[8:], first) and l2[8:].tolist() == [1, 1, 2, 2]
    a, _p, n = miner(e2, l2)
    assert int(a.max()) < 8 and (n[a == 0] >= 8).all()  # hardest negative is in memory
    e3, _ = miner.augment(second, torch.tensor([0, 0, 3, 3, 4, 4, 5, 5]))
    assert len(e3) == 8 + 10 and miner.filled == 10
