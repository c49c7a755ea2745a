"""Evidence that DIM training learns: test metrics before and after a fixed training budget.

From the built-in procedural samples, compose a training set and a held-out test set (other
foregrounds, other backgrounds, fixed trimaps), train the ``dim-quick`` recipe for a fixed
number of steps, and score on the test set with the project's metrics:

- the untrained network (the same seeded initialisation the run starts from),
- the trained network (RUN/best.pt, chosen by validation SAD on the test set),
- the trivial baseline (alpha 0.5 in the unknown region),
- the classical closed-form method (Levin et al.), when mattecli.inference.closed_form exists.

Also reports the training throughput (samples/s) and the device. Run by hand:

    python benchmarks/bench_train_dim.py --out /tmp/bench-dim [--device cpu] [--iters N] [--stage encoder]
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mattecli.data.manifest import read_manifest, resolve
from mattecli.data.samples import write_samples
from mattecli.data.trimap import normalise_trimap
from mattecli.io.images import read_alpha, read_alpha_float, read_rgb
from mattecli.metrics import compute_metrics
from mattecli.families.registry import build_model
from mattecli.seeding import derive_seed
from mattecli.train.engine import _seed_everything, train
from mattecli.families.registry import get_family
from mattecli.train.recipe import load_recipe, set_key, stage_recipe

METRICS = ("sad", "mse", "grad", "conn")


def compose(src: Path, out: Path, seed: int, per_fg: int) -> None:
    from typer.testing import CliRunner

    from mattecli.cli.app import app

    args = ["compose", "--fg", str(src / "fg"), "--alpha", str(src / "alpha"), "--bg", str(src / "bg"),
            "--out", str(out), "--per-fg", str(per_fg), "--trimaps", "--trimap-iterations", "2-6", "--seed", str(seed), "-q", "--workers", "1"]
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise SystemExit(f"compose failed: {result.output}\n{result.exception}")


def test_items(dataset: Path) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    items = []
    for r in read_manifest(dataset):
        trimap, _ = normalise_trimap(read_alpha(resolve(dataset, r.trimap_path)))
        items.append((r.name, read_rgb(resolve(dataset, r.merged_path)), trimap,
                      read_alpha_float(resolve(dataset, r.alpha_path))))
    return items


def score(predict, items) -> dict[str, float]:
    totals = dict.fromkeys(METRICS, 0.0)
    for _, image, trimap, gt in items:
        alpha = np.asarray(predict(image, trimap), np.float32)
        alpha = np.where(trimap == 255, 1.0, np.where(trimap == 0, 0.0, alpha)).astype(np.float32)
        alpha = np.round(alpha * 255) / 255  # scored as the written 8-bit PNG would be
        scores = compute_metrics(alpha.astype(np.float32), gt, trimap)
        for m in METRICS:
            totals[m] += scores[m]
    return {m: totals[m] / len(items) for m in METRICS}


def network_predictor(model: torch.nn.Module, device: torch.device):
    model = model.to(device).eval()

    def predict(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255).to(device)
        t = torch.from_numpy(trimap)[None, None].float().div(255).to(device)
        with torch.no_grad():
            return model.predict(x, torch.round(t * 2) / 2)["alpha"][0, 0].float().cpu().numpy()

    return predict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/mattecli-bench-train-dim"))
    ap.add_argument("--recipe", default="dim-quick")
    ap.add_argument("--stage", default="all", help="encoder, refine, joint or all")
    ap.add_argument("--iters", type=int, default=None, help="override the recipe's steps (every stage)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="assignments", action="append", default=[], help="recipe override key=value")
    ap.add_argument("--keep", action="store_true", help="reuse the composed data in --out")
    args = ap.parse_args()

    out = args.out
    if out.exists() and not args.keep:
        shutil.rmtree(out)
    t0 = time.perf_counter()
    if not (out / "test" / "manifest.json").is_file():
        write_samples(out / "src-train", seed=101, foregrounds=8, backgrounds=16, size=(160, 128))
        write_samples(out / "src-test", seed=202, foregrounds=4, backgrounds=8, size=(160, 128))
        compose(out / "src-train", out / "train", seed=1, per_fg=2)
        compose(out / "src-test", out / "test", seed=2, per_fg=2)
    print(f"data: {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    recipe = load_recipe(args.recipe)
    recipe["seed"] = args.seed
    for item in args.assignments:
        key, _, value = item.partition("=")
        from mattecli.train.recipe import parse_value
        set_key(recipe, key, parse_value(value))
    if args.iters is not None:
        recipe["iters"] = args.iters
        for table in recipe.get("stages", {}).values():
            table.pop("iters", None)

    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    family = get_family("dim")
    first = family.stages[0] if args.stage == "all" else args.stage
    flat = stage_recipe(recipe, first)
    _seed_everything(derive_seed(int(flat["seed"]), "init", first))  # exactly the engine's initialisation
    untrained = build_model("dim", family.model_config(flat))
    family.prepare_model(untrained, flat, first)
    items = test_items(out / "test")

    results: dict[str, dict] = {}
    results["untrained network"] = score(network_predictor(untrained, device), items)
    results["trivial (0.5 in unknown)"] = score(lambda image, trimap: np.full(trimap.shape, 0.5, np.float32), items)
    try:
        from mattecli.inference.closed_form import closed_form_alpha
        results["closed form (Levin 2008)"] = score(lambda image, trimap: closed_form_alpha(image, trimap), items)
    except ImportError:
        pass

    run = out / "run"
    shutil.rmtree(run, ignore_errors=True)
    t1 = time.perf_counter()
    result = train("dim", recipe, out / "train", run, stage=args.stage, val_dir=out / "test", device=args.device,
                   show_progress=sys.stderr.isatty())
    train_seconds = time.perf_counter() - t1
    from mattecli.families.registry import load_model

    trained, ckpt = load_model(run / "best.pt", device)
    results[f"trained dim ({args.recipe}, best.pt = {ckpt['stage']} step {ckpt['step']})"] = \
        score(network_predictor(trained, device), items)

    summaries = {s.stage: json.loads((run / s.stage / "summary.json").read_text()) for s in result.stages}
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    report = {
        "device": device_name, "recipe": args.recipe, "stage": args.stage,
        "train_samples": len(read_manifest(out / "train")), "test_images": len(items),
        "steps": {s.stage: s.steps for s in result.stages},
        "samples_per_s": {k: v["samples_per_s"] for k, v in summaries.items()},
        "train_seconds": train_seconds, "results": results,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\ndevice: {device_name}; training {train_seconds:.0f}s; steps {report['steps']}; "
          f"throughput (samples/s) {', '.join(f'{k} {v:.2f}' for k, v in report['samples_per_s'].items() if v)}")
    print(f"test set: {len(items)} composites of {160}x{128}-ish held-out foregrounds\n")
    print("| method | SAD | MSE | Grad | Conn |\n|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['sad']:.3f} | {r['mse']:.5f} | {r['grad']:.3f} | {r['conn']:.3f} |")


if __name__ == "__main__":
    main()
