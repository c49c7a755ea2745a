"""One-shot GPU check: training speed per family and precision, inference fps, DDP; one JSON report.

Written before any GPU was lent, so that the first few minutes of one give every figure in one go:

    python benchmarks/gpu_check.py --report gpu.json              # on the GPU machine, < 8 min
    python benchmarks/gpu_check.py --cpu-smoke --report r.json    # same code paths, CPU, tiny sizes

Parts (each time-boxed; a part that fails or runs out of time is recorded, never a crash):

- ``data``: procedural sources (``mattecli samples``) composited by ``mattecli compose`` (trimaps
  and plates), plus 1080p stills, their guidance and a 1080p clip made from them.
- ``train/<family>/<fp32|bf16>``: ``mattecli train <family>`` with the paper recipe (its crop and
  input sizes and batch size) for the stage in TIMED_STAGE, ``--amp none`` or ``--amp bf16``,
  WARMUP steps then STEPS timed steps; steps/s from the engine's per-step log (data loading
  included, as in real training), peak GPU memory, and whether the loss fell (mean of the last
  third of the logged losses below the mean of the first third).
- ``matte/<family>``: the fp32 run's checkpoint on the 1080p stills. Model-only fps (the network's
  ``predict`` on device tensors, synchronised) against end-to-end fps (``mattecli matte --weights``
  in a fresh process, files in and PNGs out; the start-up is measured with a one-image run and
  taken out in ``e2e_fps_after_startup``), at the largest batch in BATCHES that fits.
- ``video/bgm``: ``mattecli video --weights`` on the 1080p clip with its plate, same batch.
- ``ddp``: ``torchrun`` on all visible GPUs (two gloo processes in the CPU smoke test), DDP_STEPS steps.

``--cpu-smoke`` swaps in the quick recipes and tiny sizes (and learning rates that move in a few
steps); everything else, commands included, is the same.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

FAMILIES = ("dim", "shm", "bgm", "click")
#: the stage each family is timed on: the one that trains the whole network at its largest input
TIMED_STAGE = {"dim": "joint", "shm": "e2e", "bgm": "adobe", "click": "matting"}
#: the guidance `matte --weights` needs per family, as (flag, folder or file under the inference data)
GUIDANCE = {"dim": ("--trimap", "trimap"), "shm": None, "bgm": ("--background", "plate"), "click": ("--clicks", "clicks.json")}
BATCHES = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Mode:
    name: str
    device: str
    recipes: dict[str, str]
    overrides: dict[str, list[str]]  # --set assignments per family
    sources: tuple[int, int, int, int]  # foregrounds, backgrounds, width, height for `samples`
    per_fg: int
    warmup: int
    steps: int
    ddp_steps: int
    still_size: tuple[int, int]  # (width, height) of the inference stills and the clip
    stills: int
    clip_frames: int
    max_batch: int
    budget_s: float
    part_timeout_s: float
    train_workers: int
    batch_size: int | None = None  # None: the recipe's (per stage); the smoke check's few samples need a small one


GPU = Mode(
    name="gpu", device="cuda", recipes={f: f for f in FAMILIES}, overrides={f: [] for f in FAMILIES},
    sources=(8, 4, 800, 800), per_fg=2, warmup=10, steps=50, ddp_steps=20, still_size=(1920, 1080),
    stills=24, clip_frames=48, max_batch=16, budget_s=470.0, part_timeout_s=90.0, train_workers=4)

SMOKE = Mode(
    name="cpu-smoke", device="cpu", recipes={f: f"{f}-quick" for f in FAMILIES},
    overrides={
        "dim": ["crop_sizes=[48, 64]", "input_size=32"],
        "shm": ["full_size=48", "e2e_crop=48", "infer_size=32", "stages.e2e.lr=1e-3"],
        "bgm": ["input_size=32", "crop_sizes=[40, 48]", "lr=1e-3"],
        "click": ["crop_sizes=[48, 64]", "input_size=32", "click_radius=3.0", "lr=1e-3"],
    },
    sources=(2, 3, 64, 64), per_fg=3, warmup=1, steps=5, ddp_steps=3, still_size=(96, 64), stills=2,
    clip_frames=3, max_batch=2, budget_s=285.0, part_timeout_s=300.0, train_workers=0, batch_size=2)


@dataclass
class Check:
    mode: Mode
    work: Path
    started: float = field(default_factory=time.perf_counter)
    parts: dict[str, dict] = field(default_factory=dict)

    def left(self) -> float:
        return self.mode.budget_s - (time.perf_counter() - self.started)

    def part(self, name: str, fn, *args) -> dict:
        """Run one part: its figures, or the reason it failed or was skipped, go into the report."""
        t0 = time.perf_counter()
        if self.left() < 5:
            record = {"status": "skipped", "error": "the time budget ran out before this part"}
        else:
            try:
                record = {"status": "ok", **fn(*args)}
            except Exception as exc:  # a failing part is a finding, not a crash
                record = {"status": "failed", "error": f"{type(exc).__name__}: {str(exc).strip()[-800:]}",
                          "where": traceback.format_exc(limit=3)[-800:]}
        record["seconds"] = round(time.perf_counter() - t0, 2)
        self.parts[name] = record
        print(f"[{time.perf_counter() - self.started:6.1f} s] {name}: {record['status']}"
              + (f" ({record['error']})" if record["status"] != "ok" else ""), flush=True)
        return record

    def timeout(self) -> float:
        return max(5.0, min(self.mode.part_timeout_s, self.left()))

    def run(self, args: list[str], peak_file: Path | None = None, timeout: float | None = None) -> float:
        """A mattecli command (``mattecli ARGS``) in a fresh process; its wall time. With ``peak_file``
        the child writes its peak GPU memory and resident memory there."""
        wrapper = [sys.executable, str(Path(__file__).resolve()), "--child", str(peak_file)] if peak_file \
            else [sys.executable, "-m", "mattecli"]
        return self.command([*wrapper, *args], timeout)

    def command(self, cmd: list[str], timeout: float | None = None) -> float:
        t0 = time.perf_counter()
        limit = timeout or self.timeout()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit,
                                  env=dict(os.environ, PYTHONUNBUFFERED="1"))
        except subprocess.TimeoutExpired:
            shown = cmd[cmd.index("mattecli") + 1:][:2] if "mattecli" in cmd else cmd[4:6]
            raise RuntimeError(f"{' '.join(shown)} ran past its {limit:.0f} s") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-6:]
            raise RuntimeError(f"exit {done.returncode}: {' | '.join(tail)}")
        return time.perf_counter() - t0


# ----------------------------------------------------------------------------- data

def make_data(check: Check) -> dict:
    import cv2
    import numpy as np

    from mattecli.io.images import read_alpha, read_rgb, write_image
    from mattecli.io.video import FORMATS, VideoWriter

    m, work = check.mode, check.work
    n_fg, n_bg, w, h = m.sources
    t0 = time.perf_counter()
    check.run(["samples", str(work / "src"), "--foregrounds", str(n_fg), "--backgrounds", str(n_bg),
               "--width", str(w), "--height", str(h)])
    check.run(["compose", "--fg", str(work / "src" / "fg"), "--alpha", str(work / "src" / "alpha"),
               "--bg", str(work / "src" / "bg"), "--out", str(work / "ds"), "--per-fg", str(m.per_fg),
               "--trimaps", "--plates", "-q", "--workers", "2"])
    composed = time.perf_counter() - t0

    # inference stills at the check's size (1080p on the GPU): composites, trimaps, plates resized
    sw, sh = m.still_size
    names = sorted(p.name for p in (work / "ds" / "merged").glob("*.png"))
    clicks = {}
    frames = []
    for k in range(m.stills):
        name = names[k % len(names)]
        stem = f"still_{k:03d}"
        image = cv2.resize(read_rgb(work / "ds" / "merged" / name), (sw, sh), interpolation=cv2.INTER_LINEAR)
        trimap = cv2.resize(read_alpha(work / "ds" / "trimap" / name), (sw, sh), interpolation=cv2.INTER_NEAREST)
        plate = cv2.resize(read_rgb(work / "ds" / "plate" / name), (sw, sh), interpolation=cv2.INTER_LINEAR)
        write_image(work / "stills" / "images" / f"{stem}.png", image)
        write_image(work / "stills" / "trimap" / f"{stem}.png", trimap)
        write_image(work / "stills" / "plate" / f"{stem}.png", plate)
        (yf, xf), (yb, xb) = (np.unravel_index(pick(trimap), trimap.shape) for pick in (np.argmax, np.argmin))
        clicks[stem] = [{"x": int(xf), "y": int(yf), "label": "fg"}, {"x": int(xb), "y": int(yb), "label": "bg"}]
        if k == 0:
            plate0 = plate
        frames.append(image)
    (work / "stills" / "clicks.json").write_text(json.dumps(clicks))
    # the clip: the first plate with the stills' content drifting over it (content is irrelevant to speed)
    write_image(work / "clip_plate.png", plate0)
    fmt = FORMATS["mp4"]
    with VideoWriter(work / "clip.mp4", fmt, (sw, sh), Fraction(30)) as writer:
        for k in range(m.clip_frames):
            writer.write(np.roll(frames[0], 4 * k, axis=1))
    return {"composites": len(names), "compose_seconds": round(composed, 2), "stills": m.stills,
            "still_size": f"{sw}x{sh}", "clip_frames": m.clip_frames}


# ----------------------------------------------------------------------------- training

def from_scratch_flags(family: str) -> list[str]:
    """``--from-scratch`` where `train` has it: the paper recipes start from ImageNet weights by default,
    and the check must not download anything (nor depend on a download)."""
    try:
        from typer.main import get_command

        from mattecli.cli.app import app

        command = get_command(app).commands["train"].commands[family]
        if any("--from-scratch" in getattr(p, "opts", ()) for p in command.params):
            return ["--from-scratch"]
    except Exception:
        pass
    return []


def read_train_log(run: Path, stage: str, warmup: int) -> dict:
    from mattecli.train.logging import read_log

    summary = json.loads((run / stage / "summary.json").read_text())
    records = [r for r in read_log(run / stage / "log.jsonl") if r.get("kind") == "train"]
    per_step = summary["batch_size"] * summary["world_size"]  # samples per step, all processes
    timed = [r for r in records if r["step"] > warmup]
    seconds = sum(per_step / r["samples_per_s"] for r in timed)  # log_every = 1: each record is one step
    losses = [float(r["loss"]) for r in records]
    third = max(1, len(losses) // 3)
    first, last = sum(losses[:third]) / third, sum(losses[-third:]) / third
    return {"steps_timed": len(timed), "steps_per_s": round(len(timed) / seconds, 3) if seconds else None,
            "samples_per_s": round(len(timed) * per_step / seconds, 3) if seconds else None,
            "batch_size": summary["batch_size"], "world_size": summary["world_size"],
            "loss_first": round(first, 5), "loss_last": round(last, 5), "loss_fell": last < first,
            "losses": [round(v, 5) for v in losses]}


def train_args(check: Check, family: str, run: Path, iters: int) -> list[str]:
    m = check.mode
    args = ["train", family, "--data", str(check.work / "ds"), "--recipe", m.recipes[family],
            "--stage", TIMED_STAGE[family], "--iters", str(iters), "--out", str(run), "--device", m.device,
            "--no-progress", "--seed", "0", "--workers", str(m.train_workers),
            "--set", "log_every=1", "--set", "checkpoint_every=0", "--set", "val_every=0"]
    for assignment in m.overrides[family]:
        args += ["--set", assignment]
    if m.batch_size:
        args += ["--batch-size", str(m.batch_size)]
    return args + from_scratch_flags(family)


def train_part(check: Check, family: str, precision: str) -> dict:
    m = check.mode
    run = check.work / "runs" / f"{family}-{precision}"
    peak = check.work / "runs" / f"{family}-{precision}.peak.json"
    args = train_args(check, family, run, m.warmup + m.steps) + ["--amp", "bf16" if precision == "bf16" else "none"]
    wall = check.run(args, peak_file=peak)
    out = read_train_log(run, TIMED_STAGE[family], m.warmup)
    out.update(json.loads(peak.read_text()))
    out.update({"recipe": m.recipes[family], "stage": TIMED_STAGE[family], "wall_seconds": round(wall, 2),
                "checkpoint": str(run / "best.pt")})
    return out


def ddp_part(check: Check) -> dict:
    import torch

    m = check.mode
    nproc = torch.cuda.device_count() if m.device == "cuda" else 2
    run = check.work / "runs" / "ddp"
    family = "dim"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "mattecli", *train_args(check, family, run, m.ddp_steps), "--amp", "none"]
    wall = check.command(cmd)
    out = read_train_log(run, TIMED_STAGE[family], warmup=min(2, m.ddp_steps - 1))
    out.update({"processes": nproc, "family": family, "wall_seconds": round(wall, 2)})
    return out


# ----------------------------------------------------------------------------- inference

def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_fps(check: Check, family: str, weights: Path) -> dict:
    """The network alone: the largest batch in BATCHES (up to the stills) that runs, then its images/s."""
    import torch

    from mattecli.inference.batch import Item, Job
    from mattecli.inference.clicks import read_clicks
    from mattecli.inference.methods import build_method
    from mattecli.io.images import read_alpha, read_rgb

    m, stills = check.mode, check.work / "stills"
    method = build_method(weights, "classical", m.device, 1)
    names = sorted(p.name for p in (stills / "images").glob("*.png"))
    clicks = read_clicks(stills / "clicks.json")  # the CLI's parser: the same clicks as `matte --clicks`

    def tensors(name: str):
        path = stills / "images" / name
        image = read_rgb(path)
        kind = method.model.guidance
        guidance = {"trimap": lambda: read_alpha(stills / "trimap" / name),
                    "background": lambda: read_rgb(stills / "plate" / name),
                    "clicks": lambda: clicks[path.stem],
                    "none": lambda: None}[kind]()
        job = Job(Item(path, path.relative_to(stills), path.relative_to(stills)), image, guidance, kind, None)
        _, img, g = method._prepare(job)
        return img, g

    prepared = [tensors(n) for n in names]
    device = method.device

    def forward(batch: int) -> None:
        images = torch.stack([p[0] for p in prepared[:batch]]).to(device)
        guidance = None if prepared[0][1] is None else torch.stack([p[1] for p in prepared[:batch]]).to(device)
        with torch.no_grad():
            method.model.predict(images, guidance)
        _sync(device)

    fits = 0
    for batch in [b for b in BATCHES if b <= min(m.max_batch, len(prepared))]:
        try:
            forward(batch)
            fits = batch
        except torch.OutOfMemoryError:
            break
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
    if not fits:
        raise RuntimeError("not even batch 1 fits")
    repeats = max(2, min(10, len(prepared) // fits))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        forward(fits)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    del method
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"batch": fits, "model_fps": round(repeats * fits / seconds, 3), "model_peak_gpu_bytes": peak}


def matte_part(check: Check, family: str) -> dict:
    weights = Path(check.parts[f"train/{family}/fp32"].get("checkpoint", "-"))
    if not weights.is_file():
        raise RuntimeError(f"no checkpoint: train/{family}/fp32 did not make one")
    out = model_fps(check, family, weights)
    stills = check.work / "stills"
    guide = []
    if GUIDANCE[family]:
        flag, sub = GUIDANCE[family]
        guide = [flag, str(stills / sub)]
    common = ["--weights", str(weights), "--device", check.mode.device, "--batch-size", str(out["batch"]),
              "--output", "alpha", *guide]
    one = check.work / "one"
    shutil.rmtree(one, ignore_errors=True)
    first = sorted((stills / "images").glob("*.png"))[0]
    startup = check.run(["matte", str(first), "--out", str(one / family), *common])
    wall = check.run(["matte", str(stills / "images"), "--out", str(check.work / "matted" / family), *common])
    n = check.mode.stills
    out.update({"images": n, "e2e_wall_seconds": round(wall, 2), "e2e_fps": round(n / wall, 3),
                "one_image_wall_seconds": round(startup, 2),
                "e2e_fps_after_startup": round((n - 1) / (wall - startup), 3) if wall > startup else None})
    return out


def video_part(check: Check) -> dict:
    weights = Path(check.parts["train/bgm/fp32"].get("checkpoint", "-"))
    if not weights.is_file():
        raise RuntimeError("no checkpoint: train/bgm/fp32 did not make one")
    batch = check.parts.get("matte/bgm", {}).get("batch", 1)
    out_dir = check.work / "video"
    wall = check.run(["video", str(check.work / "clip.mp4"), "--background", str(check.work / "clip_plate.png"),
                      "--out", str(out_dir), "--weights", str(weights), "--device", check.mode.device,
                      "--batch-size", str(batch), "--output", "alpha", "--no-sheet"])
    frames = check.mode.clip_frames
    return {"frames": frames, "batch": batch, "e2e_wall_seconds": round(wall, 2), "e2e_fps": round(frames / wall, 3),
            "model_fps": check.parts.get("matte/bgm", {}).get("model_fps"),
            "outputs": sorted(p.name for p in out_dir.iterdir())}


# ----------------------------------------------------------------------------- main

def child(peak_file: Path, args: list[str]) -> None:
    """Run ``mattecli ARGS`` in this process, then write its peak memory (GPU and resident) to ``peak_file``."""
    import torch

    from mattecli.cli.app import main as cli_main

    sys.argv = ["mattecli", *args]
    code = 0
    try:
        cli_main()
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        gpu = torch.cuda.max_memory_allocated() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        peak_file.write_text(json.dumps({"peak_gpu_bytes": gpu, "peak_rss_bytes": rss}))
    sys.exit(code)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", type=Path, required=True, help="JSON report to write")
    ap.add_argument("--cpu-smoke", action="store_true", help="CPU, quick recipes, tiny sizes (the suite runs this)")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a fresh one beside the report)")
    ap.add_argument("--budget", type=float, default=None, help="seconds for the whole check (default: 470 GPU, 285 CPU smoke)")
    args = ap.parse_args()

    import torch

    mode = SMOKE if args.cpu_smoke else GPU
    if args.budget:
        mode = Mode(**{**mode.__dict__, "budget_s": args.budget})
    if mode.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device here; run with --cpu-smoke on a machine without a GPU")
    work = args.work or args.report.resolve().parent / (args.report.stem + "-work")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    check = Check(mode, work)

    check.part("data", make_data, check)
    for family in FAMILIES:
        for precision in ("fp32", "bf16"):
            check.part(f"train/{family}/{precision}", train_part, check, family, precision)
    check.part("ddp", ddp_part, check)
    for family in FAMILIES:
        check.part(f"matte/{family}", matte_part, check, family)
    check.part("video/bgm", video_part, check)

    device = torch.cuda.get_device_name(0) if mode.device == "cuda" else platform.processor() or "cpu"
    report = {"mode": mode.name, "device": device, "gpus": torch.cuda.device_count(), "torch": torch.__version__,
              "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
              "seconds": round(time.perf_counter() - check.started, 1), "budget_s": mode.budget_s,
              "warmup_steps": mode.warmup, "timed_steps": mode.steps,
              "ok": all(p["status"] == "ok" for p in check.parts.values()), "parts": check.parts}
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1))
    print(f"report: {args.report} ({sum(p['status'] == 'ok' for p in check.parts.values())}/{len(check.parts)} "
          f"parts ok, {report['seconds']} s)")


if __name__ == "__main__":
    main()
