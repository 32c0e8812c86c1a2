"""Shared fixtures: projects written on tmp_path, the CLI runner, a clean registry context."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stepkit.registry import step_names

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "churn"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the caller's STEPKIT_* variables or another test's installed registry."""

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


# -- PostgreSQL (the scale-out backends) ------------------------------------------------------

#: Read once at import: the autouse fixture above hides every STEPKIT_* variable from tests.
POSTGRES_URL = os.environ.get("STEPKIT_TEST_POSTGRES_URL", "")


def require_service(problem: str) -> None:
    """Under CI (``CI=true``) a missing test server fails the test; locally it skips."""

    message = f'{problem}; start the test servers with: eval "$(make -s services)"'
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI needs this server: {message}", pytrace=False)
    pytest.skip(message)


def schema_url(base: str, schema: str) -> str:
    """``base`` with ``schema`` as the connection's search_path (libpq ``options``)."""
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to the test database whose search_path is a fresh schema of this test only;
    the schema and everything in it is dropped afterwards."""
    import uuid

    if not POSTGRES_URL:
        require_service("STEPKIT_TEST_POSTGRES_URL is not set")
    import psycopg

    schema = f"stepkit_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        require_service(f"PostgreSQL at {POSTGRES_URL} is not reachable ({reason})")
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"'.encode())
        try:
            yield schema_url(POSTGRES_URL, schema)
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE'.encode())


# -- scale-out: the S3-compatible server (scripts/services.sh starts it) ----------------------


#: Read at import: the autouse fixture above clears STEPKIT_* before any test runs.
S3_ENDPOINT = os.environ.get("STEPKIT_TEST_S3_ENDPOINT")


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh bucket on the S3-compatible server, as ``s3://<bucket>``; removed afterwards.

    Credentials and endpoint come the standard way (AWS_* variables), as they would for a user.
    """
    import secrets
    import urllib.error
    import urllib.request

    if not S3_ENDPOINT:
        require_service("STEPKIT_TEST_S3_ENDPOINT is not set")
    assert S3_ENDPOINT is not None
    try:
        urllib.request.urlopen(f"{S3_ENDPOINT}/moto-api/", timeout=5).close()
    except (urllib.error.URLError, OSError) as exc:
        require_service(f"no S3-compatible server at {S3_ENDPOINT} ({exc})")
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
