"""Suite-wide isolation (in-process CLI calls must not leak process state into later tests) and the
one rule for tests that need something from outside the repository (data, a browser, a system tool)."""
from __future__ import annotations

import os
from typing import NoReturn

import pytest

from mattecli.io.images import MAX_PIXELS_ENV


@pytest.fixture(autouse=True)
def _restore_max_pixels():
    """``--max-pixels`` sets MATTECLI_MAX_PIXELS for the process (and its workers): undo it after each test."""
    before = os.environ.get(MAX_PIXELS_ENV)
    yield
    if before is None:
        os.environ.pop(MAX_PIXELS_ENV, None)
    else:
        os.environ[MAX_PIXELS_ENV] = before


def in_ci() -> bool:
    """True under CI (``CI`` set to true, 1 or yes, as CI services set it), where every test must run."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_or_fail(problem: str) -> NoReturn:
    """A test that lacks data or a system tool: skipped locally, failed under CI (never hidden there)."""
    if in_ci():
        pytest.fail(f"CI is set but {problem}")
    pytest.skip(problem)
