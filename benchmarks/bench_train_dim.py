"""Does DIM learn the task? Test metrics on unseen composites after a recipe's training budget.

Data (``heldout.make_splits``): train / val / test ``compose`` datasets from fresh procedural
foregrounds and backgrounds (not the built-in samples), 320 px sources, every trimap drawn by
``compose --trimaps`` with its DEFAULT options (kernel 2-5, iterations 5-15). The test sources
are composed twice more with narrower (``--trimap-iterations 1-4``) and wider (``16-25``) bands:
same images, other trimaps. 64 training composites, 8 validation, 12 test per band setting.

In one run, on the same test images, each scored on the trimap's unknown region at the
composite's full size (known regions pasted from the trimap, as ``matte`` does):

- the 0.5 fill: alpha 0.5 in the unknown region;
- the distance rule, blind to the image: alpha = d_bg / (d_fg + d_bg), from each unknown
  pixel's Euclidean distances to the nearest known foreground and background pixel;
- closed-form matting (Levin et al. 2008), the weights-free method ``matte`` runs;
- the trained network through ``mattecli matte --weights`` (full size, as a user runs it):
  all stages of the recipe, each stage's ``best.pt`` chosen by the engine on the *validation*
  split, then the stage whose best scores the lowest validation SAD. Test is never looked at
  before that choice; ``--no-test`` stops after it (for diagnosis runs).

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
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout import DEFAULT_SIZES, SPLIT_SEEDS, Item, compose, load_items, make_splits, markdown_table, score  # noqa: E402

from mattecli.data.manifest import read_manifest  # noqa: E402
from mattecli.families.registry import get_family, load_model  # noqa: E402
from mattecli.io.images import read_alpha_float  # noqa: E402
from mattecli.train.engine import train  # noqa: E402
from mattecli.train.recipe import load_recipe, parse_value, set_key  # noqa: E402

#: compose's default bands, then one narrower and one wider setting (same test images)
BANDS = {"default (5-15)": "5-15", "narrow (1-4)": "1-4", "wide (16-25)": "16-25"}


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (loader workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def distance_rule(item: Item) -> np.ndarray:
    """The image-blind prior: alpha = d_bg / (d_fg + d_bg) in the unknown band."""
    d_fg = distance_transform_edt(item.trimap != 255)
    d_bg = distance_transform_edt(item.trimap != 0)
    return (d_bg / np.maximum(d_fg + d_bg, 1e-6)).astype(np.float32)


def fill(item: Item) -> np.ndarray:
    return np.full(item.trimap.shape, 0.5, np.float32)


def network_predictor(model: torch.nn.Module, device: torch.device):
    """In-process prediction at full size (model selection on val)."""
    model = model.to(device).eval()

    def predict(item: Item) -> np.ndarray:
        x = torch.from_numpy(item.image).permute(2, 0, 1)[None].float().div(255).to(device)
        t = torch.from_numpy(item.trimap)[None, None].float().div(255).to(device)
        with torch.no_grad():
            return model.predict(x, torch.round(t * 2) / 2)["alpha"][0, 0].float().cpu().numpy()

    return predict


def matte_predictor(weights: Path, dataset: Path, out: Path, device: str, threads: int):
    """Alpha files written by ``mattecli matte --weights`` on the dataset's composites and trimaps."""
    env_threads = ["env", f"OMP_NUM_THREADS={threads}"] if threads else []
    cmd = [*env_threads, sys.executable, "-m", "mattecli", "matte", str(dataset / "merged"), "--trimap",
           str(dataset / "trimap"), "--weights", str(weights), "--out", str(out), "--output", "alpha",
           "--device", device, "--overwrite"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def predict(item: Item) -> np.ndarray:
        return read_alpha_float(out / "alpha" / f"{item.name}.png")

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
    ap.add_argument("--no-closed-form", action="store_true", help="skip the closed-form rows (slow on big sets)")
    ap.add_argument("--no-test", action="store_true", help="diagnosis: train, select and report on val only")
    ap.add_argument("--keep-data", action="store_true", help="reuse the composed splits in OUT/data")
    ap.add_argument("--score-only", action="store_true",
                    help="do not train: select among the stage best.pt files already in OUT/run (on val) and score "
                         "on test (for a run stopped early; the report says so)")
    ap.add_argument("--blind", action="store_true",
                    help="diagnosis: the network's RGB input is zeroed in training and prediction (it sees the trimap "
                         "only); scored in-process, as matte would not zero it")
    args = ap.parse_args()
    if args.blind:
        from mattecli.families.dim.model import DeepImageMatting

        seeing = DeepImageMatting.prepare_input
        DeepImageMatting.prepare_input = lambda self, image, trimap: seeing(self, torch.zeros_like(image), trimap)
    if args.threads:
        torch.set_num_threads(args.threads)

    out = args.out
    if not args.keep_data and not args.score_only:
        shutil.rmtree(out / "data", ignore_errors=True)
    t0 = time.perf_counter()
    splits = make_splits(out / "data", size=(320, 320), trimap_iterations=BANDS["default (5-15)"])
    tests = {"default (5-15)": splits["test"]}
    for band, iterations in BANDS.items():
        if band not in tests:
            folder = out / "data" / f"test-{iterations}"
            if not (folder / "manifest.json").is_file():
                compose(out / "data" / "src-test", folder, SPLIT_SEEDS["test"][1], DEFAULT_SIZES["test"].per_fg,
                        trimap_iterations=iterations)
            tests[band] = folder
    print(f"data: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    val_items = load_items(splits["val"])

    recipe = load_recipe(args.recipe)
    recipe["seed"] = args.seed
    for item in args.assignments:
        key, _, value = item.partition("=")
        set_key(recipe, key, parse_value(value))
    device = torch.device(args.device)
    family = get_family("dim")

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
        result = train(get_family("dim"), recipe, splits["train"], run, stage=args.stage, val_dir=splits["val"],
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
        candidates[stage] = (score(network_predictor(model, device), val_items), ckpt)
    chosen = min(candidates, key=lambda k: candidates[k][0]["sad"])
    ckpt = candidates[chosen][1]
    name = f"trained dim ({args.recipe}; chosen on val: {chosen} stage, step {ckpt['step']})"
    val_results = {"0.5 fill": score(fill, val_items), "distance rule": score(distance_rule, val_items),
                   name: candidates[chosen][0]}

    row = f"{name}, {'blind (RGB zeroed), in-process' if args.blind else 'via mattecli matte'}"
    results: dict[str, dict[str, dict[str, float]]] = {}
    if not args.no_test:
        for band, folder in tests.items():
            items = load_items(folder)
            rows = {"0.5 fill": score(fill, items), "distance rule": score(distance_rule, items)}
            if not args.no_closed_form:
                from mattecli.inference.closed_form import closed_form_alpha

                rows["closed form (Levin 2008)"] = score(lambda it: closed_form_alpha(it.image, it.trimap), items)
            predictor = (network_predictor(load_model(run / chosen / "best.pt", device)[0], device) if args.blind else
                         matte_predictor(run / chosen / "best.pt", folder, out / "pred" / folder.name, args.device,
                                         args.threads))
            rows[row] = score(predictor, items)
            results[band] = rows

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"
    report = {
        "device": device_name, "recipe": args.recipe, "stage": args.stage, "overrides": args.assignments,
        "blind": args.blind,
        "train_composites": len(read_manifest(splits["train"])), "val_images": len(val_items),
        "steps_trained": steps, "score_only": args.score_only,
        "samples_per_s": {k: v["samples_per_s"] for k, v in summaries.items()},
        "train_cpu_seconds": train_cpu, "train_wall_seconds": train_wall,
        "validation_wall_seconds": validation_wall,
        "val_sad_of_each_stage_best": {k: v[0]["sad"] for k, v in candidates.items()},
        "chosen": chosen, "val": val_results, "test": results,
    }
    name_out = "report-val.json" if args.no_test else "report-score-only.json" if args.score_only else "report.json"
    (out / name_out).write_text(json.dumps(report, indent=2) + "\n")
    if args.score_only:
        print(f"\ndevice: {device_name}; score-only: the stages already in {run} (steps {steps}); no training timed")
    else:
        print(f"\ndevice: {device_name}; steps {steps}; training {train_wall:.0f} s wall (validation "
              f"{validation_wall:.0f} s of it), {train_cpu:.0f} s CPU (process + loader workers)")
    if summaries:
        print(f"throughput (samples/s): {', '.join(f'{k} {v:.2f}' for k, v in report['samples_per_s'].items() if v)}")
    print(f"val SAD of each stage's best.pt: {report['val_sad_of_each_stage_best']}; chosen: {chosen}\n")
    print(f"validation ({len(val_items)} composites, compose's default trimaps)\n")
    print(markdown_table(val_results))
    for band, rows in results.items():
        fill_sad = rows["0.5 fill"]["sad"]
        net_sad = rows[row]["sad"]
        print(f"\ntest, trimap bands {band}: network SAD = {net_sad / fill_sad:.2f} x the 0.5 fill, "
              f"{net_sad / rows['distance rule']['sad']:.2f} x the distance rule\n")
        print(markdown_table(rows))


if __name__ == "__main__":
    main()
