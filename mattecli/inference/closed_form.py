"""Closed-form matting (Levin, Lischinski and Weiss, TPAMI 2008), solved only where it matters.

The matting Laplacian is Levin's, with the conventions of pymatting's ``cf_laplacian``
(the field's reference implementation): windows of radius 1 (3x3) that lie entirely inside
the image, colours in [0, 1], ``epsilon = 1e-7`` and

    L_ij = sum over windows k holding i and j of
           delta_ij - (1 + (I_i - mu_k)^T (Sigma_k + epsilon/|w| I)^-1 (I_j - mu_k)) / |w|

with the population covariance ``Sigma_k``. Known pixels (trimap 0 or 255, or click disks)
are hard constraints, so the minimiser of ``a^T L a`` solves

    L_uu a_u = -L_uk a_k

over the unknown pixels ``u`` only. What keeps it fast without a JIT:

- only the unknown region's bounding box, grown by two window radii, is looked at (a
  pixel further away shares no window with an unknown pixel, so the result is exact);
- only windows that hold at least one unknown pixel are built (the others touch only
  ``L_kk``, which the solve never reads), and only the upper half of the symmetric matrix,
  accumulated as its 13 forward diagonals on the pixel grid with NumPy; the unknown system
  and its right-hand side are then read off those diagonals at the unknown pixels only;
- the system is solved by a sparse direct Cholesky factorisation (CHOLMOD through cvxopt,
  supernodal, several times faster than SuperLU here; SciPy's SuperLU when cvxopt is not
  installed). pymatting instead stops conjugate gradients at ``|r| < 1e-7 |b|``; a direct
  solve reaches the exact minimiser, so results agree with it to about 1e-4.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from mattecli.data.trimap import FOREGROUND, UNKNOWN, normalise_trimap
from mattecli.errors import MatteError
from mattecli.inference.linalg import symmetric3x3_adjugate

EPSILON = 1e-7
RADIUS = 1


def _as_float_image(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float64) / 65535.0
    return image.astype(np.float64)


def _as_label_map(trimap: np.ndarray | None, constraints: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if (trimap is None) == (constraints is None):
        raise ValueError("give exactly one of trimap= or constraints=")
    labels = trimap if trimap is not None else constraints
    if labels.shape[:2] != shape:
        raise ValueError(f"guidance is {labels.shape[1]}x{labels.shape[0]} but the image is {shape[1]}x{shape[0]}")
    if labels.dtype != np.uint8:
        if not np.issubdtype(labels.dtype, np.floating):
            raise ValueError("trimaps and constraint maps must be uint8 (0, 128, 255) or float in [0, 1]")
        labels = np.round(np.clip(labels, 0.0, 1.0) * 255).astype(np.uint8)  # pymatting-style float trimaps
    return normalise_trimap(labels)[0]


def window_offsets(radius: int = RADIUS) -> list[tuple[int, int]]:
    """(dy, dx) of the pixels of a window relative to its centre, in raster order."""
    span = range(-radius, radius + 1)
    return [(dy, dx) for dy in span for dx in span]


def forward_offsets(radius: int = RADIUS) -> list[tuple[int, int]]:
    """Offsets (dy, dx) from a pixel to the later pixels (raster order) that can share a window with it."""
    span = 2 * radius
    return [(dy, dx) for dy in range(0, span + 1) for dx in range(-span, span + 1) if dy > 0 or dx >= 0]


def _active_window_centres(unknown: np.ndarray, radius: int) -> np.ndarray:
    """Flat indices of the centres of the windows inside the grid that hold an unknown pixel."""
    h, w = unknown.shape
    size = 2 * radius + 1
    ii = np.zeros((h + 1, w + 1), np.int32)  # integral image of the unknown mask
    ii[1:, 1:] = np.cumsum(np.cumsum(unknown, axis=0, dtype=np.int32), axis=1)
    counts = ii[size:, size:] - ii[:-size, size:] - ii[size:, :-size] + ii[:-size, :-size]
    ys, xs = np.nonzero(counts > 0)  # window top-left corners
    return (ys + radius) * w + (xs + radius)


def laplacian_upper(image: np.ndarray, centres: np.ndarray, epsilon: float = EPSILON,
                    radius: int = RADIUS) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Upper half of Levin's Laplacian, summed over the windows centred at ``centres`` only.

    ``image`` is HxWx3 float64 in [0, 1]; ``centres`` are flat indices of window centres
    whose windows lie inside the grid. Returns ``(D, offsets)`` with
    ``D[o, p] = L[p, p + offsets[o]]`` for every pixel ``p`` and forward offset ``o``
    (the lower half follows by symmetry); entries that no window produces are zero.
    """
    h, w, _ = image.shape
    win = window_offsets(radius)
    area = len(win)
    members = np.array([dy * w + dx for dy, dx in win], np.int64)[:, None] + centres[None, :]  # area x N
    c = [image[:, :, k].ravel()[members] for k in range(3)]  # window colours per channel, area x N
    c = [ck - ck.mean(axis=0) for ck in c]
    reg = epsilon / area
    s00 = np.einsum("pn,pn->n", c[0], c[0]) / area + reg
    s01 = np.einsum("pn,pn->n", c[0], c[1]) / area
    s02 = np.einsum("pn,pn->n", c[0], c[2]) / area
    s11 = np.einsum("pn,pn->n", c[1], c[1]) / area + reg
    s12 = np.einsum("pn,pn->n", c[1], c[2]) / area
    s22 = np.einsum("pn,pn->n", c[2], c[2]) / area + reg
    # (Sigma + epsilon/|w| I)^-1 by cofactors, with the -1/|w| of every pair folded in.
    m00, m01, m02, m11, m12, m22, det = symmetric3x3_adjugate(s00, s01, s02, s11, s12, s22)
    scale = -1.0 / (area * det)
    v0 = (m00 * c[0] + m01 * c[1] + m02 * c[2]) * scale
    v1 = (m01 * c[0] + m11 * c[1] + m12 * c[2]) * scale
    v2 = (m02 * c[0] + m12 * c[1] + m22 * c[2]) * scale

    offsets = forward_offsets(radius)
    index_of = {off: k for k, off in enumerate(offsets)}
    diagonals = np.zeros((len(offsets), h * w), np.float64)
    for p, (pdy, pdx) in enumerate(win):
        rows = members[p]  # one pixel per window, so fancy-index += is a correct scatter
        for q in range(p, area):  # later in the window's raster order = a forward offset
            qdy, qdx = win[q]
            value = v0[p] * c[0][q] + v1[p] * c[1][q] + v2[p] * c[2][q]
            value += (1.0 - 1.0 / area) if p == q else -1.0 / area
            diagonals[index_of[(qdy - pdy, qdx - pdx)], rows] += value
    return diagonals, offsets


