"""The diagonal-lines toy: data layout, the loss against a loop over triplets in float64, the
measures on hand cases, and the command line (figure and summary)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from toy_experiments import diagonal_lines as toy


def test_data_layout():
    tx, ty, sx, sy = toy.make_data(np.random.default_rng(0))
    assert tx.shape == sx.shape == (60, 2) and np.bincount(ty).tolist() == [15] * 4
    np.testing.assert_allclose(tx[:, 0], tx[:, 1])  # on y = x
    for c, (a, b) in enumerate(toy.TRAIN_SEGMENTS):
        assert (tx[ty == c, 0] >= a - 1e-6).all() and (tx[ty == c, 0] <= b + 1e-6).all()
    assert np.isclose(sx[sy < 2, 0], 0.2).all() and np.isclose(sx[sy >= 2, 1], 0.2).all()


def _naive_loss(e: np.ndarray, y: np.ndarray, m: float, swap: list[bool]) -> float:
    terms, t = [], 0
    for a in range(len(y)):
        for p in range(len(y)):
            for n in range(len(y)):
                if a != p and y[a] == y[p] and y[n] != y[a]:
                    d_ap, d_an = np.linalg.norm(e[a] - e[p]), np.linalg.norm(e[a] - e[n])
                    terms.append(max(m - d_ap, 0) if swap[t] else d_ap + max(m - d_an, 0))
                    t += 1
    return float(np.mean(terms))


@pytest.mark.parametrize("rho", [0.0, 0.3, 1.0])
def test_loss_matches_a_loop_over_triplets(rho):
    gen = torch.Generator().manual_seed(0)
    e = torch.nn.functional.normalize(torch.randn(8, 2, generator=gen, dtype=torch.float64), dim=1)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    a, _, _ = toy.all_triplets(y)
    assert len(a) == 8 * 1 * 6  # each anchor: 1 positive, 6 negatives
    swap = (torch.rand(len(a), generator=torch.Generator().manual_seed(5)) < rho).tolist()
    got = toy.triplet_loss(e, y, 0.4, rho, torch.Generator().manual_seed(5))
    assert got.item() == pytest.approx(_naive_loss(e.numpy(), y.numpy(), 0.4, swap), rel=1e-12)


def test_measures_on_hand_cases():
    assert toy.recall_at_1(
        np.array([[0.0], [0.1], [1.0], [1.2], [0.5]]), np.array([0, 0, 1, 1, 1])
    ) == pytest.approx(4 / 5)
    assert toy.spectral_decay(np.eye(2)) == pytest.approx(0.0, abs=1e-12)
    # singular values 3 and 1 → s = (0.75, 0.25); KL(U || s) = 0.5 ln(0.5/0.75) + 0.5 ln(0.5/0.25)
    expected = 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(2)
    assert toy.spectral_decay(np.diag([3.0, 1.0])) == pytest.approx(expected)


def test_command_line_writes_figure_and_summary(tmp_path, capsys):
    out, js = tmp_path / "toy.png", tmp_path / "toy.json"
    assert toy.main(["--seeds", "2", "--iters", "15", "--out", str(out), "--json", str(js)]) == 0
    assert Image.open(out).width > 1000
    data = json.loads(js.read_text())
    assert len(data["outcomes"]) == 4 and set(data["summary"]) == {"base", "regularised"}
    text = capsys.readouterr().out
    assert "test R@1" in text and " ± " in text and "/2 seeds" in text
    with pytest.raises(SystemExit):
        toy.main(["--rho", "2"])
