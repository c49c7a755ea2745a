"""Issue 18: `train` and `eval --simulate-clicks` used carelessly. Each test reproduces a probe that
failed (another family's best.pt replaced, a batch-norm traceback, a NaN or unknown recipe key
accepted silently, a 30 GB sample size tried, a billion clicks) and checks the one-line refusal."""
from __future__ import annotations

from pathlib import Path

import pytest

from mattecli.io.checkpoint import save_checkpoint
from test_hostile_weights import error_line, run
from test_shm_train import TINY_SET, datasets  # noqa: F401 - datasets: the tiny compose data fixture


@pytest.fixture(scope="module")
def dataset(datasets) -> Path:
    return datasets["train"]


def tiny_shm(*extra: str) -> list[str]:
    return ["--recipe", "shm-quick", "--device", "cpu", "--no-progress", *[a for kv in TINY_SET for a in ("--set", kv)],
            *extra]


# --- 4. one family per run folder ------------------------------------------------------------------------------------
def test_training_another_family_into_a_run_folder_is_refused(tmp_path, capsys, monkeypatch, dataset):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_checkpoint(run_dir / "best.pt", {"family": "dim", "model_config": {}, "model": {}})
    before = (run_dir / "best.pt").read_bytes()
    code, text = run(capsys, monkeypatch, "train", "shm", "--data", dataset, "--out", run_dir, "--iters", "1",
                     *tiny_shm())
    assert code == 2 and "holds a 'dim' run" in error_line(text)
    assert (run_dir / "best.pt").read_bytes() == before
    # --resume on a run of another family's stages
    other = tmp_path / "bgm_run"
    (other / "adobe").mkdir(parents=True)
    save_checkpoint(other / "adobe" / "last.pt", {"family": "bgm", "model_config": {}, "model": {}})
    code, text = run(capsys, monkeypatch, "train", "shm", "--data", dataset, "--out", other, "--iters", "1", "--resume",
                     *tiny_shm())
    assert code == 2 and "stage(s) adobe" in error_line(text)
    assert sorted(p.name for p in other.iterdir()) == ["adobe"]


# --- 10. tracebacks become one line -------------------------------------------------------------------------------------
def test_batch_size_one_on_a_batch_norm_network_is_one_line(tmp_path, capsys, monkeypatch, dataset):
    code, text = run(capsys, monkeypatch, "train", "shm", "--data", dataset, "--out", tmp_path / "r", "--iters", "1",
                     "--stage", "tnet", *tiny_shm("--batch-size", "1"))
    assert code == 2 and "--batch-size 2 or more" in error_line(text)


@pytest.mark.parametrize("assignment,words", [
    ("lr=nan", "lr = nan: expected a positive finite number"),
    ("lr=abc", "lr = 'abc'"),
    ("lr=-1", "lr = -1"),
    ("grad_clip=inf", "grad_clip = inf"),
    ("full_size=100000", "above --max-pixels"),
    ("lrr=1e-4", "unknown recipe key 'lrr' for shm; did you mean 'lr'?"),
    ("stages.e2f.iters=3", "unknown stage 'stages.e2f'"),
    ("stages.e2e.itres=3", "did you mean 'iters'?"),
    ("mnet_input=sharp", "mnet_input = 'sharp': expected one of trimap, tnet"),
    ("tnet_depth=101", "tnet_depth = 101: expected one of 18, 34, 50"),
], ids=["lr-nan", "lr-abc", "lr-negative", "grad_clip-inf", "full_size-huge", "unknown-key", "unknown-stage",
        "unknown-stage-key", "mnet_input", "tnet_depth"])
def test_bad_recipe_settings_are_refused_before_training(tmp_path, capsys, monkeypatch, dataset, assignment, words):
    code, text = run(capsys, monkeypatch, "train", "shm", "--data", dataset, "--out", tmp_path / "r",
                     *tiny_shm("--set", assignment))
    assert code == 2 and words in error_line(text)
    assert not (tmp_path / "r").exists()


def test_unknown_keys_in_a_recipe_file_name_the_file(tmp_path, capsys, monkeypatch, dataset):
    recipe = tmp_path / "mine.toml"
    recipe.write_text('family = "shm"\nlearning_rate = 1e-3\n')
    code, text = run(capsys, monkeypatch, "train", "shm", "--data", dataset, "--out", tmp_path / "r", "--recipe", recipe)
    assert code == 2 and "mine.toml" in error_line(text) and "unknown recipe key 'learning_rate'" in text


def test_a_global_set_that_stages_override_applies_and_says_so():
    from mattecli.families.registry import get_family
    from mattecli.train.recipe import build_recipe, stage_recipe

    notes: list[str] = []
    recipe = build_recipe("shm-quick", ["lr=2e-4"], {}, get_family("shm"), notes)
    assert [stage_recipe(recipe, s)["lr"] for s in ("tnet", "mnet", "e2e")] == [2e-4] * 3
    assert len(notes) == 1 and "tnet, mnet, e2e" in notes[0] and "stages.<stage>.lr" in notes[0]
    recipe = build_recipe("shm-quick", ["lr=2e-4", "stages.e2e.lr=1e-5"], {}, get_family("shm"), [])
    assert stage_recipe(recipe, "e2e")["lr"] == 1e-5 and stage_recipe(recipe, "tnet")["lr"] == 2e-4


# --- 9. simulated clicks are bounded ------------------------------------------------------------------------------------
def test_simulate_clicks_is_bounded(tmp_path, capsys, monkeypatch, dataset):
    code, text = run(capsys, monkeypatch, "eval", "--data", dataset, "--simulate-clicks", "1000000000")
    assert code == 2 and "--simulate-clicks 1000000000: at most 1000" in error_line(text)


def test_the_bundled_recipes_pass_the_key_check():
    from mattecli.families.registry import get_family
    from mattecli.train.recipe import RECIPES_DIR, build_recipe

    for path in sorted(RECIPES_DIR.glob("*.toml")):
        family = path.stem.split("-")[0]
        build_recipe(path.stem, [], {}, get_family(family), [])  # raises on a key the family does not know
