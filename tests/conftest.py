"""Shared fixtures: projects written on tmp_path, the CLI runner, a clean registry context."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stepkit.registry import step_names

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "churn"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the caller's STEPKIT_* variables or another test's installed registry."""
    import os

    for var in [v for v in os.environ if v.startswith("STEPKIT_")]:
        monkeypatch.delenv(var)
    step_names.set_registry(None)
    yield
    step_names.set_registry(None)


WriteProject = Callable[..., Path]


@pytest.fixture
def write_project(tmp_path: Path) -> WriteProject:
    """Write a project: ``files`` maps relative paths to (dedented) text."""

    def write(files: dict[str, str], *, root: Path | None = None) -> Path:
        base = root or tmp_path / "project"
        for rel, text in files.items():
            path = base / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return base

    return write


@pytest.fixture
def example_project() -> Path:
    return EXAMPLE


# -- scale-out: the S3-compatible server (scripts/services.sh starts it) ----------------------

import os  # noqa: E402  # kept with the section that needs it (several people append here)

#: Read at import: the autouse fixture above clears STEPKIT_* before any test runs.
S3_ENDPOINT = os.environ.get("STEPKIT_TEST_S3_ENDPOINT")


def _service_missing(what: str) -> None:
    """Under CI a missing service fails the test; locally it skips with how to start it."""
    message = f'{what}; start the services with: eval "$(make -s services)"'
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh bucket on the S3-compatible server, as ``s3://<bucket>``; removed afterwards.

    Credentials and endpoint come the standard way (AWS_* variables), as they would for a user.
    """
    import secrets
    import urllib.error
    import urllib.request

    if not S3_ENDPOINT:
        _service_missing("STEPKIT_TEST_S3_ENDPOINT is not set")
    assert S3_ENDPOINT is not None
    try:
        urllib.request.urlopen(f"{S3_ENDPOINT}/moto-api/", timeout=5).close()
    except (urllib.error.URLError, OSError) as exc:
        _service_missing(f"no S3-compatible server at {S3_ENDPOINT} ({exc})")
    monkeypatch.setenv("AWS_ENDPOINT_URL", S3_ENDPOINT)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "stepkit-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "stepkit-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import s3fs  # type: ignore[import-untyped]  # s3fs ships no type hints

    fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)
    bucket = f"stepkit-test-{secrets.token_hex(6)}"
    fs.mkdir(bucket)
    try:
        yield f"s3://{bucket}"
    finally:
        fs.rm(bucket, recursive=True)
