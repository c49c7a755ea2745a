"""Recipes: the bundled files, overrides from the command line, per-stage tables."""
from __future__ import annotations

import pytest

from mattecli.errors import BadInput, MatteError
from mattecli.train.recipe import (ENGINE_DEFAULTS, apply_overrides, build_recipe, load_recipe, parse_value,
                                   stage_recipe)


def test_bundled_dim_recipe_holds_the_published_hyperparameters():
    r = load_recipe("dim")
    assert (r["optimizer"], r["lr"], r["batch_size"], r["iters"], r["val_every"]) == ("adam", 1e-5, 1, 1_000_000, 40_000)
    assert r["crop_sizes"] == [320, 480, 640] and r["input_size"] == 320 and r["loss_weight_alpha"] == 0.5
    assert set(r["stages"]) == {"encoder", "refine", "joint"}
    for stage in r["stages"]:
        flat = stage_recipe(r, stage)
        assert flat["stage"] == stage and flat["iters"] == 1_000_000 and flat["lr_schedule"] == "constant"


def test_quick_recipe_is_small_and_valid():
    r = load_recipe("dim-quick")
    flats = [stage_recipe(r, s) for s in ("encoder", "refine", "joint")]
    assert all(f["input_size"] % 32 == 0 and f["iters"] <= 1000 for f in flats)


@pytest.mark.parametrize("text, value", [("1e-4", 1e-4), ("3", 3), ("true", True), ("[320, 480]", [320, 480]),
                                         ('"x y"', "x y"), ("3x3", "3x3"), ("cuda:1", "cuda:1")])
def test_values_parse_as_toml_or_stay_text(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_overrides_precedence_and_stage_tables():
    base = {"lr": 1e-5, "iters": 10, "stages": {"refine": {"iters": 5}}}
    r = apply_overrides(base, ["lr=2e-4", "stages.joint.lr=1e-6", "conv6=3x3"])
    assert base["lr"] == 1e-5  # the input is not modified
    assert stage_recipe(r, "encoder")["lr"] == 2e-4 and stage_recipe(r, "joint")["lr"] == 1e-6
    assert stage_recipe(r, "refine")["iters"] == 5 and stage_recipe(r, "encoder")["iters"] == 10
    assert stage_recipe(r, "encoder")["conv6"] == "3x3"
    assert stage_recipe({}, "x")["batch_size"] == ENGINE_DEFAULTS["batch_size"]
    with pytest.raises(MatteError, match="key=value"):
        apply_overrides(base, ["lr"])
    with pytest.raises(MatteError, match="is a value"):
        apply_overrides(base, ["lr.x=1"])


def test_named_flags_win_over_set_and_reach_every_stage():
    r = build_recipe("dim-quick", ["iters=7", "lr=3e-4"], {"iters": 9, "batch_size": None, "seed": 4})
    assert [stage_recipe(r, s)["iters"] for s in ("encoder", "refine", "joint")] == [9, 9, 9]
    assert r["lr"] == 3e-4 and r["seed"] == 4 and r["batch_size"] == load_recipe("dim-quick")["batch_size"]


@pytest.mark.parametrize("key, value, message", [("optimizer", "lbfgs", "optimizer"), ("batch_size", 0, "batch_size"),
                                                 ("iters", 2.5, "iters"), ("amp", "fp8", "amp"), ("lr", -1, "lr"),
                                                 ("workers", -1, "workers"), ("betas", 3, "betas"),
                                                 ("betas", [0.9, 1.5], "betas"), ("weight_decay", "x", "weight_decay"),
                                                 ("grad_clip", -1.0, "grad_clip")])
def test_bad_values_name_the_key(key, value, message):
    with pytest.raises(MatteError, match=message):
        stage_recipe({key: value}, "encoder")


def test_missing_and_malformed_recipe_files(tmp_path):
    with pytest.raises(BadInput, match="recipe not found"):
        load_recipe(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = = 3\n")
    with pytest.raises(BadInput, match="not a valid TOML"):
        load_recipe(bad)


@pytest.mark.parametrize("key, value", [("conv6", "5x5"), ("crop_sizes", "abc"), ("crop_sizes", [0, 320]),
                                        ("input_size", 0), ("trimap_kernel", [0, 3]), ("trimap_iterations", [6, 2]),
                                        ("flip", "maybe"), ("val_crop", -1), ("loss_weight_alpha", 2.0),
                                        ("batch_norm", 1)])
def test_bad_family_values_name_the_key(key, value):
    """The DIM family checks its own keys before anything is built (was a ValueError/TypeError traceback)."""
    from mattecli.families.dim.family import FAMILY

    with pytest.raises(MatteError, match=f"recipe key {key} = "):
        FAMILY.model_config(stage_recipe({key: value}, "encoder"))
    FAMILY.model_config(stage_recipe(load_recipe("dim"), "encoder"))  # the bundled recipes pass
    FAMILY.model_config(stage_recipe(load_recipe("dim-quick"), "joint"))
