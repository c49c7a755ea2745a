"""Where each output of a compose dataset lives, relative to ``--out``."""
from __future__ import annotations

OUTPUT_DIRS = ("fg", "alpha", "merged", "bg", "trimap", "plate")
CARD_NAME = "compose.json"
SAMPLES_DIR = "samples"


def composite_outputs(name: str, trimaps: bool, plates: bool) -> dict[str, str]:
    """Manifest key -> relative path of every file one composite writes."""
    out = {"merged_path": f"merged/{name}.png", "bg_path": f"bg/{name}.png"}
    if trimaps:
        out["trimap_path"] = f"trimap/{name}.png"
    if plates:
        out["plate_path"] = f"plate/{name}.png"
    return out
