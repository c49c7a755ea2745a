"""The matting methods `mattecli matte` runs: the weights-free classical one and trained networks.

A method says which guidance it accepts (``check_guidance``), turns a stream of jobs into a
stream of ``(job, (alpha, fg or None))`` or ``(job, exception)`` (``run``; a failing image
never stops the stream), estimates foreground colour when it has none (``foreground``) and
describes the device and precision it runs in (``describe``). Streams hold at most one
batch, so memory does not grow with the number of images.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from mattecli.data.trimap import BACKGROUND, FOREGROUND, clamp_known
from mattecli.devices import LAZY_SPECS, device_name, resolve_device
from mattecli.errors import BadInput, MatteError
from mattecli.data.clicks import DEFAULT_RADIUS, click_maps, constraint_map, strokes_in
from mattecli.inference.closed_form import closed_form_alpha, solver_backend, unknown_bbox
from mattecli.io.images import MAX_PIXELS_ENV, max_pixels

if TYPE_CHECKING:  # torch is imported where a network or the foreground estimator runs: the classical
    import torch   # alpha solve needs none of it, and its import costs seconds per `matte` run

PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}  # torch dtype names


def estimate_foreground(*args, **kwargs) -> np.ndarray:
    """mattecli.inference.foreground.estimate_foreground, imported (with torch) on first use."""
    from mattecli.inference import foreground

    return foreground.estimate_foreground(*args, **kwargs)


def estimate_foreground_tensor(*args, **kwargs):
    """mattecli.inference.foreground.estimate_foreground_tensor, imported (with torch) on first use."""
    from mattecli.inference import foreground

    return foreground.estimate_foreground_tensor(*args, **kwargs)
# Trimap models on images with a longer side above this see only the unknown region's
# bounding box grown by CROP_MARGIN pixels (the rest of the alpha is known from the trimap).
LARGE_SIDE = 1024
CROP_MARGIN = 64


class Method:
    guidance_kinds: tuple[str, ...] = ()
    flag_hint = "--trimap, --clicks or --background"

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.want_foreground = True  # the runner turns it off when only alpha is written

    def check_guidance(self, kind: str) -> None:
        if kind not in self.guidance_kinds:
            if kind == "none":
                raise MatteError(f"{self.name} needs guidance: give {self.flag_hint}")
            raise MatteError(f"{self.name} takes {self.flag_hint}, not --{kind}")

    def foreground(self, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Germer et al. multi-level foreground colour on this method's device."""
        return estimate_foreground(image, alpha, device=self.device)

    def run(self, jobs: Iterable) -> Iterator[tuple[object, tuple[np.ndarray, np.ndarray | None] | Exception]]:
        raise NotImplementedError


#: how the weights-free method reads clicks (``--click-method``): a segmentation seeded by the
#: clicks and strokes gives a trimap (mattecli.inference.click_trimap), or the click disks alone
#: are the closed form's constraints (the older method)
CLICK_METHODS = ("adaptive", "grabcut", "chain", "disks")
DEFAULT_CLICK_METHOD = "adaptive"


