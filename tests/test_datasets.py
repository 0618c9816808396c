"""Tests of the datasets folder: the generated glyphs set, splits, transforms, file layouts,
errors."""

from __future__ import annotations

import argparse
import gzip
import json
import struct

import numpy as np
import pytest
import torch
from PIL import Image

import datasets
import parameters
from architectures.base import ImageSpec
from datasets import DATASETS, DatasetError, build_splits, glyph_fonts, glyph_generator
from datasets.glyphs import Glyphs
from datasets.transforms import build_transforms
from registry import RegistryError

GREY = ImageSpec(size=16, channels=1, mean=(0.5,), std=(0.25,))
TINY = dict(n_classes=8, per_class=4, image_size=16, min_fonts=4)


def make_opt(root, dataset="glyphs", **kw) -> argparse.Namespace:
    glyphs = {f"dataset_glyphs_{k}": v for k, v in TINY.items()}
    return parameters.namespace(
        **{"dataset": dataset, "source_path": str(root), "tv_split_perc": 0.75, **glyphs, **kw}
    )


# ----------------------------------------------------------------------------- glyphs


def test_default_glyph_table_has_300_classes_with_10_distinct_fonts():
    defaults = {p.name: p.default for p in DATASETS.params("glyphs")}
    assert defaults["n_classes"] >= 300 and defaults["per_class"] >= 10
    table = glyph_generator.class_table(
        defaults["n_classes"],
        defaults["image_size"],
        defaults["min_fonts"],
        glyph_fonts.font_files(),
    )
    assert len(table) == defaults["n_classes"]
    assert min(len(g.fonts) for g in table) >= 10
    assert len({g.code for g in table}) == len(table)
    # no two classes are the same drawing in a font they share
    seen = set()
    for g in table:
        keys = {(p, b.tobytes()) for p, b in zip(g.fonts, g.bitmaps)}
        assert not keys & seen
        seen |= keys


def test_fonts_exclude_placeholders_and_tex_encodings():
    names = [p.name for p in glyph_fonts.font_files(use_system_fonts=False)]
    assert len(names) == 24
    assert not any(n.startswith(glyph_fonts.EXCLUDED_PREFIXES) for n in names)
    cmmi = next(p for p in glyph_fonts.font_files(False) if p.name == "cmmi10.ttf")
    # cmmi10 maps "!" to omega: the glyph name contradicts the code point
    assert ord("!") in glyph_fonts.charmap_candidates(cmmi)
    assert cmmi not in glyph_fonts.drawn_by(ord("!"), [cmmi], 32)
    assert cmmi in glyph_fonts.drawn_by(ord("A"), [cmmi], 32)
    fonts = glyph_fonts.font_files(False)
    assert glyph_fonts.drawn_by(0x10FFFD, fonts, 32) == {}  # unmapped: nobody draws it
    assert glyph_fonts.drawn_by(ord(" "), fonts, 32) == {}  # mapped but empty bitmap
    drawn = glyph_fonts.drawn_by(ord("A"), fonts, 32)
    assert len(drawn) >= 20 and all(b.shape == (32, 32) and b.any() for b in drawn.values())


def test_system_fonts_are_used_when_installed_and_recorded(tmp_path, monkeypatch):
    fake_noto = tmp_path / "noto"
    fake_noto.mkdir()
    dejavu = next(p for p in glyph_fonts.font_files(False) if p.name == "DejaVuSans.ttf")
    (fake_noto / "NotoFake-Regular.ttf").write_bytes(dejavu.read_bytes())
    without = Glyphs(str(tmp_path), **TINY)
    monkeypatch.setattr(glyph_fonts, "NOTO_DIR", fake_noto)
    with_noto = Glyphs(str(tmp_path), **{**TINY, "per_class": 30})
    assert with_noto.fonts[-1].name == "NotoFake-Regular.ttf"
    assert Glyphs(str(tmp_path), **TINY).cache_path != without.cache_path
    info = with_noto.load()["train"].info
    assert "NotoFake-Regular.ttf" in info["fonts"] and info["noto_installed"]
    assert (
        "NotoFake-Regular.ttf"
        not in Glyphs(str(tmp_path), use_system_fonts=False, **TINY).load()["train"].info["fonts"]
    )


