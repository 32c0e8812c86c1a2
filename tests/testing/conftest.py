"""Fixtures of the tester's tests."""

from __future__ import annotations

import os

import pytest

from stepkit import sandbox


@pytest.fixture
def bwrap() -> None:
    """Under CI (``CI=true``) a sandbox that cannot run fails the test; locally it skips."""
    why = sandbox.unavailable()
    if why is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI needs the sandbox: {why}", pytrace=False)
    pytest.skip(why)
