"""Retrieval pictures: ranking and AP against hand-computed cases, query picking, the drawn grid's
borders, the command line on a saved run, and ``--save_retrievals`` at the end of a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import main
from evaluation import visualize
from evaluation.visualize import GREEN, RED, draw_grid, fit, pick_rows, rank, short_name
from tests.cub_tree import make_cub_tree


def test_rank_top_k_and_average_precision_by_hand():
    # 1-D points; labels a a b b a
    x = torch.tensor([[0.0], [1.0], [1.5], [3.0], [10.0]])
    labels = np.array([0, 0, 1, 1, 0])
    r = rank(x, labels, k=3)
    assert r.topk[0].tolist() == [1, 2, 3]  # itself excluded
    np.testing.assert_allclose(r.dist[0], [1.0, 1.5, 3.0])
    # query 0: positives 1 (rank 1) and 4 (rank 4): AP = (1/1 + 2/4) / 2
    assert r.ap[0] == pytest.approx(0.75)
    # query 2 (label 1): order 1 (d .5), 0 (1.5), 3 (1.5, index order), 4: positive 3 at rank 3
    assert r.topk[2].tolist() == [1, 0, 3] and r.ap[2] == pytest.approx(1 / 3)
    # query 4: order 3, 2, 1, 0 → positives at ranks 3, 4: AP = (1/3 + 2/4) / 2
    assert r.ap[4] == pytest.approx((1 / 3 + 0.5) / 2)
    # separate query / gallery sets, one query without positive in the gallery
    is_q = np.array([True, False, False, True, False])
    r2 = rank(x, labels, k=2, is_query=is_q, is_gallery=~is_q, chunk=1)
    assert r2.query.tolist() == [0, 3] and r2.topk.tolist() == [[1, 2], [2, 1]]
    assert r2.ap[0] == pytest.approx((1 + 2 / 3) / 2) and r2.ap[1] == pytest.approx(1.0)
    r3 = rank(x, np.array([0, 1, 2, 3, 4]), k=2)
    assert np.isnan(r3.ap).all()


def test_pick_rows_random_is_seeded_and_worst_is_lowest_ap():
    x = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    labels = np.arange(40) % 5
    r = rank(x, labels, k=4)
    a = pick_rows(r, random=6, worst=3, seed=1)
    assert a["random"].tolist() == pick_rows(r, random=6, seed=1)["random"].tolist()
    assert a["random"].tolist() != pick_rows(r, random=6, seed=2)["random"].tolist()
    assert len(set(a["random"].tolist())) == 6
    assert r.ap[a["worst"]].tolist() == sorted(r.ap)[:3]
    assert pick_rows(r, query_ids=[7, 3])["ids"].tolist() == [7, 3]
    with pytest.raises(ValueError, match="--query_ids 99 are not queries"):
        pick_rows(r, query_ids=[99])


def test_grid_frames_results_green_and_red():
    x = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    labels = np.array([0, 0, 1, 1])
    r = rank(x, labels, k=2)
    images = {i: torch.full((1, 8, 8), 60 * i, dtype=torch.uint8) for i in range(4)}
    sheet = draw_grid(
        r, np.array([0]), labels, images.__getitem__, ["cat", "dog"], title="t", cell=60
    )
    arr = np.asarray(sheet)
    # the frames' top-left pixels: query, then result 1 (same class), then result 2 (other)
    pad, gap, top = 8, 24, 48
    x_first = pad + 60 + pad + gap
    assert tuple(arr[top + 1, x_first + 1]) == GREEN
    assert tuple(arr[top + 1, x_first + 60 + pad + 1]) == RED
    assert sheet.width == pad + (60 + pad) * 3 + gap


def test_names_fit_their_cell():
    assert short_name("001.Black_footed_Albatross") == "Black footed Albatross"
    assert short_name("U+005F _") == "U+005F _"  # glyph names keep their underscore
    font = visualize._font(13)
    cut = fit("✗ Rhinoceros Auklet of the northern seas", font, 100)
    assert cut.endswith("…") and font.getlength(cut) <= 100


@pytest.fixture(scope="module")
def cub_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vis")
    make_cub_tree(root / "data", n_classes=6, per_class=5)
    argv = [
        "--dataset",
        "cub200",
        "--source_path",
        str(root / "data"),
        "--save_path",
        str(root / "runs"),
        "--project",
        "p",
        "--group",
        "g",
        "--arch",
        "smallnet_normalize",
        "--arch_smallnet_channels",
        "3",
        "--arch_smallnet_width",
        "4",
        "--not_pretrained",
        "--embed_dim",
        "8",
        "--bs",
        "12",
        "--samples_per_class",
        "4",
        "--n_epochs",
        "1",
        "--iters_per_epoch",
        "2",
        "--kernels",
        "0",
        "--no_train_metrics",
        "--image_size",
        "32",
        "--evaluation_metrics",
        "e_recall@1",
        "--save_retrievals",
        "2",
    ]
    assert main.main(argv) == 0
    return root / "runs" / "p" / "g_s1"


def test_save_retrievals_at_the_end_of_a_run(cub_run):
    for kind in ("random", "worst"):
        img = Image.open(cub_run / f"retrievals_{kind}.png")
        assert img.height > 2 * 100 and img.width > 8 * 100  # 2 rows, query + 8 results


def test_command_line_on_a_saved_run(cub_run, tmp_path, capsys):
    ckpt = str(cub_run / "checkpoints" / "best.pt")
    assert (
        visualize.main(
            [
                "--checkpoint",
                ckpt,
                "--queries",
                "3",
                "--k",
                "4",
                "--out",
                str(tmp_path / "grid.png"),
            ]
        )
        == 0
    )
    one = Image.open(tmp_path / "grid.png")
    assert (
        visualize.main(
            [
                "--checkpoint",
                ckpt,
                "--query_ids",
                "0",
                "4",
                "--k",
                "4",
                "--out",
                str(tmp_path / "ids.png"),
            ]
        )
        == 0
    )
    two = Image.open(tmp_path / "ids.png")
    assert one.width == two.width and one.height > two.height  # 3 rows vs 2
    assert (
        visualize.main(
            ["--checkpoint", ckpt, "--query_ids", "999", "--out", str(tmp_path / "x.png")]
        )
        == 2
    )
    assert "not queries" in capsys.readouterr().err
    assert visualize.main(["--checkpoint", ckpt, "--split", "val"]) == 2
    assert "--split val is not in this run's data" in capsys.readouterr().err


def test_evaluate_only_can_draw_too(cub_run, capsys):
    ckpt = cub_run / "checkpoints" / "best.pt"
    assert main.main(["--evaluate_only", "--checkpoint", str(ckpt), "--save_retrievals", "1"]) == 0
    assert "retrieval pictures" in capsys.readouterr().out
    assert Image.open(ckpt.parent / "retrievals_cub200_worst.png").height > 100