def test_too_many_classes_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="characters are drawn by at least 30 fonts"):
        Glyphs(str(tmp_path), n_classes=5, min_fonts=30, image_size=16).arrays()


def test_glyphs_deterministic_per_seed_and_cached(tmp_path):
    a = Glyphs(str(tmp_path / "a"), **TINY).arrays()
    b = Glyphs(str(tmp_path / "b"), **TINY).arrays()
    c = Glyphs(str(tmp_path / "c"), data_seed=1, **TINY).arrays()
    assert a["images"].dtype == np.uint8 and a["images"].shape == (32, 16, 16)
    assert np.array_equal(a["images"], b["images"])
    assert not np.array_equal(a["images"], c["images"])
    assert np.array_equal(a["codepoints"], c["codepoints"])  # same classes, other hands
    # per class, instances use distinct fonts while there are enough
    for k in range(TINY["n_classes"]):
        ids = a["font_ids"][a["labels"] == k]
        assert len(set(ids.tolist())) == min(TINY["per_class"], a["n_fonts_per_class"][k])
    src = Glyphs(str(tmp_path / "a"), **TINY)
    assert src.cache_path.is_file() and src.cache_path.parent.name == "glyphs"
    src.generate = lambda: pytest.fail("cache was not reused")
    assert np.array_equal(src.arrays()["images"], a["images"])
    other = Glyphs(str(tmp_path / "a"), **{**TINY, "per_class": 5})
    assert other.cache_path != src.cache_path


def test_glyph_splits_are_disjoint_halves_reindexed(tmp_path):
    splits = build_splits(make_opt(tmp_path), GREY)
    assert set(splits) == {"train", "train_eval", "test"}
    train, test = splits["train"], splits["test"]
    assert train.info["original_labels"] == [0, 1, 2, 3]
    assert test.info["original_labels"] == [4, 5, 6, 7]
    assert len(set(train.info["class_names"] + test.info["class_names"])) == 8
    for s in (train, test):
        assert s.labels.dtype == np.int64 and sorted(set(s.labels.tolist())) == [0, 1, 2, 3]
        assert np.bincount(s.labels).tolist() == [4] * 4
    assert np.array_equal(splits["train_eval"].labels, train.labels)
    img, label, idx = test[5]
    assert img.shape == (1, 16, 16) and img.dtype == torch.float32
    assert (label, idx) == (int(test.labels[5]), 5)
    assert train.info["fonts"] and isinstance(train.info["fonts"][0], str)
    assert json.loads(json.dumps(train.info))["n_classes"] == 4


def test_tv_split_by_classes_and_by_samples(tmp_path):
    s = build_splits(make_opt(tmp_path, use_tv_split=True), GREY)
    assert s["train"].info["original_labels"] == [0, 1, 2] and s["val"].info["original_labels"] == [
        3
    ]
    assert s["val"].info["class_names"][0].startswith("U+")
    assert s["val"].n_classes == 1 and len(s["val"]) == 4
    s = build_splits(make_opt(tmp_path, use_tv_split=True, tv_split_by_samples=True), GREY)
    assert s["train"].n_classes == s["val"].n_classes == 4
    assert np.bincount(s["train"].labels).tolist() == [3] * 4
    assert np.bincount(s["val"].labels).tolist() == [1] * 4
    train_imgs, val_imgs = s["train"].split.images, s["val"].split.images
    assert not any((v == t).all() for v in val_imgs for t in train_imgs)


