"""Background Matting's two extra cues: the soft segmentation S and the motion cue M.

Training (``data_loader.py``, ``AdobeDataAffineHR``; research notes section 3.3):

- S from the ground truth: threshold alpha > 0.5, erode (5x5 ellipse, 10-19 iterations),
  dilate (5x5 ellipse, 15-29 iterations), cut 0-2 square holes of side 15/25/35/45 px, each
  centred on a pixel of the trimap's unknown band, Gaussian blur with a kernel of 21, 31 or 41.
  (The official code thresholds alpha still on its 0-255 scale, so in effect alpha > 0.002;
  we threshold at 0.5 as the paper and the method describe it; ``threshold`` changes it.)
- M: four grey images, each the foreground and alpha warped by a random affine (translation
  N(0, 5) px, rotation N(0, 7) degrees, x-scale 1 + N(0, 0.05), shears N(0, 0.05) each with
  probability 0.5) composited over a noise-perturbed copy of B. The official code multiplies
  the scale, shear and rotation matrices element-wise, so no rotation or shear actually
  happens; here they are composed as matrices (a real rotation), as the paper intends.

Inference (``test_background-matting_image.py``): a person mask is softened by threshold 0.2,
erosion (3x3 ellipse x 10), dilation (5x5 ellipse x 5) and a 31x31 Gaussian blur. Without
a mask from the user, :func:`segmentation_from_plate` makes one from the plate difference
(no weights): see its docstring for how good it is. M for a still is four copies of its grey
image; for video, grey frames at offsets (-40, -20, +20, +40) (:mod:`mattecli.inference.video`).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mattecli.data.composite import composite_uint8
from mattecli.data.plates import add_noise
from mattecli.data.trimap import UNKNOWN, ellipse

HOLE_SIZES = (15, 25, 35, 45)
BLUR_SIZES = (21, 31, 41)
#: the official test-time motion offsets (frames)
MOTION_OFFSETS = (-40, -20, 20, 40)


@dataclass(frozen=True)
class SegmentationSpec:
    """The training simulation of S; defaults are the official ranges (inclusive)."""

    threshold: float = 0.5
    erode: tuple[int, int] = (10, 19)
    dilate: tuple[int, int] = (15, 29)
    holes: tuple[int, int] = (0, 2)
    hole_sizes: tuple[int, ...] = HOLE_SIZES
    blur_sizes: tuple[int, ...] = BLUR_SIZES
    kernel: int = 5
    #: sizes relative to the official 512-px crops: iterations, holes and blurs scale with it
    scale: float = 1.0

    def scaled(self) -> "SegmentationSpec":
        if self.scale == 1.0:
            return self
        it = lambda r: (max(1, round(r[0] * self.scale)), max(1, round(r[1] * self.scale)))  # noqa: E731
        odd = lambda k: max(3, 2 * round(k * self.scale / 2) + 1)  # noqa: E731
        return SegmentationSpec(self.threshold, it(self.erode), it(self.dilate), self.holes,
                                tuple(max(1, round(s * self.scale)) for s in self.hole_sizes),
                                tuple(odd(k) for k in self.blur_sizes), self.kernel, 1.0)


def _hole_top_left(unknown: np.ndarray, size: int, rng: np.random.Generator) -> tuple[int, int] | None:
    """Top-left of a ``size`` square centred on a random unknown pixel whose square fits (``random_choice``)."""
    h, w = unknown.shape
    valid = np.zeros_like(unknown, dtype=bool)
    valid[size // 2:h - size // 2, size // 2:w - size // 2] = True
    ys, xs = np.nonzero(unknown & valid)
    if not len(ys):
        return None
    i = int(rng.integers(len(ys)))
    return max(0, int(ys[i]) - size // 2), max(0, int(xs[i]) - size // 2)


def simulate_segmentation(alpha: np.ndarray, trimap: np.ndarray, rng: np.random.Generator,
                          spec: SegmentationSpec = SegmentationSpec()) -> np.ndarray:
    """S for a training sample: uint8 HxW from uint8 alpha and its trimap ({0, 128, 255})."""
    spec = spec.scaled()
    seg = (alpha.astype(np.float32) / 255.0 > spec.threshold).astype(np.float32)
    kernel = ellipse(spec.kernel)
    seg = cv2.erode(seg, kernel, iterations=int(rng.integers(spec.erode[0], spec.erode[1] + 1)))
    seg = cv2.dilate(seg, kernel, iterations=int(rng.integers(spec.dilate[0], spec.dilate[1] + 1)))
    seg = (seg * 255).astype(np.uint8)
    unknown = trimap == UNKNOWN
    for _ in range(int(rng.integers(spec.holes[0], spec.holes[1] + 1))):
        size = int(spec.hole_sizes[int(rng.integers(len(spec.hole_sizes)))])
        corner = _hole_top_left(unknown, size, rng)
        if corner is None:
            break
        y, x = corner
        seg[y:y + size, x:x + size] = 0
        unknown[y:y + size, x:x + size] = False
    k = int(spec.blur_sizes[int(rng.integers(len(spec.blur_sizes)))])
    return cv2.GaussianBlur(seg.astype(np.float32), (k, k), 0).astype(np.uint8)


def soften_mask(mask: np.ndarray) -> np.ndarray:
    """The official test-time S from a person mask (uint8 0-255 or float 0-1): threshold 0.2,
    erode 3x3 ellipse x 10, dilate 5x5 ellipse x 5, 31x31 Gaussian blur. Returns float32 in [0, 1]."""
    m = mask.astype(np.float32)
    if mask.dtype == np.uint8:
        m /= 255.0
    m = (m > 0.2).astype(np.float32)
    m = cv2.erode(m, ellipse(3), iterations=10, borderType=cv2.BORDER_REPLICATE)
    m = cv2.dilate(m, ellipse(5), iterations=5, borderType=cv2.BORDER_REPLICATE)
    return cv2.GaussianBlur(m, (31, 31), 0, borderType=cv2.BORDER_REPLICATE)


def plate_mask(image: np.ndarray, plate: np.ndarray, low: float = 6.0, high: float = 26.0) -> np.ndarray:
    """A hard person mask from the plate difference, no weights: the max-channel difference of
    slightly blurred copies above ``(low + high) / 2``, opened against noise, holes closed,
    and only the connected components holding at least 10% of the largest kept."""
    a = cv2.GaussianBlur(image, (5, 5), 0)
    b = cv2.GaussianBlur(plate, (5, 5), 0)
    diff = cv2.absdiff(a, b).max(axis=2)
    mask = (diff > (low + high) / 2).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, ellipse(5))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, ellipse(15))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return mask * 255
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(count, bool)
    keep[1:] = areas >= 0.1 * areas.max()
    return (keep[labels] * 255).astype(np.uint8)


def segmentation_from_plate(image: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """The weights-free default S: :func:`plate_mask` softened exactly as the official script softens
    a DeepLab mask. float32 HxW in [0, 1].

    How good: S is only a coarse prior (the network is trained on masks eroded by 10-19 and
    dilated by 15-29 iterations, blurred and holed), so it needs the subject's rough extent,
    not its edges. The plate difference gives that wherever the subject differs from the
    plate by more than ~16 grey levels on some channel; it misses parts coloured like the
    background behind them (holes, which training simulates too) and includes shadows and
    reflections the subject casts (which the network must then reject through B').
    """
    return soften_mask(plate_mask(image, plate))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """bool HxW: only the largest 8-connected component of ``mask`` (all False when empty)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def subject_box(segmentation: np.ndarray, margin: float = 0.1, threshold: float = 0.5) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the official square crop around the subject.

    From the mask's bounding box: start ``margin`` x side above and left of it, a square of
    side (1 + 2 * margin) x the larger extent (the official 10% and 1.2x), clipped to the
    image. The whole image when the mask is empty.
    """
    h, w = segmentation.shape
    ys, xs = np.nonzero(segmentation > threshold)
    if not len(ys):
        return 0, h, 0, w
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    side = max(y1 - y0, x1 - x0)
    top, left = max(0, round(y0 - margin * side)), max(0, round(x0 - margin * side))
    full = round((1 + 2 * margin) * side)
    return top, min(h, top + full), left, min(w, left + full)


def grey_uint8(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def motion_affine(rng: np.random.Generator, shift_px: float = 5.0) -> np.ndarray:
    """A 2x3 affine: scale @ shear @ rotation (matrix products, so the rotation is real) + translation."""
    translation = rng.normal(0.0, shift_px, 2)
    theta = np.deg2rad(rng.normal(0.0, 7.0))
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    scale = np.array([[1.0 + rng.normal(0.0, 0.05), 0.0], [0.0, 1.0]])
    shx = rng.normal(0.0, 0.05) * (rng.random() > 0.5)
    shy = rng.normal(0.0, 0.05) * (rng.random() > 0.5)
    shear = np.array([[1.0, shx], [shy, 1.0]])
    return np.concatenate([scale @ shear @ rotation, translation[:, None]], axis=1)


def simulate_motion(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray, rng: np.random.Generator,
                    frames: int = 4, shift_px: float = 5.0) -> np.ndarray:
    """M for a training sample: uint8 HxWx``frames`` grey composites of warped (fg, alpha) over noisy B."""
    h, w = alpha.shape
    out = np.empty((h, w, frames), np.uint8)
    for t in range(frames):
        m = motion_affine(rng, shift_px)
        fg_t = cv2.warpAffine(fg, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        alpha_t = cv2.warpAffine(alpha, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
        sigma = int(rng.integers(2, 6))
        mean = int(rng.integers(0, 14)) - 7
        out[:, :, t] = grey_uint8(composite_uint8(fg_t, alpha_t, add_noise(bg, mean, sigma, rng)))
    return out


def still_motion(image: np.ndarray, frames: int = 4) -> np.ndarray:
    """M for a still: ``frames`` copies of its grey image, uint8 HxWxframes."""
    return np.repeat(grey_uint8(image)[:, :, None], frames, axis=2)


def window_index(i: int, offset: int, count: int) -> int:
    """Frame index for ``i + offset`` in a clip of ``count`` frames, mirrored at both ends.

    The official script wraps around the clip (frame -20 is 20 frames before the end), which
    needs the whole clip in hand; a stream with a bounded look-ahead cannot, so we mirror at
    the clip's ends instead (frame -20 reads frame 20): still a different moment of the
    same subject. Very short clips are clamped after one reflection.
    """
    j = i + offset
    last = count - 1
    if last <= 0:
        return 0
    if j < 0:
        j = -j
    if j > last:
        j = 2 * last - j
    return min(max(j, 0), last)
