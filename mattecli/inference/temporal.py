"""Temporal stability for per-frame matting: keep what did not change, take what did.

A per-frame method re-decides every edge pixel from one noisy frame, so a still subject's
matte (and its estimated foreground colour) shimmers from frame to frame: the flicker that
dtSSD measures. Where the frame itself has not changed since the previous one, the matte
should not change either; where it has (the subject moved, something was uncovered), the new
decision must be taken at once, or the matte lags behind the motion.

:class:`TemporalFilter` does exactly that with a recursive filter gated by frame change:

    w(x) = strength * clip((moving - c(x)) / (moving - still), 0, 1)
    alpha_t(x) = w(x) alpha_t-1(x) + (1 - w(x)) alpha_new(x)   (the same for F where 0 < alpha < 1)

with c(x) the largest max-channel difference of the current and previous frames within ``reach``
px of x, after a small blur at half resolution (sensor noise averages out; a real change does
not; a pixel's matte depends on its neighbourhood, so a change nearby counts). In a still region the
matte becomes a running mean over the last ~1 / (1 - strength) frames; a pixel whose colour
changed by ``moving`` grey levels or more gets the new frame's decision unfiltered. With a
moving camera the previous frame, matte and foreground are first warped by the frame-to-frame
homography (from the plate alignments); without one (a frame whose alignment failed) the
filter restarts. Deterministic: no randomness, state is only the previous frame's.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class TemporalSettings:
    """Knobs of the frame-change-gated recursive filter; differences in grey levels (0-255)."""

    strength: float = 0.8  # weight of the previous matte where the frame did not change (0 = off)
    still: float = 3.0  # blurred frame change at or below which a pixel is unchanged
    moving: float = 10.0  # at or above: changed, the new decision is taken as is
    blur: float = 1.0  # Gaussian sigma (px, at half resolution) before differencing
    #: px (full resolution): a pixel counts as changed if the frame changed this close to it, since
    #: its matte depends on a neighbourhood (the plate method's guided filter has radius 8)
    reach: int = 8

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength < 1.0:
            raise ValueError(f"temporal strength must be in [0, 1), not {self.strength}")
        if not 0.0 <= self.still < self.moving:
            raise ValueError(f"need 0 <= still < moving, got still={self.still}, moving={self.moving}")


class TemporalFilter:
    """Stateful: call once per frame, in order; :meth:`reset` between clips."""

    def __init__(self, settings: TemporalSettings = TemporalSettings()) -> None:
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        self._guide: np.ndarray | None = None
        self._alpha: np.ndarray | None = None
        self._fg: np.ndarray | None = None
        self._homography: np.ndarray | None = None

    def frame_motion(self, alignment: object | None) -> np.ndarray | None:
        """Homography from the previous frame to this one, from the plate alignments (objects
        with ``found`` and ``homography``, plate -> frame): the identity for a fixed camera
        (``alignment`` None), their composition for a moving one, None when either is missing."""
        if alignment is None:
            return np.eye(3)
        previous = self._homography
        self._homography = alignment.homography if alignment.found else None
        if previous is None or not alignment.found:
            return None
        return alignment.homography @ np.linalg.inv(previous)

    @property
    def enabled(self) -> bool:
        return self.settings.strength > 0

    def _guide_of(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
        if self.settings.blur > 0:
            small = cv2.GaussianBlur(small, (0, 0), self.settings.blur)
        return small

    def weight(self, guide: np.ndarray, previous: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """float32 HxW weight of the previous frame's matte (0 where the frame changed)."""
        s = self.settings
        r, g, b = cv2.split(cv2.absdiff(guide, previous))
        change = cv2.max(cv2.max(r, g), b)
        half = s.reach // 2
        if half > 0:
            change = cv2.dilate(change, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * half + 1, 2 * half + 1)))
        change = change.astype(np.float32)
        small = np.clip((s.moving - change) * np.float32(s.strength / (s.moving - s.still)), 0.0, s.strength)
        return cv2.resize(small.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)

    def __call__(self, frame: np.ndarray, alpha: np.ndarray, fg: np.ndarray,
                 motion: np.ndarray | None = np.eye(3)) -> tuple[np.ndarray, np.ndarray]:
        """Filtered (alpha float32 HxW, fg uint8 HxWx3) for ``frame``.

        ``motion``: 3x3 homography taking the previous frame's pixels onto this frame's
        (identity for a fixed camera); ``None`` when unknown, which restarts the filter.
        """
        if not self.enabled:
            return alpha, fg
        guide = self._guide_of(frame)
        prev = (self._guide, self._alpha, self._fg)
        if motion is None or prev[0] is None or prev[1].shape != alpha.shape:
            self._guide, self._alpha, self._fg = guide, alpha, fg
            return alpha, fg
        h, w = alpha.shape
        prev_guide, prev_alpha, prev_fg = prev
        if not np.allclose(motion, np.eye(3)):
            half = np.diag([0.5, 0.5, 1.0]) @ motion @ np.diag([2.0, 2.0, 1.0])
            gh, gw = guide.shape[:2]
            prev_guide = cv2.warpPerspective(prev_guide, half, (gw, gh), flags=cv2.INTER_LINEAR,
                                             borderMode=cv2.BORDER_REPLICATE)
            prev_alpha = cv2.warpPerspective(prev_alpha, motion, (w, h), flags=cv2.INTER_LINEAR,
                                             borderMode=cv2.BORDER_REPLICATE)
            prev_fg = cv2.warpPerspective(prev_fg, motion, (w, h), flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REPLICATE)
            # pixels that came into view have no past: the gate sees a large change there
            cover = cv2.warpPerspective(np.full(guide.shape[:2], 255, np.uint8), half, (gw, gh),
                                        flags=cv2.INTER_NEAREST, borderValue=0)
            prev_guide = prev_guide.copy()
            prev_guide[cover == 0] = 255 - guide[cover == 0]
        weight = self.weight(guide, prev_guide, (w, h))
        out_alpha = alpha + weight * (prev_alpha - alpha)
        out_fg = fg
        edge = (out_alpha > 0.0) & (out_alpha < 1.0) & (weight > 0)
        if edge.any():
            out_fg = fg.copy()
            wk = weight[edge][:, None]
            now = fg[edge].astype(np.float32)
            out_fg[edge] = np.clip(now + wk * (prev_fg[edge].astype(np.float32) - now) + 0.5, 0, 255).astype(np.uint8)
        self._guide, self._alpha, self._fg = guide, out_alpha, out_fg
        return out_alpha, out_fg
