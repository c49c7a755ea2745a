"""Weights-free click matting (issue 21): the GrabCut-trimap method against the old disk method
and against closed form given a trimap, side by side in one run.

Parts (``--parts``, comma list):

- ``synthetic``: unseen procedural composites (``heldout.py``'s ``test`` split, compose's
  defaults; never used to choose the method's settings, which were chosen on ``val``).
  (a) 3 foreground + 3 background clicks inside the regions (:func:`interior_clicks`):
  whole-image SAD of ``grabcut``, ``disks`` and closed form with the dataset's true trimap;
  (b) the ``eval --simulate-clicks`` protocol (:mod:`mattecli.inference.click_protocol`) for
  ``grabcut`` and ``disks`` up to ``--clicks`` clicks. The disk method refuses foreground-only
  clicks; the protocol scores its refusal as an empty matte (what a person sees).
- ``dev-synthetic``: as ``synthetic`` on ``heldout.py``'s ``val`` split, the development set the
  settings are chosen on.
- ``dev-real``: the real development photographs (``--dev-real``, default ``../shared/data/real``):
  the six P3M portraits against their P3M-Net predictions (a network's output, not measured ground
  truth: good enough to develop on), the lemur and the dandelion against their published closed-form
  alphas. 3 + 3 interior clicks, and the protocol up to ``--real-clicks`` clicks. Never scored.
- ``real``: the 27 alphamatting.com training images (``--real``, ground truth there), the
  same 3 + 3 interior clicks; closed form with ``trimap1`` beside.
- ``noc-real``: the protocol on the real images up to ``--real-clicks`` clicks, one image
  at a time, each finished image appended to ``OUT/noc_real.jsonl`` (a rerun resumes);
  a contact sheet of the worst images (clicks, alpha, error) in ``OUT/noc_real_sheet.png``.

- ``preview``: CPU milliseconds per studio preview for ``grabcut`` and ``chain``
  (:func:`part_preview`; ``--real-clicks`` clicks on GT04 at 512 px).
- ``person``: six clicks placed by hand (three on the subject, three on the background, looking
  at the picture) on the real lemur and portrait of ``../shared/data/real``: the contact sheet
  ``OUT/person_sheet.jpg`` (image with clicks, cutout over a checkerboard, alpha) shown in
  docs/studio.md. No ground truth: judged by eye.

SAD is over every pixel, / 1000, on the 8-bit prediction, as ``eval --simulate-clicks``.
Run by hand::

    python benchmarks/bench_clicks_free.py --out /tmp/bench-clicks-free --parts synthetic,real
    python benchmarks/bench_clicks_free.py --out /tmp/bench-clicks-free --parts noc-real --real-clicks 20
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout import make_splits  # noqa: E402

from mattecli.data.clicks import Click, distance_inside  # noqa: E402
from mattecli.data.manifest import read_manifest, resolve  # noqa: E402
from mattecli.errors import MatteError  # noqa: E402
from mattecli.inference.click_protocol import ProtocolImage, images_from_dataset, simulate  # noqa: E402
from mattecli.inference.closed_form import closed_form_alpha  # noqa: E402
from mattecli.inference.methods import ClassicalMethod, build_method  # noqa: E402
from mattecli.io.images import read_alpha, read_alpha_float, read_rgb  # noqa: E402

REPORTED = (1, 3, 5, 10)
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "alphamatting"  # ../shared beside the checkout


def sad(alpha: np.ndarray, gt: np.ndarray) -> float:
    """Whole-image SAD / 1000 of the 8-bit prediction (the protocol's scoring)."""
    return float(np.abs(np.round(np.clip(alpha, 0, 1) * 255) / 255 - gt).sum() / 1000)


def interior_clicks(gt: np.ndarray, per_side: int = 3) -> list[Click]:
    """``per_side`` foreground clicks inside alpha = 1 and as many background clicks inside alpha = 0:
    each at the deepest remaining point of its region, a disk around it then taken out, so the
    clicks spread as a person's would. Deterministic."""
    out = []
    for positive, region in ((True, gt >= 0.999), (False, gt <= 0.001)):
        depth = distance_inside(region).copy()
        for _ in range(per_side):
            y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
            out.append(Click(float(x), float(y), positive))
            cv2.circle(depth, (int(x), int(y)), int(max(3.0, 0.8 * depth[y, x])), 0, -1)
    return out


class EmptyOnRefusal(ClassicalMethod):
    """The disk method as the protocol sees it: a refused matte (foreground-only clicks) is empty."""

    def run(self, jobs):
        for job, result in super().run(jobs):
            yield job, ((np.zeros(job.image.shape[:2], np.float32), None) if isinstance(result, MatteError) else result)


METHODS = ["adaptive", "grabcut", "chain", "disks"]  # --methods: `--click-method` values


def methods(device: str = "cpu") -> dict:
    return {name: EmptyOnRefusal(device, click_method="disks") if name == "disks"
            else build_method(None, "classical", device, click_method=name) for name in dict.fromkeys(METHODS)}


def three_plus_three(images: list[tuple[str, Path, Path, Path]], log) -> dict:
    """Per image and mean: SAD with 3 + 3 interior clicks, and closed form with the given trimap."""
    ms = methods()
    rows = []
    for name, image_path, gt_path, trimap_path in images:
        image, gt = read_rgb(image_path), read_alpha_float(gt_path)
        clicks = interior_clicks(gt)
        row = {"name": name}
        for label, method in ms.items():
            t0 = time.perf_counter()
            try:
                row[label] = sad(method.alpha(_job(name, image, clicks)), gt)
            except MatteError as exc:
                row[label] = float("nan")
                log(f"{name}: {label} failed: {exc}")
            row[f"{label}_s"] = time.perf_counter() - t0
        row["trimap_cf"] = sad(closed_form_alpha(image, trimap=read_alpha(trimap_path)), gt)
        rows.append(row)
        log(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if k != "name" and not k.endswith("_s")))
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0] if k != "name"}
    return {"images": rows, "mean": mean}


