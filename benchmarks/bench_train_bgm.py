"""Evidence that Background Matting training learns: bgm-quick on held-out procedural data.

    python benchmarks/bench_train_bgm.py --out /tmp/bench-bgm [--iters 150] [--device cpu]

Train / val / test compose datasets with plates (``benchmarks/heldout.py``, ``make_splits(...,
plates=True)``: fresh procedural foregrounds and backgrounds per split, composites made with
``compose``'s default trimap options), the ``bgm-quick``
recipe's ``adobe`` stage on ``train``, best.pt chosen by validation SAD on ``val``, scored on
``test`` (each composite with its perturbed plate B' from ``compose --plates``), same run:

- bgm-quick untrained (the seeded initialisation the run starts from) and trained (best.pt),
  both through ``predict`` (the official recipe: subject crop from the default S, which is
  derived from the plate difference; M = four copies of the grey image);
- the weights-free plate method (``mattecli video``'s default, no weights);
- the crude difference key clip((max_c |I - B'| - t) / w) with t = 6, w = 20, and the same key
  tuned per composite on its own ground truth over a small grid (t in 2, 4, 6, 10, 16, 24;
  w in 10, 20, 40): an oracle no user has, the strongest form of the blind-to-content key;
- a constant alpha (the training alphas' mean), which never looks at the image.

Scored on the whole image (the trimap-free convention) and on the trimap's unknown band
(without pasting known regions: none of these methods sees a trimap). Prints markdown
tables and the training throughput.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from heldout import SplitSizes, load_items, make_splits, markdown_table, score
from mattecli.families.registry import build_model, get_family, load_model
from mattecli.inference.plate import PlateMatting
from mattecli.seeding import derive_seed
from mattecli.train.engine import _seed_everything, train
from mattecli.train.recipe import build_recipe, stage_recipe


def crude_key(image: np.ndarray, plate: np.ndarray) -> np.ndarray:
    diff = np.abs(image.astype(np.int16) - plate.astype(np.int16)).max(axis=2).astype(np.float32)
    return np.clip((diff - 6.0) / 20.0, 0.0, 1.0)


KEY_THRESHOLDS = (2.0, 4.0, 6.0, 10.0, 16.0, 24.0)
KEY_WIDTHS = (10.0, 20.0, 40.0)
#: ``mattecli compose``'s default --trimap-iterations
COMPOSE_DEFAULT_ITERATIONS = "5-15"


def tuned_key(item) -> np.ndarray:
    """The crude key with the (threshold, width) of the grid that scores best on this composite's
    own ground truth (whole-image mean absolute difference): a per-clip-tuned key."""
    diff = np.abs(item.image.astype(np.int16) - item.plate.astype(np.int16)).max(axis=2).astype(np.float32)
    keys = [np.clip((diff - t) / w, 0.0, 1.0) for t in KEY_THRESHOLDS for w in KEY_WIDTHS]
    return min(keys, key=lambda k: float(np.abs(k - item.alpha).mean()))


def network(net):
    def run(item) -> np.ndarray:
        t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255  # noqa: E731
        with torch.no_grad():
            return net.predict(t(item.image), t(item.plate))["alpha"][0, 0].numpy()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--iters", type=int, default=None, help="adobe-stage steps (default: the recipe's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=128, help="procedural foreground side (px)")
    args = parser.parse_args()
    splits = make_splits(args.out / "data", size=(args.size, args.size), plates=True,
                         sizes={"train": SplitSizes(16, 4), "val": SplitSizes(4, 2), "test": SplitSizes(6, 2)},
                         trimap_iterations=COMPOSE_DEFAULT_ITERATIONS)
    sets = [f"stages.adobe.iters={args.iters}"] if args.iters else []
    recipe = build_recipe("bgm-quick", sets, {})
    flat = stage_recipe(recipe, "adobe")
    family = get_family("bgm")
    _seed_everything(derive_seed(int(flat["seed"]), "init", "adobe"))
    untrained = build_model("bgm", family.model_config(flat)).eval()
    run = args.out / "run"
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = train(get_family("bgm"), recipe, splits["train"], run, stage="adobe", val_dir=splits["val"], device=args.device,
                   resume=(run / "adobe" / "last.pt").is_file(), show_progress=False)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    trained, ckpt = load_model(run / "adobe" / "best.pt")
    items = load_items(splits["test"])
    mean_alpha = float(np.mean([it.alpha.mean() for it in load_items(splits["train"])]))
    plate_method = PlateMatting()
    methods = {
        "bgm-quick untrained": network(untrained),
        f"bgm-quick trained ({result.stages[0].steps} steps, best.pt at step {ckpt['step']} by val SAD)": network(trained),
        "plate method (no weights)": lambda item: plate_method(item.image, item.plate).alpha,
        "crude key (t 6, w 20)": lambda item: crude_key(item.image, item.plate),
        "crude key tuned per composite on its ground truth (oracle)": tuned_key,
        "constant alpha (training mean)": lambda item: np.full(item.alpha.shape, mean_alpha, np.float32),
    }
    for region in ("all", "unknown"):
        results = {name: score(fn, items, region=region, clamp_known=False) for name, fn in methods.items()}
        print(f"\n### test split, {len(items)} composites, region = {region}\n")
        print(markdown_table(results))
    stage = result.stages[0]
    rate = f"{stage.samples_per_s:.2f}" if stage.samples_per_s else "n/a"
    print(f"\nload average {os.getloadavg()}, {torch.get_num_threads()} thread(s)")
    print(f"\ntraining: {stage.steps} steps x batch {flat['batch_size']} at {flat['input_size']} px, {rate} samples/s "
          f"on {args.device}, {seconds:.0f} s wall, {cpu:.0f} CPU s (validation included)")


if __name__ == "__main__":
    main()