class ClassicalMethod(Method):
    """Closed-form matting from a trimap, from clicks (through a click-seeded trimap, or disks as
    hard constraints), or from a trimap derived from a background plate; no weights."""

    name = "the classical method"
    guidance_kinds = ("trimap", "clicks", "background")

    def __init__(self, device: torch.device | str, click_radius: float | None = None,
                 click_method: str = DEFAULT_CLICK_METHOD,
                 workers: int | None = 1) -> None:
        super().__init__(device)
        #: processes that solve images side by side (None: every core); 1 solves in this process
        self.workers = workers
        if click_method not in CLICK_METHODS:
            raise MatteError(f"--click-method {click_method}: choose from {', '.join(CLICK_METHODS)}")
        self.click_radius = DEFAULT_RADIUS if click_radius is None else click_radius
        self.click_method = click_method
        #: GrabCut's working side (None: ClickTrimapSettings' default); the studio's previews use a smaller one
        self.segment_side: int | None = None

    @property
    def device(self) -> torch.device:
        """The foreground estimator's device; a ``--device`` spec given as text (``auto``, ``cpu``)
        is resolved on first use, so a run that writes only alpha never imports torch."""
        if isinstance(self._device, str):
            self._device = resolve_device(self._device)
        return self._device

    @device.setter
    def device(self, value: torch.device | str) -> None:
        self._device = value

    def describe(self) -> str:
        from mattecli.parallel import default_workers

        workers = default_workers(self.workers)
        solve = (f"method: classical closed-form matting (Levin et al.), {solver_backend()} sparse Cholesky, float64, "
                 f"on the CPU{f' ({workers} processes)' if workers > 1 else ''}")
        if not self.want_foreground:
            return solve + "; no foreground colour (only alpha is written)"
        # estimate_foreground pins CPU work to one thread (see mattecli.inference.foreground).
        where = "cpu (1 thread)" if self.device.type == "cpu" else device_name(self.device)
        clicks = {"adaptive": "clicks -> adaptive GrabCut trimap -> ", "grabcut": "clicks -> GrabCut trimap -> ",
                  "chain": "clicks -> chained GrabCut trimap -> "}.get(self.click_method, "")
        return f"{solve.replace('classical ', 'classical ' + clicks, 1)}; foreground colour (Germer et al.) on {where}, float32"

    def alpha(self, job) -> np.ndarray:
        return classical_alpha(job.kind, job.image, job.guidance, job.item.path, self.click_radius,
                               self.click_method, self.segment_side)

    def run(self, jobs: Iterable) -> Iterator:
        """Images solved in ``self.workers`` spawned processes (in-process with one); the jobs
        come back in their order, a failing image as its exception."""
        from mattecli.parallel import default_workers, ordered_map

        settings = (self.click_radius, self.click_method, self.segment_side)
        tasks = ((job, (job.kind, job.image, job.guidance, job.item.path, *settings)) for job in jobs)
        died = "the worker process matting it died (out of memory? try --workers 1 or a smaller --max-pixels)"
        for job, (alpha, problem) in ordered_map(_classical_task, tasks, default_workers(self.workers),
                                                 crashed=lambda job, exc: (None, f"{job.item.path}: {died}")):
            yield job, (MatteError(problem) if problem is not None else (alpha, None))


def classical_alpha(kind: str, image: np.ndarray, guidance, path, click_radius: float, click_method: str,
                    segment_side: int | None = None) -> np.ndarray:
    """The classical method's alpha for one image and its guidance (see ``ClassicalMethod``)."""
    if kind == "trimap":
        return closed_form_alpha(image, trimap=guidance)
    if kind == "clicks" and click_method != "disks":
        from mattecli.inference.click_trimap import CLICK_METHOD_SETTINGS, ClickTrimapSettings, click_trimap_alpha

        knobs = dict(CLICK_METHOD_SETTINGS[click_method])
        if segment_side is not None:
            knobs["work_side"] = segment_side
        return click_trimap_alpha(image, guidance, click_radius, ClickTrimapSettings(**knobs), path=path)
    if kind == "clicks":
        h, w = image.shape[:2]
        labels = constraint_map(guidance, h, w, click_radius, path=path)
        if not np.any(labels == FOREGROUND):
            raise BadInput(path, "its clicks mark no foreground (add a click with \"label\": \"fg\")")
        if not np.any(labels == BACKGROUND):
            raise BadInput(path, "its clicks mark no background (add a click with \"label\": \"bg\"); "
                                 "with foreground clicks alone every pixel would be opaque")
        return closed_form_alpha(image, constraints=labels)
    from mattecli.inference.plate import trimap_from_plate

    return closed_form_alpha(image, trimap=trimap_from_plate(image, guidance))


