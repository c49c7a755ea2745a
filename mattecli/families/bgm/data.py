"""Background Matting's training data: synthetic composites (stage ``adobe``) and captures (``real``).

``adobe`` (``AdobeDataAffineHR``): per sample, a background from the pool (a new one every
epoch), fg / alpha / bg resized to ``base_size`` square (official 800; 0 keeps the sizes),
a random horizontal flip, a trimap (the shared generator; by default the official
``generate_trimap``: 3x3 ellipse, erode K = 5, dilate 2K), a square crop of a random size
from ``crop_sizes`` centred on an unknown pixel, resized to ``input_size`` (official 512),
the composite I, the perturbed plate B' (:mod:`mattecli.data.plates`), the simulated S and M
(:mod:`mattecli.families.bgm.cues`). Every draw from ``rng_for(seed, "bgm-adobe", epoch, index)``.
Validation: the same pipeline with a fixed draw per sample and no flip.

``real``: unlabelled captures, laid out as::

    CAPTURES/
      clips/<clip>/frames/        the clip's frames as images (sorted by name)
      clips/<clip>/background.*   the captured background plate (one image, the frames' size)
      clips/<clip>/masks/         optional: a person mask per frame (same stem); otherwise
                                  the weights-free plate-difference mask is used
      targets/                    images: new backgrounds for the adversarial composites

:func:`find_captures` checks all of it (headers only) before training starts. Per sample, as
``VideoData`` + ``train_real_fixed.py``: the frame, its plate, the raw mask and the soft S
made from it (threshold 0.2, erode 3x3 x 10-19, dilate 5x5 x 3-6, blur 21/31/41), grey
neighbour frames at offsets -40, -20, +20, +40 (mirrored at the clip's ends), a random target
background; everything cropped around the mask's bounding box with a random margin
U(0.1, 0.4) x its larger side (top, left and right, as ``create_bbox``), resized to
``input_size`` square, flipped with probability 0.5. Videos must be extracted to frame
folders first (random access to frames; ``ffmpeg -i clip.mp4 frames/%05d.png``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from mattecli.data.composite import composite_uint8, fit_background
from mattecli.data.plates import PlateSpec, make_plate
from mattecli.data.sources import (MattingSource, SourceDataset, crop_around, image_tensor, place_background, read_pair,
                                   resize_to)
from mattecli.data.trimap import UNKNOWN, TrimapSpec, ellipse, random_trimap
from mattecli.errors import BadInput
from mattecli.families.bgm.cues import (MOTION_OFFSETS, SegmentationSpec, grey_uint8, plate_mask,
                                        simulate_motion, simulate_segmentation, window_index)
from mattecli.io.images import list_images, probe_image, read_alpha, read_rgb
from mattecli.seeding import rng_for


#: ``generate_trimap(alpha, 5, 5, False)`` of ``data_loader.py``: 3x3 ellipse, erode K = 5, dilate 2K
OFFICIAL_TRIMAP = TrimapSpec(kernel=(3, 3), iterations=(5, 5), dilate_ratio=2)


def _plane(arr: np.ndarray) -> torch.Tensor:
    """HxW uint8 -> 1xHxW float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(arr))[None].to(torch.float32) / 255.0


