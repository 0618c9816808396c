"""Invariants of every registered batch sampler (datasampler/), on tiny label sets."""

from __future__ import annotations

import numpy as np
import pytest

from datasampler import SAMPLERS

ALL = SAMPLERS.names()
UNGROUPED = {"full_random"}
GROUPED = [n for n in ALL if n not in UNGROUPED]
CATEGORY = [n for n in ALL if SAMPLERS.get(n).needs_categories]
EMBEDDING = [n for n in ALL if SAMPLERS.get(n).needs_embeddings]

N_CLASSES, PER_CLASS, BS, SPC = 12, 6, 12, 3
LABELS = np.repeat(np.arange(N_CLASSES), PER_CLASS)[::-1].copy()  # not sorted by index
CATEGORIES = LABELS // 4  # 3 categories × 4 labels
CAT_NAMES = np.array(["shoes", "bags", "hats"])[CATEGORIES]


def make(
    name,
    labels=LABELS,
    bs=BS,
    spc=SPC,
    seed=0,
    rank=0,
    world_size=1,
    categories=CAT_NAMES,
    embeds=None,
    **flags,
):
    opts = {p.dest: flags.get(p.name, p.default) for p in SAMPLERS.params(name)}
    if SAMPLERS.get(name).needs_embeddings and "bigbs" not in flags:
        opts["data_batchmatch_bigbs"] = 4 * bs
    sampler = SAMPLERS.build(
        name,
        opts,
        labels=labels,
        batch_size=bs,
        samples_per_class=spc,
        seed=seed,
        categories=categories,
        rank=rank,
        world_size=world_size,
    )
    if sampler.needs_embeddings and embeds is not False:
        if embeds is None:
            embeds = np.random.default_rng(1).standard_normal((len(labels), 5)).astype(np.float32)
        sampler.update_embeddings(np.arange(len(labels)), embeds)
    return sampler


def epoch(sampler, e=0):
    sampler.set_epoch(e)
    return [np.asarray(b) for b in sampler]


@pytest.mark.parametrize("name", ALL)
def test_batch_size_and_length(name):
    sampler = make(name)
    batches = epoch(sampler)
    assert len(batches) == len(sampler) > 0
    assert all(len(b) == BS and b.min() >= 0 and b.max() < len(LABELS) for b in batches)


@pytest.mark.parametrize("name", GROUPED)
def test_class_groups(name):
    for b in epoch(make(name)):
        groups = LABELS[b].reshape(-1, SPC)
        assert (groups == groups[:, :1]).all()  # one label per group
        assert len(np.unique(groups[:, 0])) == len(groups)  # distinct labels per batch
        assert len(np.unique(b)) == BS  # classes are big enough: no repeats


@pytest.mark.parametrize("name", ALL)
def test_deterministic_per_epoch(name):
    a, b = make(name), make(name)
    assert all(np.array_equal(x, y) for x, y in zip(epoch(a, 3), epoch(b, 3)))
    assert not all(np.array_equal(x, y) for x, y in zip(epoch(a, 3), epoch(a, 4)))
    assert not all(np.array_equal(x, y) for x, y in zip(epoch(a, 3), epoch(make(name, seed=1), 3)))


@pytest.mark.parametrize("name", ALL)
def test_distributed_shards(name):
    whole = epoch(make(name), 2)
    r0, r1 = epoch(make(name, rank=0, world_size=2), 2), epoch(make(name, rank=1, world_size=2), 2)
    assert len(r0) == len(r1) == len(whole)
    for g, x, y in zip(whole, r0, r1):
        assert not set(x) & set(y) and np.array_equal(np.concatenate([x, y]), g)


@pytest.mark.parametrize("name", GROUPED)
def test_indivisible_batch_size_is_refused(name):
    with pytest.raises(ValueError, match="divisible"):
        make(name, bs=10, spc=3)


@pytest.mark.parametrize("name", [n for n in GROUPED if n not in CATEGORY])
def test_too_many_classes_per_batch_is_refused(name):
    with pytest.raises(ValueError, match="classes"):
        make(name, bs=2 * SPC * N_CLASSES)


def test_uneven_world_size_is_refused():
    with pytest.raises(ValueError, match="ranks"):
        make("class_random", world_size=5)