def test_image_spec_channels_size_and_bgr(tmp_path):
    opt = make_opt(tmp_path)
    rgb = ImageSpec(size=24, channels=3, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    x = build_splits(opt, rgb)["test"][0][0]
    assert x.shape == (3, 24, 24) and torch.equal(x[0], x[1]) and x.min() >= 0 and x.max() <= 1
    # BN-Inception's convention: RGB mean/std on the 0-1 scale (std 1/255 gives 0-255), then BGR
    mean = (128 / 255, 117 / 255, 104 / 255)
    bgr = ImageSpec(size=24, channels=3, mean=mean, std=(1 / 255,) * 3, bgr_255=True)
    y = build_splits(opt, bgr)["test"][0][0]
    expected = ((x - torch.tensor(mean).view(3, 1, 1)) * 255).flip(0)
    assert torch.allclose(y, expected, atol=1e-3) and y.max() > 100
    red = torch.zeros(3, 8, 8, dtype=torch.uint8)
    red[0] = 255
    spec = ImageSpec(size=8, resize=8, mean=(0,) * 3, std=(1 / 255,) * 3, bgr_255=True)
    _, ev = build_transforms(spec, "base")
    out = ev(red)
    # red lands in the last channel (R of BGR)
    assert torch.allclose(out[2], torch.full((8, 8), 255.0)) and out[0].abs().max() < 1e-3
    _, ev = build_transforms(ImageSpec(size=8, resize=8, channels=1, mean=(0,), std=(1,)), "base")
    assert ev(red).shape == (1, 8, 8)


@pytest.mark.parametrize("aug", ["base", "adv", "big", "red"])
def test_augmentations_shapes_and_determinism(tmp_path, aug):
    spec = ImageSpec(size=14, channels=3)
    train = build_splits(make_opt(tmp_path, augmentation=aug), spec)["train"]
    side = 16 if aug == "big" else 14
    torch.manual_seed(3)
    a = train[2][0]
    torch.manual_seed(3)
    assert a.shape == (3, side, side) and torch.equal(a, train[2][0])


def test_glyph_training_never_flips():
    train_tf, _ = build_transforms(GREY, "red", allow_flip=False)
    assert not any("Flip" in type(t).__name__ for t in train_tf.transforms)
    train_tf, _ = build_transforms(GREY, "base", allow_flip=True)
    assert any("Flip" in type(t).__name__ for t in train_tf.transforms)


def test_unknown_augmentation_and_dataset_fail_early(tmp_path):
    with pytest.raises(ValueError, match="choose one of: base, adv, big, red"):
        build_splits(make_opt(tmp_path, augmentation="strong"), GREY)
    assert not (tmp_path / "glyphs").exists()
    with pytest.raises(RegistryError, match="glyphs"):
        build_splits(make_opt(tmp_path, dataset="mnist"), GREY)


# ----------------------------------------------------------------------------- file layouts


def png(path, value=0, size=(6, 5)):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0], 3), value, np.uint8)
    arr[0, 0] = (255, 0, 0)
    Image.fromarray(arr).save(path)
    return path


RGB8 = ImageSpec(size=8, resize=8)


def test_cub200_layout_split_by_class_number_and_hidden_files(tmp_path):
    for k in (10, 2, 1, 3):  # sorted by number, not by name ("10" < "2")
        for j in range(k % 3 + 1):
            png(tmp_path / "cub200/images" / f"{k:03d}.Bird_{k}" / f"im{j}.png", value=k)
    (tmp_path / "cub200/images/001.Bird_1/._im0.png").write_bytes(b"mac fork")
    s = build_splits(make_opt(tmp_path, "cub200"), RGB8)
    assert s["train"].info["class_names"] == ["001.Bird_1", "002.Bird_2"]
    assert s["test"].info["class_names"] == ["003.Bird_3", "010.Bird_10"]
    assert np.bincount(s["train"].labels).tolist() == [2, 3]
    assert np.bincount(s["test"].labels).tolist() == [1, 2]
    img, label, idx = s["test"][0]
    assert img.shape == (3, 8, 8) and (label, idx) == (0, 0)


def test_cars196_orders_by_folder_name(tmp_path):
    for name in ("Zeta car", "Alpha car", "Mid car", "Beta car"):
        png(tmp_path / "cars196/images" / name / "a.png")
    s = build_splits(make_opt(tmp_path, "cars196", use_tv_split=True, tv_split_perc=0.5), RGB8)
    assert s["train"].info["class_names"] == ["Alpha car"]
    assert s["val"].info["class_names"] == ["Beta car"]
    assert s["test"].info["class_names"] == ["Mid car", "Zeta car"]
    assert len(s["train"]) == len(s["val"]) == 1 and len(s["test"]) == 2


