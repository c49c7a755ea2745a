"""What a compose run is asked to do, in one picklable value."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mattecli.data.composite import CONVENTIONS, DEFAULT_CONVENTION
from mattecli.data.plates import PlateSpec
from mattecli.data.trimap import TrimapSpec
from mattecli.errors import MatteError
from mattecli.parallel import default_workers
from mattecli.shards import check_shard

CROP_MODES = ("topleft", "random")
# PNG deflate level for every output. Level 1 is lossless like 9 but several times cheaper
# to encode; files are ~10-15% larger (measured in docs/compose.md).
DEFAULT_PNG_LEVEL = 1
# Composites per foreground when neither --per-fg nor name lists say: Composition-1k's training
# count (100), or a small count for the built-in samples so the first command is quick.
DEFAULT_PER_FG = 100
SAMPLES_PER_FG = 4


@dataclass
class ComposeOptions:
    out: Path
    fg: Path | None = None
    alpha: Path | None = None
    bg: str | None = None
    samples: bool = False
    bg_root: Path | None = None
    exclude_categories: tuple[str, ...] = ()
    min_bg_size: int = 0
    voc_split: str = "trainval"
    fg_names: Path | None = None
    bg_names: Path | None = None
    per_fg: int | None = None
    seed: int = 0
    workers: int | None = None
    shard: tuple[int, int] = (1, 1)  # (I, N), 1-based: "shard I of N"
    overwrite: bool = False
    trimaps: bool = False
    trimap_spec: TrimapSpec = field(default_factory=TrimapSpec)
    plates: bool = False
    plate_spec: PlateSpec = field(default_factory=PlateSpec)
    crop: str = "topleft"
    convention: str = DEFAULT_CONVENTION  # a key of mattecli.data.composite.CONVENTIONS
    png_level: int = DEFAULT_PNG_LEVEL
    link: bool = True  # hard-link unconverted fg/alpha files into the dataset (copy if impossible)
    command: str | None = None
    show_progress: bool = True

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.crop not in CROP_MODES:
            raise MatteError(f"--crop {self.crop!r}: expected one of {', '.join(CROP_MODES)}")
        if self.convention not in CONVENTIONS:
            raise MatteError(f"--convention {self.convention!r}: expected one of {', '.join(CONVENTIONS)}")
        if not 0 <= self.png_level <= 9:
            raise MatteError(f"--png-level {self.png_level}: expected 0..9")
        if self.per_fg is not None and self.per_fg < 1:
            raise MatteError(f"--per-fg {self.per_fg}: expected at least 1")
        if self.workers is not None and self.workers < 1:
            raise MatteError(f"--workers {self.workers}: expected at least 1")
        check_shard(self.shard)

    def worker_count(self) -> int:
        return default_workers(self.workers)


def parse_range(text: str, flag: str) -> tuple[int, int]:
    """``"LO-HI"`` or ``"N"`` -> (LO, HI) inclusive, positive integers."""
    try:
        parts = [int(p) for p in text.split("-")] if "-" in text else [int(text)] * 2
        lo, hi = parts
    except ValueError:
        raise MatteError(f"{flag} {text!r}: expected LO-HI or N, e.g. 2-5") from None
    if lo < 1 or hi < lo:
        raise MatteError(f"{flag} {text!r}: expected 1 <= LO <= HI")
    return lo, hi
