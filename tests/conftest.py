"""Suite-wide isolation: in-process CLI calls must not leak process state into later tests."""
from __future__ import annotations

import os

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
