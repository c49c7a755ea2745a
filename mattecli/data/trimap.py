"""Trimaps, in one place: generation from a ground-truth alpha, and normalisation of files.

Values are exactly 0 (background), 128 (unknown) and 255 (foreground), the convention of
the DIM lineage and of the MATLAB evaluation (``trimap == 128``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

BACKGROUND, UNKNOWN, FOREGROUND = 0, 128, 255


@dataclass(frozen=True)
class TrimapSpec:
    """Ranges (inclusive) for the random elliptical erosion and dilation.

    Defaults follow the Composition-1k test trimaps as described by huochaitiantang's DIM
    reproduction (kernel 2-5, iterations 5-15): a band of roughly 10-60 px on 1080p images.
    Erosion and dilation draw their kernel and iteration count independently (as mmagic's
    ``GenerateTrimap`` does), so the band is asymmetric like hand-made trimaps.
    """

    kernel: tuple[int, int] = (2, 5)
    iterations: tuple[int, int] = (5, 15)

    def __post_init__(self) -> None:
        for name, (lo, hi) in (("kernel", self.kernel), ("iterations", self.iterations)):
            if lo < 1 or hi < lo:
                raise ValueError(f"trimap {name} range {lo}..{hi} is not a valid range of positive integers")


_KERNELS: dict[int, np.ndarray] = {}


def ellipse(size: int) -> np.ndarray:
    if size not in _KERNELS:
        _KERNELS[size] = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return _KERNELS[size]


def trimap_from_alpha(alpha: np.ndarray, erode_kernel: int, erode_iters: int,
                      dilate_kernel: int, dilate_iters: int) -> np.ndarray:
    """Deterministic trimap: foreground = alpha==255 eroded; background = outside alpha>0 dilated."""
    fg = (alpha == 255).astype(np.uint8)
    known_or_unknown = (alpha > 0).astype(np.uint8)
    fg = cv2.erode(fg, ellipse(erode_kernel), iterations=erode_iters, borderType=cv2.BORDER_REPLICATE)
    not_bg = cv2.dilate(known_or_unknown, ellipse(dilate_kernel), iterations=dilate_iters,
                        borderType=cv2.BORDER_REPLICATE)
    trimap = np.full(alpha.shape, UNKNOWN, np.uint8)
    trimap[not_bg == 0] = BACKGROUND
    trimap[fg == 1] = FOREGROUND
    return trimap


def random_trimap(alpha: np.ndarray, rng: np.random.Generator, spec: TrimapSpec = TrimapSpec()) -> np.ndarray:
    """Random trimap from a uint8 alpha; the draw order is fixed so a seed reproduces it."""
    ek = int(rng.integers(spec.kernel[0], spec.kernel[1] + 1))
    ei = int(rng.integers(spec.iterations[0], spec.iterations[1] + 1))
    dk = int(rng.integers(spec.kernel[0], spec.kernel[1] + 1))
    di = int(rng.integers(spec.iterations[0], spec.iterations[1] + 1))
    return trimap_from_alpha(alpha, ek, ei, dk, di)


def normalise_trimap(trimap: np.ndarray) -> tuple[np.ndarray, int]:
    """Map any 8-bit trimap onto {0, 128, 255}; returns (trimap, number of pixels changed).

    Rule (documented in the README): each value goes to the nearest of 0, 128, 255
    (ties to 128), i.e. 0-63 -> 0, 64-191 -> 128, 192-255 -> 255. This keeps an unknown
    region stored as another grey (PyMatting's 102, a 127 from an editor) unknown, and
    snaps anti-aliased edges to the nearest class instead of silently scoring them.
    """
    if trimap.ndim == 3:
        trimap = trimap[:, :, 0]
    if trimap.dtype != np.uint8:
        raise ValueError("trimaps must be 8-bit")
    out = np.full(trimap.shape, UNKNOWN, np.uint8)
    out[trimap < 64] = BACKGROUND
    out[trimap > 191] = FOREGROUND
    return out, int(np.count_nonzero(out != trimap))


def off_level_warning(changed: Mapping[str, int]) -> str | None:
    """The one warning of a run (``matte``, ``eval``) whose trimaps used values other than 0/128/255.

    ``changed`` maps each such trimap to the number of pixels :func:`normalise_trimap` moved. An
    unknown region stored as another grey (PyMatting's 102, an editor's 127) is common and is kept
    unknown, but the user should know that their files are not in the 0/128/255 convention.
    """
    if not changed:
        return None
    first, count = next(iter(changed.items()))
    more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
    return (f"{len(changed)} trimap(s) use values other than 0/128/255 (unknown is 128), e.g. {first} "
            f"({count} pixels){more}; each value was mapped to the nearest level (0-63 -> 0, 64-191 -> 128, "
            "192-255 -> 255)")


def clamp_known(alpha: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """A copy of ``alpha`` with the trimap's known regions set: 1 in the foreground, 0 in the background."""
    out = alpha.copy()
    out[trimap == FOREGROUND] = 1.0
    out[trimap == BACKGROUND] = 0.0
    return out
