"""Foregrounds and their alphas: pairing by file name and cheap header validation.

Every problem is collected (one line each) so the user fixes them all in one go; nothing is
decoded here, only headers are read (``probe_image``), so 431 Adobe foregrounds take a moment.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mattecli.errors import BadInput
from mattecli.io.images import ImageInfo, list_images, probe_image

MAX_LINES_PER_KIND = 20  # long runs of the same problem are cut, with a count of the rest


@dataclass(frozen=True)
class Foreground:
    """One foreground and its alpha, as validated. ``stem`` names its composites."""

    stem: str
    fg_path: Path
    alpha_path: Path
    width: int
    height: int
    fg_convert: bool  # not 8-bit RGB: written to the dataset as a converted PNG
    alpha_convert: bool  # not 8-bit single channel: likewise

    @property
    def fg_out(self) -> str:
        return f"fg/{self.stem}.png" if self.fg_convert else f"fg/{self.fg_path.name}"

    @property
    def alpha_out(self) -> str:
        return f"alpha/{self.stem}.png" if self.alpha_convert else f"alpha/{self.alpha_path.name}"


class Problems:
    """Problem and note lines gathered during validation."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.notes: list[str] = []
        self._counts: dict[str, int] = {}

    def add(self, kind: str, line: str) -> None:
        n = self._counts[kind] = self._counts.get(kind, 0) + 1
        if n <= MAX_LINES_PER_KIND:
            self.problems.append(line)

    def finish(self) -> None:
        for kind, n in self._counts.items():
            if n > MAX_LINES_PER_KIND:
                self.problems.append(f"... and {n - MAX_LINES_PER_KIND} more: {kind}")


def _key(folder: Path, path: Path) -> str:
    """Pairing key: the path relative to its folder, without the extension."""
    return path.relative_to(folder).with_suffix("").as_posix()


def read_name_list(path: Path, what: str) -> list[str]:
    if not path.is_file():
        raise BadInput(path, f"{what} name list does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(path, f"cannot read {what} name list ({exc})") from None
    names = [line.strip() for line in lines if line.strip()]
    if not names:
        raise BadInput(path, f"{what} name list is empty")
    return names


def _probe(path: Path, report: Problems) -> ImageInfo | None:
    try:
        return probe_image(path)
    except BadInput as exc:
        report.add("unreadable images", str(exc))
        return None


def find_foregrounds(fg_dir: Path, alpha_dir: Path, fg_names: Path | None, report: Problems) -> list[Foreground]:
    """Pair foregrounds with alphas (same relative name, any image extension) and validate headers."""
    fg_files: list[Path] = []
    alpha_files: list[Path] = []
    for folder, flag, bucket in ((fg_dir, "--fg", fg_files), (alpha_dir, "--alpha", alpha_files)):
        if not folder.is_dir():
            report.problems.append(f"{folder}: {flag} folder does not exist")
            continue
        bucket.extend(list_images(folder))
        if not bucket:
            report.problems.append(f"{folder}: {flag} folder holds no images")
    if not fg_files or not alpha_files:
        return []
    alphas = {_key(alpha_dir, p): p for p in alpha_files}
    by_key = {_key(fg_dir, p): p for p in fg_files}

    if fg_names is not None:
        by_name = {p.name: p for p in fg_files}
        by_stem = {p.stem: p for p in fg_files}
        chosen = []
        for lineno, listed in enumerate(read_name_list(fg_names, "foreground"), 1):
            p = (by_name.get(listed) or by_key.get(Path(listed).with_suffix("").as_posix())
                 or by_stem.get(Path(listed).stem))
            if p is None:
                report.add("listed foregrounds missing",
                           f"{fg_names}:{lineno}: {listed} is not in the --fg folder {fg_dir}")
            else:
                chosen.append(p)
        unused = len(fg_files) - len(set(chosen))
        if unused:
            report.notes.append(f"{unused} foregrounds in {fg_dir} are not in {fg_names.name} and are left out")
    else:
        chosen = fg_files  # sorted by relative path

    foregrounds, seen = [], {}
    converted_fg, converted_alpha = [], []
    for p in chosen:
        key = _key(fg_dir, p)
        a = alphas.get(key)
        if a is None:
            report.add("foregrounds without alpha", f"{p}: foreground without an alpha (no {key}.* in {alpha_dir})")
            continue
        if p.stem.startswith("."):
            report.add("hidden names", f"{p}: a name starting with a dot would make hidden outputs "
                                       f"({p.stem}_0.png); rename the foreground and its alpha")
            continue
        if p.stem in seen:
            report.add("duplicate names", f"{p}: same name as {seen[p.stem]}; composites are named by "
                                          f"file name, so names must be unique")
            continue
        seen[p.stem] = p
        fi, ai = _probe(p, report), _probe(a, report)
        if fi is None or ai is None:
            continue
        if (fi.width, fi.height) != (ai.width, ai.height):
            report.add("size mismatches", f"{a}: alpha is {ai.width}x{ai.height} but its foreground {p.name} "
                                          f"is {fi.width}x{fi.height}")
            continue
        fg_convert = fi.channels != 3 or fi.bit_depth != 8
        alpha_convert = ai.channels != 1 or ai.bit_depth != 8
        if fg_convert:
            converted_fg.append(f"{p.name} ({_describe(fi)})")
        if alpha_convert:
            converted_alpha.append(f"{a.name} ({_describe(ai)})")
        foregrounds.append(Foreground(p.stem, p, a, fi.width, fi.height, fg_convert, alpha_convert))
    if converted_fg:
        report.notes.append(f"{len(converted_fg)} foregrounds converted to 8-bit RGB: "
                            + ", ".join(converted_fg[:3]) + (" ..." if len(converted_fg) > 3 else ""))
    if converted_alpha:
        report.notes.append(f"{len(converted_alpha)} alphas converted to 8-bit grey: "
                            + ", ".join(converted_alpha[:3]) + (" ..." if len(converted_alpha) > 3 else ""))
    return foregrounds


def _describe(info: ImageInfo) -> str:
    kind = {1: "grey", 2: "grey+alpha", 3: "RGB", 4: "RGBA"}.get(info.channels, f"{info.channels} channels")
    return f"{kind}, {info.bit_depth}-bit"
