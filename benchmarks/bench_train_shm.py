"""Evidence that SHM training learns the task: shm-quick against image-blind baselines.

On ``benchmarks/heldout.py`` splits (train / val / test compose datasets from fresh procedural
sources of ``--size`` px, none of them the built-in samples; composites made with ``compose``'s
defaults), train the ``shm-quick`` recipe, all three stages (tnet, mnet, e2e), each stage's
checkpoint selected on ``val`` (never on ``test``). Then score on ``test`` at the composites'
full size (``predict``, as ``mattecli matte --weights`` runs it), in the same run:

- the per-pixel **location prior**: the mean of the TRAINING alphas, each resized to a common
  grid, resized to the test image (where subjects usually are; it never looks at the image),
  and the same prior made from the test alphas themselves (a stronger, unfair blind baseline);
- a constant prediction (the training alphas' mean);
- the untrained network, the network after the two pre-training stages (``mnet/best.pt``)
  and after end-to-end training (``RUN/best.pt``);
- two diagnoses (they read the TRUE test alpha, so they are not methods): the trained M-Net
  given a perfect T-Net's probabilities, and the trained T-Net with a perfect M-Net (the true
  alpha inside its unknown probability): which of the two networks limits the result.

Metrics: whole-image SAD / MSE / MAD (the trimap-free convention) and the unknown-band SAD of
the test trimaps. Also the training throughput, the training process's CPU seconds (an
idle-machine estimate: on an idle 2-core machine the wall time is about the CPU seconds over
the thread count), and optionally a contact sheet on the real portraits of
``/work/shared/data/real/p3m_portraits`` (whose alphas are P3M-Net predictions, not truth).

    python benchmarks/bench_train_shm.py --out /tmp/bench-shm [--set stages.e2e.iters=10] [--sheet F]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout import load_items, make_splits, score  # noqa: E402

from mattecli.families.registry import build_model, get_family, load_model  # noqa: E402
from mattecli.families.shm.family import tnet_trimap_spec  # noqa: E402
from mattecli.seeding import derive_seed  # noqa: E402
from mattecli.train.engine import _seed_everything, train  # noqa: E402
from mattecli.train.recipe import build_recipe, stage_recipe  # noqa: E402

P3M = Path("/work/shared/data/real/p3m_portraits")
PRIOR_GRID = 64
#: ``mattecli compose``'s default --trimap-iterations (its --trimap-kernel default 2-5 is heldout's too)
COMPOSE_DEFAULT_ITERATIONS = "5-15"


def location_prior(alphas: list[np.ndarray]) -> np.ndarray:
    """Per-pixel mean of ``alphas`` (float, [0, 1]), each resized to a PRIOR_GRID square first."""
    grid = [cv2.resize(a.astype(np.float32), (PRIOR_GRID, PRIOR_GRID), interpolation=cv2.INTER_AREA) for a in alphas]
    return np.mean(grid, axis=0)


def prior_predictor(prior: np.ndarray):
    return lambda item: cv2.resize(prior, (item.alpha.shape[1], item.alpha.shape[0]), interpolation=cv2.INTER_LINEAR)


def network(model: torch.nn.Module):
    model = model.eval()
    cache: dict[int, np.ndarray] = {}  # by item: val and test items share names

    def run(item) -> np.ndarray:
        if id(item) not in cache:
            x = torch.from_numpy(item.image).permute(2, 0, 1)[None].float().div(255)
            cache[id(item)] = model.predict(x)["alpha"][0, 0].numpy()
        return cache[id(item)]
    return run


def oracle_tnet(model: torch.nn.Module, spec) -> callable:
    """Diagnosis, not a method: the trained M-Net given what a PERFECT T-Net hands it (the T-Net's
    target trimap from the TRUE alpha, through its 1/8 logit grid), fused as in predict."""
    from mattecli.families.shm.classes import split_probabilities
    from mattecli.families.shm.data import tnet_view_probabilities
    from mattecli.tensors import crop_to, pad_to_multiple

    def run(item) -> np.ndarray:
        x, size = pad_to_multiple(torch.from_numpy(item.image).permute(2, 0, 1)[None].float().div(255), 16,
                                  mode="reflect")
        alpha = np.pad(np.round(item.alpha * 255).astype(np.uint8),
                       ((0, x.shape[-2] - item.alpha.shape[0]), (0, x.shape[-1] - item.alpha.shape[1])), mode="reflect")
        probs = tnet_view_probabilities(alpha, (model.infer_size, model.infer_size), spec, np.random.default_rng(0))
        probs = torch.from_numpy(probs.transpose(2, 0, 1))[None]
        with torch.no_grad():
            _, unknown, foreground = split_probabilities(probs)
            fused = foreground + unknown * model.eval().tiled_raw_alpha(x, probs)
        return crop_to(fused, size)[0, 0].numpy()
    return run


def oracle_mnet(model: torch.nn.Module) -> callable:
    """Diagnosis, not a method: the trained T-Net's probabilities with a PERFECT M-Net (the TRUE
    alpha inside the unknown probability): F + U * alpha, the best the T-Net's trimap allows."""
    from mattecli.families.shm.classes import split_probabilities

    def run(item) -> np.ndarray:
        x = torch.from_numpy(item.image).permute(2, 0, 1)[None].float().div(255)
        with torch.no_grad():
            _, unknown, foreground = split_probabilities(model.eval().trimap_probabilities(x))
        return (foreground + unknown * torch.from_numpy(item.alpha)[None, None])[0, 0].numpy()
    return run


