"""Tests that need an external tool (pdflatex, chromium, a Slurm cluster): FAIL when it is missing on CI, skip elsewhere."""

from __future__ import annotations

import os

import pytest


def on_ci() -> bool:
    """True when the CI environment variable says so (``CI=true``, as .ci/run and most CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require(available: bool, what: str, how: str) -> None:
    """Fail (on CI) or skip (elsewhere, with the reason) when ``what`` is not available; ``how`` says how to get it."""
    if available:
        return
    message = f"{what} is not available: {how}"
    if on_ci():
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)
