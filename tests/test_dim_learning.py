"""DIM learns the task (issue 23): with the dim-quick recipe at test size, the training loss on a varied set
(other backgrounds, crops, trimaps and flips every step) falls by a clear factor, and a network whose RGB
input is zeroed (it sees the trimap only) ends measurably worse than the seeing one after the same steps:
the seeing network uses the image, not only the trimap's geometry. The held-out comparison at the recipe's
real scale is benchmarks/bench_train_dim.py (BENCHMARKS.md, "DIM learns the task")."""
from __future__ import annotations

import numpy as np
import pytest

from mattecli.data.samples import write_samples
from mattecli.families.dim.model import DeepImageMatting
from mattecli.train.engine import train
from mattecli.families.registry import get_family  # noqa: E402
from mattecli.train.logging import read_log
from mattecli.train.recipe import load_recipe

STEPS = 150
#: dim-quick at test size: 64 px crops of 96 px samples, trimap bands scaled to them, a constant lr
TEST_SIZE = {"input_size": 64, "crop_sizes": [64], "trimap_iterations": [3, 12], "lr_schedule": "constant",
             "workers": 0, "val_every": 0, "checkpoint_every": 0, "log_every": 1, "iters": STEPS, "stages": {}}


@pytest.fixture(scope="module")
def varied(tmp_path_factory):
    root = tmp_path_factory.mktemp("varied")
    write_samples(root, seed=7, foregrounds=8, backgrounds=8, size=(96, 96))  # fg/, alpha/, bg/
    return root


def alpha_losses(run, data) -> np.ndarray:
    """The training alpha loss of every step of dim-quick's encoder stage at test size."""
    train(get_family("dim"), {**load_recipe("dim-quick"), **TEST_SIZE}, data, run, stage="encoder", device="cpu",
          show_progress=False)
    return np.array([r["alpha"] for r in read_log(run / "encoder" / "log.jsonl") if r["kind"] == "train"])


@pytest.fixture(scope="module")
def seeing(varied, tmp_path_factory):
    return alpha_losses(tmp_path_factory.mktemp("seeing") / "run", varied)


def test_training_loss_falls_on_a_varied_set(seeing):
    assert len(seeing) == STEPS
    first, last = seeing[:15].mean(), seeing[-15:].mean()
    # Every step draws other samples, so the fall is a trend, not one batch memorised. Measured (means of
    # steps 1-15 and 136-150): 0.379 -> 0.159 (0.42) at OMP_NUM_THREADS=1, 0.380 -> 0.158 (0.42) at 2; bound 0.5.
    assert last < 0.5 * first, (first, last)


def test_a_blind_network_does_worse_than_the_seeing_one(seeing, varied, tmp_path, monkeypatch):
    own = DeepImageMatting.prepare_input
    monkeypatch.setattr(DeepImageMatting, "prepare_input", lambda self, image, trimap: own(self, image * 0, trimap))
    blind = alpha_losses(tmp_path / "run", varied)
    # Same seed, samples, crops, trimaps and steps; only the RGB input differs. The blind network learns the
    # trimap's geometry (its loss stalls near 0.21 from step ~90) and no further. Measured (means of the last
    # 30 steps): seeing 0.160, blind 0.212 (0.76) at OMP_NUM_THREADS=1, 0.165 and 0.205 (0.80) at 2; bound 0.9.
    assert seeing[-30:].mean() < 0.9 * blind[-30:].mean(), (seeing[-30:].mean(), blind[-30:].mean())
