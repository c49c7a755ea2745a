"""Weights-free click matting: clicks and strokes -> segmentation -> trimap -> closed-form matte.

Closed-form matting with a few click disks as its only constraints is too weak (the matte
spreads from the disks; issue 21 measured 7.5x the SAD of the true trimap). What a person's
clicks say is "this object" and "not that", which is a segmentation problem; matting is then
needed only in a band around the segmentation's boundary. So:

1. **Seeds.** Clicks (disks of the click radius) and strokes are drawn into the signed map U
   (:func:`mattecli.data.clicks.signed_click_map`, the one rasterisation every click user
   shares), at a *working resolution* (longer side ``work_side``) so the segmentation costs
   the same on a 4K photo as on the studio's preview.
2. **Segmentation.** OpenCV's GrabCut (Rother et al. 2004: colour GMMs and a graph cut,
   ``cv2.grabCut``) seeded by U. The entries (clicks, strokes) are taken **in the order they
   were made**, each one refining the segmentation of the ones before it (``chain``):

   - the first entry that marks foreground starts a fresh GrabCut (``GC_INIT_WITH_MASK``):
     definite foreground/background on the seeds, *probable foreground* in a disk around each
     foreground seed (radius ``prior_fraction`` of the shorter side), *probable background*
     elsewhere. With foreground seeds only, each pixel starts on the side of its nearest seed and
     a thin frame at the image border is definite background unless a foreground seed lies near
     it, so one click on a subject gives the subject;
   - every later entry restarts GrabCut from the previous segmentation (as probable labels) and
     its colour models (``GC_EVAL``, ``step_iterations``), all seeds so far definite, the region
     around the new entry (``step_prior``) starting on its side, and everything farther than
     ``step_reach`` from it fixed. Of what then changes, only what moved towards the entry's
     label and is connected to it is kept: a foreground click only adds to the subject, a
     background click only takes away, and nothing an earlier click settled elsewhere moves
     (GrabCut re-estimating its colour models from all clicks at once let a new click flip
     regions far from it, so the error could rise with more clicks).
   - ``adaptive`` (the default ``--click-method``) lets a corrective entry (one that touches
     the other side of the previous segmentation) claim more than the step's reach, still only
     towards its label and joined to it: the pixels of the side it corrects whose colour a model
     of its own pixels explains better than that side's far colours (``claim_colour``), and what a
     fresh GrabCut on all the seeds (the one-shot solve: a global colour re-fit) moves to its
     label within ``fresh_claim_depth`` times the entry's depth in the region it corrects
     (``fresh_claim``). The chain alone left a wrong first segmentation wrong on photos (each
     click fixed at most its reach); the one-shot solve alone let a click flip regions far away.

   The result is a function of the image and the ordered entries only, so ``matte --clicks``
   replaying a saved file gives what the studio showed; a per-process cache of the chain makes
   one more click (or an undo) cost one short GrabCut step (or none).
   Only the foreground components that hold a foreground seed are kept (stray look-alike blobs
   in the background are dropped; a person clicks a separate part to add it).
3. **Trimap.** The mask is upsampled (bilinear, threshold 0.5) and pixels within a band of
   its boundary become unknown (128): ``band_work`` working pixels (the segmentation's own
   resolution, so its uncertainty), at least ``band_min`` full-resolution pixels. The band also
   takes the pixels within ``doubt_reach`` of the boundary whose colour is not clearly their
   side's (:func:`doubtful_pixels`: hair and veils mix both colours). Seeds stay known
   (255 / 0): what a person marked is never overruled. (Growing the band with the density of
   image edges along the boundary, for hair, was tried and made SAD worse on the development
   sets: closed form then spreads into textured background.)
4. **Matte.** Closed-form matting (:func:`mattecli.inference.closed_form.closed_form_alpha`)
   of the band at full resolution.

With background seeds only there is nothing to cut out; :func:`click_trimap` refuses with one line.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

from mattecli.data.clicks import DEFAULT_RADIUS, Click, Stroke, scale_guidance, signed_click_map
from mattecli.data.trimap import BACKGROUND, FOREGROUND, UNKNOWN
from mattecli.errors import BadInput


@dataclass(frozen=True)
class ClickTrimapSettings:
    """The method's knobs; defaults chosen on held-out synthetic composites (BENCHMARKS.md)."""

    work_side: int = 400  # longer side of the segmentation
    iterations: int = 4  # GrabCut iterations
    prior_fraction: float = 0.15  # probable-foreground disk around foreground seeds, of the shorter side
    border: int = 2  # definite-background frame (working pixels) when no background seed is given
    band_work: float = 3.0  # unknown half-width in working pixels (the segmentation's own uncertainty)
    band_min: float = 3.0  # ... and in full-resolution pixels at least
    #: probable labels: "voronoi" (nearest seed, the border counting as background), "disk" (the
    #: prior disk only), "auto" (disk when background is marked, else voronoi); see docs/matte.md
    init: str = "auto"
    #: the border frame stays definite background (away from foreground seeds) after background
    #: clicks too: steadier on composites, much worse on photos whose subject touches the border
    frame_always: bool = False
    #: each click or stroke refines the segmentation of the ones before it (GrabCut restarted from
    #: the previous labels and colour models); off: one fresh GrabCut on all of them (the method
    #: before the chain, kept for comparison)
    chain: bool = True
    step_iterations: int = 2  # GrabCut iterations per chained step
    step_prior: float = 0.05  # region around a new entry that starts on its side, of the shorter side
    step_reach: float = 0.15  # beyond this (of the shorter side) from a new entry the labels stay (0: no limit)
    local: bool = True  # a chained entry changes only what is connected to it, towards its label
    #: a corrective entry's starting region also takes the opposite side's pixels connected to it whose
    #: colour the entry's own colours explain better than that side's far colours, with no reach limit
    claim_colour: bool = False
    #: a corrective entry also takes, from a fresh GrabCut on all the seeds, what that solve moved to
    #: the entry's label and joined to it, with no reach limit (the global colour re-fit, kept local)
    fresh_claim: bool = False
    #: ... within this many times the entry's depth in the region it corrects (its distance to the
    #: previous segmentation's pixels of its own label; 0: no limit)
    fresh_claim_depth: float = 0.0
    #: the band also takes pixels within this fraction of the shorter side of the boundary whose
    #: colour is not clearly their side's (0: off; :func:`doubtful_pixels`) ...
    doubt_reach: float = 0.07
    doubt_fg_core: float = 0.025  # ... judged by colour models of the foreground deeper than this
    doubt_bg_core: float = 0.2  # ... and of the background farther than this from the boundary
    doubt_margin: float = 0.45  # ... kept known only with P(own side | colour) above 0.5 + this
    doubt_outlier: float = 0.01  # ... and a likelihood under its side's model above this quantile of the core's