def matting_laplacian(image: np.ndarray, epsilon: float = EPSILON, radius: int = RADIUS) -> scipy.sparse.csr_matrix:
    """The whole symmetric HW x HW matting Laplacian of an image (every window), for inspection and tests."""
    img = _as_float_image(image)
    h, w = img.shape[:2]
    ys, xs = np.mgrid[radius:h - radius, radius:w - radius]
    D, offsets = laplacian_upper(img, (ys * w + xs).ravel(), epsilon, radius)
    rows, cols, vals = [], [], []
    for o, (dy, dx) in enumerate(offsets):
        p = np.flatnonzero(D[o])
        rows.append(p)
        cols.append(p + dy * w + dx)
        vals.append(D[o, p])
    upper = scipy.sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                    shape=(h * w, h * w)).tocsr()
    return (upper + scipy.sparse.triu(upper, k=1).T).tocsr()


# --- the sparse solve ------------------------------------------------------------------

def _cholmod_solve(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Supernodal sparse Cholesky (SuiteSparse CHOLMOD via cvxopt); None if absent or not SPD."""
    try:
        from cvxopt import cholmod, matrix, spmatrix
    except ImportError:
        return None
    n = b.size
    # CHOLMOD reads the lower triangle: the upper entries transposed.
    A = spmatrix(matrix(vals), matrix(cols.astype(np.int64)), matrix(rows.astype(np.int64)), (n, n))
    x = matrix(b)
    try:
        cholmod.linsolve(A, x, uplo="L")
    except ArithmeticError:  # not numerically positive definite
        return None
    return np.asarray(x).ravel()


def _superlu_solve(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = b.size
    upper = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(n, n)).tocsc()
    A = (upper + scipy.sparse.triu(upper, k=1).T).tocsc()
    # Symmetric positive definite: no pivoting, a symmetric fill-reducing ordering.
    lu = scipy.sparse.linalg.splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                  options={"SymmetricMode": True})
    return lu.solve(b)


def solver_backend() -> str:
    """The direct solver that backend="auto" uses on this installation."""
    try:
        import cvxopt.cholmod  # noqa: F401
    except ImportError:
        return "superlu"
    return "cholmod"


def solve_spd(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, b: np.ndarray, backend: str = "auto") -> np.ndarray:
    """Solve ``A x = b`` for the SPD matrix given by its upper triangle as COO triplets.

    ``backend``: "cholmod" (needs cvxopt), "superlu" (SciPy) or "auto" (CHOLMOD if it is
    installed and succeeds, else SuperLU).
    """
    if backend not in ("auto", "cholmod", "superlu"):
        raise ValueError(f"unknown solver backend {backend!r}")
    if backend != "superlu":
        x = _cholmod_solve(rows, cols, vals, b)
        if x is not None:
            return x
        if backend == "cholmod":
            raise MatteError("the CHOLMOD solver is not available (pip install cvxopt) or the system is not SPD")
    return _superlu_solve(rows, cols, vals, b)


def solve_region(image: np.ndarray, labels: np.ndarray, epsilon: float = EPSILON,
                 radius: int = RADIUS, backend: str = "auto") -> np.ndarray:
    """Closed-form alpha on a grid that holds every window touching an unknown pixel.

    ``image`` HxWx3 float64 in [0, 1], ``labels`` HxW in {0, 128, 255}; float64 HxW, unclipped.
    """
    h, w = labels.shape
    unknown = labels == UNKNOWN
    alpha = (labels == FOREGROUND).astype(np.float64)
    centres = _active_window_centres(unknown, radius)
    if centres.size == 0:
        return alpha
    D, offsets = laplacian_upper(image, centres, epsilon, radius)

    u_pixels = np.flatnonzero(unknown)
    n, size = u_pixels.size, h * w
    index = np.full(size, -1, np.int64)
    index[u_pixels] = np.arange(n)
    is_fg = labels.ravel() == FOREGROUND  # known alpha 1; known alpha 0 adds nothing to b
    rows, cols, vals = [], [], []
    b = np.zeros(n)
    # Only the unknowns' rows of each diagonal are read: pairs (p, q = p + step) with p unknown
    # give L_uu and half of b; pairs (p = u - step, u) with u unknown and p known give the other half.
    for o, (dy, dx) in enumerate(offsets):
        step = dy * w + dx
        later = u_pixels + step
        inside = later < size  # a step past the grid's end pairs with nothing (its entries are zero)
        p, q = u_pixels[inside], later[inside]
        d = D[o, p]
        ip, iq = index[p], index[q]
        both = (iq >= 0) & (d != 0)  # the stored pattern: pairs that share a window
        rows.append(ip[both])
        cols.append(iq[both])
        vals.append(d[both])
        if step:  # b = -L_uk a_k, from both halves of the symmetric matrix
            fg_after = is_fg[q]
            b -= np.bincount(ip[fg_after], weights=d[fg_after], minlength=n)
            earlier = u_pixels - step
            fg_before = earlier >= 0
            fg_before[fg_before] = is_fg[earlier[fg_before]]
            b -= np.bincount(np.flatnonzero(fg_before), weights=D[o, earlier[fg_before]], minlength=n)
    if not np.any(b):  # no foreground constraint reaches the unknowns: alpha = 0 exactly
        return alpha
    x = solve_spd(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), b, backend)
    alpha.ravel()[u_pixels] = x
    return alpha


def unknown_bbox(unknown: np.ndarray, margin: int) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the unknown pixels grown by ``margin`` and clipped; None if none."""
    rows = np.flatnonzero(unknown.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(unknown.any(axis=0))
    h, w = unknown.shape
    return (max(0, int(rows[0]) - margin), min(h, int(rows[-1]) + 1 + margin),
            max(0, int(cols[0]) - margin), min(w, int(cols[-1]) + 1 + margin))


def closed_form_alpha(image: np.ndarray, trimap: np.ndarray | None = None, constraints: np.ndarray | None = None,
                      epsilon: float = EPSILON, radius: int = RADIUS, backend: str = "auto") -> np.ndarray:
    """Closed-form alpha matte, float32 HxW in [0, 1].

    ``image``: HxWx3 RGB, uint8 (or uint16, or float in [0, 1]). Exactly one of ``trimap``
    (HxW uint8: 0 background, 255 foreground, 128 unknown; other greys snap to the nearest
    class) or ``constraints`` (the same encoding from clicks or scribbles: 128 = free).
    Known pixels keep their value; the others solve ``L_uu a_u = -L_uk a_k`` inside the
    unknown region's bounding box, then are clipped to [0, 1] (as pymatting does).
    """
    h, w = image.shape[:2]
    labels = _as_label_map(trimap, constraints, (h, w))
    if h < 2 * radius + 1 or w < 2 * radius + 1:
        raise MatteError(f"image is {w}x{h}: closed-form matting needs at least {2 * radius + 1} pixels a side")
    unknown = labels == UNKNOWN
    alpha = (labels == FOREGROUND).astype(np.float32)
    box = unknown_bbox(unknown, 2 * radius)
    if box is None:
        return alpha
    if not np.any(~unknown):
        raise MatteError("the guidance marks no pixel as foreground or background, so alpha is undetermined")
    y0, y1, x0, x1 = box
    crop = np.ascontiguousarray(_as_float_image(image[y0:y1, x0:x1]))
    solved = solve_region(crop, labels[y0:y1, x0:x1], epsilon, radius, backend)
    alpha[y0:y1, x0:x1] = np.clip(solved, 0.0, 1.0)
    return alpha
