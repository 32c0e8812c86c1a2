"""``stepkit run`` with the team set-up: state, step cache and artifact catalog in a real
PostgreSQL, chosen by URL (here from the environment, as CI or a runner host would)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepkit.cli import main

from .test_run import run_json, statuses


def test_a_project_on_postgres_runs_caches_and_lists_its_runs(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tiny_project: Path,
    postgres_url: str,
) -> None:
    monkeypatch.setenv("STEPKIT_STATE_URL", postgres_url)
    monkeypatch.setenv("STEPKIT_ARTIFACTS_CATALOG_URL", postgres_url)
    code, first = run_json(capsys, tiny_project)
    assert code == 0, first
    assert statuses(first) == {"Make": "completed", "Double": "completed", "Report": "completed"}
    code, second = run_json(capsys, tiny_project)
    assert code == 0
    assert statuses(second) == {"Make": "cached", "Double": "cached", "Report": "cached"}

    state_dir = tiny_project / ".stepkit"
    for name in ("state.db", "cache.sqlite", "artifacts.sqlite"):
        assert not (state_dir / name).exists(), name  # nothing went to the SQLite defaults

    with pytest.raises(SystemExit) as listed:
        main(["-p", str(tiny_project), "runs", "list", "--json"])
    assert listed.value.code == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in runs] == ["completed", "completed"]

    import psycopg

    with psycopg.connect(postgres_url) as conn:
        catalogued = conn.execute("SELECT count(DISTINCT producer) FROM artifacts").fetchone()
        cached = conn.execute("SELECT count(*) FROM cache_entries").fetchone()
    assert catalogued == (3,) and cached == (3,)
