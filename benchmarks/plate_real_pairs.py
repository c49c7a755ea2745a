"""Contact sheets of the plate method on the real Background Matting pairs (for docs/video.md).

    python benchmarks/plate_real_pairs.py [--out docs/img] [--data ../shared/data/real]

Rows: each frame with the plate as used (aligned with --align for the hand-held set), the
trimap that `trimap_from_plate` hands to closed-form refinement, the alpha, the foreground
over a checkerboard and a composite over a new background. Also prints the time per frame
and how well the aligned plate matches the frame away from the person.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mattecli.inference.plate import PlateMatting, colour_distance, trimap_from_plate
from mattecli.inference.video import compose_outputs, fit_cover
from mattecli.io.images import read_rgb
from mattecli.report import alpha_display, checkerboard_composite, write_contact_sheet

#: the shared data beside the checkout (``../shared/data/real``); --data overrides it
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
COLUMNS = ["frame", "plate as used", "trimap (for closed form)", "alpha", "F over checkerboard", "composite"]


def row(frame: np.ndarray, plate: np.ndarray, align: bool, exposure: bool, new_bg: np.ndarray, name: str):
    method = PlateMatting(align=align, exposure=exposure)
    start = time.perf_counter()
    result = method(frame, plate)
    seconds = time.perf_counter() - start
    trimap = trimap_from_plate(frame, plate, align=align, exposure=exposure)
    comp = compose_outputs(("comp",), result.alpha, result.fg, fit_cover(new_bg, frame.shape[1], frame.shape[0]))
    clear = result.alpha == 0
    residual = float(np.median(colour_distance(frame, result.plate)[clear])) if clear.any() else float("nan")
    found = "" if result.alignment is None else f", homography {'found' if result.alignment.found else 'NOT found'}" \
        f" ({result.alignment.inliers} inliers)"
    print(f"{name}: {1000 * seconds:.0f} ms, median |I-B| where alpha=0: {residual:.1f} grey levels{found}")
    labels = [f"{name}", "plate (aligned)" if align else "plate", "trimap", "alpha", "F over checkerboard",
              "composite (estimated F)"]
    return [frame, result.plate, trimap, alpha_display(result.alpha),
            checkerboard_composite(result.fg, result.alpha), comp["comp"]], labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--cell", type=int, default=180)
    parser.add_argument("--data", type=Path, default=DATA, help="the shared real data folder (default: %(default)s)")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: no such folder (pass --data)")
    v1 = args.data / "bgmatting_v1_handheld"
    plate = read_rgb(v1 / "plate_background.png")
    target = read_rgb(v1 / "target_bg_0001.jpg")
    rows, labels = [], []
    for frame_id in ("0001", "1000"):
        frame = read_rgb(v1 / f"frame{frame_id}_image.png")
        r, lab = row(frame, plate, True, True, target, f"hand-held {frame_id} --align")
        rows.append(r)
        labels.append(lab)
    r, lab = row(read_rgb(v1 / "frame0001_image.png"), plate, False, False, target, "0001 without --align")
    rows.append(r)
    labels.append(lab)
    write_contact_sheet(args.out / "video_plate_handheld.png", rows, labels, cell_width=args.cell)
    # Close-up of the hair at full resolution: where the honest limits of differencing show.
    frame = read_rgb(v1 / "frame1000_image.png")
    result = PlateMatting(align=True, exposure=True)(frame, plate)
    comp = compose_outputs(("comp",), result.alpha, result.fg, fit_cover(target, frame.shape[1], frame.shape[0]))
    crop = np.s_[60:300, 330:650]
    write_contact_sheet(args.out / "video_plate_hair.png",
                        [[frame[crop], alpha_display(result.alpha[crop]),
                          checkerboard_composite(result.fg[crop], result.alpha[crop], square=8), comp["comp"][crop]]],
                        ["frame 1000 (1:1 crop)", "alpha", "F over checkerboard", "composite"], cell_width=320)
    v2 = args.data / "bgmatting_v2_pair"
    r, lab = row(read_rgb(v2 / "image.png"), read_rgb(v2 / "plate_background.png"), False, False,
                 read_rgb(v1 / "target_bg_0002.jpg"), "fixed camera (BGMv2 pair)")
    write_contact_sheet(args.out / "video_plate_fixed.png", [r], [lab], cell_width=args.cell)
    for p in sorted(args.out.glob("video_plate_*.png")):
        print(f"{p}: {p.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