def _job(name: str, image: np.ndarray, clicks: list):
    from mattecli.inference.batch import Item, Job

    return Job(Item(Path(name), PurePosixPath(name), PurePosixPath(name)), image, clicks, "clicks")


def curve_summary(curve, trimap_sad: dict[str, float]) -> dict:
    """Means at the reported click counts; clicks to reach 1.5x each image's closed-form-with-trimap SAD."""
    n_max = curve.max_clicks
    reach = []
    for im in curve.images:
        target = 1.5 * trimap_sad[im.name]
        hits = [n for n, s in enumerate(im.scores, 1) if s["sad"] <= target]
        reach.append(hits[0] if hits else n_max + 1)
    return {"mean_sad": {n: curve.mean(n)["sad"] for n in range(1, n_max + 1)},
            "clicks_to_1_5x_trimap": float(np.mean(reach)), "never": int(sum(r > n_max for r in reach)),
            "falls_1_to_last": bool(curve.mean(n_max)["sad"] < curve.mean(1)["sad"]),
            "mean_never_rises": bool(all(curve.mean(n + 1)["sad"] <= curve.mean(n)["sad"] for n in range(1, n_max))),
            "images_falling_1_to_last": int(sum(im.scores[-1]["sad"] < im.scores[0]["sad"] for im in curve.images)),
            "images_rising_somewhere": int(sum(any(b["sad"] > a["sad"] + 0.05 for a, b in zip(im.scores, im.scores[1:]))
                                               for im in curve.images)),
            "seconds_per_click": curve.seconds_per_click(), "images": len(curve.images),
            "failures": curve.failures}


