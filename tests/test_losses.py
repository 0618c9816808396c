"""Loss catalogue: every registered loss against a naive float64 reference written loop by loop
from its paper's formula (values and gradients, default path and every flag that changes the
computation), plus contract tests driven by the registry (finite loss with gradients, graph-
connected zero without valid tuples, parameter groups, legacy flags, memory-bank miners, AMP).

Tuple losses get tiny in-test miners (all valid triplets; first positive per anchor; every anchor
with a positive), so these tests do not depend on ``batch_mining``'s own miners.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import criteria  # noqa: F401  (registers every loss)
from batch_mining.base import Lifted, NPairs, Triplets
from criteria.base import LOSSES

N_CLASSES, DIM = 6, 5
# uneven classes and a singleton (3) so some anchors have no positive; class 5 is never present
LABELS = torch.tensor([0, 1, 0, 2, 1, 3, 2, 0, 4, 1, 2, 4])


# ----------------------------------------------------------------------------- in-test miners
class AllTriplets:
    produces = "triplets"

    def augment(self, embeds, labels):
        return embeds, labels

    def __call__(self, embeds, labels):
        same = labels[:, None] == labels[None, :]
        pos = same & ~torch.eye(len(labels), dtype=torch.bool)
        a, p, n = (pos[:, :, None] & ~same[:, None, :]).nonzero(as_tuple=True)
        return Triplets(a, p, n)


class FirstPositive:
    produces = "npair"

    def augment(self, embeds, labels):
        return embeds, labels

    def __call__(self, embeds, labels):
        n = len(labels)
        pos = (labels[:, None] == labels[None, :]) & ~torch.eye(n, dtype=torch.bool)
        anchors = pos.any(1).nonzero().squeeze(1)
        first = (pos.long() * (n - torch.arange(n))).argmax(1)
        return NPairs(anchors, first[anchors])


class AnchorsWithPositive:
    produces = "lifted"

    def augment(self, embeds, labels):
        return embeds, labels

    def __call__(self, embeds, labels):
        pos = (labels[:, None] == labels[None, :]) & ~torch.eye(len(labels), dtype=torch.bool)
        return Lifted(pos.any(1).nonzero().squeeze(1))


class WithBank:
    """Appends fixed memory-bank rows after the batch, then mines like ``inner``."""

    def __init__(self, inner, bank_embeds, bank_labels):
        self.inner, self.bank_embeds, self.bank_labels = inner, bank_embeds, bank_labels
        self.produces = inner.produces

    def augment(self, embeds, labels):
        return torch.cat([embeds, self.bank_embeds]), torch.cat([labels, self.bank_labels])

    def __call__(self, embeds, labels):
        return self.inner(embeds, labels)


MINER_FOR = {"triplets": AllTriplets, "npair": FirstPositive, "lifted": AnchorsWithPositive}


def build(name: str, **hyper):
    """Build through the registry, as main.py does, with hyper-parameters given by name."""
    params = {p.name: p for p in LOSSES.params(name)}
    opt = {params[k].dest: v for k, v in hyper.items()}
    kinds = LOSSES.get(name).miner_kinds
    miner = MINER_FOR[kinds[0]]() if kinds else None
    return LOSSES.build(name, opt, miner=miner, n_classes=N_CLASSES, embed_dim=DIM)


def embeddings(
    seed: int, n: int = len(LABELS), dim: int = DIM, dtype=torch.float64
) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, dim, generator=g, dtype=dtype), dim=1)


# -------------------------------------------------------------------------- loop-by-loop references
def relu(v):
    return v if v > 0 else v * 0


def dist(u, v):
    return (torch.sum((u - v) ** 2) + 1e-8).sqrt()


def sqdist(u, v):
    return torch.sum((u - v) ** 2)


def unit(u):
    return u / u.norm()


def cos(u, v):
    return torch.dot(unit(u), unit(v))


def mean(terms):
    return sum(terms) / len(terms)


def triplets_of(y):
    n = len(y)
    for a in range(n):
        for p in range(n):
            if p == a or y[p] != y[a]:
                continue
            for q in range(n):
                if y[q] != y[a]:
                    yield a, p, q


def first_positive(y, a):
    for j in range(len(y)):
        if j != a and y[j] == y[a]:
            return j
    return None


def ref_triplet(x, y, h, P):
    terms = []
    for a, p, n in triplets_of(y):
        d_ap, d_an = sqdist(x[a], x[p]), sqdist(x[a], x[n])
        terms.append(
            torch.log(1 + torch.exp(d_ap - d_an)) if h["soft"] else relu(d_ap - d_an + h["margin"])
        )
    return mean(terms)


def ref_margin(x, y, h, P):
    beta = P["beta"]
    total, active = 0, 0
    for a, p, n in triplets_of(y):
        b = beta[int(y[a])]
        pos, neg = (
            relu(dist(x[a], x[p]) - b + h["margin"]),
            relu(b - dist(x[a], x[n]) + h["margin"]),
        )
        active += int(pos > 0) + int(neg > 0)
        total = total + pos + neg + h["nu"] * b
    n_triplets = len(list(triplets_of(y)))
    return total / (active if active else 2 * n_triplets)  # no active hinge: ν·Σβ / 2T


def ref_contrastive(x, y, h, P):
    pos, neg = [], []
    for a, p, n in triplets_of(y):
        pos.append(relu(dist(x[a], x[p]) - h["pos_margin"]))
        neg.append(relu(h["neg_margin"] - dist(x[a], x[n])))
    return mean(pos) + mean(neg)


def ref_quadruplet(x, y, h, P):
    trip, quad = [], []
    for a, p, n in triplets_of(y):
        d_ap = dist(x[a], x[p])
        trip.append(relu(d_ap - dist(x[a], x[n]) + h["margin_alpha_1"]))
        for m in range(len(y)):
            if y[m] != y[n] and y[m] != y[a]:
                quad.append(relu(d_ap - dist(x[n], x[m]) + h["margin_alpha_2"]))
    return mean(trip) + mean(quad)


def ref_snr(x, y, h, P):
    def var(v):
        m = sum(v[k] for k in range(len(v))) / len(v)
        return sum((v[k] - m) ** 2 for k in range(len(v))) / (len(v) - 1)

    total, active, reg = 0, 0, []
    for a, p, n in triplets_of(y):
        term = relu(var(x[p] - x[a]) / var(x[a]) - var(x[n] - x[a]) / var(x[a]) + h["margin"])
        active += int(term > 0)
        total = total + term
        reg.append(torch.abs(sum(x[a][k] for k in range(x.shape[1]))))
    return total / max(active, 1) + h["reg_lambda"] * mean(reg)


def ref_npair(x, y, h, P, angular=False):
    terms = []
    for a in range(len(y)):
        p = first_positive(y, a)
        if p is None:
            continue
        s = sum(
            torch.exp(torch.dot(x[a], x[n]) - torch.dot(x[a], x[p]))
            for n in range(len(y))
            if y[n] != y[a]
        )
        term = torch.log(1 + s)
        if angular:
            t2 = math.tan(math.radians(h["alpha"])) ** 2
            xa, xp = unit(x[a]), unit(x[p])
            s = sum(
                torch.exp(
                    4 * t2 * torch.dot(xa + xp, unit(x[n])) - 2 * (1 + t2) * torch.dot(xa, xp)
                )
                for n in range(len(y))
                if y[n] != y[a]
            )
            term = term + h["npair_ang_weight"] * torch.log(1 + s)
        terms.append(term)
    l2 = h["npair_l2"] if angular else h["l2"]
    return mean(terms) + l2 * mean([x[i].norm() for i in range(len(y))])


def ref_angular(x, y, h, P):
    return ref_npair(x, y, h, P, angular=True)


def ref_lifted(x, y, h, P):
    terms = []
    for a in range(len(y)):
        pos = [j for j in range(len(y)) if j != a and y[j] == y[a]]
        if not pos:
            continue
        neg = [j for j in range(len(y)) if y[j] != y[a]]
        lp = torch.log(sum(torch.exp(dist(x[a], x[j])) for j in pos))
        ln = torch.log(sum(torch.exp(h["neg_margin"] - dist(x[a], x[j])) for j in neg))
        terms.append(relu(lp + ln))
    return mean(terms) + h["l2"] * mean([x[i].norm() for i in range(len(y))])


def ref_histogram(x, y, h, P):
    R = h["nbins"]
    delta = 2 / (R - 1)
    nodes = [-1 + r * delta for r in range(R)]
    h_pos, h_neg, n_pos, n_neg = [0] * R, [0] * R, 0, 0
    for i in range(len(y)):
        for j in range(i + 1, len(y)):
            s = cos(x[i], x[j])
            is_pos = bool(y[i] == y[j])
            n_pos, n_neg = n_pos + is_pos, n_neg + (not is_pos)
            for r in range(R):
                if r > 0 and nodes[r - 1] <= s <= nodes[r]:
                    w = (s - nodes[r - 1]) / delta
                elif r < R - 1 and nodes[r] <= s <= nodes[r + 1]:
                    w = (nodes[r + 1] - s) / delta
                else:
                    continue
                if is_pos:
                    h_pos[r] = h_pos[r] + w
                else:
                    h_neg[r] = h_neg[r] + w
    return sum(h_neg[r] / n_neg * sum(h_pos[q] / n_pos for q in range(r + 1)) for r in range(R))


def ref_multisimilarity(x, y, h, P, dropped=None):
    al, be, eps, lam = h["pos_weight"], h["neg_weight"], h["margin"], h["thresh"]
    terms = []
    for i in range(len(y)):
        pos = [cos(x[i], x[j]) for j in range(len(y)) if j != i and y[j] == y[i]]
        neg = [cos(x[i], x[j]) for j in range(len(y)) if y[j] != y[i]]
        if not pos or not neg:
            continue
        kept_neg = [s for s in neg if s + eps > min(pos)]
        kept_pos = [s for s in pos if s - eps < max(neg)]
        if dropped is not None:
            dropped.append(len(pos) + len(neg) - len(kept_pos) - len(kept_neg))
        if not kept_pos or not kept_neg:
            continue
        terms.append(
            torch.log(1 + sum(torch.exp(-al * (s - lam)) for s in kept_pos)) / al
            + torch.log(1 + sum(torch.exp(be * (s - lam)) for s in kept_neg)) / be
        )
    # the paper's reduction divides by the batch size, the 2020 harness's by the anchors kept
    return mean(terms) if h["reduction"] == "anchors" else sum(terms) / len(y)


def ref_proxynca(x, y, h, P):
    W = P["proxies"]
    terms = []
    for i in range(len(y)):
        xi = h["scale"] * unit(x[i])
        d = [sqdist(xi, h["scale"] * unit(W[c])) for c in range(len(W))]
        t = int(y[i])
        terms.append(
            -torch.log(torch.exp(-d[t]) / sum(torch.exp(-d[c]) for c in range(len(W)) if c != t))
        )
    return mean(terms)


def cross_entropy(logits, t):
    return -torch.log(torch.exp(logits[t]) / sum(torch.exp(v) for v in logits))


def ref_softmax(x, y, h, P):
    W = P["class_map"]
    return mean(
        [
            cross_entropy([cos(x[i], W[c]) / h["temperature"] for c in range(len(W))], int(y[i]))
            for i in range(len(y))
        ]
    )


def arcface_target(c, m, fallback):
    """cos(θ + m); with the fallback, cos θ − m·sin m once θ > π − m."""
    theta = torch.acos(c)
    if fallback and theta > math.pi - m:
        return c - m * math.sin(m)
    return torch.cos(theta + m)


def ref_arcface(x, y, h, P):
    W, s, m = P["class_map"], h["feature_scale"], h["angular_margin"]
    terms = []
    for i in range(len(y)):
        t = int(y[i])
        logits = [
            s * (arcface_target(cos(x[i], W[c]), m, h["fallback"]) if c == t else cos(x[i], W[c]))
            for c in range(len(W))
        ]
        terms.append(cross_entropy(logits, t))
    return mean(terms)


def ref_cosface(x, y, h, P):
    W, s, m = P["class_map"], h["scale"], h["margin"]
    return mean(
        [
            cross_entropy(
                [s * (cos(x[i], W[c]) - (m if c == int(y[i]) else 0)) for c in range(len(W))],
                int(y[i]),
            )
            for i in range(len(y))
        ]
    )


def ref_softtriplet(x, y, h, P):
    K, C = h["n_centroids"], N_CLASSES
    w = [[unit(P["centres"][k * C + c]) for k in range(K)] for c in range(C)]  # centre-major rows
    terms = []
    for i in range(len(y)):
        xi = unit(x[i])
        logits = []
        for c in range(C):
            sims = [torch.dot(xi, w[c][k]) for k in range(K)]
            z = sum(torch.exp(v / h["gamma"]) for v in sims)
            S = sum(torch.exp(v / h["gamma"]) / z * v for v in sims)
            logits.append(h["lam"] * (S - (h["margin_delta"] if c == int(y[i]) else 0)))
        terms.append(cross_entropy(logits, int(y[i])))
    loss = mean(terms)
    if K > 1:
        reg = sum(
            torch.sqrt(2 + 1e-5 - 2 * torch.dot(w[c][k], w[c][j]))
            for c in range(C)
            for k in range(K)
            for j in range(k + 1, K)
        )
        loss = loss + h["reg_weight"] * reg / (C * K * (K - 1))
    return loss


def ref_proxyanchor(x, y, h, P):
    W, al, dl = P["proxies"], h["alpha"], h["margin"]
    present = sorted({int(v) for v in y})
    pos = sum(
        torch.log(
            1 + sum(torch.exp(-al * (cos(x[i], W[c]) - dl)) for i in range(len(y)) if y[i] == c)
        )
        for c in present
    )
    neg = sum(
        torch.log(
            1 + sum(torch.exp(al * (cos(x[i], W[c]) + dl)) for i in range(len(y)) if y[i] != c)
        )
        for c in range(len(W))
    )
    return pos / len(present) + neg / len(W)


def ref_fastap(x, y, h, P):
    L = h["num_bins"]
    delta = 4 / L
    centres = [b * delta for b in range(L + 1)]
    terms = []
    for i in range(len(y)):
        n_pos = sum(1 for j in range(len(y)) if j != i and y[j] == y[i])
        if n_pos == 0:
            continue
        h_pos, h_all = [0] * (L + 1), [0] * (L + 1)
        for j in range(len(y)):
            if j == i:
                continue
            d = sqdist(unit(x[i]), unit(x[j]))
            for b in range(L + 1):
                w = relu(1 - torch.abs(d - centres[b]) / delta)
                h_all[b] = h_all[b] + w
                if y[j] == y[i]:
                    h_pos[b] = h_pos[b] + w
        ap = 0
        for b in range(L + 1):
            H_pos, H = sum(h_pos[: b + 1]), sum(h_all[: b + 1])
            if H > 0:
                ap = ap + h_pos[b] * H_pos / H
        terms.append(1 - ap / n_pos)
    return mean(terms)


def ref_circle(x, y, h, P):
    m, g = h["m"], h["gamma"]
    terms = []
    for i in range(len(y)):
        sp = [cos(x[i], x[j]) for j in range(len(y)) if j != i and y[j] == y[i]]
        sn = [cos(x[i], x[j]) for j in range(len(y)) if y[j] != y[i]]
        if not sp or not sn:
            continue
        neg = sum(torch.exp(g * relu(s.detach() + m) * (s - m)) for s in sn)
        pos = sum(torch.exp(-g * relu(1 + m - s.detach()) * (s - (1 - m))) for s in sp)
        terms.append(torch.log(1 + neg * pos))
    return mean(terms)


def ref_ntxent(x, y, h, P):
    t = h["temperature"]
    terms = []
    for i in range(len(y)):
        neg = sum(torch.exp(cos(x[i], x[k]) / t) for k in range(len(y)) if y[k] != y[i])
        for j in range(len(y)):
            if j != i and y[j] == y[i]:
                e = torch.exp(cos(x[i], x[j]) / t)
                terms.append(-torch.log(e / (e + neg)))
    return mean(terms)


def ref_supcon(x, y, h, P):
    t = h["temperature"]
    terms = []
    for i in range(len(y)):
        pos = [j for j in range(len(y)) if j != i and y[j] == y[i]]
        if not pos:
            continue
        z = sum(torch.exp(cos(x[i], x[a]) / t) for a in range(len(y)) if a != i)
        terms.append(-mean([torch.log(torch.exp(cos(x[i], x[p]) / t) / z) for p in pos]))
    return mean(terms)


REFERENCES = {
    "triplet": (ref_triplet, [{}, {"margin": 0.5}, {"soft": True}]),
    "margin": (
        ref_margin,
        [{}, {"beta_constant": True}, {"nu": 0.3}, {"beta": 0.6, "margin": 0.4, "nu": 0.1}],
    ),
    "contrastive": (ref_contrastive, [{}, {"pos_margin": 0.3, "neg_margin": 0.9}]),
    "quadruplet": (ref_quadruplet, [{}, {"margin_alpha_1": 0.6, "margin_alpha_2": 0.1}]),
    "snr": (ref_snr, [{}, {"margin": 0.6, "reg_lambda": 0.2}, {"reg_lambda": 0.0}]),
    "npair": (ref_npair, [{}, {"l2": 0.0}]),
    "angular": (ref_angular, [{}, {"alpha": 30.0, "npair_ang_weight": 0.5, "npair_l2": 0.02}]),
    "lifted": (ref_lifted, [{}, {"neg_margin": 0.4, "l2": 0.0}]),
    "histogram": (ref_histogram, [{}, {"nbins": 11}]),
    "multisimilarity": (
        ref_multisimilarity,
        [
            {},
            {"pos_weight": 1.0, "neg_weight": 10.0, "margin": -0.05, "thresh": 0.2},
            {"reduction": "anchors"},
        ],
    ),
    "proxynca": (ref_proxynca, [{}, {"scale": 1.0}]),
    "softmax": (ref_softmax, [{}, {"temperature": 0.5}]),
    "arcface": (
        ref_arcface,
        [
            {},
            {"angular_margin": 0.2, "feature_scale": 30.0},
            {"angular_margin": 1.5},
            {"angular_margin": 1.5, "fallback": False},
        ],
    ),
    "cosface": (ref_cosface, [{}, {"margin": 0.1, "scale": 10.0}]),
    "softtriplet": (
        ref_softtriplet,
        [
            {},
            {"n_centroids": 3, "margin_delta": 0.1, "gamma": 0.5, "lam": 20.0},
            {"n_centroids": 1},
            {"reg_weight": 0.0},
        ],
    ),
    "proxyanchor": (ref_proxyanchor, [{}, {"margin": 0.2, "alpha": 8.0}]),
    "fastap": (ref_fastap, [{}, {"num_bins": 4}]),
    "circle": (ref_circle, [{}, {"m": 0.25, "gamma": 32.0}]),
    "ntxent": (ref_ntxent, [{}, {"temperature": 0.5}]),
    "supcon": (ref_supcon, [{}, {"temperature": 0.5}]),
}
CASES = [
    (name, i, over) for name, (_, variants) in REFERENCES.items() for i, over in enumerate(variants)
]


def test_every_registered_loss_has_a_reference():
    assert sorted(REFERENCES) == LOSSES.names()


@pytest.mark.parametrize("name,case,overrides", CASES, ids=[f"{n}-{i}" for n, i, _ in CASES])
def test_matches_float64_reference(name, case, overrides):
    loss_fn = build(name, **overrides).double()
    hyper = {p.name: p.default for p in LOSSES.params(name)} | overrides
    x = embeddings(seed=case).requires_grad_()
    loss = loss_fn(x, LABELS)
    params = dict(loss_fn.named_parameters())
    loss.backward()

    x_ref = x.detach().clone().requires_grad_()
    p_ref = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    p_ref |= {k: v.detach().clone() for k, v in loss_fn.named_buffers()}
    ref = REFERENCES[name][0](x_ref, LABELS.tolist(), hyper, p_ref)
    ref.backward()

    assert loss.dtype == torch.float64 and loss.dim() == 0
    torch.testing.assert_close(loss, ref, rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-6, atol=1e-9)
    assert x.grad.abs().sum() > 0
    for k, v in params.items():
        torch.testing.assert_close(v.grad, p_ref[k].grad, rtol=1e-6, atol=1e-9)
        assert v.grad.abs().sum() > 0, k


def test_multisimilarity_reference_case_exercises_pair_mining():
    """The references above would not notice a broken ε-mining if it never dropped a pair."""
    for case, overrides in enumerate(REFERENCES["multisimilarity"][1]):
        hyper = {p.name: p.default for p in LOSSES.params("multisimilarity")} | overrides
        dropped = []
        ref_multisimilarity(embeddings(seed=case), LABELS.tolist(), hyper, {}, dropped)
        assert sum(dropped) > 0


def test_multisimilarity_reductions_differ_by_the_share_of_anchors_kept():
    """batch (default, the paper) = anchors (2020 harness) × kept anchors / batch size."""
    x = embeddings(seed=2)
    labels = LABELS.clone()
    paper, harness = build("multisimilarity"), build("multisimilarity", reduction="anchors")
    assert paper.reduction == "batch"
    kept = paper(x, labels).item(), harness(x, labels).item()
    kept_anchors = round(paper.last_logs["active"].item() * len(labels))  # logs hold float32
    share = kept_anchors / len(labels)
    assert 0 < share < 1
    assert kept[0] == pytest.approx(kept[1] * share, rel=1e-12)
    with pytest.raises(ValueError, match="choose batch or anchors"):
        build("multisimilarity", reduction="mean")
    flag = {p.flag: p for p in LOSSES.params("multisimilarity")}["--loss_multisimilarity_reduction"]
    assert flag.default == "batch" and flag.choices == ("batch", "anchors")


def arcface_on_a_circle(fallback: bool, m: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """ArcFace's loss for embeddings at angle θ ∈ (0, π) from their class weight e1, the other
    class weight e3 orthogonal to all of them (its logit stays 0): (θ, loss(θ)), float64."""
    loss_fn = LOSSES.build(
        "arcface",
        {"loss_arcface_angular_margin": m, "loss_arcface_fallback": fallback},
        n_classes=2,
        embed_dim=3,
    ).double()
    with torch.no_grad():
        loss_fn.class_map.copy_(torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]))
    theta = torch.linspace(0.01, math.pi - 0.01, 400, dtype=torch.float64)
    x = torch.stack([theta.cos(), theta.sin(), torch.zeros_like(theta)], 1)
    zero = torch.zeros(1, dtype=torch.long)
    return theta, torch.stack([loss_fn(row[None], zero) for row in x])


def test_arcface_fallback_makes_the_loss_increase_with_the_angle():
    theta, loss = arcface_on_a_circle(fallback=True)
    assert (loss.diff() > 0).all()
    # past π − m the target logit is cos θ − m·sin m (s = 16, other logit 0)
    far = theta > math.pi - 0.5
    expected = F.softplus(-16 * (theta[far].cos() - 0.5 * math.sin(0.5)))
    torch.testing.assert_close(loss[far], expected)


def test_arcface_without_fallback_is_the_plain_formula_and_falls_past_pi_minus_m():
    theta, loss = arcface_on_a_circle(fallback=False)
    torch.testing.assert_close(loss, F.softplus(-16 * (theta + 0.5).cos()), rtol=1e-6, atol=1e-9)
    assert (loss[theta > math.pi - 0.5].diff() < 0).all()
    assert (loss[theta < math.pi - 0.5].diff() > 0).all()


def test_margin_without_active_hinge_keeps_the_beta_regulariser_over_2T():
    """Decision: a solved batch gives ν·Σβ_{y_a} / 2T (T triplets); ν = 0 gives a graph-connected
    zero; the embeddings get no gradient either way."""
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    x = torch.zeros(6, DIM, dtype=torch.float64)
    x[2:4, 0], x[4:, 1] = 3.0, 3.0  # classes 3 apart, each a single point
    for nu in (0.0, 0.3):
        loss_fn = build("margin", nu=nu).double()
        with torch.no_grad():
            loss_fn.beta.copy_(torch.tensor([1.2, 1.1, 1.3, 1.2, 1.2, 1.2]))
        xg = x.clone().requires_grad_()
        loss = loss_fn(xg, labels)
        loss.backward()
        a, _, _ = AllTriplets()(x, labels)
        beta_a = loss_fn.beta.detach()[labels[a]]
        assert loss_fn.last_logs["active"] == 0.0 and len(a) == 6 * 1 * 4
        assert loss.item() == pytest.approx(nu * beta_a.sum().item() / (2 * len(a)), abs=1e-15)
        assert loss.grad_fn is not None and torch.equal(xg.grad, torch.zeros_like(xg))
        per_class = torch.bincount(labels[a], minlength=N_CLASSES).double()
        torch.testing.assert_close(loss_fn.beta.grad, nu * per_class / (2 * len(a)))


def test_multisimilarity_zero_when_mining_keeps_nothing():
    x = torch.tensor([[1.0, 0.01], [1.0, -0.01], [0.01, 1.0], [-0.01, 1.0]], requires_grad=True)
    loss = build("multisimilarity")(x, torch.tensor([0, 0, 1, 1]))
    assert loss.item() == 0.0 and loss.grad_fn is not None
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


# ------------------------------------------------------------------------ registry-driven contracts
@pytest.mark.parametrize("name", LOSSES.names())
def test_pk_batch_gives_finite_loss_and_gradients(name):
    loss_fn = build(name)
    labels = torch.arange(4).repeat_interleave(3)
    x = embeddings(seed=7, n=12, dtype=torch.float32).requires_grad_()
    loss = loss_fn(x, labels)
    assert loss.dtype == torch.float32 and loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert loss_fn.last_logs and all(  # left on the device for the loop to sum: no sync
        torch.is_tensor(v)
        and v.shape == ()
        and v.dtype == torch.float32
        and not v.requires_grad
        and math.isfinite(v.item())
        for v in loss_fn.last_logs.values()
    )
    for p in loss_fn.parameters():
        assert p.dtype == torch.float32 and torch.isfinite(p.grad).all()


PROXY_LOSSES = [n for n in LOSSES.names() if LOSSES.get(n).class_proxies]


@pytest.mark.parametrize("name", LOSSES.names())
def test_all_labels_distinct(name):
    """Without a positive pair only losses that learn per-class vectors have anything to say,
    which is what ``class_proxies`` declares."""
    x = embeddings(seed=3, n=6, dtype=torch.float32).requires_grad_()
    loss = build(name)(x, torch.arange(6))
    assert torch.isfinite(loss) and loss.grad_fn is not None
    assert (loss.item() > 0.0) == LOSSES.get(name).class_proxies
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_miner_declarations():
    kinds = {n: LOSSES.get(n).miner_kinds for n in LOSSES.names()}
    for n in ("triplet", "margin", "contrastive", "quadruplet", "snr"):
        assert kinds[n] == ("triplets",)
    assert kinds["npair"] == kinds["angular"] == ("npair",)
    assert kinds["lifted"] == ("lifted",)
    for n, k in kinds.items():
        # a loss with miner kinds takes the miner as context, and the miners it names exist
        assert ("miner" in LOSSES.context_names(n)) == bool(k)
        assert bool(LOSSES.get(n).allowed_miners()) == bool(k)
    assert "semihard" in LOSSES.get("triplet").allowed_miners()
    assert LOSSES.get("npair").allowed_miners() == ["npair"]


@pytest.mark.parametrize("name", LOSSES.names())
def test_param_groups(name):
    """One group holding every trainable parameter, at the learning rate ``lr_param`` declares
    (its flag's default, times the base rate for ``lr_times_base``), without weight decay."""
    cls = LOSSES.get(name)
    loss_fn = build(name)
    groups = loss_fn.param_groups(base_lr=1e-3)
    trainable = {id(p) for p in loss_fn.parameters() if p.requires_grad}
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(trainable)
    assert bool(groups) == (cls.lr_param is not None) == bool(trainable)
    if cls.class_proxies:
        assert groups, "a loss with class proxies learns them"
    for g in groups:
        default = next(p.default for p in LOSSES.params(name) if p.name == cls.lr_param)
        expected = 1e-3 * default if cls.lr_times_base else default
        assert g["lr"] == pytest.approx(expected) and g["weight_decay"] == 0.0
        assert all(p.dtype == torch.float32 for p in g["params"])


def test_param_groups_follow_their_flags():
    assert build("proxynca", lr_multi=10.0).param_groups(2e-3)[0]["lr"] == pytest.approx(2e-2)
    assert build("softtriplet", lr_multi=3.0).param_groups(1e-3)[0]["lr"] == pytest.approx(3e-3)
    assert build("margin", beta_lr=0.01).param_groups(1e-3)[0]["lr"] == 0.01
    assert build("softmax", lr=0.002).param_groups(1e-3)[0]["lr"] == 0.002
    frozen = build("margin", beta_constant=True)
    assert frozen.param_groups(1e-3) == [] and not list(frozen.parameters())
    assert torch.equal(frozen.beta, torch.full((N_CLASSES,), 1.2))


LEGACY_FLAGS = {
    "contrastive": {"--loss_contrastive_pos_margin": 0, "--loss_contrastive_neg_margin": 1},
    "triplet": {"--loss_triplet_margin": 0.2},
    "margin": {
        "--loss_margin_margin": 0.2,
        "--loss_margin_beta_lr": 5e-4,
        "--loss_margin_beta": 1.2,
        "--loss_margin_nu": 0,
        "--loss_margin_beta_constant": False,
    },
    "proxynca": {"--loss_proxynca_lrmulti": 50},
    "npair": {"--loss_npair_l2": 0.005},
    "angular": {
        "--loss_angular_alpha": 45,
        "--loss_angular_npair_ang_weight": 2,
        "--loss_angular_npair_l2": 0.005,
    },
    "multisimilarity": {
        "--loss_multisimilarity_pos_weight": 2,
        "--loss_multisimilarity_neg_weight": 40,
        "--loss_multisimilarity_margin": 0.1,
        "--loss_multisimilarity_thresh": 0.5,
    },
    "lifted": {"--loss_lifted_neg_margin": 1, "--loss_lifted_l2": 0.005},
    "quadruplet": {
        "--loss_quadruplet_margin_alpha_1": 0.2,
        "--loss_quadruplet_margin_alpha_2": 0.2,
    },
    "softtriplet": {
        "--loss_softtriplet_n_centroids": 2,
        "--loss_softtriplet_margin_delta": 0.01,
        "--loss_softtriplet_gamma": 0.1,
        "--loss_softtriplet_lambda": 8,
        "--loss_softtriplet_reg_weight": 0.2,
        "--loss_softtriplet_lrmulti": 1,
    },
    "softmax": {"--loss_softmax_lr": 1e-5, "--loss_softmax_temperature": 0.05},
    "histogram": {"--loss_histogram_nbins": 65},
    "snr": {"--loss_snr_margin": 0.2, "--loss_snr_reg_lambda": 0.005},
    "arcface": {
        "--loss_arcface_lr": 5e-4,
        "--loss_arcface_angular_margin": 0.5,
        "--loss_arcface_feature_scale": 16,
        "--loss_arcface_fallback": True,
    },
}


@pytest.mark.parametrize("name", sorted(LEGACY_FLAGS))
def test_legacy_flags_and_defaults(name):
    params = {p.flag: p for p in LOSSES.params(name)}
    for flag, default in LEGACY_FLAGS[name].items():
        assert flag in params, flag
        assert params[flag].default == default and type(params[flag].default) is type(
            params[flag].type(default)
        )


@pytest.mark.parametrize("name", LOSSES.names())
def test_flags_are_documented_and_context_is_not_a_flag(name):
    params = LOSSES.params(name)
    assert all(p.help for p in params), [p.name for p in params if not p.help]
    assert not {p.name for p in params} & {"miner", "n_classes", "embed_dim"}


def test_legacy_flag_values_reach_the_loss():
    loss_fn = LOSSES.build(
        "softtriplet",
        {"loss_softtriplet_lambda": 3.0, "loss_softtriplet_lrmulti": 7.0},
        n_classes=4,
        embed_dim=3,
    )
    assert loss_fn.lam == 3.0 and loss_fn.param_groups(1.0)[0]["lr"] == 7.0
    margin = LOSSES.build("margin", {}, miner=AllTriplets(), n_classes=5, embed_dim=8)
    assert margin.beta.shape == (5,)


TUPLE_LOSSES = [n for n in LOSSES.names() if LOSSES.get(n).miner_kinds]
NO_L2 = {
    "npair": {"l2": 0.0},
    "angular": {"npair_l2": 0.0},
    "lifted": {"l2": 0.0},
    "snr": {"reg_lambda": 0.0},
}


@pytest.mark.parametrize("name", TUPLE_LOSSES)
def test_memory_bank_rows_are_used(name):
    """A miner that appends bank rows: the loss must index into the augmented embeddings."""
    hyper = NO_L2.get(name, {})
    batch, bank = embeddings(seed=11, n=8), embeddings(seed=12, n=4)
    labels, bank_labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), torch.tensor([0, 1, 4, 4])
    with_bank = build(name, **hyper).double()
    with_bank.miner = WithBank(with_bank.miner, bank, bank_labels)
    x = batch.clone().requires_grad_()
    loss = with_bank(x, labels)
    loss.backward()
    plain = build(name, **hyper).double()
    x_all = torch.cat([batch, bank]).requires_grad_()
    expected = plain(x_all, torch.cat([labels, bank_labels]))
    expected.backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(x.grad, x_all.grad[: len(batch)])


