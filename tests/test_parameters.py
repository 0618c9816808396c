"""The one namespace: --help lists every plug-in, bad combinations fail at parse time in one
line."""

from __future__ import annotations

import pytest

import parameters
from architectures import ARCHITECTURES
from batch_mining import MINERS
from criteria import LOSSES
from datasampler import SAMPLERS
from datasets import DATASETS

BASE = ["--dataset", "glyphs", "--arch", "smallnet_normalize"]


def parse_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        parameters.parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    return err


def test_help_lists_every_plugin_and_its_flags():
    text = parameters.build_parser().format_help()
    for kind, registry in (
        ("loss", LOSSES),
        ("miner", MINERS),
        ("sampler", SAMPLERS),
        ("architecture", ARCHITECTURES),
        ("dataset", DATASETS),
    ):
        assert len(registry) > 0
        for name in registry.names():
            assert f"{kind} '{name}'" in text, (kind, name)
            for p in registry.params(name):
                assert p.flag in text
    for legacy in (
        "--loss_margin_beta",
        "--loss_margin_beta_lr",
        "--miner_distance_lower_cutoff",
        "--miner_rho_distance_cp",
    ):
        assert legacy in text


def test_defaults_match_the_original_harness():
    opt = parameters.build_parser().parse_args([])
    assert (opt.lr, opt.fc_lr, opt.decay, opt.n_epochs, opt.bs, opt.seed) == (
        1e-5,
        -1,
        4e-4,
        150,
        112,
        1,
    )
    assert (opt.loss, opt.batch_mining, opt.data_sampler, opt.samples_per_class) == (
        "margin",
        "distance",
        "class_random",
        2,
    )
    assert (opt.embed_dim, opt.arch, opt.tv_split_perc, opt.gamma, opt.tau) == (
        128,
        "resnet50_frozen_normalize",
        0.8,
        0.3,
        [1000],
    )
    assert opt.storage_metrics == ["e_recall@1"] and opt.savename == "group_plus_seed"


def test_valid_line_parses_and_namespace_is_frozen():
    opt = parameters.parse_args([*BASE, "--loss", "triplet", "--batch_mining", "semihard"])
    assert opt.loss == "triplet"
    with pytest.raises(AttributeError, match="read-only"):
        opt.lr = 1.0


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--bs", "10", "--samples_per_class", "3"],
            "--bs 10 is not divisible by --samples_per_class 3",
        ),
        (["--loss", "nosuchloss"], "unknown loss 'nosuchloss'; choose one of:"),
        (["--batch_mining", "nosuch"], "unknown miner 'nosuch'; choose one of:"),
        (["--data_sampler", "nosuch"], "unknown sampler 'nosuch'; choose one of:"),
        (["--arch", "smallnet_nomalize"], "unknown option 'nomalize'"),
        (["--tv_split_perc", "1.5"], "--tv_split_perc must lie in (0, 1)"),
        (
            ["--evaluation_metrics", "e_recall@1", "--storage_metrics", "nmi"],
            "--storage_metrics nmi must also be in --evaluation_metrics",
        ),
        (["--selection_split", "val"], "--selection_split val needs --use_tv_split"),
        (["--not_pretrained", "--pretrained_weights", "w.pth"], "contradict each other"),
    ],
)
def test_bad_input_is_one_line_with_what_is_allowed(capsys, argv, message):
    assert message in parse_error(capsys, BASE + argv)


def test_loss_with_a_miner_it_cannot_use_names_the_allowed_ones(capsys):
    needy = [n for n in LOSSES.names() if LOSSES.get(n).miner_kinds]
    assert needy
    loss = needy[0]
    allowed = LOSSES.get(loss).allowed_miners()
    wrong = next(m for m in MINERS.names() if m not in allowed)
    err = parse_error(capsys, [*BASE, "--loss", loss, "--batch_mining", wrong])
    assert f"loss {loss} cannot use miner {wrong}; allowed miners: {', '.join(allowed)}" in err


def test_correctness_decision_flags_parse():
    """Fixed names: --loss_multisimilarity_reduction, --[no-]loss_arcface_fallback."""
    opt = parameters.parse_args([*BASE, "--loss", "arcface"])
    assert opt.loss_arcface_fallback is True and opt.loss_multisimilarity_reduction == "batch"
    opt = parameters.parse_args(
        [
            *BASE,
            "--loss",
            "arcface",
            "--no-loss_arcface_fallback",
            "--loss_multisimilarity_reduction",
            "anchors",
        ]
    )
    assert opt.loss_arcface_fallback is False and opt.loss_multisimilarity_reduction == "anchors"
    assert LOSSES.build("arcface", opt, n_classes=3, embed_dim=4).fallback is False
    assert LOSSES.build("multisimilarity", opt).reduction == "anchors"