def test_class_random_repeats_only_small_classes():
    labels = np.array([0] + [1] * 5 + [2] * 5 + [3] * 5)
    sampler = make("class_random", labels=labels, bs=6)
    for b in epoch(sampler, 0) + epoch(sampler, 1):
        groups = b.reshape(-1, 3)
        for g in groups:
            assert len(set(g)) == (1 if labels[g[0]] == 0 else 3)


def test_full_random_covers_each_sample_at_most_once():
    batches = np.concatenate(epoch(make("full_random")))
    assert len(np.unique(batches)) == len(batches) == len(LABELS) // BS * BS


def test_balance_uses_each_label_once_per_epoch():
    sampler = make("balance", spc=2, bs=8)  # 4 labels per batch, 12 labels -> 3 batches
    labels = np.concatenate([LABELS[b].reshape(-1, 2)[:, 0] for b in epoch(sampler)])
    assert len(sampler) == 3 and sorted(labels) == list(range(N_CLASSES))


@pytest.mark.parametrize("name", CATEGORY)
def test_category_limits(name):
    for b in epoch(make(name)):
        cats = CATEGORIES[b].reshape(-1, SPC)[:, 0]
        assert len(np.unique(cats)) == 2  # n_categories
        assert all((cats == c).sum() == 2 for c in np.unique(cats))  # labels per category


@pytest.mark.parametrize("name", CATEGORY)
def test_category_errors(name):
    with pytest.raises(ValueError, match="categories"):
        make(name, categories=None)
    with pytest.raises(ValueError, match="categories"):
        make(name, n_categories=4, bs=24)  # only 3 categories exist
    with pytest.raises(ValueError, match="fewer than"):
        make(name, n_categories=1, bs=15)  # 5 labels of one category needed
    assert len(epoch(make(name, n_categories=1, bs=15, resample_labels=True))) > 0


def test_distinct_category_balance_reuses_labels_only_when_exhausted():
    sampler = make("distinct_category_balance", epoch_size=6)
    used: set[int] = set()
    for b in epoch(sampler):
        labels = LABELS[b].reshape(-1, SPC)[:, 0]
        for c in dict.fromkeys((labels // 4).tolist()):  # categories in batch order
            if len(used) == N_CLASSES:
                used = set()
            in_cat = labels[labels // 4 == c]  # labels 4c..4c+3 form category c
            fresh_before = set(range(4 * c, 4 * c + 4)) - used
            assert len(set(in_cat) & fresh_before) == min(len(in_cat), len(fresh_before))
            used |= set(in_cat.tolist())


@pytest.mark.parametrize("name", EMBEDDING)
def test_embedding_samplers_fall_back_without_store(name):
    for b in epoch(make(name, embeds=False)):
        groups = LABELS[b].reshape(-1, SPC)
        assert (groups == groups[:, :1]).all()


@pytest.mark.parametrize("name", EMBEDDING)
def test_embedding_store_updates(name):
    frozen, live = make(name, no_update=True), make(name)
    new = np.full((2, 5), 7.0, dtype=np.float32)
    frozen.update_embeddings([0, 1], new)
    live.update_embeddings([0, 1], new)
    assert not np.allclose(frozen.store[:2], 7.0) and np.allclose(live.store[:2], 7.0)
    projected = make(name, lowproj_dim=2)
    assert len(epoch(projected)) == len(projected)


@pytest.mark.parametrize("softened", [False, True])
def test_greedy_coreset_spreads_anchors(softened):
    # Classes 0-3 sit at far-apart corners, the rest near the origin: farthest-point selection
    # must pick at least three corner classes for 4 anchors (all of them without softening).
    rng = np.random.default_rng(0)
    centres = np.zeros((N_CLASSES, 5))
    centres[:4, :4] = 100 * np.eye(4)
    embeds = centres[LABELS] + 0.01 * rng.standard_normal((len(LABELS), 5))
    sampler = make("greedy_coreset", embeds=embeds, bigbs=len(LABELS), softened=softened)
    for e in range(3):
        for b in epoch(sampler, e):
            anchor_labels = LABELS[b].reshape(-1, SPC)[:, 0]
            assert (anchor_labels < 4).sum() >= 3
