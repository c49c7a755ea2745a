"""Does DIM learn? Test metrics on unseen composites after the ``dim-quick`` budget.

Data (``heldout.make_splits``): train / val / test ``compose`` datasets from fresh procedural
foregrounds and backgrounds (not the built-in samples), 320 px images, test trimaps made
with ``--trimap-iterations 2-6``; 64 training composites, 8 validation, 12 test by default.

In one run, on the same test images:

- trivial: alpha 0.5 in the unknown region;
- the untrained network (the engine's own seeded initialisation);
- the trained network: all stages of the recipe, each stage's ``best.pt`` chosen by the
  engine on the *validation* split, then the stage whose best scores lowest SAD on
  validation; only that one is scored on test;
- closed-form matting (Levin et al. 2008), the weights-free method ``matte`` runs.

Also reports the training budget in steps, process CPU seconds (training process plus its
loader workers) and wall seconds, so a budget can be checked on a contended machine.

    python benchmarks/bench_train_dim.py --out /tmp/bench-dim [--recipe dim-quick] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout import load_items, make_splits, markdown_table, score  # noqa: E402

from mattecli.data.manifest import read_manifest  # noqa: E402
from mattecli.families.registry import build_model, get_family, load_model  # noqa: E402
from mattecli.seeding import derive_seed  # noqa: E402
from mattecli.train.engine import _seed_everything, train  # noqa: E402
from mattecli.train.recipe import load_recipe, parse_value, set_key, stage_recipe  # noqa: E402


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (loader workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def network_predictor(model: torch.nn.Module, device: torch.device):
    model = model.to(device).eval()

    def predict(item) -> np.ndarray:
        x = torch.from_numpy(item.image).permute(2, 0, 1)[None].float().div(255).to(device)
        t = torch.from_numpy(item.trimap)[None, None].float().div(255).to(device)
        with torch.no_grad():
            return model.predict(x, torch.round(t * 2) / 2)["alpha"][0, 0].float().cpu().numpy()

    return predict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/mattecli-bench-train-dim"))
    ap.add_argument("--recipe", default="dim-quick")
    ap.add_argument("--stage", default="all", help="encoder, refine, joint or all")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--set", dest="assignments", action="append", default=[], help="recipe override key=value")
    ap.add_argument("--no-closed-form", action="store_true", help="skip the closed-form row (slow on big sets)")
    ap.add_argument("--keep-data", action="store_true", help="reuse the composed splits in OUT/data")
    ap.add_argument("--score-only", action="store_true",
                    help="do not train: select among the stage best.pt files already in OUT/run (on val) and score "
                         "on test (for a run stopped early; the report says so)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    out = args.out
    if not args.keep_data and not args.score_only:
        shutil.rmtree(out / "data", ignore_errors=True)
    t0 = time.perf_counter()
    splits = make_splits(out / "data", size=(320, 320))
    print(f"data: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    val_items, test_items = load_items(splits["val"]), load_items(splits["test"])

    recipe = load_recipe(args.recipe)
    recipe["seed"] = args.seed
    for item in args.assignments:
        key, _, value = item.partition("=")
        set_key(recipe, key, parse_value(value))
    device = torch.device(args.device)
    family = get_family("dim")

    results: dict[str, dict[str, float]] = {}
    results["trivial (0.5 in unknown)"] = score(lambda it: np.full(it.trimap.shape, 0.5, np.float32), test_items)
    first = family.stages[0] if args.stage == "all" else args.stage
    flat = stage_recipe(recipe, first)
    _seed_everything(derive_seed(int(flat["seed"]), "init", first))  # exactly the engine's initialisation
    untrained = build_model("dim", family.model_config(flat))
    family.prepare_model(untrained, flat, first)
    results["untrained network"] = score(network_predictor(untrained, device), test_items)

    run = out / "run"
    if args.score_only:
        train_cpu = train_wall = validation_wall = None
        stages = [s for s in family.stages if (run / s / "best.pt").is_file()]
        steps = {s: max((r["step"] for r in map(json.loads, (run / s / "log.jsonl").read_text().splitlines())),
                        default=0) for s in stages}
        summaries = {}
    else:
        shutil.rmtree(run, ignore_errors=True)
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        result = train("dim", recipe, splits["train"], run, stage=args.stage, val_dir=splits["val"],
                       device=args.device, show_progress=sys.stderr.isatty())
        train_cpu, train_wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
        summaries = {s.stage: json.loads((run / s.stage / "summary.json").read_text()) for s in result.stages}
        validation_wall = sum(v["validation_seconds"] for v in summaries.values())
        stages = [s.stage for s in result.stages if s.best_path is not None]
        steps = {s.stage: s.steps for s in result.stages}

    # model selection on the validation split only
    candidates = {}
    for stage in stages:
        model, ckpt = load_model(run / stage / "best.pt", device)
        candidates[stage] = (score(network_predictor(model, device), val_items), ckpt, model)
    chosen = min(candidates, key=lambda k: candidates[k][0]["sad"])
    val_scores, ckpt, model = candidates[chosen]
    name = f"trained dim ({args.recipe}; chosen on val: {chosen} stage, step {ckpt['step']})"
    results[name] = score(network_predictor(model, device), test_items)
    if not args.no_closed_form:
        from mattecli.inference.closed_form import closed_form_alpha

        results["closed form (Levin 2008)"] = score(lambda it: closed_form_alpha(it.image, it.trimap), test_items)

    trivial_sad = results["trivial (0.5 in unknown)"]["sad"]
    gain = 1.0 - results[name]["sad"] / trivial_sad
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"
    report = {
        "device": device_name, "recipe": args.recipe, "stage": args.stage, "overrides": args.assignments,
        "train_composites": len(read_manifest(splits["train"])),
        "val_images": len(val_items), "test_images": len(test_items),
        "steps_trained": steps, "score_only": args.score_only,
        "samples_per_s": {k: v["samples_per_s"] for k, v in summaries.items()},
        "train_cpu_seconds": train_cpu, "train_wall_seconds": train_wall,
        "validation_wall_seconds": validation_wall,
        "val_sad_of_each_stage_best": {k: v[0]["sad"] for k, v in candidates.items()},
        "chosen": chosen, "sad_gain_over_trivial": gain, "results": results,
    }
    (out / ("report-score-only.json" if args.score_only else "report.json")).write_text(json.dumps(report, indent=2) + "\n")
    if args.score_only:
        print(f"\ndevice: {device_name}; score-only: the stages already in {run} (steps {steps}); no training timed")
    else:
        print(f"\ndevice: {device_name}; steps {steps}; training {train_wall:.0f} s wall (validation "
              f"{validation_wall:.0f} s of it), {train_cpu:.0f} s CPU (process + loader workers)")
    if summaries:
        print(f"throughput (samples/s): {', '.join(f'{k} {v:.2f}' for k, v in report['samples_per_s'].items() if v)}")
    print(f"val SAD of each stage's best.pt: {report['val_sad_of_each_stage_best']}; chosen: {chosen}")
    print(f"test: {len(test_items)} unseen composites (320 px sources); SAD gain over trivial: {100 * gain:.1f}%\n")
    print(markdown_table(results))


if __name__ == "__main__":
    main()
