"""The background-plate method: alpha and foreground from a frame and a clean plate, no weights.

With the background B known, a pixel of the frame I = alpha F + (1 - alpha) B differs from
the plate by alpha (F - B). The default (``mode="projection"``, :func:`alpha_by_projection`)
solves that equation: it finds the subject region, spreads F from its interior, and takes
alpha = (I - B).(F - B) / |F - B|^2 near the edge, so faint strands of a saturated subject are
not over-read and a subject coloured close to the background is not under-read; the previous
method (``mode="ramp"``) reads alpha off the colour distance |I - B| with a soft threshold (a
linear ramp between ``low`` and ``high`` grey levels), cleaned of speckle by a median filter.
Both are refined by a fast guided filter (He & Sun 2015) guided by the frame, which snaps the
matte to the frame's edges and gives hair its soft falloff. The foreground
then follows from the compositing equation, F = B + (I - B) / alpha, which removes exactly
the old background from every pixel; where alpha is small the division only amplifies noise,
so there F fades into colours spread from nearby reliable pixels.

A hand-held camera needs the plate registered onto each frame first: ORB features, the best
matches, a RANSAC homography and a perspective warp, as in Background Matting v1/v2
(``HomographicAlignment``), but a frame where no trustworthy homography exists gets a warning
and the identity instead of a crash (BGMv2 issue #83). Exposure drift between plate and frame
is matched per channel by the bias-gain model of Background Matting v1, fitted on pixels that
look like background.

Everything per pixel is vectorised (OpenCV / NumPy), so 1280x720 runs well above video rate
on two CPU cores. See docs/video.md for the measured speed and the honest quality notes.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import cv2
import numpy as np

from mattecli.data.trimap import BACKGROUND, FOREGROUND, UNKNOWN, ellipse
from mattecli.inference.linalg import symmetric3x3_adjugate
from mattecli.inference.temporal import TemporalFilter, TemporalSettings


@dataclass(frozen=True)
class PlateSettings:
    """Knobs of the difference matte; distances are Euclidean RGB distances in grey levels (0-255)."""

    low: float = 16.0  # at or below: background (alpha 0)
    high: float = 48.0  # at or above: foreground (alpha 1)
    presmooth: float = 1.0  # Gaussian sigma (px) on frame and plate: forgives sub-pixel misregistration
    median: int = 5  # median filter on the raw matte against sensor noise and speckle (odd, 0 = off)
    open_radius: int = 2  # morphological opening (px) removing thin false edges of textured background
    guided_radius: int = 8  # guided filter window radius at full resolution
    guided_eps: float = 1e-3  # guided filter regulariser (guide in [0, 1]); larger = smoother matte
    guided_scale: int = 4  # the filter's coefficients are computed at 1/scale resolution
    clamp: int = 3  # px: alpha is 0 (1) where the raw matte is 0 (255) everywhere within this distance
    snap: float = 0.05  # alphas within this of 0 or 1 become exactly 0 or 1
    fg_min_alpha: float = 0.15  # below this, F fades to colours spread from reliable pixels
    #: "projection" (default): alpha = (I - B).(F - B) / |F - B|^2 with F spread from sure
    #: foreground; "ramp": the previous soft threshold of the colour distance
    mode: str = "projection"
    detect: float = 10.0  # projection: max-channel difference (grey levels) that may be subject ...
    #: ... lowered on clean footage to this many times the frame's difference noise (the mean of the
    #: lower half of its max-channel differences), but not below ``detect_min`` (0 = always ``detect``)
    detect_noise: float = 7.0
    detect_min: float = 6.0
    reach: int = 48  # projection: px from the robust matte within which faint detail is kept
    min_contrast: float = 20.0  # projection: |F - B| below this falls back to the ramp
    fill_radius: int = 32  # projection: px over which F is spread from sure foreground
    core_depth: int = 16  # projection: px inside the subject region beyond which alpha is 1
    inside_snap: float = 0.25  # projection: alphas this close to 1 within the region (clamp px in) become 1
    #: projection: an enclosed hole of the subject region where the foreground spread around it is
    #: within ``min_contrast`` of the plate is subject coloured like the background, filled (alpha 1);
    #: a hole larger than this fraction of its region stays background whatever its colour (0 = off)
    hole_fraction: float = 0.05
    #: projection: ... and an enclosed hole reaching deeper than this (px) inside the filled region is
    #: filled when its rim is faint (0 = off, the default: in a mass of hair the gaps are deep and
    #: faint-rimmed too; docs/video.md) ...
    hole_depth: float = 0.0
    #: ... faint: the median max-channel difference within 5 px around the hole below this; a gap
    #: with a clear edge (between an arm and the body) stays background
    hole_edge: float = 30.0

    def __post_init__(self) -> None:
        if self.mode not in ("projection", "ramp"):
            raise ValueError(f"mode must be projection or ramp, not {self.mode!r}")
        if not 0 <= self.low < self.high:
            raise ValueError(f"need 0 <= low < high, got low={self.low}, high={self.high}")
        if not 0 <= self.detect_min <= self.detect:
            raise ValueError(f"need 0 <= detect_min <= detect, got detect_min={self.detect_min}, detect={self.detect}")
        if self.median and self.median % 2 == 0:
            raise ValueError("the median filter size must be odd")


# --- alignment -------------------------------------------------------------------------

@dataclass(frozen=True)
class Alignment:
    homography: np.ndarray  # 3x3, maps plate pixels onto frame pixels
    inliers: int
    found: bool  # False: no trustworthy homography, the identity was used


class PlateAligner:
    """Registers a plate onto frames with an ORB + RANSAC homography (Background Matting v1/v2).

    Features are found on copies scaled to ``work_side`` on the long side (the homography is
    scaled back), and the plate's features are computed once per plate. 1280 keeps 720p at full
    resolution: at 640 a real 720p plate's homography was off by up to 3.4 px at the corners
    (0.3 px at full resolution) for the same CPU time, which matching 3000 features dominates.
    """

    def __init__(self, work_side: int = 1280, features: int = 3000, keep: float = 0.3,
                 min_inliers: int = 20, ransac_px: float = 3.0) -> None:
        self.work_side = work_side
        self.keep = keep
        self.min_inliers = min_inliers
        self.ransac_px = ransac_px
        self._orb = cv2.ORB_create(nfeatures=features)
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
        self._plate_key: tuple[int, tuple[int, ...]] | None = None
        self._plate_features: tuple = ((), None, 1.0)

    def _features(self, image: np.ndarray) -> tuple:
        h, w = image.shape[:2]
        scale = min(1.0, self.work_side / max(h, w))
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            grey = cv2.resize(grey, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        keypoints, descriptors = self._orb.detectAndCompute(grey, None)
        return keypoints, descriptors, scale

    def estimate(self, frame: np.ndarray, plate: np.ndarray) -> Alignment:
        key = (id(plate), plate.shape)
        if key != self._plate_key:
            self._plate_features = self._features(plate)
            self._plate_key = key
        kp_p, des_p, s_p = self._plate_features
        kp_f, des_f, s_f = self._features(frame)
        identity = Alignment(np.eye(3), 0, False)
        if des_p is None or des_f is None or len(kp_p) < 4 or len(kp_f) < 4:
            return identity
        matches = sorted(self._matcher.match(des_p, des_f), key=lambda m: m.distance)
        matches = matches[:max(self.min_inliers, int(len(matches) * self.keep))]
        if len(matches) < self.min_inliers:
            return identity
        src = np.float32([kp_p[m.queryIdx].pt for m in matches]) / s_p
        dst = np.float32([kp_f[m.trainIdx].pt for m in matches]) / s_f
        h_mat, mask = cv2.findHomography(src, dst, cv2.RANSAC, self.ransac_px / s_f)
        inliers = int(mask.sum()) if mask is not None else 0
        if h_mat is None or inliers < self.min_inliers or not _plausible(h_mat, plate.shape, frame.shape):
            return Alignment(np.eye(3), inliers, False)
        return Alignment(h_mat, inliers, True)


def _plausible(h_mat: np.ndarray, plate_shape: tuple, frame_shape: tuple) -> bool:
    """Reject degenerate homographies: a folded, collapsed or wildly scaled plate."""
    ph, pw = plate_shape[:2]
    fh, fw = frame_shape[:2]
    corners = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]]).reshape(-1, 1, 2)
    warped = cv2.perspectiveTransform(corners, h_mat).reshape(-1, 2)
    if not np.isfinite(warped).all():
        return False
    area = cv2.contourArea(warped.astype(np.float32))
    convex = cv2.isContourConvex(warped.astype(np.float32))
    return convex and 0.25 < area / float(fw * fh) < 4.0


def warp_plate(plate: np.ndarray, frame: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """The plate as the frame's camera sees it; areas the plate does not cover take the frame
    (so they read as background), as Background Matting v1/v2 do."""
    h, w = frame.shape[:2]
    warped = cv2.warpPerspective(plate, homography, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    cover = cv2.warpPerspective(np.full(plate.shape[:2], 255, np.uint8), homography, (w, h),
                                flags=cv2.INTER_NEAREST, borderValue=0)
    cover = cv2.erode(cover, ellipse(3))  # the warped border pixels blend with black
    out = frame.copy()
    np.copyto(out, warped, where=(cover > 0)[:, :, None])
    return out


# --- exposure ------------------------------------------------------------------------

def match_exposure(frame: np.ndarray, plate: np.ndarray, settings: PlateSettings = PlateSettings()) -> np.ndarray:
    """Bias-gain per channel (Background Matting v1's model): plate' = gain * plate + bias.

    Fitted on a 1/4-size copy by matching mean and standard deviation over pixels that look
    like background: those whose colour distance is below the median and below ``high``.
    """
    small_f = cv2.resize(frame, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA).reshape(-1, 3).astype(np.float32)
    small_p = cv2.resize(plate, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA).reshape(-1, 3).astype(np.float32)
    dist = np.sqrt(((small_f - small_p) ** 2).sum(axis=1))
    keep = dist <= min(float(np.median(dist)), settings.high * 2)
    if keep.sum() < 64:
        return plate
    f, p = small_f[keep], small_p[keep]
    gain = f.std(axis=0) / np.maximum(p.std(axis=0), 1.0)
    gain = np.clip(gain, 0.5, 2.0)
    bias = f.mean(axis=0) - gain * p.mean(axis=0)
    matrix = np.concatenate([np.diag(gain), bias[:, None]], axis=1).astype(np.float32)
    return cv2.transform(plate, matrix)  # saturates to uint8


# --- the matte ---------------------------------------------------------------------------

def colour_distance(image: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """Euclidean RGB distance in grey levels, float32 HxW."""
    diff = cv2.absdiff(image, plate).astype(np.float32)
    return cv2.sqrt(cv2.transform(cv2.multiply(diff, diff), np.ones((1, 3), np.float32)))


def raw_matte(image: np.ndarray, plate: np.ndarray, settings: PlateSettings = PlateSettings()) -> np.ndarray:
    """Soft threshold of the colour distance, median-filtered: uint8 HxW (0-255)."""
    if settings.presmooth > 0:
        image = cv2.GaussianBlur(image, (0, 0), settings.presmooth)
        plate = cv2.GaussianBlur(plate, (0, 0), settings.presmooth)
    dist = colour_distance(image, plate)
    scale = 255.0 / (settings.high - settings.low)
    # max(dist, low) - low >= 0, so the absolute value in convertScaleAbs is harmless; it saturates at 255.
    matte = cv2.convertScaleAbs(cv2.max(dist, float(settings.low)), alpha=scale, beta=-settings.low * scale)
    if settings.median:
        matte = cv2.medianBlur(matte, settings.median)
    if settings.open_radius > 0:
        matte = cv2.morphologyEx(matte, cv2.MORPH_OPEN, ellipse(2 * settings.open_radius + 1))
    return matte


def guided_coefficients(guide: np.ndarray, src: np.ndarray, radius: int, eps: float,
                        scale: int) -> tuple[np.ndarray, np.ndarray]:
    """He & Sun's fast guided filter, first half: the window-averaged linear coefficients
    (mean a: HxWx3, mean b: HxW) computed at 1/``scale`` and scaled back to full size.

    ``guide`` uint8 HxWx3 (used in [0, 1]), ``src`` float32 HxW.
    """
    h, w = src.shape
    sw, sh = max(1, round(w / scale)), max(1, round(h / scale))
    g = cv2.resize(guide, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    p = cv2.resize(src, (sw, sh), interpolation=cv2.INTER_AREA)
    r = max(1, round(radius / scale))
    ksize = (2 * r + 1, 2 * r + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, ksize, borderType=cv2.BORDER_REFLECT)

    mean_g = box(g)  # sh x sw x 3
    mean_p = box(p)
    cov_gp = box(g * p[:, :, None]) - mean_g * mean_p[:, :, None]
    # Covariance of the guide, 3x3 symmetric per pixel, plus eps on the diagonal; solved with
    # the explicit symmetric inverse (cofactors), much faster than a batched LAPACK call.
    def var(i: int, j: int) -> np.ndarray:
        return box(g[:, :, i] * g[:, :, j]) - mean_g[:, :, i] * mean_g[:, :, j]

    inv_rr, inv_rg, inv_rb, inv_gg, inv_gb, inv_bb, det = symmetric3x3_adjugate(
        var(0, 0) + eps, var(0, 1), var(0, 2), var(1, 1) + eps, var(1, 2), var(2, 2) + eps)
    cr, cg, cb = cov_gp[:, :, 0], cov_gp[:, :, 1], cov_gp[:, :, 2]
    a = np.stack([inv_rr * cr + inv_rg * cg + inv_rb * cb,
                  inv_rg * cr + inv_gg * cg + inv_gb * cb,
                  inv_rb * cr + inv_gb * cg + inv_bb * cb], axis=2) / det[:, :, None]
    b = mean_p - (a * mean_g).sum(axis=2)
    mean_a = cv2.resize(box(a), (w, h), interpolation=cv2.INTER_LINEAR)
    mean_b = cv2.resize(box(b), (w, h), interpolation=cv2.INTER_LINEAR)
    return mean_a, mean_b


def fast_guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float, scale: int) -> np.ndarray:
    """He & Sun's fast guided filter with a colour guide: q = mean_a . I + mean_b at full size.

    ``guide`` uint8 HxWx3, ``src`` float32 HxW in [0, 1]; returns float32 HxW (not clipped).
    With ``scale=1`` this is exactly He et al.'s guided filter.
    """
    mean_a, mean_b = guided_coefficients(guide, src, radius, eps, scale)
    guide_full = guide.astype(np.float32) * np.float32(1 / 255)
    return cv2.transform(guide_full * mean_a, np.ones((1, 3), np.float32)) + mean_b


def alpha_from_plate(image: np.ndarray, plate: np.ndarray, settings: PlateSettings = PlateSettings()) -> np.ndarray:
    """float32 HxW alpha in [0, 1] from an aligned plate; ``image``/``plate`` uint8 RGB of one size."""
    if settings.mode == "projection":
        return alpha_by_projection(image, plate, settings)
    return alpha_by_ramp(image, plate, settings)


def detection_threshold(dmax: np.ndarray, s: "PlateSettings") -> float:
    """The difference (grey levels) above which a pixel may be subject: ``detect``, or on clean
    footage less, in proportion to the frame's noise. Most of a frame is background, so the lower
    half of its max-channel differences is noise; their mean (from a histogram: cheap at 720p)
    measures it. A frame the subject fills more than half of only raises the estimate, towards
    the fixed ``detect``."""
    if s.detect_noise <= 0:
        return s.detect
    hist = cv2.calcHist([dmax], [0], None, [256], [0, 256]).ravel()
    cumulative = np.cumsum(hist)
    median = int(np.searchsorted(cumulative, cumulative[-1] / 2))
    lower = hist[:median + 1]
    noise = float((lower * np.arange(median + 1)).sum() / max(lower.sum(), 1.0))
    return float(np.clip(s.detect_noise * noise, s.detect_min, s.detect))


def _subject_region(dmax: np.ndarray, s: "PlateSettings", detect: float) -> np.ndarray:
    """uint8 0/1: where the frame differs from the plate by more than ``detect``, opened against
    noise and thin misregistration edges, closed over small gaps, small specks dropped."""
    region = (dmax > detect).astype(np.uint8)
    region = cv2.morphologyEx(region, cv2.MORPH_OPEN, ellipse(2 * s.open_radius + 1))
    region = cv2.morphologyEx(region, cv2.MORPH_CLOSE, ellipse(7))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(region, connectivity=8)
    if count <= 1:
        return region
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(count, np.uint8)
    keep[1:] = areas >= max(64, 0.02 * areas.max())
    return keep[labels]


def _spread_foreground(small: np.ndarray, core: np.ndarray, fill_radius: int) -> tuple[np.ndarray, np.ndarray]:
    """The subject's colour spread from its interior by normalised convolution, at the 1/4
    resolution of ``small``: (F float32 hxwx3, valid uint8 hxw where any interior was in reach)."""
    sh, sw = small.shape[:2]
    weight = cv2.resize(core.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
    k = max(3, 2 * round(fill_radius / 4) + 1)
    den = cv2.blur(weight, (k, k))
    num = cv2.blur(small * weight[:, :, None], (k, k))
    return (num / np.maximum(den, 1e-3)[:, :, None]).astype(np.float32), (den > 1e-3).astype(np.uint8)


def _subject_coloured_holes(region: np.ndarray, dmax: np.ndarray, f_small: np.ndarray, valid_small: np.ndarray,
                            plate: np.ndarray, s: "PlateSettings") -> np.ndarray:
    """bool HxW: the enclosed holes of the subject region that are subject, not background.

    Where the subject's own colour matches the plate behind it, the frame does not differ from the
    plate and the region has a hole that no difference can tell from a gap in the subject. Two
    things can: the colour around it (if the foreground spread from the surrounding interior is
    itself within ``min_contrast`` of the plate over the hole, the hole is the subject's colour; a
    gap would show the plate where the subject's colour differs from it, as between the strands of
    saturated hair), and, when ``hole_depth`` > 0, where it lies with what edge (a hole reaching
    deeper than ``hole_depth`` px inside the filled region, with a faint rim: median difference
    around it below ``hole_edge``; gaps between strands lie near the edge, and a gap between an arm
    and the body has a clear edge, but the gaps in a mass of hair are deep and faint-rimmed too, so
    this second test is off by default). Holes touching the frame's border are background, and so
    are holes larger than ``hole_fraction`` of the region's area."""
    h, w = region.shape
    out = np.zeros((h, w), bool)
    bx, by, bw, bh = cv2.boundingRect(region)  # every hole lies inside the region's box
    if bw == 0:
        return out
    oy, ox, y1, x1 = max(0, by - 1), max(0, bx - 1), min(h, by + bh + 1), min(w, bx + bw + 1)
    box = (slice(oy, y1), slice(ox, x1))  # a 1-px margin of background joins what lies outside
    count, labels, stats, _ = cv2.connectedComponentsWithStats(1 - region[box], connectivity=4)
    if count <= 2:
        return out
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    enclosed = np.ones(count, bool)
    enclosed[border] = False
    enclosed[0] = False  # label 0: the region itself
    areas = stats[:, cv2.CC_STAT_AREA]
    enclosed &= areas <= s.hole_fraction * max(1, int(region.sum()))
    if not enclosed.any():
        return out
    sh, sw = f_small.shape[:2]
    plate_small = cv2.resize(plate, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    contrast = np.sqrt(((f_small - plate_small) ** 2).sum(axis=2))
    low_small = (contrast < s.min_contrast) & (valid_small > 0)
    ys, xs = np.nonzero(enclosed[labels])  # the holes' pixels only: a few hundred to thousands
    hole_labels = labels[ys, xs]
    low = low_small[np.minimum((ys + oy) * sh // h, sh - 1), np.minimum((xs + ox) * sw // w, sw - 1)]
    share = np.bincount(hole_labels, weights=low, minlength=count) / np.maximum(areas, 1)
    deep = np.zeros(count, bool)
    if s.hole_depth > 0:
        filled = (region[box] > 0).astype(np.uint8)
        filled[ys, xs] = 1
        depth = cv2.distanceTransform(filled, cv2.DIST_L2, 3)
        deepest = np.zeros(count, np.float32)
        np.maximum.at(deepest, hole_labels, depth[ys, xs])
        deep = enclosed & (deepest > s.hole_depth)
    faint = np.zeros(count, bool)
    for i in np.flatnonzero(deep):  # few holes; each rim from its bounding box
        x, y, hw, hh = stats[i, :4]
        lh, lw = labels.shape
        ry0, rx0, ry1, rx1 = max(0, y - 5), max(0, x - 5), min(lh, y + hh + 5), min(lw, x + hw + 5)
        hole = (labels[ry0:ry1, rx0:rx1] == i).astype(np.uint8)
        rim = (cv2.dilate(hole, ellipse(11)) > 0) & (hole == 0)
        faint[i] = rim.any() and float(np.median(dmax[box][ry0:ry1, rx0:rx1][rim])) < s.hole_edge
    fill = enclosed & ((share >= 0.5) | (deep & faint))
    out[box] = fill[labels]
    return out


def alpha_by_projection(image: np.ndarray, plate: np.ndarray, settings: PlateSettings = PlateSettings()) -> np.ndarray:
    """Alpha from the compositing equation itself, I - B = alpha (F - B), solved per pixel.

    1. The subject region: max-channel difference of the (slightly blurred) frame and plate
       above ``detect``, opened (``open_radius``) against noise and the thin false edges of a
       misregistered plate, closed over small gaps, specks dropped. Its interior (deeper than
       ``core_depth`` px) is alpha 1 -- also where the subject's colour is close to the
       background's, which no threshold of |I - B| gets right. Its enclosed holes whose
       surrounding subject colour matches the plate are filled (:func:`_subject_coloured_holes`).
    2. F near the edge: the frame's colour spread from that interior by normalised
       convolution (``fill_radius``, at 1/4 resolution).
    3. Every pixel within ``reach`` px of the region whose difference exceeds ``detect`` (no
       median or opening here, so one-pixel strands survive) gets alpha = (I - B).(F - B) /
       |F - B|^2, the least-squares alpha along the F - B line, where |F - B| >=
       ``min_contrast``; elsewhere the colour-distance ramp of the previous method.
    4. The guided filter (as in the ramp mode) over that band, then the snap to 0 / 1.
    """
    s = settings
    if s.presmooth > 0:
        img_s = cv2.GaussianBlur(image, (0, 0), s.presmooth)
        plate_s = cv2.GaussianBlur(plate, (0, 0), s.presmooth)
    else:
        img_s, plate_s = image, plate
    r, g, b = cv2.split(cv2.absdiff(img_s, plate_s))
    dmax = cv2.max(cv2.max(r, g), b)
    detect = detection_threshold(dmax, s)
    region = _subject_region(dmax, s, detect)
    h, w = dmax.shape
    # distances to the region's edge (one transform each way) instead of large morphology kernels
    depth = cv2.distanceTransform(region, cv2.DIST_L2, 3)
    core = depth > s.core_depth
    sw, sh = max(1, w // 4), max(1, h // 4)
    small = cv2.resize(img_s, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    f_small, valid_small = _spread_foreground(small, core, s.fill_radius)
    if s.hole_fraction > 0:
        holes = _subject_coloured_holes(region, dmax, f_small, valid_small, plate_s, s)
        if holes.any():  # the filled region decides the core and the rim
            region = region | holes.astype(np.uint8)
            depth = cv2.distanceTransform(region, cv2.DIST_L2, 3)
            core = (depth > s.core_depth) | holes
    matte = core.astype(np.float32)
    near = cv2.distanceTransform(1 - region, cv2.DIST_L2, 3) <= s.reach
    candidate = near & (dmax > detect) & ~core
    candidate |= (region > 0) & ~core  # the region's own rim, even where the difference is faint
    if not candidate.any():
        return matte
    ys, xs = np.nonzero(candidate)
    f = cv2.resize(f_small, (w, h), interpolation=cv2.INTER_LINEAR)[ys, xs]
    valid = cv2.resize(valid_small, (w, h), interpolation=cv2.INTER_NEAREST)[ys, xs] > 0
    b = plate_s[ys, xs].astype(np.float32)
    d = img_s[ys, xs].astype(np.float32) - b
    e = f - b
    norm2 = (e * e).sum(axis=1)
    proj = (d * e).sum(axis=1) / np.maximum(norm2, 1.0)
    dist = np.sqrt((d * d).sum(axis=1))
    ramp = np.clip((dist - s.low) / (s.high - s.low), 0.0, 1.0)
    reliable = valid & (norm2 >= s.min_contrast ** 2)
    values = np.where(reliable, np.clip(proj, 0.0, 1.0), ramp)
    inside = depth[ys, xs] > s.clamp + 1
    values[inside & (values > 1.0 - s.inside_snap)] = 1.0  # inside the region: noise, not transparency
    matte[ys, xs] = values
    if s.guided_radius > 0:
        band = cv2.dilate(candidate.astype(np.uint8), ellipse(3)) > 0
        band &= ~core
        y0, x0 = np.min(ys), np.min(xs)
        y1, x1 = np.max(ys) + 1, np.max(xs) + 1
        pad = 2 * s.guided_radius
        y0, x0, y1, x1 = max(0, y0 - pad), max(0, x0 - pad), min(h, y1 + pad), min(w, x1 + pad)
        sub = (slice(y0, y1), slice(x0, x1))
        mean_a, mean_b = guided_coefficients(image[sub], matte[sub], s.guided_radius, s.guided_eps, s.guided_scale)
        bsub = band[sub]
        out = (mean_a[bsub] * image[sub][bsub].astype(np.float32)).sum(axis=1) * np.float32(1 / 255) + mean_b[bsub]
        matte[sub][bsub] = out
    if s.snap > 0:
        matte[matte < s.snap] = 0.0
        matte[matte > 1.0 - s.snap] = 1.0
    return np.clip(matte, 0.0, 1.0)


def alpha_by_ramp(image: np.ndarray, plate: np.ndarray, settings: PlateSettings = PlateSettings()) -> np.ndarray:
    """The colour-distance ramp: the previous default (``mode="ramp"``).

    The guided filter is evaluated only in the band between the clamped regions (``clamp``
    px around the raw matte's edges): the rest is exactly 0 or 1, and skipping it is most of
    the speed at video resolution.
    """
    raw = raw_matte(image, plate, settings)
    if settings.clamp > 0:
        kernel = ellipse(2 * settings.clamp + 1)
        sure_fg = cv2.erode(raw, kernel) == 255
        band = (cv2.dilate(raw, kernel) > 0) & ~sure_fg
    else:
        sure_fg = np.zeros(raw.shape, bool)
        band = np.ones(raw.shape, bool)
    matte = np.zeros(raw.shape, np.float32)
    matte[sure_fg] = 1.0
    if settings.guided_radius > 0:
        mean_a, mean_b = guided_coefficients(image, raw.astype(np.float32) * np.float32(1 / 255),
                                             settings.guided_radius, settings.guided_eps, settings.guided_scale)
        values = (mean_a[band] * image[band].astype(np.float32)).sum(axis=1) * np.float32(1 / 255) + mean_b[band]
    else:
        values = raw[band].astype(np.float32) * np.float32(1 / 255)
    if settings.snap > 0:
        values[values < settings.snap] = 0.0
        values[values > 1.0 - settings.snap] = 1.0
    matte[band] = np.clip(values, 0.0, 1.0)
    return matte


def foreground_from_plate(image: np.ndarray, plate: np.ndarray, alpha: np.ndarray,
                          min_alpha: float = 0.15, fill_scale: int = 4, fill_radius: int = 48) -> np.ndarray:
    """uint8 HxWx3 foreground colour from the compositing equation with the known background.

    F = B + (I - B) / alpha, clipped to [0, 255]; for alpha < ``min_alpha`` it blends linearly
    (weight alpha / min_alpha) into a fill spread from reliable pixels by normalised
    convolution (a box of ``fill_radius`` px, at 1/``fill_scale`` resolution), so faint hair
    keeps a plausible colour instead of amplified noise, and alpha = 0 shows the nearby
    foreground colour. Where alpha = 1, F = I exactly. Only the pixels with 0 < alpha < 1
    are computed at full resolution.
    """
    h, w = alpha.shape
    sw, sh = max(1, round(w / fill_scale)), max(1, round(h / fill_scale))
    # The fill, at low resolution: F from the equation on reduced copies, weighted by alpha.
    a_s = cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA)
    i_s = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    b_s = cv2.resize(plate, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    weight = np.where(a_s >= min_alpha, a_s, np.float32(0.0)).astype(np.float32)
    f_s = np.clip(b_s + (i_s - b_s) / np.maximum(a_s, np.float32(min_alpha))[:, :, None], 0.0, 255.0)
    k = max(3, 2 * round(fill_radius / fill_scale) + 1)
    den = cv2.blur(weight, (k, k))
    num = cv2.blur(f_s * weight[:, :, None], (k, k))
    fill_s = np.where(den[:, :, None] > 1e-4, num / np.maximum(den, 1e-4)[:, :, None], i_s)
    out = cv2.resize(np.clip(fill_s + 0.5, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
    solid = alpha >= 1.0
    out[solid] = image[solid]
    edge = (alpha > 0.0) & ~solid
    a = alpha[edge][:, None]
    img = image[edge].astype(np.float32)
    bg = plate[edge].astype(np.float32)
    f_eq = np.clip(bg + (img - bg) / np.maximum(a, np.float32(min_alpha)), 0.0, 255.0)
    fill = out[edge].astype(np.float32)
    t = np.minimum(a / np.float32(min_alpha), np.float32(1.0))
    out[edge] = np.clip(fill + t * (f_eq - fill) + 0.5, 0, 255).astype(np.uint8)
    return out


def trimap_from_plate(image_rgb_uint8: np.ndarray, plate_rgb_uint8: np.ndarray, *,
                      settings: PlateSettings = PlateSettings(), band: int | None = None,
                      align: bool = False, exposure: bool = False) -> np.ndarray:
    """uint8 trimap {0, 128, 255} from a frame and its plate, for closed-form refinement.

    Sure foreground: distance >= ``high``, eroded by ``band`` px; sure background: distance
    <= ``low``, eroded by ``band`` px; everything else is unknown. ``band`` defaults to 1% of
    the shorter side (at least 3 px) so the solver has room for hair.
    """
    _check_pair(image_rgb_uint8, plate_rgb_uint8, align)
    plate = prepare_plate(image_rgb_uint8, plate_rgb_uint8, align, exposure, settings)[0]
    matte = raw_matte(image_rgb_uint8, plate, settings)
    h, w = matte.shape
    band = max(3, round(0.01 * min(h, w))) if band is None else band
    sure_fg = (matte == 255).astype(np.uint8)
    sure_bg = (matte == 0).astype(np.uint8)
    if band > 0:
        kernel = ellipse(2 * band + 1)
        sure_fg = cv2.erode(sure_fg, kernel, borderType=cv2.BORDER_REPLICATE)
        sure_bg = cv2.erode(sure_bg, kernel, borderType=cv2.BORDER_REPLICATE)
    trimap = np.full((h, w), UNKNOWN, np.uint8)
    trimap[sure_bg == 1] = BACKGROUND
    trimap[sure_fg == 1] = FOREGROUND
    return trimap


# --- one call per frame -----------------------------------------------------------------

def _check_pair(image: np.ndarray, plate: np.ndarray, align: bool) -> None:
    if image.dtype != np.uint8 or plate.dtype != np.uint8 or image.ndim != 3 or plate.ndim != 3:
        raise ValueError("frame and plate must be uint8 HxWx3 RGB")
    if not align and image.shape != plate.shape:
        raise ValueError(f"plate {plate.shape[1]}x{plate.shape[0]} does not match the frame "
                         f"{image.shape[1]}x{image.shape[0]} (use alignment for a different framing)")


_DEFAULT_ALIGNER: PlateAligner | None = None


def prepare_plate(frame: np.ndarray, plate: np.ndarray, align: bool, exposure: bool,
                  settings: PlateSettings = PlateSettings(),
                  aligner: PlateAligner | None = None) -> tuple[np.ndarray, Alignment | None]:
    """The plate made ready for differencing: aligned (optionally), exposure-matched (optionally)."""
    global _DEFAULT_ALIGNER
    alignment = None
    if align:
        if aligner is None:
            _DEFAULT_ALIGNER = _DEFAULT_ALIGNER or PlateAligner()
            aligner = _DEFAULT_ALIGNER
        alignment = aligner.estimate(frame, plate)
        if not alignment.found:
            warnings.warn(f"no reliable plate homography ({alignment.inliers} inliers); using the identity",
                          stacklevel=2)
            if plate.shape != frame.shape:
                plate = cv2.resize(plate, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_AREA)
        else:
            plate = warp_plate(plate, frame, alignment.homography)
    if exposure:
        plate = match_exposure(frame, plate, settings)
    return plate, alignment


@dataclass
class PlateResult:
    alpha: np.ndarray  # float32 HxW in [0, 1]
    fg: np.ndarray  # uint8 HxWx3
    plate: np.ndarray  # the aligned, exposure-matched plate that was used
    alignment: Alignment | None


class PlateMatting:
    """The weights-free method of ``mattecli video``: frame + plate -> alpha, F. (``matte --background``
    instead refines ``trimap_from_plate`` by closed form.)

    Frames are expected in order: ``temporal`` (on by default, strength 0 = off) carries the
    previous frame's matte and foreground where the frame did not change
    (:mod:`mattecli.inference.temporal`); :meth:`reset` starts a new clip.
    """

    def __init__(self, settings: PlateSettings = PlateSettings(), align: bool = False, exposure: bool = False,
                 temporal: TemporalSettings = TemporalSettings()) -> None:
        self.settings = settings
        self.align = align
        self.exposure = exposure
        self.aligner = PlateAligner() if align else None
        self.temporal = TemporalFilter(temporal)

    def reset(self) -> None:
        self.temporal.reset()

    def __call__(self, frame: np.ndarray, plate: np.ndarray) -> PlateResult:
        _check_pair(frame, plate, self.align)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the caller counts failed alignments from the result
            used, alignment = prepare_plate(frame, plate, self.align, self.exposure, self.settings, self.aligner)
        alpha = alpha_from_plate(frame, used, self.settings)
        fg = foreground_from_plate(frame, used, alpha, self.settings.fg_min_alpha)
        if self.temporal.enabled:
            alpha, fg = self.temporal(frame, alpha, fg, self.temporal.frame_motion(alignment))
        return PlateResult(alpha, fg, used, alignment)
