"""Evidence that SHM training learns: held-out whole-image metrics before and after ``shm-quick``.

On ``benchmarks/heldout.py`` splits (train / val / test compose datasets from fresh procedural
sources, none of them the built-in samples), train the ``shm-quick`` recipe, all three stages
(tnet, mnet, e2e), each stage's checkpoint selected on ``val`` (never on ``test``). Then score
on ``test``, in the same run:

- a constant prediction (the mean alpha of the training composites; for the trimap, the most
  frequent training class everywhere),
- the untrained network (the seeded initialisation the run starts from),
- the network after the two pre-training stages (``mnet/best.pt``: pre-trained T-Net and M-Net),
- the network after end-to-end training (``RUN/best.pt``).

Metrics: whole-image SAD / MSE / MAD (the trimap-free convention) and the unknown-band SAD,
plus the trimap pixel accuracy against the trimap the T-Net is trained to predict (the
project's generator with the recipe's ``tnet_trimap_*`` at the T-Net's input scale). Also
the training throughput, and a contact sheet of the quick model on the real portraits of
``/work/shared/data/real/p3m_portraits`` (whose alphas are P3M-Net predictions, not truth).

    python benchmarks/bench_train_shm.py --out /tmp/bench-shm [--sheet docs/img/shm_quick_p3m.jpg]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout import load_items, make_splits, score  # noqa: E402

from mattecli.data.sources import find_samples, read_pair  # noqa: E402
from mattecli.data.trimap import trimap_from_alpha  # noqa: E402
from mattecli.families.registry import build_model, get_family, load_model  # noqa: E402
from mattecli.families.shm.data import resize  # noqa: E402
from mattecli.seeding import derive_seed  # noqa: E402
from mattecli.train.engine import _seed_everything, train  # noqa: E402
from mattecli.train.recipe import load_recipe, stage_recipe  # noqa: E402

P3M = Path("/work/shared/data/real/p3m_portraits")
LEVELS = np.array([0, 128, 255], np.uint8)


def reference_trimap(alpha: np.ndarray, flat: dict) -> np.ndarray:
    """The trimap the T-Net learns: the generator on the alpha at the T-Net's input scale."""
    h, w = alpha.shape
    s = int(flat["infer_size"])
    small = resize((np.clip(alpha, 0, 1) * 255).round().astype(np.uint8), s, s)
    k, it = flat["tnet_trimap_kernel"], flat["tnet_trimap_iterations"]
    k = k if isinstance(k, int) else k[0]
    it = it if isinstance(it, int) else it[0]
    return resize(trimap_from_alpha(small, k, it, k, it), w, h, nearest=True)


def network(model: torch.nn.Module):
    model = model.eval()
    cache: dict[str, dict[str, np.ndarray]] = {}

    def run(item) -> dict[str, np.ndarray]:
        if item.name not in cache:
            x = torch.from_numpy(item.image).permute(2, 0, 1)[None].float().div(255)
            out = model.predict(x)
            cache[item.name] = {"alpha": out["alpha"][0, 0].numpy(),
                                "trimap": LEVELS[np.clip(np.rint(out["trimap"][0, 0].numpy() * 2), 0, 2).astype(int)]}
        return cache[item.name]
    return run


def trimap_accuracy(predict_trimap, items, flat) -> float:
    return float(np.mean([np.mean(predict_trimap(it) == reference_trimap(it.alpha, flat)) for it in items]))


def evaluate(name: str, alpha_fn, trimap_fn, items, flat) -> dict[str, float]:
    whole = score(alpha_fn, items, region="all")
    band = score(alpha_fn, items, region="unknown", clamp_known=False)
    return {"sad": whole["sad"], "mse": whole["mse"], "mad": whole["mad"], "grad": whole["grad"],
            "conn": whole["conn"], "sad_unknown": band["sad"], "trimap_acc": trimap_accuracy(trimap_fn, items, flat)}