def part_synthetic(out: Path, clicks: int, log, split: str = "test") -> dict:
    splits = make_splits(out / "splits")
    data = splits[split]
    records = read_manifest(data)
    images = [(r.name, resolve(data, r.merged_path), resolve(data, r.alpha_path), resolve(data, r.trimap_path))
              for r in records]
    result = {"three_plus_three": three_plus_three(images, log)}
    trimap_sad = {r["name"]: r["trimap_cf"] for r in result["three_plus_three"]["images"]}
    for label, method in methods().items():
        t0 = time.perf_counter()
        curve = simulate(method, images_from_dataset(data), clicks, ("sad",))
        result[f"noc_{label}"] = curve_summary(curve, trimap_sad)
        log(f"synthetic protocol {label}: " + ", ".join(f"@{n} {curve.mean(n)['sad']:.2f}" for n in REPORTED
                                                         if n <= clicks) + f" ({time.perf_counter() - t0:.0f} s)")
    return result


#: the real development set (``dev-real``), under ../shared/data/real: (name, image, reference alpha)
DEV_REAL = [*((f"p3m_{k}", f"p3m_portraits/p_{k}_image.jpg", f"p3m_portraits/p_{k}_alpha_ref_p3mnet.png")
              for k in ("015cd10e", "22fc0130", "514ca06a", "a09f6d7a", "bd6af989", "d684dae3")),
            ("lemur", "pymatting_lemur/lemur_image.png", "pymatting_lemur/lemur_alpha_ref_cf.png"),
            ("dandelion", "closed_form_dandelion/dandelion_image.png",
             "closed_form_dandelion/dandelion_alpha_ref_cf_trimap.png")]