@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_autocast_keeps_parameters_float32(name):
    loss_fn = build(name)
    x = embeddings(seed=5, dtype=torch.float32).to(torch.bfloat16).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_fn(x, LABELS)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert all(
        p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in loss_fn.parameters()
    )
    assert x.grad.dtype == torch.bfloat16


# ---------------------------------------------------------------------------- log(1 + Σ exp) helper
def test_log1p_sum_exp_is_exact_at_large_arguments():
    """float64, values where softplus's linear branch (above 20) would drop log1p(exp(-y))."""
    from criteria.pairwise import log1p_sum_exp

    rows = [[20.5], [19.0, 21.0, 22.5], [30.0, -5.0], [700.0, 699.0], [-50.0, -40.0], [35.0], []]
    width = max(map(len, rows))
    x = torch.zeros(len(rows), width, dtype=torch.float64)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, row in enumerate(rows):
        x[i, : len(row)], mask[i, : len(row)] = torch.tensor(row, dtype=torch.float64), True
    x.requires_grad_()
    out = log1p_sum_exp(x, mask, dim=1)
    for i, row in enumerate(rows):
        top = max([0.0, *row])
        ref = top + math.log(math.fsum([math.exp(-top)] + [math.exp(v - top) for v in row]))
        assert out[i].item() == pytest.approx(ref, rel=1e-15, abs=1e-15), row
        weights = [math.exp(v - top) / math.exp(ref - top) for v in row]  # d/dx_j = softmax_j
        out[i].backward(retain_graph=True)
        expected = torch.tensor(weights, dtype=torch.float64)
        torch.testing.assert_close(x.grad[i, : len(row)], expected, rtol=1e-12, atol=1e-300)
        assert (x.grad[i, len(row) :] == 0).all()
        x.grad = None
    # what the exact form fixes: softplus(20.5) is 20.5 exactly, 1.25e-9 short of the truth
    assert abs(F.softplus(torch.tensor(20.5, dtype=torch.float64)).item() - out[0].item()) > 1e-9