def p3m_sheet(model: torch.nn.Module, path: Path) -> dict[str, float]:
    """Contact sheet of the quick model on the real portraits; agreement with P3M-Net's alphas."""
    from mattecli.io.images import read_alpha_float, read_rgb
    from mattecli.report.sheet import alpha_display, checkerboard_composite, write_contact_sheet

    rows, mads = [], []
    for image_path in sorted(P3M.glob("*_image.jpg")):
        case = image_path.name.removesuffix("_image.jpg")
        image = read_rgb(image_path)
        ref = read_alpha_float(P3M / f"{case}_alpha_ref_p3mnet.png")
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255)
        with torch.no_grad():
            out = model.eval().predict(x)
        alpha = out["alpha"][0, 0].numpy()
        trimap = LEVELS[np.clip(np.rint(out["trimap"][0, 0].numpy() * 2), 0, 2).astype(int)]
        mads.append(float(np.abs(alpha - ref).mean()))
        rows.append([image, alpha_display(ref), trimap, alpha_display(alpha),
                     checkerboard_composite(image, alpha)])
    labels = ["image", "P3M-Net alpha (reference)", "SHM-quick trimap", "SHM-quick alpha", "cutout"]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_contact_sheet(path, rows, labels, cell_width=150, label_height=18)
    return {"mad_vs_p3mnet_mean": float(np.mean(mads)), "images": len(mads)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=128, help="side of the procedural images")
    parser.add_argument("--recipe", default="shm-quick")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sheet", type=Path, default=None, help="write the p3m_portraits contact sheet here")
    parser.add_argument("--iters", type=int, default=None, help="steps of every stage (smoke runs only)")
    args = parser.parse_args()

    splits = make_splits(args.out / "data", size=(args.size, args.size))
    recipe = load_recipe(args.recipe)
    if args.iters:
        for table in recipe["stages"].values():
            table["iters"] = args.iters
    flat = stage_recipe(recipe, "e2e")
    test, val = load_items(splits["test"]), load_items(splits["val"])

    # the untrained network: exactly the weights the tnet stage starts from
    family = get_family("shm")
    first = stage_recipe(recipe, "tnet")
    _seed_everything(derive_seed(int(first["seed"]), "init", "tnet"))
    untrained = build_model("shm", family.model_config(first))

    # constant baselines from the training set only
    source = find_samples(splits["train"])
    alphas = [read_pair(s)[1] for s in source.samples]
    mean_alpha = float(np.mean([a.mean() / 255.0 for a in alphas]))
    counts = np.zeros(3)
    for a in alphas:
        t = reference_trimap(a.astype(np.float32) / 255.0, flat)
        counts += [(t == v).sum() for v in LEVELS]
    common = LEVELS[int(np.argmax(counts))]

    run_dir = args.out / "run"
    t0 = time.perf_counter()
    result = train("shm", recipe, splits["train"], run_dir, stage="all", val_dir=splits["val"],
                   resume=(run_dir / "tnet" / "last.pt").is_file(), device=args.device, show_progress=False)
    seconds = time.perf_counter() - t0
    pretrained, _ = load_model(run_dir / "mnet" / "best.pt")
    trained, ckpt = load_model(run_dir / "best.pt")

    rows: dict[str, dict[str, float]] = {}
    rows["constant alpha (train mean), majority trimap class"] = evaluate(
        "constant", lambda it: np.full(it.alpha.shape, mean_alpha, np.float32),
        lambda it: np.full(it.alpha.shape, common, np.uint8), test, flat)
    for name, model in (("untrained network", untrained), ("after tnet + mnet pre-training", pretrained),
                        ("after e2e (RUN/best.pt)", trained)):
        run = network(model)
        rows[name] = evaluate(name, lambda it: run(it)["alpha"], lambda it: run(it)["trimap"], test, flat)
    val_scores = score(lambda it: network(trained)(it)["alpha"], val, region="all")

    report = {
        "recipe": args.recipe, "device": args.device, "torch": torch.__version__, "python": platform.python_version(),
        "train_samples": len(source.samples), "test_images": len(test), "val_images": len(val),
        "seconds": seconds, "samples_per_s": {s.stage: s.samples_per_s for s in result.stages},
        "selected_step": ckpt.get("step"), "val_whole_sad_of_selected": val_scores["sad"], "test": rows,
    }
    if args.sheet is not None and P3M.is_dir():
        report["p3m"] = p3m_sheet(trained, args.sheet)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    print("| method | SAD (whole) | MSE (whole) | MAD (whole) | SAD (unknown band) | trimap accuracy |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['sad']:.3f} | {r['mse']:.4f} | {r['mad']:.4f} | {r['sad_unknown']:.3f} | "
              f"{r['trimap_acc']:.3f} |")
    print(json.dumps({k: v for k, v in report.items() if k != "test"}, indent=1))


if __name__ == "__main__":
    main()
