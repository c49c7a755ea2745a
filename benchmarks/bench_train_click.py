"""Evidence for click matting: SAD against simulated clicks, and per-click latency.

On held-out procedural composites (``heldout.py``: train / val / test from separate sources),
train ``click-quick`` on ``train`` with every stage's best.pt chosen by SAD on ``val``, then run
the clicks-against-error protocol (``mattecli.inference.click_protocol``, the code behind
``eval --simulate-clicks``) on ``test`` for, in the same run:

- the classical closed-form method with the same clicks (radius 5, its default),
- the trained click network without refinement (``--refine-patches 0``),
- the trained click network refining 2 and 8 patches of 64 x 64 (two budgets).

Reports SAD (whole image, / 1000) after 1, 3, 5 and 10 clicks, the clicks needed to reach a
target SAD, and the latency of one click (one re-matte of one image) at 512 and 1024 px.
Run by hand:

    python benchmarks/bench_train_click.py --out /tmp/bench-click [--device cpu] [--iters N]
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_clicks_free import EmptyOnRefusal  # noqa: E402
from heldout import make_splits  # noqa: E402

from mattecli.data.clicks import Click, click_maps  # noqa: E402
from mattecli.families.registry import load_model  # noqa: E402
from mattecli.inference.click_protocol import images_from_dataset, plot_curve, simulate  # noqa: E402
from mattecli.inference.closed_form import closed_form_alpha  # noqa: E402
from mattecli.inference.methods import build_method  # noqa: E402
from mattecli.data.clicks import constraint_map  # noqa: E402
from mattecli.io.images import read_rgb  # noqa: E402
from mattecli.train.engine import train  # noqa: E402
from mattecli.train.recipe import load_recipe, parse_value, set_key  # noqa: E402

REPORTED = (1, 3, 5, 10)


#: per setting: median wall seconds, or CPU seconds (all threads; robust to a shared machine)
CPU_TIMES: dict[int, float] = {}


def latency(fn, repeats: int = 3) -> float:
    """Median wall seconds of ``fn``; its median process CPU seconds go to CPU_TIMES[id]."""
    fn()  # warm-up (allocations, lazy init)
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    CPU_TIMES[len(CPU_TIMES)] = float(np.median(cpu))
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/mattecli-bench-train-click"))
    ap.add_argument("--recipe", default="click-quick")
    ap.add_argument("--iters", type=int, default=None, help="override the recipe's steps (every stage)")
    ap.add_argument("--clicks", type=int, default=10)
    ap.add_argument("--target-sad", type=float, default=2.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", dest="assignments", action="append", default=[], help="recipe override key=value")
    ap.add_argument("--keep", action="store_true", help="reuse the data and the trained run in --out")
    ap.add_argument("--latency-only", action="store_true", help="with --keep: only the per-click latency")
    ap.add_argument("--repeats", type=int, default=3, help="latency: timed runs per setting (median)")
    args = ap.parse_args()

    out = args.out
    if out.exists() and not args.keep:
        shutil.rmtree(out)
    t0 = time.perf_counter()
    splits = make_splits(out, size=(320, 320))
    print(f"data: {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    recipe = load_recipe(args.recipe)
    for item in args.assignments:
        key, _, value = item.partition("=")
        set_key(recipe, key, parse_value(value))
    if args.iters is not None:
        recipe["iters"] = args.iters
        for table in recipe.get("stages", {}).values():
            table.pop("iters", None)
    run = out / "run"
    train_seconds = 0.0
    if not (args.keep and (run / "best.pt").is_file()):
        shutil.rmtree(run, ignore_errors=True)
        t1 = time.perf_counter()
        train("click", recipe, splits["train"], run, stage="all", val_dir=splits["val"], device=args.device,
              show_progress=sys.stderr.isatty())
        train_seconds = time.perf_counter() - t1
    summaries = {s: json.loads((run / s / "summary.json").read_text()) for s in ("matting", "uncertainty", "refine")}

    test = images_from_dataset(splits["test"])
    # the weights-free methods (matte --click-method): GrabCut trimap, and the click disks (which
    # refuse the protocol's foreground-only first click: scored as the empty matte a person sees)
    methods = {"weights-free, GrabCut trimap": (None, None, "grabcut"),
               "classical (closed form, radius 5)": (None, None, "disks")}
    for k in (0, 2, 8):
        methods[f"click-quick, refine {k} patches" if k else "click-quick, no refinement"] = (run / "best.pt", k, None)
    curves = {}
    for name, (weights, k, click_method) in ({} if args.latency_only else methods).items():
        method = (EmptyOnRefusal(torch.device(args.device), click_method="disks") if click_method == "disks" else
                  build_method(weights, "classical", args.device, batch_size=4, refine_patches=k,
                               click_method=click_method))
        t1 = time.perf_counter()
        curves[name] = simulate(method, test, args.clicks, ("sad", "mse"))
        print(f"{name}: {time.perf_counter() - t1:.0f}s, failures {curves[name].failures}", file=sys.stderr)
        (out / f"curve-{len(curves)}.json").write_text(json.dumps({"method": name, **curves[name].to_json(
            args.target_sad)}, indent=1) + "\n")
    if curves:
        plot_curve(curves, out / "sad_vs_clicks.png", target_sad=args.target_sad)

    # per-click latency: one re-matte of one image with 3 clicks, at 512 and 1024 px
    image = read_rgb(test[0].image_path)
    model, _ = load_model(run / "best.pt", args.device)
    lat: dict[str, dict[str, float]] = {}
    for side in (512, 1024):
        big = cv2.resize(image, (side, side), interpolation=cv2.INTER_LINEAR)
        clicks = [Click(side * 0.5, side * 0.5, True), Click(side * 0.05, side * 0.05, False),
                  Click(side * 0.55, side * 0.45, True)]
        x = torch.from_numpy(big).permute(2, 0, 1)[None].float().div(255).to(args.device)
        g = torch.from_numpy(click_maps(clicks, side, side, model.click_radius_for(side, side)))[None].to(args.device)
        row = {}
        for k in (0, 2, 8):
            row[f"click, refine {k}"] = latency(lambda: model.predict(x, g, refine_patches=k), args.repeats)
        labels = constraint_map(clicks, side, side, 5.0)
        row["classical"] = latency(lambda: closed_form_alpha(big, constraints=labels), max(1, args.repeats // 3))
        lat[f"{side}px"] = row

    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    if args.latency_only:
        (out / "latency.json").write_text(json.dumps({"device": f"CPU, {torch.get_num_threads()} threads",
                                                      "repeats": args.repeats, "latency_seconds": lat}, indent=2))
        cpu = list(CPU_TIMES.values())
        for i, (side, row) in enumerate(lat.items()):
            print(f"| {side} | " + " | ".join(f"{v:.3f} wall / {c:.3f} CPU"
                                            for v, c in zip(row.values(), cpu[i * len(row):(i + 1) * len(row)])) + " |")
        return
    report = {
        "device": device_name, "recipe": args.recipe, "train_seconds": train_seconds,
        "samples_per_s": {k: v["samples_per_s"] for k, v in summaries.items()},
        "best_val_sad": {k: v["best_sad"] for k, v in summaries.items()},
        "test_images": len(test),
        "sad_after": {name: {n: c.mean(n)["sad"] for n in REPORTED if n <= args.clicks} for name, c in curves.items()},
        "clicks_to_target": {name: c.summary(args.target_sad) for name, c in curves.items()},
        "seconds_per_click_320px": {name: c.seconds_per_click() for name, c in curves.items()},
        "latency_seconds": lat,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\ndevice: {device_name}; training {train_seconds:.0f}s; samples/s "
          + ", ".join(f"{k} {v:.2f}" for k, v in report["samples_per_s"].items() if v))
    print(f"test: {len(test)} held-out 320x320 composites; SAD over all pixels / 1000\n")
    shown = [n for n in REPORTED if n <= args.clicks]
    print("| method | " + " | ".join(f"SAD @{n}" for n in shown) + f" | clicks to SAD <= {args.target_sad:g} "
          "| never | s/click (320 px) |")
    print("|---|" + "---|" * (len(shown) + 3))
    for name, c in curves.items():
        s = c.summary(args.target_sad)
        print(f"| {name} | " + " | ".join(f"{c.mean(n)['sad']:.3f}" for n in shown)
              + f" | {s['mean_clicks']:.2f} | {s['never_reached']}/{s['images']} | {c.seconds_per_click():.3f} |")
    print("\n| per-click latency (s) | " + " | ".join(lat["512px"]) + " |")
    print("|---|" + "---|" * len(lat["512px"]))
    for side, row in lat.items():
        print(f"| {side} | " + " | ".join(f"{v:.3f}" for v in row.values()) + " |")


if __name__ == "__main__":
    main()
