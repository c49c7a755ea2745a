"""Background plates B': the captured-background input of Background Matting, simulated.

A real clean plate never matches the background behind the subject exactly (auto exposure,
sensor noise, a camera nudged between shots). Background Matting (Sengupta et al., 2020,
``data_loader.py``, ``AdobeDataAffineHR``) trains on B' = perturbed B:

- with probability 0.4, per-pixel Gaussian noise with integer mean in [-7, 6] and integer
  sigma in [2, 5] (``randint(0, 14) - 7``, ``randint(2, 6)``), clipped and truncated to uint8;
- otherwise a gamma change, gamma ~ N(1, 0.12), through skimage's uint8 look-up table
  ``rint(255 * (v/255) ** gamma)``.

Deviation: the original applies ``adjust_gamma`` to a float32 array still in 0..255 (its crop
helper returns float), which raises 0..255 values to the power gamma without normalising;
mattecli applies the gamma the method describes, on the 0..1 scale.

Stronger, BackgroundMattingV2-style options (each drawn with probability 0.3, after the above):
``shift`` (a small misalignment: rotation within +-1 degree and translation within 1% of the
size, as BGMv2's background affine), ``blur`` (Gaussian, sigma 0.5-1.5 px: a focus change;
mattecli's addition), and ``shadow``, which darkens the *background under the subject* (not
the plate) with a warped, box-blurred copy of the alpha times up to 0.3, as BGMv2 does.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

NOISE_PROBABILITY = 0.4
GAMMA_SIGMA = 0.12
EXTRA_PROBABILITY = 0.3


@dataclass(frozen=True)
class PlateSpec:
    """Which perturbations make B' from B; the default is exactly Background Matting's."""

    shift: bool = False
    blur: bool = False
    shadow: bool = False

    def describe(self) -> str:
        extras = [n for n in ("shift", "blur", "shadow") if getattr(self, n)]
        return "bgm-v1 noise/gamma" + (" + " + ", ".join(extras) if extras else "")


def gamma_lut(gamma: float) -> np.ndarray:
    """skimage ``adjust_gamma`` for uint8: ``rint(255 * linspace(0, 1, 256) ** gamma)``."""
    lut = 255.0 * np.linspace(0.0, 1.0, 256) ** gamma
    return np.minimum(np.rint(lut), 255).astype(np.uint8)


def add_noise(image: np.ndarray, mean: int, sigma: int, rng: np.random.Generator) -> np.ndarray:
    """Per-pixel, per-channel Gaussian noise, clipped to 0..255 and truncated, as BGM's ``add_noise``."""
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    noise *= np.float32(sigma)
    noise += np.float32(mean) + image.astype(np.float32)
    np.clip(noise, 0, 255, out=noise)
    return noise.astype(np.uint8)


def perturb_background(bg: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Background Matting's B': noise (p=0.4) or gamma. Returns (plate, what was drawn)."""
    if rng.random() < NOISE_PROBABILITY:
        sigma = int(rng.integers(2, 6))
        mean = int(rng.integers(0, 14)) - 7
        return add_noise(bg, mean, sigma, rng), {"noise_mean": mean, "noise_sigma": sigma}
    gamma = max(float(rng.normal(1.0, GAMMA_SIGMA)), 1e-3)
    return gamma_lut(gamma)[bg], {"gamma": gamma}


def misalign(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate within +-1 degree and translate within 1% of the size (reflected borders)."""
    h, w = image.shape[:2]
    angle = float(rng.uniform(-1.0, 1.0))
    tx, ty = float(rng.uniform(-0.01, 0.01)) * w, float(rng.uniform(-0.01, 0.01)) * h
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[:, 2] += (tx, ty)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def defocus(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.5, 1.5)))


def make_plate(bg: np.ndarray, rng: np.random.Generator, spec: PlateSpec = PlateSpec()) -> np.ndarray:
    """B' for a uint8 RGB background; the draw order is fixed so a seed reproduces it."""
    plate, _ = perturb_background(bg, rng)
    if spec.shift and rng.random() < EXTRA_PROBABILITY:
        plate = misalign(plate, rng)
    if spec.blur and rng.random() < EXTRA_PROBABILITY:
        plate = defocus(plate, rng)
    return plate


def cast_shadow(bg: np.ndarray, alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """With probability 0.3, darken ``bg`` by a warped, box-blurred alpha times U(0, 0.3) (BGMv2).

    Returns ``bg`` itself when no shadow is drawn. The warp follows BGMv2's ranges: rotation
    +-5 degrees, translation +-20%, scale 0.5-1.5, shear +-5 degrees; box blur 20-39 px.
    """
    if rng.random() >= EXTRA_PROBABILITY:
        return bg
    h, w = alpha.shape
    strength = float(rng.uniform(0.0, 0.3))
    angle = np.deg2rad(rng.uniform(-5, 5))
    shear = np.deg2rad(rng.uniform(-5, 5))
    scale = float(rng.uniform(0.5, 1.5))
    tx, ty = float(rng.uniform(-0.2, 0.2)) * w, float(rng.uniform(-0.2, 0.2)) * h
    k = int(rng.integers(20, 40))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    lin = scale * rot @ np.array([[1.0, np.tan(shear)], [0.0, 1.0]])
    centre = np.array([w / 2, h / 2])
    offset = centre - lin @ centre + (tx, ty)
    m = np.hstack([lin, offset[:, None]]).astype(np.float64)
    shadow = cv2.warpAffine(alpha.astype(np.float32) / 255.0, m, (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    shadow = cv2.blur(shadow, (k, k)) * np.float32(strength * 255.0)
    out = bg.astype(np.float32) - shadow[:, :, None]
    return np.clip(out, 0, 255).astype(np.uint8)