def part_dev_real(root: Path, clicks: int, log, ms: dict | None = None) -> dict:
    """The real development photographs: 3 + 3 interior clicks, and the protocol up to ``clicks``."""
    ms = methods() if ms is None else ms
    result: dict = {"three_plus_three": {}, "protocol": {}}
    rows = []
    for name, image_rel, ref_rel in DEV_REAL:
        image, gt = read_rgb(root / image_rel), read_alpha_float(root / ref_rel)
        row = {"name": name}
        for label, method in ms.items():
            row[label] = sad(method.alpha(_job(name, image, interior_clicks(gt))), gt)
        rows.append(row)
        log(f"dev-real 3+3 {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if k != "name"))
    result["three_plus_three"] = {"images": rows, "mean": {k: float(np.mean([r[k] for r in rows])) for k in ms}}
    images = [ProtocolImage(name, root / image_rel, root / ref_rel) for name, image_rel, ref_rel in DEV_REAL]
    for label, method in ms.items():
        t0 = time.perf_counter()
        curve = simulate(method, images, clicks, ("sad",))
        summary = curve_summary(curve, {im.name: 0.0 for im in curve.images})
        del summary["clicks_to_1_5x_trimap"], summary["never"]
        summary["per_image"] = {im.name: [s["sad"] for s in im.scores] for im in curve.images}
        result["protocol"][label] = summary
        log(f"dev-real protocol {label}: " + ", ".join(f"@{n} {curve.mean(n)['sad']:.2f}" for n in (*REPORTED, 20)
                                                       if n <= clicks)
            + f"; falling {summary['images_falling_1_to_last']} of {len(curve.images)}, rising somewhere "
              f"{summary['images_rising_somewhere']} ({time.perf_counter() - t0:.0f} s)")
    return result


def real_images(root: Path) -> list[tuple[str, Path, Path, Path]]:
    names = sorted(p.name for p in (root / "image").iterdir())
    if not names:
        raise SystemExit(f"no images in {root / 'image'}")
    return [(n, root / "image" / n, root / "alpha" / n, root / "trimap1" / n) for n in names]


def _finished(done_path: Path, clicks: int) -> dict:
    done = {}
    if done_path.is_file():
        for line in done_path.read_text().splitlines():
            rec = json.loads(line)
            if rec["max_clicks"] == clicks:
                done[rec["name"]] = rec
    return done


def part_noc_real(out: Path, root: Path, clicks: int, log, reverse: bool = False, summary_only: bool = False,
                  method_name: str = "grabcut") -> dict:
    """Resumable, and two runs (one with ``reverse``) share the work: each skips what is in the file;
    ``summary_only`` summarises what is there (and draws the sheet) without matting more."""
    suffix = "" if method_name == "grabcut" else f"_{method_name}"
    done_path = out / f"noc_real{suffix}.jsonl"
    METHODS.append(method_name)
    method = methods()[method_name]
    sheet_rows = []
    for name, image_path, gt_path, trimap_path in real_images(root)[::-1 if reverse else 1]:
        done = _finished(done_path, clicks)
        if name in done or summary_only:
            continue
        t0 = time.perf_counter()
        kept = {}
        curve = simulate(method, [ProtocolImage(name, image_path, gt_path)], clicks, ("sad",),
                         keep=lambda c, image, alpha, extras: kept.update(alpha=alpha))
        if not curve.images:
            log(f"{name}: failed: {curve.failures}")
            continue
        image, gt = read_rgb(image_path), read_alpha_float(gt_path)
        cf = sad(closed_form_alpha(image, trimap=read_alpha(trimap_path)), gt)
        im = curve.images[0]
        rec = {"name": name, "max_clicks": clicks, "trimap1_cf": cf, "sad": [s["sad"] for s in im.scores],
               "clicks": [[c.x, c.y, c.label] for c in im.clicks], "seconds": time.perf_counter() - t0}
        with done_path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        np.save(out / f"noc_alpha{suffix}_{Path(name).stem}.npy", np.round(kept["alpha"] * 255).astype(np.uint8))
        log(f"{name}: SAD @1 {rec['sad'][0]:.1f} @{clicks} {rec['sad'][-1]:.1f}, trimap1 {cf:.1f} "
            f"({rec['seconds']:.0f} s)")
    recs = list(_finished(done_path, clicks).values())
    if not recs:
        return {}
    n = min(len(r["sad"]) for r in recs)
    mean = [float(np.mean([r["sad"][k] for r in recs])) for k in range(n)]
    cf = float(np.mean([r["trimap1_cf"] for r in recs]))
    reach = []
    for r in recs:
        hits = [k + 1 for k, s in enumerate(r["sad"]) if s <= 1.5 * r["trimap1_cf"]]
        reach.append(hits[0] if hits else clicks + 1)
    worst = sorted(recs, key=lambda r: r["sad"][-1] / max(r["trimap1_cf"], 1e-6), reverse=True)[:6]
    for r in worst:
        sheet_rows.append(_sheet_row(root, r, out, suffix))
    if sheet_rows:
        _write_sheet(out / f"noc_real{suffix}_sheet.png", sheet_rows)
    return {"images": len(recs), "mean_sad": mean, "trimap1_cf_mean": cf, "ratio_at_last": mean[-1] / cf,
            "images_falling_1_to_10": int(sum(r["sad"][min(9, n - 1)] < r["sad"][0] for r in recs)),
            "images_rising_somewhere": int(sum(any(b > a + 0.05 for a, b in zip(r["sad"], r["sad"][1:])) for r in recs)),
            "clicks_to_1_5x_trimap": float(np.mean(reach)), "never": int(sum(x > clicks for x in reach)),
            "worst": [r["name"] for r in worst]}


def _sheet_row(root: Path, rec: dict, out: Path, suffix: str = "") -> list[np.ndarray]:
    from mattecli.report.heatmap import draw_clicks

    image = read_rgb(root / "image" / rec["name"])
    gt = read_alpha_float(root / "alpha" / rec["name"])
    alpha = np.load(out / f"noc_alpha{suffix}_{Path(rec['name']).stem}.npy").astype(np.float32) / 255
    clicks = [Click(x, y, label == "fg") for x, y, label in rec["clicks"]]
    err = np.abs(alpha - gt)
    heat = cv2.applyColorMap(np.round(np.clip(err, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[:, :, ::-1]
    grey = lambda a: np.repeat(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)[:, :, None], 3, 2)  # noqa: E731
    return [draw_clicks(image, clicks, max(3, image.shape[1] / 150)), grey(alpha), grey(gt), heat]


def _write_sheet(path: Path, rows: list[list[np.ndarray]], width: int = 300) -> None:
    from mattecli.io.images import write_image

    lines = []
    for row in rows:
        h, w = row[0].shape[:2]
        th = int(round(h * width / w))
        lines.append(np.hstack([cv2.resize(p, (width, th), interpolation=cv2.INTER_AREA) for p in row]))
    write_image(path, np.vstack([np.pad(r, ((0, 4), (0, 0), (0, 0)), constant_values=255) for r in lines]))


#: (file under ../shared/data/real, [(x, y, label), ...]): a person's six clicks
PERSON_CLICKS = [
    ("pymatting_lemur/lemur_image.png", [(330, 110, "fg"), (320, 240, "fg"), (260, 330, "fg"),
                                         (70, 200, "bg"), (610, 200, "bg"), (110, 400, "bg")]),
    ("p3m_portraits/p_015cd10e_image.jpg", [(150, 300, "fg"), (380, 300, "fg"), (330, 470, "fg"),
                                            (650, 300, "bg"), (450, 80, "bg"), (30, 100, "bg")]),
]


def part_person(out: Path, real_root: Path, log) -> dict:
    from mattecli.inference.foreground import estimate_foreground
    from mattecli.report.heatmap import draw_clicks

    method = build_method(None, "classical", "cpu")  # the default --click-method
    rows, result = [], {}
    for rel, marks in PERSON_CLICKS:
        image = read_rgb(real_root / rel)
        clicks = [Click(float(x), float(y), label == "fg") for x, y, label in marks]
        t0 = time.perf_counter()
        alpha = method.alpha(_job(rel, image, clicks))
        seconds = time.perf_counter() - t0
        fg = estimate_foreground(image, alpha, device=method.device)
        h, w = alpha.shape
        size = max(8, w // 40)
        checker = np.where(((np.arange(h)[:, None] // size + np.arange(w)[None, :] // size) % 2) == 0, 235, 190)
        a = alpha[:, :, None]
        cutout = np.clip(np.rint(fg * 255 * a + checker[:, :, None] * (1 - a)), 0, 255).astype(np.uint8)
        grey = np.repeat(np.rint(alpha * 255).astype(np.uint8)[:, :, None], 3, 2)
        rows.append([draw_clicks(image, clicks, max(4, w / 90)), cutout, grey])
        result[rel] = {"seconds": seconds}
        log(f"{rel}: matted with 6 clicks in {seconds:.1f} s")
    _write_sheet(out / "person_sheet.png", rows, width=360)
    return result


PREVIEW_METHODS = ["adaptive", "grabcut", "chain"]  # --methods, less disks


def part_preview(out: Path, real_root: Path, clicks: int, log) -> dict:
    """CPU milliseconds per studio preview (``time.process_time``, robust to other jobs' load, unlike
    wall time): an in-process :class:`StudioSession` on alphamatting.com GT04 at 512 px, working
    size 384, ``clicks`` alternating clicks drawn as ``bench_studio.py`` draws them, for ``grabcut``
    and ``chain`` (the session's ``--click-method``), each once warm-up
    pass then one timed pass with the chain cache cleared."""
    from bench_studio import resized, simulated_clicks

    from mattecli.inference import click_trimap
    from mattecli.inference.batch import MatteOptions
    from mattecli.io.images import write_image
    from mattecli.studio.session import StudioSession

    image = resized(read_rgb(real_root / "image" / "GT04.png"), 512)
    marks = simulated_clicks(resized(read_alpha(real_root / "alpha" / "GT04.png"), 512), clicks, 0)
    write_image(out / "preview" / "in" / "GT04.png", image)
    result = {}
    for label in PREVIEW_METHODS:
        for timed in (False, True):
            click_trimap._CHAIN_CACHE.clear()
            session = StudioSession(MatteOptions(input=out / "preview" / "in", out=out / "preview" / label,
                                                 overwrite=True),
                                    build_method(None, "classical", "cpu", click_method=label), 384, None)
            cpu = []
            for x, y, mark in marks:
                session.add_click(0, x, y, mark == "fg")
                t0 = time.process_time()
                session.preview(0)
                cpu.append((time.process_time() - t0) * 1000)
        result[label] = {"median_ms": float(np.median(cpu)), "p95_ms": float(np.percentile(cpu, 95)),
                         "first_ms": cpu[0], "ms": cpu}
        log(f"preview {label}: CPU ms median {np.median(cpu):.0f}, p95 {np.percentile(cpu, 95):.0f}, "
            f"first click {cpu[0]:.0f}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/mattecli-bench-clicks-free"))
    ap.add_argument("--parts", default="synthetic,real")
    ap.add_argument("--clicks", type=int, default=10, help="protocol clicks on the synthetic set")
    ap.add_argument("--real", type=Path, default=REAL)
    ap.add_argument("--dev-real", type=Path, default=REAL.parent, help="dev-real: ../shared/data/real")
    ap.add_argument("--real-clicks", type=int, default=20, help="protocol clicks on the real images")
    ap.add_argument("--reverse", action="store_true", help="noc-real: take the images from the last (a second run)")
    ap.add_argument("--summary-only", action="store_true", help="noc-real: summarise the finished images only")
    ap.add_argument("--methods", default="adaptive,grabcut,chain,disks",
                    help="weights-free methods compared (`--click-method` values): adaptive (the default), grabcut "
                         "(one GrabCut on all the clicks), chain (each click refines the segmentation before it, "
                         "with the doubtful-colour band), disks")
    ap.add_argument("--noc-method", default="grabcut", help="noc-real: the method run (adaptive, grabcut or chain)")
    args = ap.parse_args()
    METHODS[:] = args.methods.split(",")
    PREVIEW_METHODS[:] = [m for m in METHODS if m != "disks"]
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "log.txt"

    def log(line: str) -> None:
        print(line, flush=True)
        with log_path.open("a") as f:
            f.write(line + "\n")

    results = {}
    for part in args.parts.split(","):
        t0 = time.perf_counter()
        if part == "synthetic":
            results[part] = part_synthetic(args.out, args.clicks, log)
        elif part == "dev-synthetic":
            results[part] = part_synthetic(args.out, args.clicks, log, split="val")
        elif part == "dev-real":
            results[part] = part_dev_real(args.dev_real, args.real_clicks, log)
        elif part == "real":
            results[part] = three_plus_three(real_images(args.real), log)
        elif part == "preview":
            results[part] = part_preview(args.out, args.real, args.real_clicks, log)
        elif part == "person":
            results[part] = part_person(args.out, args.real.parent, log)
        elif part == "noc-real":
            results[part] = part_noc_real(args.out, args.real, args.real_clicks, log, args.reverse, args.summary_only,
                                          args.noc_method)
        else:
            raise SystemExit(f"unknown part {part!r}")
        results[part]["wall_s"] = time.perf_counter() - t0
        name = part if part != "noc-real" or args.noc_method == "grabcut" else f"{part}-{args.noc_method}"
        (args.out / f"{name}.json").write_text(json.dumps(results[part], indent=1))
        log(f"== {part}: {json.dumps({k: v for k, v in results[part].items() if k not in ('images',)})[:2000]}")


if __name__ == "__main__":
    main()