#: ``--click-method grabcut``: one fresh GrabCut on all the clicks and strokes at once, the plain band.
#: ``ClickTrimapSettings()`` itself is ``--click-method chain``: better and steadier on synthetic
#: composites, worse on the real photographs (BENCHMARKS.md, "chained against one-shot").
ONE_SHOT = {"chain": False, "doubt_reach": 0.0}
#: ``--click-method adaptive``, the default: the chain, a corrective entry claiming the connected region
#: of its colour and what the one-shot solve gives it near itself (step 2; docs/matte.md)
ADAPTIVE = {"claim_colour": True, "fresh_claim": True, "fresh_claim_depth": 1.0}
#: the knobs of each ``--click-method`` that builds a trimap from a segmentation
CLICK_METHOD_SETTINGS = {"adaptive": ADAPTIVE, "grabcut": ONE_SHOT, "chain": {}}


def _to_bgr8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image[:, :, ::-1])
    if image.dtype == np.uint16:
        return np.ascontiguousarray((image[:, :, ::-1] // 257).astype(np.uint8))
    return np.ascontiguousarray(np.clip(image[:, :, ::-1] * 255.0 + 0.5, 0, 255).astype(np.uint8))


def _work_scale(height: int, width: int, work_side: int) -> float:
    return min(1.0, work_side / max(height, width))


def _initial_mask(fg_seed: np.ndarray, bg_seed: np.ndarray, settings: ClickTrimapSettings) -> np.ndarray:
    """GrabCut's starting labels for a fresh solve (step 2 of the module docstring)."""
    wh, ww = fg_seed.shape
    mask = np.full((wh, ww), cv2.GC_PR_BGD, np.uint8)
    prior = settings.prior_fraction * min(wh, ww)
    to_fg = cv2.distanceTransform((~fg_seed).astype(np.uint8), cv2.DIST_L2, 3)
    near_fg = to_fg <= prior
    frame = np.zeros((wh, ww), bool)
    b = max(1, settings.border)
    frame[:b], frame[-b:], frame[:, :b], frame[:, -b:] = True, True, True, True
    if settings.init == "voronoi" or (settings.init == "auto" and not bg_seed.any()):
        # GrabCut's rectangle, generalised: each pixel starts on the side of its nearest seed, the
        # image border counting as a background seed (so the background model starts from what
        # surrounds the subject, not from the subject itself)
        to_bg = cv2.distanceTransform((~(bg_seed | frame)).astype(np.uint8), cv2.DIST_L2, 3)
        near_fg = near_fg | (to_fg < to_bg)
    mask[near_fg] = cv2.GC_PR_FGD
    if settings.border > 0 and (settings.frame_always or not bg_seed.any()):
        mask[frame & ~(to_fg <= prior)] = cv2.GC_BGD
    mask[fg_seed] = cv2.GC_FGD
    mask[bg_seed] = cv2.GC_BGD
    if not np.isin(mask, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():  # the prior covers everything
        mask[~fg_seed] = cv2.GC_PR_BGD
    return mask


@dataclass
class Segmentation:
    """A solve's result at the working resolution: the foreground (bool hxw) and GrabCut's colour
    models (OpenCV's 1x65 GMM arrays, BGR; None when GrabCut had nothing to decide)."""

    fg: np.ndarray
    bgd_model: np.ndarray | None
    fgd_model: np.ndarray | None


def _fresh(small_bgr: np.ndarray, fg_seed: np.ndarray, bg_seed: np.ndarray,
           settings: ClickTrimapSettings) -> Segmentation:
    """GrabCut from scratch on all seeds at once (the first foreground entry of a chain, or
    every solve when ``settings.chain`` is off)."""
    mask = _initial_mask(fg_seed, bg_seed, settings)
    bgd, fgd = None, None
    if np.isin(mask, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)  # GrabCut's k-means initialisation draws from OpenCV's RNG
        cv2.grabCut(small_bgr, mask, None, bgd, fgd, settings.iterations, cv2.GC_INIT_WITH_MASK)
    fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return Segmentation(_keep_seeded(fg, fg_seed), bgd, fgd)


def _connected_to(region: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """The 8-connected components of ``region | seed`` that touch ``seed``."""
    both = region | seed
    count, labels = cv2.connectedComponents(both.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[np.unique(labels[seed])] = True
    keep[0] = False
    return keep[labels]


def _step(small_bgr: np.ndarray, previous: Segmentation, seeds: np.ndarray, entry_seed: np.ndarray,
          positive: bool, settings: ClickTrimapSettings) -> Segmentation:
    """One more entry (click or stroke) on top of the previous entries' segmentation.

    GrabCut restarts from the previous segmentation (as probable labels) and its colour models
    (``GC_EVAL``), every seed so far hard. Around the new entry, the previous segmentation's
    opposite side within ``step_prior`` of the shorter side (connected to it) starts on the
    entry's side, so one click can claim a region, not only its disk; beyond ``step_reach`` of it
    the previous labels are definite. With ``settings.local``
    the entry changes only what is connected to it, and only towards its own label: a foreground
    click adds to the subject, a background click takes away, nothing else moves.
    """
    wh, ww = seeds.shape
    prev_fg = previous.fg
    mask = np.where(prev_fg, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    to_entry = cv2.distanceTransform((~entry_seed).astype(np.uint8), cv2.DIST_L2, 3)
    opposite = ~prev_fg if positive else prev_fg
    beyond_reach = to_entry > settings.step_reach * min(wh, ww)
    claimed = np.zeros((wh, ww), bool)
    if settings.step_prior > 0:
        near = to_entry <= settings.step_prior * min(wh, ww)
        claimed = _connected_to(opposite & near, entry_seed)
    if settings.claim_colour:
        claimed |= _colour_claim(small_bgr, opposite, entry_seed, beyond_reach)
    mask[claimed] = cv2.GC_PR_FGD if positive else cv2.GC_PR_BGD
    if settings.step_reach > 0:  # beyond the reach the previous labels are hard: a click acts near itself
        far = beyond_reach & ~claimed
        mask[far] = np.where(prev_fg[far], cv2.GC_FGD, cv2.GC_BGD)
    fg_seed, bg_seed = seeds > 0, seeds < 0
    mask[fg_seed] = cv2.GC_FGD
    mask[bg_seed] = cv2.GC_BGD
    bgd, fgd = previous.bgd_model, previous.fgd_model
    if bgd is None or fgd is None or not np.isin(mask, (cv2.GC_BGD, cv2.GC_PR_BGD)).any() \
            or not np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
        return _fresh(small_bgr, fg_seed, bg_seed, settings)
    bgd, fgd = bgd.copy(), fgd.copy()
    cv2.grabCut(small_bgr, mask, None, bgd, fgd, settings.step_iterations, cv2.GC_EVAL)
    fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    if settings.local:
        moved = (fg != prev_fg) & (fg == positive)  # changes towards the entry's label only ...
        if settings.fresh_claim:
            moved |= _fresh_claim(small_bgr, opposite, fg_seed, bg_seed, entry_seed, to_entry, positive, settings)
        fg = prev_fg.copy()
        fg[_connected_to(moved, entry_seed)] = positive  # ... joined to the entry through changed pixels
        fg[fg_seed], fg[bg_seed] = True, False
    return Segmentation(_keep_seeded(fg, fg_seed), bgd, fgd)


def _colour_claim(small_bgr: np.ndarray, opposite: np.ndarray, entry_seed: np.ndarray, far: np.ndarray) -> np.ndarray:
    """The pixels of ``opposite`` (the side a corrective entry lands on) connected to the entry whose
    colour is likelier under a colour model of the entry's own pixels than under one of ``opposite``'s
    pixels in ``far`` (that side's colours away from the entry), each OpenCV's GrabCut model."""
    own = entry_seed
    if own.sum() < 20:  # too few pixels to fit five Gaussians: the entry's neighbourhood
        own = cv2.distanceTransform((~entry_seed).astype(np.uint8), cv2.DIST_L2, 3) <= 3
    other = small_bgr[opposite & far & ~own]
    if len(other) < 50:
        return np.zeros(opposite.shape, bool)
    own_model, other_model = fit_colour_models(small_bgr[own], _evenly_at_most(other))
    colours = small_bgr[opposite][None]
    likelier = np.zeros(opposite.shape, bool)
    likelier[opposite] = gmm_likelihood(own_model, colours)[0] > gmm_likelihood(other_model, colours)[0]
    return _connected_to(likelier & opposite, entry_seed) & opposite


def _fresh_claim(small_bgr: np.ndarray, opposite: np.ndarray, fg_seed: np.ndarray, bg_seed: np.ndarray,
                 entry_seed: np.ndarray, to_entry: np.ndarray, positive: bool,
                 settings: ClickTrimapSettings) -> np.ndarray:
    """What a fresh GrabCut on all the seeds (the one-shot solve) moves from ``opposite`` (the side a
    corrective entry lands on) to the entry's label, within ``fresh_claim_depth`` times the entry's
    depth in ``opposite`` (its distance to the other side): a deep click in a large wrong region
    may claim far, a click in a sliver only near itself. Empty for an entry on its own side (no
    GrabCut then)."""
    depth = float(cv2.distanceTransform(opposite.astype(np.uint8), cv2.DIST_L2, 3)[entry_seed].max())
    if depth <= 0:
        return np.zeros(opposite.shape, bool)
    taken = (_fresh(small_bgr, fg_seed, bg_seed, settings).fg == positive) & opposite
    if settings.fresh_claim_depth > 0:
        taken &= to_entry <= settings.fresh_claim_depth * depth
    return taken


#: chained segmentations kept per process: (image digest, guidance prefix, radius, settings) ->
#: Segmentation, so a studio click or a simulated user's next click costs one GrabCut step
_CHAIN_CACHE: OrderedDict = OrderedDict()
_CHAIN_LOCK = threading.Lock()  # the studio's server threads may share it
CHAIN_CACHE_ENTRIES = 64


def _cached(key: tuple) -> Segmentation | None:
    with _CHAIN_LOCK:
        found = _CHAIN_CACHE.get(key)
        if found is not None:
            _CHAIN_CACHE.move_to_end(key)
        return found


def _remember(key: tuple, value: Segmentation) -> None:
    with _CHAIN_LOCK:
        _CHAIN_CACHE[key] = value
        _CHAIN_CACHE.move_to_end(key)
        while len(_CHAIN_CACHE) > CHAIN_CACHE_ENTRIES:
            _CHAIN_CACHE.popitem(last=False)


def _chained(small_bgr: np.ndarray, guidance: list, radius: float, settings: ClickTrimapSettings) -> Segmentation:
    """The segmentation after each entry in turn, each from the one before (:func:`_step`).

    The result depends only on the image and the ordered entries (every step is deterministic),
    so a replay of a saved clicks file gives what the studio showed; the cache only skips the
    steps already computed in this process."""
    wh, ww = small_bgr.shape[:2]
    digest = hashlib.blake2b(small_bgr.tobytes(), digest_size=16, person=b"clicktrimap").hexdigest()
    base = (digest, small_bgr.shape, float(radius), settings)
    start, state = 0, None
    for k in range(len(guidance), 0, -1):
        state = _cached((*base, tuple(guidance[:k])))
        if state is not None:
            start = k
            break
    for k in range(start + 1, len(guidance) + 1):
        entry = guidance[k - 1]
        seeds = signed_click_map(guidance[:k], wh, ww, radius)
        if state is None:
            if (seeds > 0).any():
                state = _fresh(small_bgr, seeds > 0, seeds < 0, settings)
        else:
            entry_seed = signed_click_map([entry], wh, ww, radius) != 0
            state = _step(small_bgr, state, seeds, entry_seed, entry.positive, settings)
        if state is not None:
            _remember((*base, tuple(guidance[:k])), state)
    return state


def segmentation(image: np.ndarray, guidance: list, radius: float = DEFAULT_RADIUS,
                 settings: ClickTrimapSettings = ClickTrimapSettings(),
                 path: object = "clicks") -> tuple[Segmentation, float, np.ndarray]:
    """The segmentation at the working resolution, the working scale, and the working image (BGR)."""
    h, w = image.shape[:2]
    signed_click_map(guidance, h, w, radius, path)  # one-line refusal of points outside the image
    s = _work_scale(h, w, settings.work_side)
    ww, wh = max(1, round(w * s)), max(1, round(h * s))
    sx, sy = ww / w, wh / h
    small = cv2.resize(image, (ww, wh), interpolation=cv2.INTER_AREA) if s < 1.0 else image
    small_bgr = _to_bgr8(small)
    scaled = scale_guidance(guidance, sx, sy, ww, wh)
    radius_work = max(1.0, radius * min(sx, sy))
    seeds = signed_click_map(scaled, wh, ww, radius_work)
    if not (seeds > 0).any():
        raise BadInput(path, "its clicks mark no foreground: left-click (label \"fg\") on the subject at least once")
    if settings.chain:
        return _chained(small_bgr, scaled, radius_work, settings), s, small_bgr
    return _fresh(small_bgr, seeds > 0, seeds < 0, settings), s, small_bgr


def segment(image: np.ndarray, guidance: list, radius: float = DEFAULT_RADIUS,
            settings: ClickTrimapSettings = ClickTrimapSettings(), path: object = "clicks") -> tuple[np.ndarray, float]:
    """The foreground mask at the working resolution (bool hxw) and the working scale."""
    result, s, _ = segmentation(image, guidance, radius, settings, path)
    return result.fg, s


def _keep_seeded(fg: np.ndarray, fg_seed: np.ndarray) -> np.ndarray:
    """The connected components (8-neighbourhood) of ``fg`` that hold a foreground seed."""
    count, labels = cv2.connectedComponents(fg.astype(np.uint8), connectivity=8)
    if count <= 2:
        return fg
    keep = np.zeros(count, bool)
    keep[np.unique(labels[fg_seed & fg])] = True
    keep[0] = False
    return keep[labels]


def gmm_likelihood(model: np.ndarray, bgr: np.ndarray) -> np.ndarray:
    """Likelihood (up to the factor (2 pi)^-1.5 shared by every model) of each pixel's colour
    under one of OpenCV GrabCut's colour models: the 1x65 array holds 5 component weights, then
    5 BGR means, then 5 row-major 3x3 covariances (OpenCV's ``GMM`` class, grabcut.cpp)."""
    k = 5
    weights, means, covs = model[0, :k], model[0, k:4 * k].reshape(k, 3), model[0, 4 * k:13 * k].reshape(k, 3, 3)
    x = bgr.reshape(-1, 3).astype(np.float64)
    out = np.zeros(len(x))
    for weight, mean, cov in zip(weights, means, covs):
        if weight <= 0:
            continue
        det = np.linalg.det(cov)
        if det <= 1e-9:  # OpenCV adds a small variance to singular covariances the same way
            cov = cov + 0.01 * np.eye(3)
            det = np.linalg.det(cov)
        d = x - mean
        out += weight / np.sqrt(det) * np.exp(-0.5 * np.einsum("ij,jk,ik->i", d, np.linalg.inv(cov), d))
    return out.reshape(bgr.shape[:2])


def fit_colour_models(bgr_fg: np.ndarray, bgr_bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GrabCut's colour models (fgd, bgd; 1x65 each) fitted to two sets of BGR pixels (Nx3 uint8):
    OpenCV's own initialisation (k-means, then one fit) run on the pixels as a one-row image with
    no graph-cut iteration, so the models are exactly what GrabCut would start from."""
    image = np.concatenate([bgr_fg, bgr_bg])[None].astype(np.uint8)
    mask = np.concatenate([np.full(len(bgr_fg), cv2.GC_FGD, np.uint8), np.full(len(bgr_bg), cv2.GC_BGD, np.uint8)])[None]
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(np.ascontiguousarray(image), mask, None, bgd, fgd, 0, cv2.GC_INIT_WITH_MASK)
    return fgd, bgd


#: pixels a colour model is fitted on at most (an even stride through them)
CORE_SAMPLES = 20_000


def _evenly_at_most(pixels: np.ndarray, count: int = CORE_SAMPLES) -> np.ndarray:
    """Every k-th of ``pixels`` with the smallest k that leaves at most ``count``."""
    return pixels[::-(-len(pixels) // count)]


def doubtful_pixels(small_bgr: np.ndarray, fg: np.ndarray, settings: ClickTrimapSettings) -> np.ndarray:
    """Working pixels the band should also leave unknown (step 3 of the module docstring): within
    ``doubt_reach`` (of the shorter side) of the segmentation's boundary, those whose colour is not
    clearly on their own side (posterior P(own side | colour) at most 0.5 + ``doubt_margin``).
    The colour models are fitted afresh, not on everything the segmentation labelled: the
    foreground's on its pixels deeper than ``doubt_fg_core``, the background's on its pixels
    farther than ``doubt_bg_core`` from the boundary. A veil or hair that mixes the subject's colour
    into the background near the subject is then explained by neither model as well as the clean
    colours are, and its pixels go to closed form instead of staying on the wrong side."""
    wh, ww = fg.shape
    none = np.zeros((wh, ww), bool)
    if settings.doubt_reach <= 0 or not fg.any() or fg.all():
        return none
    fg8 = fg.astype(np.uint8)
    inside, outside = cv2.distanceTransform(fg8, cv2.DIST_L2, 3), cv2.distanceTransform(1 - fg8, cv2.DIST_L2, 3)
    core_fg = small_bgr[inside > settings.doubt_fg_core * min(wh, ww)]
    core_bg = small_bgr[outside > settings.doubt_bg_core * min(wh, ww)]
    if min(len(core_fg), len(core_bg)) < 50:  # too thin a side to model
        return none
    core_fg, core_bg = _evenly_at_most(core_fg), _evenly_at_most(core_bg)
    fgd, bgd = fit_colour_models(core_fg, core_bg)
    near = np.where(fg, inside, outside) <= settings.doubt_reach * min(wh, ww)
    colours, labelled_fg = small_bgr[near][None], fg[near]  # only pixels within reach are judged
    pf, pb = gmm_likelihood(fgd, colours)[0], gmm_likelihood(bgd, colours)[0]
    posterior = pf / np.maximum(pf + pb, 1e-300)
    m = settings.doubt_margin
    doubt = np.where(labelled_fg, posterior < 0.5 + m, posterior > 0.5 - m)
    if settings.doubt_outlier > 0:  # a colour its own side's model hardly explains: a mix of both sides
        q = settings.doubt_outlier
        low_f = np.quantile(gmm_likelihood(fgd, core_fg[None])[0], q)
        low_b = np.quantile(gmm_likelihood(bgd, core_bg[None])[0], q)
        doubt |= np.where(labelled_fg, pf < low_f, pb < low_b)
    out = none
    out[near] = doubt
    return out


def click_trimap(image: np.ndarray, guidance: list, radius: float = DEFAULT_RADIUS,
                 settings: ClickTrimapSettings = ClickTrimapSettings(), path: object = "clicks") -> np.ndarray:
    """uint8 HxW trimap (0 / 128 / 255) from clicks and strokes; see the module docstring."""
    h, w = image.shape[:2]
    seg, s, small_bgr = segmentation(image, guidance, radius, settings, path)
    extra = doubtful_pixels(small_bgr, seg.fg, settings)
    if s < 1.0:
        fg = cv2.resize(seg.fg.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
        extra = cv2.resize(extra.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
    else:
        fg = seg.fg
    fg8 = fg.astype(np.uint8)
    trimap = np.where(fg, FOREGROUND, BACKGROUND).astype(np.uint8)
    if fg.any() and not fg.all():
        inside = cv2.distanceTransform(fg8, cv2.DIST_L2, 3)
        outside = cv2.distanceTransform(1 - fg8, cv2.DIST_L2, 3)
        to_edge = np.where(fg, inside, outside)  # distance to the other class
        trimap[to_edge <= max(settings.band_min, settings.band_work / s)] = UNKNOWN
        trimap[extra] = UNKNOWN
    seeds = signed_click_map(guidance, h, w, radius, path)
    trimap[seeds > 0] = FOREGROUND
    trimap[seeds < 0] = BACKGROUND
    return trimap


def click_trimap_alpha(image: np.ndarray, guidance: list, radius: float = DEFAULT_RADIUS,
                       settings: ClickTrimapSettings = ClickTrimapSettings(), path: object = "clicks") -> np.ndarray:
    """float32 HxW alpha: closed-form matting of the band of :func:`click_trimap`."""
    from mattecli.inference.closed_form import closed_form_alpha

    return closed_form_alpha(image, trimap=click_trimap(image, guidance, radius, settings, path))


__all__ = ["ClickTrimapSettings", "Click", "Segmentation", "Stroke", "click_trimap", "click_trimap_alpha",
           "doubtful_pixels", "fit_colour_models", "gmm_likelihood", "segment", "segmentation"]
