"""Evidence for click matting: does click-quick learn the task, and how does it compare?

On held-out procedural composites (``heldout.py``: train / val / test from separate fresh
sources, composited with ``compose``'s default options), train ``click-quick`` (all stages) on
``train``, every stage's best.pt chosen on ``val`` (never on ``test``), then on ``test``, at
each image's full size, in the same run:

1. whole-image MAD (and SAD / 1000) with 3 foreground + 3 background clicks placed inside the
   subject and the background (``mattecli.data.clicks.interior_clicks``) for
   - the per-pixel **location prior**: the mean of the TRAINING alphas at each pixel (an
     image-blind baseline: where subjects usually are),
   - the trained click network through ``mattecli matte --clicks --weights`` (its own radius
     rule, refinement budget 0 and the checkpoint's), and with no clicks and with the six
     clicks' labels swapped (a network that reads the clicks must do worse on both),
   - the **weights-free click method**: ``mattecli matte --clicks`` without ``--weights``, the
     very command a user runs (so the method ``matte`` picks by default is the one measured);
2. the clicks-against-error protocol (``mattecli eval --simulate-clicks N``, the same command,
   with and without ``--weights``): mean whole-image SAD after 1, 3, 5 and 10 clicks, with the
   location prior's SAD beside it (it does not change with clicks).

3. two-subject scenes (two test foregrounds side by side over a test background), matted with
   3 + 3 interior clicks for the left subject, then for the right one: MAD to the clicked
   subject against MAD to the unclicked one (equal when the clicks are ignored).

Also the training time (wall, CPU of the process and of its data workers, the load average) and
throughput, and the learning curves of the run. Optionally
(``--latency``) the per-click latency of one re-matte at 512 and 1024 px.

    python benchmarks/bench_train_click.py --out /tmp/bench-click [--device cpu] [--set key=value]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout import load_items, make_splits, score  # noqa: E402

from mattecli.data.clicks import Click, click_maps, constraint_map, interior_clicks  # noqa: E402
from mattecli.families.registry import load_model  # noqa: E402
from mattecli.inference.clicks import write_clicks  # noqa: E402
from mattecli.data.composite import composite_array  # noqa: E402
from mattecli.inference.closed_form import closed_form_alpha  # noqa: E402
from mattecli.io.images import read_alpha, read_alpha_float, read_rgb  # noqa: E402
from mattecli.train.engine import train  # noqa: E402
from mattecli.families.registry import get_family  # noqa: E402
from mattecli.train.logging import read_log  # noqa: E402
from mattecli.train.recipe import load_recipe, parse_value, set_key  # noqa: E402

REPORTED = (1, 3, 5, 10)
#: compose's default trimap bands (``mattecli compose --trimap-iterations``); unused by click methods
COMPOSE_DEFAULT_BANDS = "5-15"
STAGES = ("matting", "uncertainty", "refine")


def cli(*args: str) -> str:
    """Run one ``mattecli`` command in-process; its output, or SystemExit with it on failure."""
    from typer.testing import CliRunner

    from mattecli.cli.app import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exit_code != 0:
        raise RuntimeError(f"mattecli {' '.join(map(str, args))} failed: {result.output[-2000:]}")
    return result.output


def resized(x: np.ndarray, w: int, h: int) -> np.ndarray:
    return x if x.shape[:2] == (h, w) else cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA)


def matte_with_clicks(test_dir: Path, items, clicks: dict, out: Path, weights: Path | None = None,
                      refine: int | None = None, device: str = "cpu") -> dict[str, np.ndarray]:
    """``mattecli matte`` on the test composites with ``clicks``; alpha per item name (full size)."""
    images = out / "images"
    if not images.is_dir():
        from mattecli.io.images import write_image

        for it in items:
            write_image(images / f"{it.name}.png", it.image)
    write_clicks(out / "clicks.json", clicks)
    args = ["matte", images, "--clicks", out / "clicks.json", "--out", out / "pred", "--output", "alpha",
            "--alpha-16bit", "--device", device]
    if weights is not None:
        args += ["--weights", weights]
    if refine is not None:
        args += ["--refine-patches", str(refine)]
    shutil.rmtree(out / "pred", ignore_errors=True)
    cli(*args)
    return {it.name: read_alpha_float(out / "pred" / "alpha" / f"{it.name}.png") for it in items}


def protocol(test_dir: Path, clicks: int, out: Path, weights: Path | None = None, device: str = "cpu") -> dict:
    """``mattecli eval --simulate-clicks`` on the test set: its JSON (mean SAD per click count)."""
    args = ["eval", "--data", test_dir, "--simulate-clicks", str(clicks), "--json", out, "--device", device,
            "--metrics", "sad,mse"]
    if weights is not None:
        args += ["--weights", weights]
    try:
        cli(*args)
    except RuntimeError as exc:
        return {"error": str(exc).splitlines()[-1][:300]}
    return json.loads(out.read_text())


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the training's data workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _subject_in_box(fg: np.ndarray, alpha: np.ndarray, box_w: int, box_h: int) -> tuple[np.ndarray, np.ndarray]:
    """The subject cut to its alpha's bounding box, shrunk (never enlarged) to fit box_w x box_h."""
    ys, xs = np.nonzero(alpha)
    fg, alpha = fg[ys.min():ys.max() + 1, xs.min():xs.max() + 1], alpha[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    k = min(1.0, box_w / alpha.shape[1], box_h / alpha.shape[0])
    size = (max(1, round(alpha.shape[1] * k)), max(1, round(alpha.shape[0] * k)))
    return resized(fg, *size), resized(alpha, *size)


def two_subject_scenes(src: Path, height: int = 320) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Scenes where only the clicks can say which subject is meant: test foregrounds i and i + 1
    side by side (each shrunk to fit its half of a 1.5 x ``height`` wide frame) over a test
    background; (uint8 image, left alpha, right alpha) as floats in [0, 1]."""
    fgs = sorted((src / "fg").glob("*.png"))
    bgs = sorted((src / "bg").iterdir())
    width = height * 3 // 2
    scenes = []
    for i, path in enumerate(fgs):
        layers = []
        for j, centre in ((i, width // 4), ((i + 1) % len(fgs), 3 * width // 4)):
            fg, alpha = _subject_in_box(read_rgb(fgs[j]), read_alpha(src / "alpha" / fgs[j].name), width // 2 - 8,
                                        height - 8)
            h, w = alpha.shape
            top, left = (height - h) // 2, centre - w // 2
            canvas_fg, canvas_a = np.zeros((height, width, 3), np.float32), np.zeros((height, width), np.float32)
            canvas_fg[top:top + h, left:left + w] = fg / 255.0
            canvas_a[top:top + h, left:left + w] = alpha / 255.0
            layers.append((canvas_fg, canvas_a))
        image = resized(read_rgb(bgs[i % len(bgs)]), width, height).astype(np.float32) / 255.0
        for fg, alpha in reversed(layers):  # the halves do not overlap: the order does not matter
            image = composite_array(fg, alpha, image)
        scenes.append((np.round(image * 255).astype(np.uint8), layers[0][1], layers[1][1]))
    return scenes


def follows_the_clicks(weights: Path, src: Path, device: str) -> dict[str, float]:
    """On :func:`two_subject_scenes`, the network with 3 + 3 interior clicks for the left subject
    (its background clicks inside everything else, the right subject included), then for the right
    one (refinement 0): whole-image MAD to the clicked subject and to the unclicked one, averaged
    over both. A network that ignores the clicks scores the same against both."""
    model, _ = load_model(weights, device)
    to_clicked, to_other = [], []
    for image, left, right in two_subject_scenes(src):
        h, w = left.shape
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255).to(device)
        for target, other in ((left, right), (right, left)):
            given = interior_clicks(target, 3, 3)
            g = torch.from_numpy(click_maps(given, h, w, model.click_radius_for(h, w)))[None].to(device)
            alpha = model.predict(x, g, refine_patches=0)["alpha"][0, 0].cpu().numpy()
            alpha = np.round(alpha * 255) / 255
            to_clicked.append(float(np.abs(alpha - target).mean()))
            to_other.append(float(np.abs(alpha - other).mean()))
    return {"mad_to_clicked": float(np.mean(to_clicked)), "mad_to_unclicked": float(np.mean(to_other)),
            "scenes": len(to_clicked) // 2}


def latency_table(image: np.ndarray, weights: Path, device: str, repeats: int) -> dict[str, dict[str, float]]:
    """Median wall seconds of one re-matte with 3 clicks at 512 and 1024 px."""
    model, _ = load_model(weights, device)
    lat: dict[str, dict[str, float]] = {}
    for side in (512, 1024):
        big = cv2.resize(image, (side, side), interpolation=cv2.INTER_LINEAR)
        clicks = [Click(side * 0.5, side * 0.5, True), Click(side * 0.05, side * 0.05, False),
                  Click(side * 0.55, side * 0.45, True)]
        x = torch.from_numpy(big).permute(2, 0, 1)[None].float().div(255).to(device)
        g = torch.from_numpy(click_maps(clicks, side, side, model.click_radius_for(side, side)))[None].to(device)
        labels = constraint_map(clicks, side, side, 5.0)
        row = {}
        for name, fn in [(f"click, refine {k}", lambda k=k: model.predict(x, g, refine_patches=k)) for k in (0, 2, 8)] \
                + [("closed form, disks", lambda: closed_form_alpha(big, constraints=labels))]:
            fn()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            row[name] = float(np.median(times))
        lat[f"{side}px"] = row
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/mattecli-bench-train-click"))
    ap.add_argument("--recipe", default="click-quick")
    ap.add_argument("--clicks", type=int, default=10, help="simulated clicks of the protocol")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", dest="assignments", action="append", default=[], help="recipe override key=value")
    ap.add_argument("--keep", action="store_true", help="reuse the data and the trained run in --out")
    ap.add_argument("--train-only", action="store_true", help="stop after training")
    ap.add_argument("--weights", type=Path, default=None,
                    help="with --keep: score this checkpoint of the run (e.g. run/matting/best.pt of a cut run)")
    ap.add_argument("--latency", action="store_true", help="also time one re-matte at 512 and 1024 px")
    ap.add_argument("--skip-weights-free", action="store_true",
                    help="leave out the weights-free rows (they do not depend on the trained network)")
    ap.add_argument("--repeats", type=int, default=3, help="latency: timed runs per setting (median)")
    args = ap.parse_args()

    out = args.out
    if out.exists() and not args.keep:
        shutil.rmtree(out)
    splits = make_splits(out, size=(320, 320), trimap_iterations=COMPOSE_DEFAULT_BANDS)
    recipe = load_recipe(args.recipe)
    for item in args.assignments:
        key, _, value = item.partition("=")
        set_key(recipe, key, parse_value(value))
    run = out / "run"
    if not (args.keep and ((run / "best.pt").is_file() or args.weights)):
        shutil.rmtree(run, ignore_errors=True)
        t0, c0, k0, load0 = time.perf_counter(), time.process_time(), _children_cpu(), os.getloadavg()
        train(get_family("click"), recipe, splits["train"], run, stage="all", val_dir=splits["val"], device=args.device,
              show_progress=sys.stderr.isatty())
        (out / "train_time.json").write_text(json.dumps({"wall_s": time.perf_counter() - t0,
                                                         "process_cpu_s": time.process_time() - c0,
                                                         "data_workers_cpu_s": _children_cpu() - k0,
                                                         "loadavg_start": load0, "loadavg_end": os.getloadavg()}))
    if args.train_only:
        return
    best = args.weights or run / "best.pt"
    timing_file = out / "train_time.json"
    timing = json.loads(timing_file.read_text()) if timing_file.is_file() else {"wall_s": float("nan"),
                                                                                "process_cpu_s": float("nan")}
    done = [s for s in STAGES if (run / s / "summary.json").is_file()]
    summaries = {s: json.loads((run / s / "summary.json").read_text()) for s in done}
    logs = {s: [r for r in read_log(run / s / "log.jsonl") if r["kind"] == "train"] for s in STAGES
            if (run / s / "log.jsonl").is_file()}

    train_items, test_items = load_items(splits["train"]), load_items(splits["test"])
    h0, w0 = train_items[0].alpha.shape
    prior = np.mean([resized(it.alpha, w0, h0) for it in train_items], axis=0)
    clicks = {it.name: interior_clicks(it.alpha, 3, 3) for it in test_items}
    results: dict[str, dict[str, float]] = {
        "location prior (mean training alpha)": score(lambda it: resized(prior, it.alpha.shape[1], it.alpha.shape[0]),
                                                      test_items, region="all")}
    no_clicks = {name: [] for name in clicks}
    swapped = {name: [Click(c.x, c.y, not c.positive) for c in cs] for name, cs in clicks.items()}
    work = out / "matte"
    runs = {"click-quick, refine 0": (best, 0, clicks), "click-quick, checkpoint's refinement": (best, None, clicks),
            "click-quick, refine 0, NO clicks": (best, 0, no_clicks),
            "click-quick, refine 0, the 3 + 3 clicks' labels SWAPPED": (best, 0, swapped),
            "weights-free (matte --clicks, no --weights)": (None, None, clicks)}
    if args.skip_weights_free:
        runs.pop("weights-free (matte --clicks, no --weights)")
    for name, (weights, refine, given) in runs.items():
        t0 = time.perf_counter()
        try:
            pred = matte_with_clicks(splits["test"], test_items, given, work, weights, refine, args.device)
        except RuntimeError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            continue
        results[name] = score(lambda it: pred[it.name], test_items, region="all")
        results[name]["seconds"] = time.perf_counter() - t0
    curves = {"click-quick": protocol(splits["test"], args.clicks, out / "protocol-net.json", best,
                                      args.device),
              "weights-free": protocol(splits["test"], args.clicks, out / "protocol-free.json", None, args.device)
              if not args.skip_weights_free else {"error": "skipped (--skip-weights-free)"}}
    prior_sad = results["location prior (mean training alpha)"]["sad"]

    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    report = {
        "device": device_name, "recipe": args.recipe, "overrides": args.assignments, "train_time": timing,
        "scored_checkpoint": str(best), "stages_done": done,
        "samples_per_s": {s: summaries[s].get("samples_per_s") for s in done},
        "best_val_sad": {s: summaries[s].get("best_sad") for s in done},
        "matting_loss_first_last": [float(np.mean([r["loss"] for r in logs["matting"][:3]])),
                                    float(np.mean([r["loss"] for r in logs["matting"][-3:]]))],
        "test_images": len(test_items), "three_plus_three": results,
        "protocol_sad": {k: ({n: m["sad"] for m in v["mean"] for n in [m["clicks"]] if n in REPORTED}
                             if "mean" in v else v) for k, v in curves.items()},
        "location_prior_sad": prior_sad,
        "two_subjects": follows_the_clicks(best, out / "src-test", args.device),
    }
    if args.latency:
        report["latency_seconds"] = latency_table(test_items[0].image, best, args.device, args.repeats)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")

    prior_mad = results["location prior (mean training alpha)"]["mad"]
    print(f"scored: {best} (stages done: {', '.join(done) or 'none'})")
    print(f"device: {device_name}; training {timing['wall_s']:.0f} s wall, {timing['process_cpu_s']:.0f} CPU-s "
          f"(+ {timing.get('data_workers_cpu_s', float('nan')):.0f} in data workers), load average "
          f"{timing.get('loadavg_start', ['?'])[0]} at the start, {timing.get('loadavg_end', ['?'])[0]} at the end; "
          "samples/s " + ", ".join(f"{s} {v:.2f}" for s, v in report["samples_per_s"].items() if v))
    print(f"test: {len(test_items)} unseen composites (compose defaults), full size; whole image\n")
    print("| 3 fg + 3 bg interior clicks | MAD | x location prior | SAD / 1000 | MSE |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['mad']:.4f} | {r['mad'] / prior_mad:.2f} | {r['sad']:.2f} | {r['mse']:.4f} |")
    print("\n| simulated clicks (eval --simulate-clicks) | " + " | ".join(f"SAD @{n}" for n in REPORTED) + " |")
    print("|---|" + "---|" * len(REPORTED))
    print("| location prior | " + " | ".join(f"{prior_sad:.2f}" for _ in REPORTED) + " |")
    for name, sads in report["protocol_sad"].items():
        if "error" in sads:
            print(f"| {name} | fails: {sads['error']} |")
        else:
            print(f"| {name} | " + " | ".join(f"{sads[n]:.2f}" if n in sads else "-" for n in REPORTED) + " |")
    two = report["two_subjects"]
    print(f"\n{two['scenes']} two-subject scenes (test foregrounds side by side), 3 + 3 interior clicks for one "
          f"subject, then the other: MAD to the clicked subject {two['mad_to_clicked']:.4f}, to the unclicked one "
          f"{two['mad_to_unclicked']:.4f} (x{two['mad_to_clicked'] / two['mad_to_unclicked']:.2f}; 1.00 = the "
          "clicks are ignored)")
    if args.latency:
        lat = report["latency_seconds"]
        print("\n| per-click latency (s) | " + " | ".join(lat["512px"]) + " |")
        print("|---|" + "---|" * len(lat["512px"]))
        for side, row in lat.items():
            print(f"| {side} | " + " | ".join(f"{v:.3f}" for v in row.values()) + " |")


if __name__ == "__main__":
    main()
