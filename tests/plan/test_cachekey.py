from __future__ import annotations

from pathlib import Path

from stepkit.plan.cachekey import cache_key, changed_parts, folder_digest, tree_digest


def _key(tmp_path: Path, **over: object) -> tuple[str, dict[str, object]]:
    script = tmp_path / "s.py"
    if not script.exists():
        script.write_text("def main(*a): pass\n")
    args: dict[str, object] = {
        "files": {"script": script, "contract": None},
        "config": {"n_rows": 10},
        "environment": {"LABEL_FIELD": "churned"},
        "arguments": {"job_type": "training"},
        "inputs": {"DATA": "a" * 64},
    }
    args.update(over)
    key = cache_key(**args)  # type: ignore[arg-type]
    return key.digest, dict(key.parts)


def test_key_is_stable_and_sensitive_to_every_part(tmp_path: Path) -> None:
    base, parts = _key(tmp_path)
    assert _key(tmp_path)[0] == base
    assert _key(tmp_path, config={"n_rows": 11})[0] != base
    assert _key(tmp_path, environment={"LABEL_FIELD": "x"})[0] != base
    assert _key(tmp_path, arguments={"job_type": "testing"})[0] != base
    assert _key(tmp_path, inputs={"DATA": "b" * 64})[0] != base
    (tmp_path / "s.py").write_text("def main(*a): return 1\n")
    changed, new_parts = _key(tmp_path)
    assert changed != base
    assert changed_parts(parts, new_parts) == ["files.script"]


def test_folder_digest_follows_content_and_names(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("x\n1\n")
    (folder / "sub/b.json").write_text("{}")
    first = folder_digest(folder)
    assert first == folder_digest(folder)
    (folder / "sub/b.json").write_text("{ }")
    assert folder_digest(folder) != first
    assert tree_digest({"a": "1" * 64}) != tree_digest({"b": "1" * 64})
