"""Parsing of flag text shared by several commands, so a colour or an output list reads the same everywhere."""
from __future__ import annotations

from typing import Iterable, Literal, Optional

import typer

from mattecli.errors import MatteError

MAX_PIXELS_HELP = ("Refuse images (and video frames) above this many pixels, read from the header before "
                   "decoding \\[default: 67108864, i.e. 8192x8192; or $MATTECLI_MAX_PIXELS].")


def max_pixels_option() -> Optional[int]:
    """The shared ``--max-pixels`` option (see mattecli.io.images.DEFAULT_MAX_PIXELS and docs/limits.md)."""
    return typer.Option(None, "--max-pixels", min=1, help=MAX_PIXELS_HELP, show_default=False)


def apply_max_pixels(value: Optional[int]) -> None:
    """Make ``--max-pixels`` take effect in this process and the workers it starts."""
    if value is not None:
        from mattecli.io.images import set_max_pixels

        set_max_pixels(value)


#: ``--click-method`` of matte, studio and eval (the weights-free method's ways of reading clicks;
#: mattecli.inference.methods.CLICK_METHODS, which a test keeps equal)
ClickMethod = Literal["adaptive", "grabcut", "chain", "disks"]
CLICK_METHOD_HELP = ("grabcut (one GrabCut segmentation seeded by all the clicks and strokes at once gives a trimap "
                     "whose band closed form mattes), chain (each click only refines the segmentation of the ones "
                     "before, near itself), adaptive (the chain, but a click that corrects the segmentation also "
                     "claims the wrong region around it: the pixels of its colour joined to it and what one GrabCut "
                     "on all the clicks gives it; docs/matte.md) or disks (the click disks alone constrain closed "
                     "form) \\[default: adaptive].")


def click_method_option(when: str) -> Optional[str]:
    """The shared ``--click-method`` option; ``when`` says when it applies."""
    return typer.Option(None, "--click-method", help=f"{when} {CLICK_METHOD_HELP}", show_default=False)


COLOR_NAMES = {"white": (255, 255, 255), "black": (0, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255),
               "red": (255, 0, 0), "grey": (128, 128, 128), "gray": (128, 128, 128)}


def parse_color(text: str, flag: str = "--bg-color") -> tuple[int, int, int]:
    """``R,G,B`` (0-255), ``#RRGGBB`` or a few names (white, black, green, blue, red, grey)."""
    t = text.strip().lower()
    if t in COLOR_NAMES:
        return COLOR_NAMES[t]
    try:
        if t.startswith("#") and len(t) == 7:
            return tuple(int(t[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        parts = tuple(int(p) for p in t.split(","))
        if len(parts) == 3 and all(0 <= p <= 255 for p in parts):
            return parts  # type: ignore[return-value]
    except ValueError:
        pass
    raise MatteError(f"{flag} {text!r}: expected R,G,B (0-255), #RRGGBB or a name such as white")


def parse_kinds(text: str, allowed: Iterable[str], flag: str = "--output") -> tuple[str, ...]:
    """A comma list of kinds from ``allowed`` (case-insensitive), in the order given, repeats dropped."""
    allowed = tuple(allowed)
    kinds = tuple(dict.fromkeys(k.strip().lower() for k in text.split(",") if k.strip()))
    if not kinds or any(k not in allowed for k in kinds):
        raise MatteError(f"{flag} {text!r}: choose a comma list of {', '.join(allowed)}")
    return kinds


def refuse_unless(condition: bool, needed: str, **given: object) -> None:
    """Refuse, in one line, flags given (not None) that only take effect with ``needed``.

    ``refuse_unless(weights is not None, "--weights", device=device)`` -> "--device applies
    only with --weights". Keyword names are the flags without dashes (``batch_size`` ->
    ``--batch-size``), so none of them is silently ignored.
    """
    if condition:
        return
    flags = [f"--{name.replace('_', '-')}" for name, value in given.items() if value is not None]
    if flags:
        verb = "applies" if len(flags) == 1 else "apply"
        raise MatteError(f"{', '.join(flags)} {verb} only with {needed}")


def examples(*lines: str) -> str:
    """A command's epilog: runnable examples, one per line (after ``mattecli demo --out demo-out``).

    tests/test_help_examples.py parses every line that starts with ``mattecli`` out of the rendered
    ``--help`` and runs it on the demo's data, so each example here must run as written.
    """
    body = "\n".join(line.replace("[", "\\[") for line in lines)  # no rich markup inside examples
    return f"[bold]Examples[/] (after `mattecli demo --out demo-out`):\n\n{body}"