def evaluate(alpha_fn, items) -> dict[str, float]:
    whole = score(alpha_fn, items, region="all")
    band = score(alpha_fn, items, region="unknown", clamp_known=False)
    return {"sad": whole["sad"], "mse": whole["mse"], "mad": whole["mad"], "sad_unknown": band["sad"]}


def p3m_sheet(model: torch.nn.Module, path: Path) -> dict[str, float]:
    """Contact sheet of the quick model on the real portraits; agreement with P3M-Net's alphas."""
    from mattecli.io.images import read_alpha_float, read_rgb
    from mattecli.report.sheet import alpha_display, checkerboard_composite, write_contact_sheet

    levels = np.array([0, 128, 255], np.uint8)
    rows, mads = [], []
    for image_path in sorted(P3M.glob("*_image.jpg")):
        case = image_path.name.removesuffix("_image.jpg")
        image = read_rgb(image_path)
        ref = read_alpha_float(P3M / f"{case}_alpha_ref_p3mnet.png")
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255)
        with torch.no_grad():
            out = model.eval().predict(x)
        alpha = out["alpha"][0, 0].numpy()
        trimap = levels[np.clip(np.rint(out["trimap"][0, 0].numpy() * 2), 0, 2).astype(int)]
        mads.append(float(np.abs(alpha - ref).mean()))
        rows.append([image, alpha_display(ref), trimap, alpha_display(alpha), checkerboard_composite(image, alpha)])
    labels = ["image", "P3M-Net alpha (reference)", "SHM-quick trimap", "SHM-quick alpha", "cutout"]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_contact_sheet(path, rows, labels, cell_width=150, label_height=18)
    return {"mad_vs_p3mnet_mean": float(np.mean(mads)), "images": len(mads)}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=320, help="side of the procedural sources (px)")
    parser.add_argument("--recipe", default="shm-quick")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override (as mattecli train --set)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sheet", type=Path, default=None, help="write the p3m_portraits contact sheet here")
    args = parser.parse_args()

    splits = make_splits(args.out / "data", size=(args.size, args.size), trimap_iterations=COMPOSE_DEFAULT_ITERATIONS)
    recipe = build_recipe(args.recipe, args.sets, {})
    test, val, train_items = load_items(splits["test"]), load_items(splits["val"]), load_items(splits["train"])

    # the untrained network: exactly the weights the tnet stage starts from
    family = get_family("shm")
    first = stage_recipe(recipe, "tnet")
    _seed_everything(derive_seed(int(first["seed"]), "init", "tnet"))
    untrained = build_model("shm", family.model_config(first))

    # image-blind baselines from the training split (and, for reference, from the test split itself)
    train_prior = location_prior([it.alpha for it in train_items])
    test_prior = location_prior([it.alpha for it in test])
    mean_alpha = float(np.mean([it.alpha.mean() for it in train_items]))

    run_dir = args.out / "run"
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    result = train(get_family("shm"), recipe, splits["train"], run_dir, stage="all", val_dir=splits["val"],
                   resume=(run_dir / "tnet" / "last.pt").is_file(), device=args.device, show_progress=False)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    spec = tnet_trimap_spec(stage_recipe(recipe, "e2e"))
    pretrained, _ = load_model(run_dir / "mnet" / "best.pt")
    trained, ckpt = load_model(run_dir / "best.pt")

    methods = {
        "location prior (mean of the training alphas)": prior_predictor(train_prior),
        "location prior of the test alphas themselves (unfair)": prior_predictor(test_prior),
        "constant alpha (training mean)": lambda it: np.full(it.alpha.shape, mean_alpha, np.float32),
        "untrained network": network(untrained),
        "after tnet + mnet pre-training (mnet/best.pt)": network(pretrained),
        f"after e2e (best.pt, e2e step {ckpt.get('step')})": network(trained),
        "diagnosis: perfect T-Net (its target from the TRUE alpha) + the trained M-Net": oracle_tnet(trained, spec),
        "diagnosis: the trained T-Net + a perfect M-Net (TRUE alpha in U)": oracle_mnet(trained),
    }
    rows = {name: evaluate(fn, test) for name, fn in methods.items()}
    val_rows = {name: evaluate(methods[name], val) for name in list(methods)[:1] + list(methods)[-3:]}
    threads = torch.get_num_threads()
    report = {
        "recipe": args.recipe, "sets": args.sets, "device": args.device, "torch": torch.__version__,
        "python": platform.python_version(), "threads": threads, "load_average": os.getloadavg(),
        "train_samples": len(train_items), "val_images": len(val), "test_images": len(test),
        "train_wall_s": seconds, "train_cpu_s": cpu, "idle_estimate_s": cpu / max(threads, 1),
        "samples_per_s": {s.stage: s.samples_per_s for s in result.stages},
        "steps": {s.stage: s.steps for s in result.stages}, "selected_step": ckpt.get("step"),
        "val": val_rows, "test": rows,
    }
    if args.sheet is not None and P3M.is_dir():
        report["p3m"] = p3m_sheet(trained, args.sheet)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    prior_mad = rows[list(methods)[0]]["mad"]
    print(f"### test split: {len(test)} unseen composites at full size; prior = mean of the training alphas\n")
    print("| method | SAD (whole) | MSE (whole) | MAD (whole) | MAD / prior | SAD (unknown band) |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['sad']:.3f} | {r['mse']:.4f} | {r['mad']:.4f} | {r['mad'] / prior_mad:.2f} | "
              f"{r['sad_unknown']:.3f} |")
    print(json.dumps({k: v for k, v in report.items() if k != "test"}, indent=1))


if __name__ == "__main__":
    main()