def restrict_to_names(source: MattingSource, names_file: str | os.PathLike | None) -> MattingSource:
    """Only the samples whose name (or foreground file stem) is listed, one a line (the paper's
    269 human foregrounds: ``Data_adobe/train_data_list.txt``)."""
    if not names_file:
        return source
    path = Path(names_file)
    try:
        wanted = {Path(line.strip()).stem for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(path, f"cannot read the name list ({exc})") from None
    kept = [s for s in source.samples if Path(s.name).stem in wanted or s.fg.stem in wanted]
    if not kept:
        raise BadInput(path, "names none of the dataset's foregrounds")
    return MattingSource(kept, source.backgrounds)


class BGMAdobeDataset(SourceDataset):
    """Composites with B', S and M; deterministic in (seed, epoch, index). ``fixed``: validation."""

    def __init__(self, source: MattingSource, seed: int = 0, crop_sizes: Sequence[int] = tuple(range(576, 801, 32)),
                 input_size: int = 512, base_size: int = 800, trimap_spec: TrimapSpec = OFFICIAL_TRIMAP,
                 plate_spec: PlateSpec = PlateSpec(), segmentation_spec: SegmentationSpec = SegmentationSpec(),
                 flip: bool = True, fixed: bool = False, motion_frames: int = 4, motion_shift: float = 5.0) -> None:
        if not source.backgrounds and any(s.bg is None for s in source.samples):
            raise BadInput("dataset", "has no backgrounds to composite on")
        self.source = source
        self.seed = int(seed)
        self.crop_sizes = tuple(int(c) for c in crop_sizes)
        self.input_size = int(input_size)
        self.base_size = int(base_size)
        self.trimap_spec = trimap_spec
        self.plate_spec = plate_spec
        self.segmentation_spec = segmentation_spec
        self.flip = flip and not fixed
        self.fixed = fixed
        self.motion_frames = motion_frames
        self.motion_shift = motion_shift
        self.epoch = 0

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.source.samples[index]
        rng = rng_for(self.seed, "bgm-val", sample.name) if self.fixed else rng_for(self.seed, "bgm-adobe", self.epoch, index)
        fg, alpha = read_pair(sample)
        h, w = alpha.shape
        pool = self.source.backgrounds
        if self.fixed and sample.bg is not None:
            bg_path = sample.bg
        else:
            bg_path = pool[int(rng.integers(len(pool)))] if pool else sample.bg
        bg = place_background(read_rgb(bg_path), w, h, rng)
        if self.base_size:
            s = self.base_size
            fg, alpha, bg = resize_to(fg, s, s), resize_to(alpha, s, s), resize_to(bg, s, s)
            h = w = s
        if self.flip and rng.random() < 0.5:
            fg, alpha, bg = fg[:, ::-1], alpha[:, ::-1], bg[:, ::-1]
        trimap = random_trimap(np.ascontiguousarray(alpha), rng, self.trimap_spec)
        size = self.crop_sizes[int(rng.integers(len(self.crop_sizes)))]
        if h < size or w < size:
            ratio = max(size / h, size / w)
            w, h = max(int(np.ceil(w * ratio)), size), max(int(np.ceil(h * ratio)), size)
            fg, bg, alpha = resize_to(fg, w, h), resize_to(bg, w, h), resize_to(alpha, w, h)
            trimap = resize_to(trimap, w, h, nearest=True)
        top, left = crop_around(trimap == UNKNOWN, size, rng)
        window = (slice(top, top + size), slice(left, left + size))
        out = self.input_size
        fg = np.ascontiguousarray(resize_to(np.ascontiguousarray(fg[window]), out, out))
        bg = np.ascontiguousarray(resize_to(np.ascontiguousarray(bg[window]), out, out))
        alpha = np.ascontiguousarray(resize_to(np.ascontiguousarray(alpha[window]), out, out))
        trimap = np.ascontiguousarray(resize_to(np.ascontiguousarray(trimap[window]), out, out, nearest=True))
        image = composite_uint8(fg, alpha, bg)
        plate = make_plate(bg, rng, self.plate_spec)
        segmentation = simulate_segmentation(alpha, trimap, rng, self.segmentation_spec)
        motion = simulate_motion(fg, alpha, bg, rng, self.motion_frames, self.motion_shift)
        return {"image": image_tensor(image), "fg": image_tensor(fg), "bg": image_tensor(bg),
                "plate": image_tensor(plate), "alpha": _plane(alpha), "trimap": torch.from_numpy(trimap)[None],
                "segmentation": _plane(segmentation), "motion": image_tensor(motion)}


# --- captures (stage real) ----------------------------------------------------------------

@dataclass(frozen=True)
class Clip:
    name: str
    frames: list[Path]
    background: Path
    masks: list[Path] | None


@dataclass(frozen=True)
class Captures:
    clips: list[Clip]
    targets: list[Path]

    def index(self) -> list[tuple[int, int]]:
        return [(c, f) for c, clip in enumerate(self.clips) for f in range(len(clip.frames))]


def find_captures(root: str | os.PathLike, check: bool = True) -> Captures:
    """The captures layout (see the module docstring), checked: every problem is one line naming the file."""
    root = Path(root)
    clips_dir, targets_dir = root / "clips", root / "targets"
    if not clips_dir.is_dir():
        raise BadInput(root, "not a captures folder: no clips/ (expected clips/<clip>/frames/, "
                             "clips/<clip>/background.png, targets/)")
    if not targets_dir.is_dir() or not list_images(targets_dir):
        raise BadInput(targets_dir, "missing or empty: the real stage needs target backgrounds")
    clips = []
    for folder in sorted(p for p in clips_dir.iterdir() if p.is_dir()):
        frames_dir = folder / "frames"
        if not frames_dir.is_dir():
            videos = [p for p in folder.iterdir() if p.suffix.lower() in (".mp4", ".mov", ".mkv", ".webm", ".avi")]
            hint = f" (extract {videos[0].name} first: ffmpeg -i {videos[0].name} frames/%05d.png)" if videos else ""
            raise BadInput(folder, f"has no frames/ folder{hint}")
        frames = list_images(frames_dir)
        if not frames:
            raise BadInput(frames_dir, "holds no images")
        plates = sorted(p for p in folder.iterdir() if p.is_file() and p.stem == "background")
        if not plates:
            raise BadInput(folder, "has no background.png (the captured plate)")
        masks = None
        if (folder / "masks").is_dir():
            by_stem = {p.stem: p for p in list_images(folder / "masks")}
            missing = [f for f in frames if f.stem not in by_stem]
            if missing:
                raise BadInput(missing[0], f"has no mask in {folder / 'masks'}")
            masks = [by_stem[f.stem] for f in frames]
        if check:
            size = probe_image(plates[0])
            for p in frames + (masks or []):
                info = probe_image(p)
                if (info.width, info.height) != (size.width, size.height):
                    raise BadInput(p, f"is {info.width}x{info.height}, the plate {plates[0].name} is "
                                      f"{size.width}x{size.height}")
        clips.append(Clip(folder.name, frames, plates[0], masks))
    if not clips:
        raise BadInput(clips_dir, "holds no clip folders")
    targets = list_images(targets_dir)
    if check:
        for t in targets:
            probe_image(t)
    return Captures(clips, targets)


def soft_guide(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``create_seg_guide`` for training: threshold 0.2, erode 3x3 x 10-19, dilate 5x5 x 3-6, blur 21/31/41."""
    m = (mask.astype(np.float32) / 255.0 > 0.2).astype(np.float32)
    m = cv2.erode(m, ellipse(3), iterations=int(rng.integers(10, 20)), borderType=cv2.BORDER_REPLICATE)
    m = cv2.dilate(m, ellipse(5), iterations=int(rng.integers(3, 7)), borderType=cv2.BORDER_REPLICATE)
    k = (21, 31, 41)[int(rng.integers(3))]
    return (cv2.GaussianBlur(m, (k, k), 0, borderType=cv2.BORDER_REPLICATE) * 255).astype(np.uint8)


def capture_box(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """``create_bbox``: the mask's box grown by U(0.1, 0.4) x its larger side at top, left and right."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask > 127)
    if not len(ys):
        return 0, h, 0, w
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    grow = round(float(rng.uniform(0.1, 0.4)) * max(y1 - y0, x1 - x0))
    return max(0, y0 - grow), y1 + 1, max(0, x0 - grow), min(w, x1 + grow + 1)


class BGMCapturesDataset(Dataset):
    """Unlabelled captures for the ``real`` stage; deterministic in (seed, epoch, index)."""

    def __init__(self, captures: Captures, seed: int = 0, input_size: int = 512, flip: bool = True,
                 offsets: Sequence[int] = MOTION_OFFSETS) -> None:
        self.captures = captures
        self.items = captures.index()
        self.seed = int(seed)
        self.input_size = int(input_size)
        self.flip = flip
        self.offsets = tuple(offsets)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = rng_for(self.seed, "bgm-real", self.epoch, index)
        c, f = self.items[index]
        clip = self.captures.clips[c]
        image = read_rgb(clip.frames[f])
        plate = read_rgb(clip.background)
        mask = read_alpha(clip.masks[f]) if clip.masks else plate_mask(image, plate)
        n = len(clip.frames)
        motion = np.stack([grey_uint8(read_rgb(clip.frames[window_index(f, o, n)])) for o in self.offsets], axis=2)
        target = read_rgb(self.captures.targets[int(rng.integers(len(self.captures.targets)))])
        h, w = mask.shape
        target = fit_background(target, w, h) if target.shape[:2] != (h, w) else target
        segmentation = soft_guide(mask, rng)
        y0, y1, x0, x1 = capture_box(mask, rng)
        s = self.input_size

        def cut(a: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(resize_to(np.ascontiguousarray(a[y0:y1, x0:x1]), s, s))

        image, plate, mask, segmentation, motion, target = (cut(a) for a in (image, plate, mask, segmentation,
                                                                             motion, target))
        if self.flip and rng.random() < 0.5:
            image, plate, mask, segmentation, motion, target = (np.ascontiguousarray(a[:, ::-1]) for a in
                                                                (image, plate, mask, segmentation, motion, target))
        return {"image": image_tensor(image), "plate": image_tensor(plate), "raw_segmentation": _plane(mask),
                "segmentation": _plane(segmentation), "motion": image_tensor(motion), "target": image_tensor(target),
                "shift": torch.tensor(float(rng.random())), "use_target": torch.tensor(float(rng.random() < 0.5)),
                "epoch": torch.tensor(self.epoch)}
