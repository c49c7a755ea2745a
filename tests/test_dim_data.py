"""DIM training/validation data: determinism, backgrounds, crops around unknown pixels, trimaps."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mattecli.data.composite import composite_uint8, fit_background
from mattecli.data.sources import MattingSample, MattingSource, check_files, crop_around, find_samples
from mattecli.families.dim.data import DIMTrainDataset, DIMValDataset
from mattecli.data.manifest import Record, write_manifest
from mattecli.data.samples import write_samples
from mattecli.data.trimap import TrimapSpec
from mattecli.errors import BadInput
from mattecli.io.images import read_alpha, read_rgb, write_image
from mattecli.families.dim.family import FAMILY

SMALL_TRIMAP = TrimapSpec(kernel=(2, 3), iterations=(1, 3))


@pytest.fixture(scope="module")
def samples_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("samples")
    write_samples(root, seed=1, foregrounds=3, backgrounds=4, size=(96, 80))
    return root


@pytest.fixture(scope="module")
def compose_dir(samples_dir, tmp_path_factory):
    """A minimal compose-style dataset: manifest + merged images + trimap files."""
    root = tmp_path_factory.mktemp("composed")
    records = []
    fgs = sorted((samples_dir / "fg").glob("*.png"))
    bgs = sorted((samples_dir / "bg").glob("*.jpg"))
    for i, fg_path in enumerate(fgs):
        fg, alpha = read_rgb(fg_path), read_alpha(samples_dir / "alpha" / fg_path.name)
        bg = fit_background(read_rgb(bgs[i]), alpha.shape[1], alpha.shape[0])
        for sub, arr in (("fg", fg), ("alpha", alpha), ("bg", bg)):
            write_image(root / sub / f"{fg_path.stem}_0.png", arr)
        write_image(root / "merged" / f"{fg_path.stem}_0.png", composite_uint8(fg, alpha, bg))
        trimap = np.full(alpha.shape, 127, np.uint8)  # an editor's 127 must still read as unknown
        trimap[alpha == 0] = 0
        trimap[alpha == 255] = 250
        write_image(root / "trimaps" / f"{fg_path.stem}_0.png", trimap)
        name = f"{fg_path.stem}_0.png"
        records.append(Record(alpha_path=f"alpha/{name}", fg_path=f"fg/{name}", bg_path=f"bg/{name}",
                              merged_path=f"merged/{name}", trimap_path=f"trimaps/{name}"))
    write_manifest(root, records)
    return root


def _train_set(root, seed=0, **kw) -> DIMTrainDataset:
    kw.setdefault("crop_sizes", (48, 64, 96))
    kw.setdefault("input_size", 48)
    kw.setdefault("trimap_spec", SMALL_TRIMAP)
    return DIMTrainDataset(find_samples(root), seed=seed, **kw)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_items_are_dicts_of_tensors_with_the_documented_layout(compose_dir):
    item = _train_set(compose_dir)[0]
    assert item["image"].shape == (3, 48, 48) and item["image"].dtype == torch.float32
    assert item["fg"].shape == item["bg"].shape == (3, 48, 48)
    assert item["alpha"].shape == (1, 48, 48) and item["alpha"].dtype == torch.float32
    assert item["trimap"].shape == (1, 48, 48) and item["trimap"].dtype == torch.uint8
    for key in ("image", "alpha", "fg", "bg"):
        assert 0 <= float(item[key].min()) and float(item[key].max()) <= 1
    # the image is the float composite of the item's own parts
    expected = item["alpha"] * item["fg"] + (1 - item["alpha"]) * item["bg"]
    assert torch.allclose(item["image"], expected, atol=1e-6)


def test_same_seed_epoch_index_gives_the_same_sample_in_any_order(compose_dir):
    a, b = _train_set(compose_dir, seed=7), _train_set(compose_dir, seed=7)
    a.set_epoch(3)
    b.set_epoch(3)
    forward = [a[i] for i in range(len(a))]
    backward = [b[i] for i in reversed(range(len(b)))][::-1]
    assert all(_same(x, y) for x, y in zip(forward, backward))
    c = _train_set(compose_dir, seed=8)
    c.set_epoch(3)
    assert not _same(forward[0], c[0])


def test_worker_processes_give_the_same_samples(compose_dir):
    ds = _train_set(compose_dir, seed=2)
    ds.set_epoch(1)
    direct = [ds[i] for i in range(len(ds))]
    loader = DataLoader(ds, batch_size=1, num_workers=2, shuffle=False)
    for got, want in zip(loader, direct):
        assert _same({k: v[0] for k, v in got.items()}, want)


def test_a_new_background_from_the_pool_each_epoch(tmp_path, samples_dir):
    # flat-coloured backgrounds, so a sample's background colour says which one was drawn
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    for i, c in enumerate(colours):
        write_image(tmp_path / "pool" / f"bg{i}.png", np.full((70, 90, 3), c, np.uint8))
    source = find_samples(samples_dir, backgrounds=tmp_path / "pool")
    ds = DIMTrainDataset(source, seed=0, crop_sizes=(48,), input_size=48, trimap_spec=SMALL_TRIMAP)
    drawn = {}
    for epoch in range(6):
        ds.set_epoch(epoch)
        for index in range(len(ds)):
            bg = ds[index]["bg"]
            colour = tuple(int(round(float(v) * 255)) for v in bg[:, 0, 0])
            assert torch.all(bg == bg[:, :1, :1])  # one background, not a mixture
            assert colour in colours
            drawn[(epoch, index)] = colour
    for index in range(len(ds)):
        assert len({drawn[(e, index)] for e in range(6)}) > 1  # changes across epochs
    assert len(set(drawn.values())) == len(colours)  # the whole pool is used


def test_crop_around_centres_on_an_unknown_pixel():
    unknown = np.zeros((100, 120), bool)
    unknown[40, 50] = True
    rng = np.random.default_rng(0)
    assert crop_around(unknown, 20, rng) == (30, 40)
    unknown[:] = False
    unknown[2, 117] = True  # near a corner: the crop is kept inside the image
    assert crop_around(unknown, 20, rng) == (0, 100)
    band = np.zeros((100, 120), bool)
    band[:, 60:63] = True
    for seed in range(20):
        top, left = crop_around(band, 32, np.random.default_rng(seed))
        assert band[top + 16, left + 16] or top in (0, 100 - 32)
        assert 0 <= top <= 68 and 0 <= left <= 88


def test_training_crops_are_centred_on_the_unknown_band(tmp_path):
    # a straight vertical edge: every unknown pixel lies in the columns around x = 100, so a
    # crop centred on one (clipped only vertically) has the unknown band in its centre column
    alpha = np.zeros((160, 200), np.uint8)
    alpha[:, 100:] = 255
    alpha[:, 99] = 128
    write_image(tmp_path / "fg" / "edge.png", np.full((160, 200, 3), 200, np.uint8))
    write_image(tmp_path / "alpha" / "edge.png", alpha)
    write_image(tmp_path / "bg" / "b.png", np.zeros((160, 200, 3), np.uint8))
    ds = DIMTrainDataset(find_samples(tmp_path), seed=0, crop_sizes=(64,), input_size=64, flip=False,
                         trimap_spec=SMALL_TRIMAP)
    for epoch in range(8):
        ds.set_epoch(epoch)
        trimap = ds[0]["trimap"][0].numpy()
        assert np.all(trimap[:, 32] == 128)


def test_trimap_values_and_coverage(compose_dir):
    ds = _train_set(compose_dir, crop_sizes=(48,), input_size=48)  # no resize: exact relation to alpha
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            trimap, alpha = item["trimap"][0], item["alpha"][0]
            assert set(trimap.unique().tolist()) <= {0, 128, 255}
            fractional = (alpha > 0) & (alpha < 1)
            assert torch.all(trimap[fractional] == 128)
            assert torch.all(alpha[trimap == 255] == 1) and torch.all(alpha[trimap == 0] == 0)


def test_small_images_are_scaled_up_for_large_crops(samples_dir):
    ds = DIMTrainDataset(find_samples(samples_dir), seed=0, crop_sizes=(200,), input_size=64,
                         trimap_spec=SMALL_TRIMAP)
    item = ds[0]
    assert item["image"].shape == (3, 64, 64)
    assert set(item["trimap"].unique().tolist()) <= {0, 128, 255}


def test_validation_uses_the_datasets_merged_images_and_trimaps(compose_dir):
    val = DIMValDataset(find_samples(compose_dir), seed=0)
    name = "sample_00_0.png"
    item = val[0]
    merged = read_rgb(compose_dir / "merged" / name)
    assert torch.equal(item["image"], torch.from_numpy(merged).permute(2, 0, 1).float() / 255)
    file_trimap = read_alpha(compose_dir / "trimaps" / name)
    expected = np.where(file_trimap == 127, 128, np.where(file_trimap == 250, 255, file_trimap))
    assert np.array_equal(item["trimap"][0].numpy(), expected)
    assert _same(item, DIMValDataset(find_samples(compose_dir), seed=5)[0])  # fixed, whatever the seed


def test_validation_without_files_is_fixed_and_can_crop(samples_dir):
    a = DIMValDataset(find_samples(samples_dir), seed=4, trimap_spec=SMALL_TRIMAP)
    b = DIMValDataset(find_samples(samples_dir), seed=4, trimap_spec=SMALL_TRIMAP)
    assert all(_same(a[i], b[i]) for i in range(len(a)))
    whole = a[1]
    alpha = read_alpha(sorted((samples_dir / "alpha").glob("*.png"))[1])
    assert whole["alpha"].shape[1:] == alpha.shape  # whole image by default
    cropped = DIMValDataset(find_samples(samples_dir), seed=4, crop=32, trimap_spec=SMALL_TRIMAP)[1]
    assert cropped["image"].shape == (3, 32, 32)
    assert (cropped["trimap"] == 128).any()  # centred on an unknown pixel of the fixed trimap


def test_family_builds_both_datasets_from_a_recipe(compose_dir):
    recipe = {"crop_sizes": [48], "input_size": 48, "trimap_kernel": [2, 3], "trimap_iterations": [1, 2],
              "val_crop": 32, "stage": "encoder"}
    train = FAMILY.train_dataset(recipe, str(compose_dir), 0)
    assert train[0]["image"].shape == (3, 48, 48) and train.trimap_spec == TrimapSpec((2, 3), (1, 2))
    val = FAMILY.val_dataset(recipe, str(compose_dir), 0)
    assert val[0]["image"].shape == (3, 32, 32)


def test_bad_inputs_are_named(tmp_path, samples_dir):
    with pytest.raises(BadInput, match="neither a compose dataset"):
        find_samples(tmp_path)
    write_image(tmp_path / "fg" / "a.png", np.zeros((20, 30, 3), np.uint8))
    write_image(tmp_path / "alpha" / "a.png", np.zeros((20, 31), np.uint8))
    with pytest.raises(BadInput, match="no background"):
        find_samples(tmp_path)
    write_image(tmp_path / "bg" / "b.jpg", np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(BadInput, match=r"alpha.*a\.png.*31x20"):
        check_files(find_samples(tmp_path))
    (tmp_path / "bg" / "b.jpg").write_bytes((tmp_path / "bg" / "b.jpg").read_bytes()[:-40])
    write_image(tmp_path / "alpha" / "a.png", np.zeros((20, 30), np.uint8))
    with pytest.raises(BadInput, match=r"b\.jpg.*truncated"):
        check_files(find_samples(tmp_path))
    src = MattingSource([MattingSample("x", tmp_path / "fg" / "a.png", tmp_path / "alpha" / "missing.png")], [])
    with pytest.raises(BadInput, match="missing.png"):
        check_files(src)