def _classical_task(task: tuple) -> tuple[np.ndarray | None, str | None]:
    """One image in a worker process: ``(alpha, None)``, or ``(None, the one-line problem)``
    (exceptions of our own types do not all survive pickling)."""
    kind, image, guidance, path, *settings = task
    try:
        return classical_alpha(kind, image, guidance, path, *settings), None
    except (MatteError, ValueError) as exc:
        return None, str(exc)


def _chw_float(rgb: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float 3xHxW in [0, 1]; read-only arrays (decoded video frames) are copied,
    as torch cannot wrap them."""
    import torch

    return torch.from_numpy(np.require(rgb, requirements=("C", "W"))).permute(2, 0, 1).float() / 255.0


class LearnedMethod(Method):
    """A trained network from a checkpoint; the family (and so the guidance) is read from the file."""

    def __init__(self, weights: str | os.PathLike, device: torch.device, batch_size: int = 1,
                 precision: str = "fp32", click_radius: float | None = None,
                 refine_patches: int | None = None, infer_size: int | None = None) -> None:
        super().__init__(device)
        from mattecli.families.registry import load_model

        if precision not in PRECISIONS:
            raise MatteError(f"--precision {precision}: choose from {', '.join(PRECISIONS)}")
        if precision == "fp16" and device.type != "cuda":
            raise MatteError("--precision fp16 needs a CUDA device; use fp32 or bf16 on the CPU")
        self.model, ckpt = load_model(weights, device)
        self.family = str(ckpt["family"])
        self.name = f"the '{self.family}' network in {weights}"
        self.guidance_kinds = (self.model.guidance,)
        #: extra maps the network predicts beside alpha (``trimap``, ``uncertainty``), written by matte
        self.extra_outputs = tuple(getattr(self.model, "extra_outputs", ()))
        self.flag_hint = {"trimap": "--trimap", "clicks": "--clicks", "background": "--background",
                          "none": "no guidance"}[self.model.guidance]
        self.batch_size = max(1, batch_size)
        self.precision = precision
        #: None: the network's own radius rule (``model.click_radius_for``), else DEFAULT_RADIUS
        self.click_radius = click_radius
        #: uncertainty-guided refinement budget (click networks); None: the checkpoint's default
        if refine_patches is not None and not hasattr(self.model, "refine_patches"):
            raise MatteError(f"--refine-patches: {self.name} has no local refinement (click networks only)")
        if refine_patches is not None and refine_patches < 0:
            raise MatteError(f"--refine-patches {refine_patches}: expected 0 (off) or more patches")
        self.refine_patches = refine_patches
        if infer_size is not None:
            # networks that resize their input for one part (SHM's T-Net) say so with set_infer_size
            setter = getattr(self.model, "set_infer_size", None)
            if setter is None:
                raise MatteError(f"--infer-size: {self.name} runs at the image's own size; drop --infer-size")
            limit = max_pixels()
            if infer_size * infer_size > limit:
                raise MatteError(f"--infer-size {infer_size}: the network would see {infer_size * infer_size / 1e6:,.1f}-"
                                 f"megapixel inputs, above the pixel limit {limit} ({limit / 1e6:.1f} megapixels; "
                                 f"--max-pixels or {MAX_PIXELS_ENV}); give a smaller size")
            setter(infer_size)

    def describe(self) -> str:
        size = getattr(self.model, "infer_size", None)
        guidance = "no guidance" if self.model.guidance == "none" else f"{self.model.guidance} guidance"
        return (f"method: '{self.family}' network, {guidance}, batch {self.batch_size}, "
                f"on {device_name(self.device)}, {self.precision}"
                + (f", inner input {size}x{size} (--infer-size)" if size else ""))

    def check_guidance(self, kind: str) -> None:
        if kind != self.model.guidance:
            if self.model.guidance == "none":
                raise MatteError(f"{self.name} takes no guidance; drop --{kind}")
            super().check_guidance(kind)

    def radius_for(self, height: int, width: int) -> float:
        """The click disk radius: ``--click-radius`` when given, else the network's rule."""
        if self.click_radius is not None:
            return self.click_radius
        rule = getattr(self.model, "click_radius_for", None)
        return rule(height, width) if rule is not None else DEFAULT_RADIUS

    # -- preparing one job: (input crop box, image tensor 3xhxw, guidance tensor or None)
    def _prepare(self, job) -> tuple[tuple[int, int, int, int], torch.Tensor, torch.Tensor | None]:
        import torch

        h, w = job.image.shape[:2]
        box = (0, h, 0, w)
        if job.kind == "trimap" and max(h, w) > LARGE_SIDE:
            found = unknown_bbox(job.guidance == 128, CROP_MARGIN)
            box = found if found is not None else box
        y0, y1, x0, x1 = box
        image = _chw_float(job.image[y0:y1, x0:x1])
        if job.kind == "trimap":
            t = job.guidance[y0:y1, x0:x1]
            g = torch.from_numpy(np.where(t == FOREGROUND, 1.0, np.where(t == BACKGROUND, 0.0, 0.5))
                                 .astype(np.float32))[None]
        elif job.kind == "background":
            g = _chw_float(job.guidance)
        elif job.kind == "clicks":
            if strokes_in(job.guidance):
                raise BadInput(job.item.path, "click networks take clicks, not strokes: drop its strokes, or matte "
                                              "it without --weights")
            g = torch.from_numpy(click_maps(job.guidance, h, w, self.radius_for(h, w), path=job.item.path))
        else:
            g = None
        return box, image, g

    def _cues(self, job) -> dict[str, torch.Tensor]:
        """The job's extra cues as tensors, for a network that declares them (``model.cues``)."""
        import torch

        accepted = getattr(self.model, "cues", ())
        found = {}
        for name, value in (getattr(job, "cues", None) or {}).items():
            if name not in accepted:
                continue
            arr = np.asarray(value)
            t = torch.from_numpy(np.ascontiguousarray(arr if arr.ndim == 3 else arr[:, :, None])).permute(2, 0, 1)
            found[name] = t.float() / 255.0 if arr.dtype == np.uint8 else t.float()
        return found

    def _predict(self, batch: list) -> list:
        import torch

        images = torch.stack([b[2] for b in batch]).to(self.device, non_blocking=True)
        guidance = None if batch[0][3] is None else torch.stack([b[3] for b in batch]).to(self.device)
        cues = {name: torch.stack([b[4][name] for b in batch]).to(self.device)
                for name in batch[0][4] if all(name in b[4] for b in batch)}
        with torch.no_grad(), torch.autocast(self.device.type, dtype=getattr(torch, PRECISIONS[self.precision]),
                                             enabled=self.precision != "fp32"):
            if self.refine_patches is None:
                out = self.model.predict(images, guidance, **cues)
            else:
                out = self.model.predict(images, guidance, refine_patches=self.refine_patches, **cues)
        if not bool(torch.isfinite(out["alpha"]).all()):  # clamp would turn NaN into alpha 0: a silent black matte
            raise MatteError("it output NaN or infinite alpha (the weights or this input overflow; try --precision fp32)")
        alpha = out["alpha"].float().clamp(0.0, 1.0)
        fg = out.get("fg")
        cropped = any(box != (0, job.image.shape[0], 0, job.image.shape[1]) for job, box, *_ in batch)
        if fg is None and self.want_foreground and not cropped:  # on the same device, the whole batch at once
            fg = estimate_foreground_tensor(images, alpha)[0]
        alpha = alpha.cpu().numpy()
        fg = None if fg is None else fg.float().clamp(0.0, 1.0).cpu().numpy()
        extras = {k: out[k].float().cpu().numpy() for k in self.extra_outputs if out.get(k) is not None}
        results = []
        for k, (job, box, *_) in enumerate(batch):
            pasted = self._paste(job, box, alpha[k, 0], None if fg is None else fg[k].transpose(1, 2, 0))
            if extras:
                pasted = (*pasted, {name: self._paste_map(job, box, value[k, 0]) for name, value in extras.items()})
                if "patches" in out and box == (0, job.image.shape[0], 0, job.image.shape[1]):
                    pasted[2]["patches"] = list(out["patches"][k])  # refined boxes (y0, x0, y1, x1)
            results.append((job, pasted))
        return results

    @staticmethod
    def _paste_map(job, box, crop: np.ndarray) -> np.ndarray:
        """An extra map of the input crop placed in a zero map of the whole image."""
        y0, y1, x0, x1 = box
        if (y0, y1, x0, x1) == (0, job.image.shape[0], 0, job.image.shape[1]):
            return crop
        full = np.zeros(job.image.shape[:2], np.float32)
        full[y0:y1, x0:x1] = crop
        return full

    def _paste(self, job, box, alpha_crop: np.ndarray, fg_crop: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        h, w = job.image.shape[:2]
        y0, y1, x0, x1 = box
        if job.kind == "trimap":
            alpha = (job.guidance == FOREGROUND).astype(np.float32)
            alpha[y0:y1, x0:x1] = alpha_crop
            alpha = clamp_known(alpha, job.guidance)
        else:
            alpha = alpha_crop
        if box != (0, h, 0, w):
            return alpha, None  # the foreground of the whole image is estimated afterwards
        return alpha, fg_crop

    def run(self, jobs: Iterable) -> Iterator:
        batch: list = []
        for job in jobs:
            try:
                box, image, g = self._prepare(job)
                cues = self._cues(job)
            except (MatteError, ValueError) as exc:
                yield job, exc
                continue
            if batch and (batch[0][2].shape != image.shape or len(batch) >= self.batch_size):
                yield from self._flush(batch)
                batch = []
            batch.append((job, box, image, g, cues))
        if batch:
            yield from self._flush(batch)

    def _flush(self, batch: list) -> Iterator:
        try:
            yield from self._predict(batch)
        except (MatteError, ValueError, RuntimeError) as exc:
            for job, *_ in batch:
                yield job, MatteError(f"the network failed on it ({str(exc).splitlines()[0][:200]})")


#: a click's disk radius in pixels; beyond this, one click covers any image there is
MAX_CLICK_RADIUS = 100_000


def build_method(weights: str | os.PathLike | None, method: str, device: str, batch_size: int = 1,
                 precision: str = "fp32", click_radius: float | None = None,
                 refine_patches: int | None = None, infer_size: int | None = None,
                 click_method: str | None = None, workers: int | None = 1) -> Method:
    """The method ``matte`` runs: a trained network (``weights``) or the classical one, which
    solves ``workers`` images side by side in spawned processes (None: every core)."""
    if click_radius is not None and not (0 <= click_radius <= MAX_CLICK_RADIUS):
        raise MatteError(f"--click-radius {click_radius:g}: give a radius from 0 to {MAX_CLICK_RADIUS} pixels")
    if weights is not None:
        if click_method is not None:
            raise MatteError(f"--click-method {click_method} applies to the weights-free method; a click network "
                             "reads clicks its own way (drop --click-method or --weights)")
        return LearnedMethod(weights, resolve_device(device), batch_size, precision, click_radius, refine_patches,
                             infer_size)
    if refine_patches is not None:
        raise MatteError("--refine-patches applies to click networks (--weights); the classical method has no "
                         "local refinement")
    if infer_size is not None:
        raise MatteError("--infer-size applies to trained networks (--weights)")
    if method != "classical":
        raise MatteError(f"--method {method}: only 'classical' runs without --weights")
    if precision != "fp32":
        raise MatteError("--precision applies to trained networks; the classical method runs in float64/float32")
    # auto and cpu cannot fail, so they resolve when the foreground is first estimated (never, for alpha only)
    lazy = (device or "").strip().lower() in LAZY_SPECS
    return ClassicalMethod(device if lazy else resolve_device(device), click_radius, click_method or DEFAULT_CLICK_METHOD,
                           workers)