def test_missing_and_corrupt_images_fail_before_training_listing_all(tmp_path):
    with pytest.raises(
        DatasetError, match=r"expected .*cub200/images/<class folder>/<image files>"
    ):
        build_splits(make_opt(tmp_path, "cub200"), RGB8)
    for k in (1, 2):
        png(tmp_path / "cub200/images" / f"{k:03d}.B" / "ok.png")
    png(tmp_path / "cub200/images/Bird_without_number/a.png")
    with pytest.raises(DatasetError, match="'Bird_without_number' does not start with its number"):
        build_splits(make_opt(tmp_path, "cub200"), RGB8)
    (tmp_path / "cub200/images/Bird_without_number/a.png").unlink()
    (tmp_path / "cub200/images/Bird_without_number").rmdir()
    (tmp_path / "cub200/images/001.B/broken.jpg").write_bytes(b"not a jpeg at all")
    good = png(tmp_path / "cub200/images/002.B/cut.png", size=(40, 40)).read_bytes()
    (tmp_path / "cub200/images/002.B/cut.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "cub200/images/002.B/empty.png").write_bytes(b"")
    with pytest.raises(DatasetError) as err:
        build_splits(make_opt(tmp_path, "cub200"), RGB8)
    msg = str(err.value)
    assert "\n" not in msg and "3 of 5 image files" in msg
    assert "broken.jpg (unreadable" in msg and "cut.png (truncated)" in msg
    assert "empty.png (empty)" in msg


def test_online_products_official_files_and_categories(tmp_path):
    base = tmp_path / "online_products"
    rows = {
        "train": [
            (1, 1, 1, "bike_final/a.png"),
            (2, 1, 1, "bike_final/b.png"),
            (3, 2, 2, "chair_final/c.png"),
        ],
        "test": [(4, 3, 2, "chair_final/d.png"), (5, 4, 1, "bike_final/e.png")],
    }
    for split, items in rows.items():
        (base / "Info_Files").mkdir(parents=True, exist_ok=True)
        lines = ["image_id class_id super_class_id path"] + [" ".join(map(str, r)) for r in items]
        (base / "Info_Files" / f"Ebay_{split}.txt").write_text("\n".join(lines) + "\n")
        for r in items:
            png(base / "images" / r[3])
    s = build_splits(make_opt(tmp_path, "online_products"), RGB8)
    assert s["train"].labels.tolist() == [0, 0, 1] and s["train"].categories.tolist() == [0, 0, 1]
    assert s["test"].labels.tolist() == [0, 1] and s["test"].categories.tolist() == [1, 0]
    (base / "images/chair_final/d.png").unlink()
    with pytest.raises(DatasetError, match=r"d\.png \(missing\)"):
        build_splits(make_opt(tmp_path, "online_products"), RGB8)
    (base / "Info_Files/Ebay_test.txt").unlink()
    with pytest.raises(DatasetError, match=r"Ebay_test\.txt not found; expected"):
        build_splits(make_opt(tmp_path, "online_products"), RGB8)


def test_inshop_query_gallery_masks_and_categories(tmp_path):
    base = tmp_path / "inshop"
    rows = [
        ("img/WOMEN/Dresses/id_1/01.png", "id_1", "train"),
        ("img/WOMEN/Dresses/id_1/02.png", "id_1", "train"),
        ("img/MEN/Shirts/id_2/01.png", "id_2", "train"),
        ("img/MEN/Shirts/id_3/01.png", "id_3", "query"),
        ("img/MEN/Shirts/id_3/02.png", "id_3", "gallery"),
        ("img/WOMEN/Dresses/id_4/01.png", "id_4", "gallery"),
    ]
    base.mkdir()
    (base / "list_eval_partition.txt").write_text(
        f"{len(rows)}\nimage_name item_id evaluation_status\n"
        + "\n".join(" ".join(r) for r in rows)
    )
    for r in rows:
        png(base / r[0])
    s = build_splits(make_opt(tmp_path, "inshop"), RGB8)
    test = s["test"]
    assert s["train"].n_classes == 2 and s["train"].is_query is None
    assert test.is_query.tolist() == [True, False, False]
    assert test.is_gallery.tolist() == [False, True, True]
    assert test.labels.tolist() == [0, 0, 1]
    assert test.info["category_names"] == ["MEN/Shirts", "WOMEN/Dresses"]
    assert test.categories.tolist() == [0, 0, 1]
    assert json.loads(json.dumps(test.info))["class_names"] == ["id_3", "id_4"]
    (base / "list_eval_partition.txt").write_text("2\nimage item status\na b train\n")
    with pytest.raises(DatasetError, match="not in the expected format; expected"):
        build_splits(make_opt(tmp_path, "inshop"), RGB8)


def test_csv_format_with_bbox_category_and_errors(tmp_path):
    png(tmp_path / "imgs/a.png", size=(20, 10))
    for name in "bcde":
        png(tmp_path / f"imgs/{name}.png", size=(12, 12))
    (tmp_path / "df.csv").write_text(
        "label,path,split,is_query,is_gallery,category,x_1,x_2,y_1,y_2\n"
        "7,imgs/a.png,train,,,shoes,2,6,1,9\n"
        "7,imgs/b.png,train,,,shoes,,,,\n"
        "9,imgs/c.png,train,,,bags,,,,\n"
        "3,imgs/d.png,validation,True,True,bags,,,,\n"
        "3,imgs/e.png,validation,0,1,shoes,,,,\n"
    )
    s = build_splits(make_opt(tmp_path, "csv"), ImageSpec(size=4, resize=4))
    train, test = s["train"], s["test"]
    assert train.labels.tolist() == [0, 0, 1] and train.info["original_labels"] == [7, 9]
    assert (
        train.split.boxes[0].tolist() == [2, 1, 6, 9] and train.split.boxes[1].tolist() == [-1] * 4
    )
    from datasets.image_files import read_item

    assert read_item(train.split, 0).shape == (3, 8, 4)
    assert test.is_query.tolist() == [True, False] and test.is_gallery.tolist() == [True, True]
    assert train.categories.tolist() == [1, 1, 0] and test.info["category_names"] == [
        "bags",
        "shoes",
    ]
    json.dumps(test.info)
    (tmp_path / "bad.csv").write_text("label,path,split\n1,imgs/a.png,train\n")
    with pytest.raises(DatasetError, match="missing columns is_query, is_gallery"):
        build_splits(make_opt(tmp_path, "csv", dataset_csv_file="bad.csv"), RGB8)
    (tmp_path / "bad.csv").write_text(
        "label,path,split,is_query,is_gallery\n1,imgs/a.png,test,1,1\n"
    )
    with pytest.raises(DatasetError, match="split must be 'train' or 'validation'"):
        build_splits(make_opt(tmp_path, "csv", dataset_csv_file="bad.csv"), RGB8)


def write_idx(path, arr, dtype_code=0x08, compress=False):
    data = struct.pack(">HBB", 0, dtype_code, arr.ndim) + struct.pack(f">{arr.ndim}i", *arr.shape)
    data += arr.astype(">u1" if dtype_code == 0x08 else ">i4").tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def test_idx_reader_and_fashion_mnist_class_split(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (3, 4, 5)).astype(np.uint8)
    write_idx(tmp_path / "x.idx", arr)
    write_idx(tmp_path / "y.idx.gz", np.arange(6).reshape(2, 3), dtype_code=0x0C, compress=True)
    from datasets.fashion_mnist import read_idx

    assert np.array_equal(read_idx(tmp_path / "x.idx"), arr)
    assert read_idx(tmp_path / "y.idx.gz").tolist() == [[0, 1, 2], [3, 4, 5]]
    (tmp_path / "z.idx").write_bytes(b"\0\0\x08\x01" + struct.pack(">i", 9) + b"abc")
    with pytest.raises(DatasetError, match="holds 3 values"):
        read_idx(tmp_path / "z.idx")
    folder = tmp_path / "fm"
    folder.mkdir()
    for stem, n, gz in (("train", 20, True), ("t10k", 10, False)):
        labels = np.arange(n) % 10
        write_idx(
            folder / f"{stem}-images-idx3-ubyte{'.gz' * gz}",
            rng.integers(0, 255, (n, 28, 28)),
            compress=gz,
        )
        write_idx(folder / f"{stem}-labels-idx1-ubyte{'.gz' * gz}", labels, compress=gz)
    s = build_splits(
        make_opt(tmp_path, "fashion_mnist", dataset_fashion_mnist_path=str(folder)), GREY
    )
    assert len(s["train"]) == len(s["test"]) == 15
    assert s["train"].info["original_labels"] == [0, 1, 2, 3, 4]
    assert s["test"].info["original_labels"] == [5, 6, 7, 8, 9]
    assert s["test"][0][0].shape == (1, 16, 16)
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte .*not found"):
        (folder / "t10k-labels-idx1-ubyte").unlink()
        build_splits(
            make_opt(tmp_path, "fashion_mnist", dataset_fashion_mnist_path=str(folder)), GREY
        )


def test_fashion_mnist_is_found_in_debians_folder_without_a_path(tmp_path, monkeypatch):
    import datasets.fashion_mnist as fm

    debian = tmp_path / "usr_share_datasets_fashion-mnist"
    debian.mkdir()
    rng = np.random.default_rng(1)
    for stem, n in (("train", 10), ("t10k", 10)):
        write_idx(
            debian / f"{stem}-images-idx3-ubyte.gz",
            rng.integers(0, 255, (n, 28, 28)),
            compress=True,
        )
        write_idx(debian / f"{stem}-labels-idx1-ubyte.gz", np.arange(n) % 10, compress=True)
    monkeypatch.setattr(fm, "DEBIAN_FOLDER", debian)
    s = build_splits(make_opt(tmp_path / "elsewhere", "fashion_mnist"), GREY)
    assert len(s["train"]) == len(s["test"]) == 10
    assert s["train"].info["files"]["train-images-idx3-ubyte"].startswith(str(debian))


def test_every_registered_dataset_documents_its_flags():
    for name in DATASETS.names():
        for p in DATASETS.params(name):
            assert p.flag.startswith(f"--dataset_{name}_") and p.help, (name, p.name)
    assert set(DATASETS.names()) >= {
        "glyphs",
        "cub200",
        "cars196",
        "online_products",
        "inshop",
        "csv",
        "fashion_mnist",
    }
    assert datasets.DATASETS is DATASETS


# ----------------------------------------------------------------------------- rotation classes


def test_rotation_classes_are_rotated_copies_with_joint_labels():
    from datasets.base import DMLDataset, Split
    from datasets.image_files import read_item
    from datasets.rotation_classes import RotationClasses

    rng = np.random.default_rng(0)
    split = Split(
        labels=np.array([7, 7, 9]),
        images=rng.integers(0, 256, (3, 5, 5), np.uint8),
        categories=np.array([1, 1, 0]),
    )
    base = DMLDataset(split, lambda x: x, read_item)
    rot = RotationClasses(base, 4)
    assert len(rot) == 12 and rot.n_classes == 8
    assert rot.labels.tolist() == [0, 0, 4, 1, 1, 5, 2, 2, 6, 3, 3, 7]  # class · 4 + rotation
    assert rot.categories.tolist() == [1, 1, 0] * 4 and rot.is_query is None
    for r in range(4):
        for j in range(3):
            image, label, index = rot[r * 3 + j]
            assert (label, index) == (int(rot.labels[r * 3 + j]), r * 3 + j)
            expected = np.rot90(split.images[j], r)  # counter-clockwise quarter turns
            assert torch.equal(image[0], torch.from_numpy(expected.copy()))
    half = RotationClasses(base, 2)
    assert half.labels.tolist() == [0, 0, 2, 1, 1, 3]
    assert torch.equal(half[4][0][0], torch.from_numpy(split.images[1][::-1, ::-1].copy()))
    assert rot.info["rotation_classes"] == 4 and rot.info["n_classes"] == 8
    with pytest.raises(
        ValueError, match="--rotation_classes 3 is not allowed; choose one of: 1, 2, 4"
    ):
        RotationClasses(base, 3)


def test_rotation_classes_wrap_only_the_training_split(tmp_path):
    plain = build_splits(make_opt(tmp_path), GREY)
    s = build_splits(make_opt(tmp_path, rotation_classes=4), GREY)
    assert len(s["train"]) == 4 * len(plain["train"]) and s["train"].n_classes == 4 * 4
    for name in ("train_eval", "test"):
        assert s[name].labels.tolist() == plain[name].labels.tolist()
    store = datasets.train_items_with_eval_transforms(s)
    assert store.labels.tolist() == s["train"].labels.tolist()
    n = len(plain["train"])
    image = store[2 * n + 1][0]  # item 1 turned by 180 degrees
    assert torch.equal(image, plain["train_eval"][1][0].flip(-1).flip(-2))
    assert datasets.train_items_with_eval_transforms(plain) is plain["train_eval"]
