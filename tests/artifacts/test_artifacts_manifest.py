"""import-manifest: both forms, counts with reasons and line numbers, bad lines never stop it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stepkit.artifacts import ArtifactStore
from stepkit.artifacts.manifest import parse_line


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_manifest(path: Path, rows: list[Any]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def generic(path: str, data: bytes | None, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "artifact_id": path,
        "source_url": f"https://h.org/{path}",
        "resolver": "r",
        "path": path,
    }
    if data is not None:
        row |= {"sha256": sha(data), "bytes": len(data)}
    return row | extra


def test_both_forms_import_and_count(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(b"pdf bytes")
    (tmp_path / "b.html").write_bytes(b"<html>")
    manifest = write_manifest(
        tmp_path / "m.jsonl",
        [
            generic("a.pdf", b"pdf bytes", content_type="application/pdf", run_id="r1"),
            {
                "record_type": "manifest",
                "work_id": "W42",
                "url": "https://pub.org/x/b.html",
                "classification": "html",
                "content_length": 6,
                "path": "b.html",
                "sha256": sha(b"<html>"),
                "resolver": "openalex",
                "run_id": "r2",
                "dry_run": False,
            },
            {"record_type": "attempt", "work_id": "W1"},
            {"record_type": "manifest", "work_id": "W2", "url": "u", "classification": "pdf",
             "path": "a.pdf", "resolver": "x", "dry_run": True},
        ],
    )  # fmt: skip
    dry = store.import_manifest(manifest)
    assert (dry.imported, dry.already_present, dry.applied) == (2, 0, False)
    assert store.catalog.stats()["records"] == 0  # dry run wrote nothing
    report = store.import_manifest(manifest, apply=True)
    assert (report.imported, report.already_present, report.malformed) == (2, 0, [])
    assert report.skipped == [
        (3, "record_type 'attempt' is not a manifest record"),
        (4, "dry-run record (nothing was downloaded)"),
    ]
    record = store.show("W42")[0]
    assert (record.source, record.producer, record.content_type, record.run_id) == (
        "https://pub.org/x/b.html", "openalex", "text/html", "r2",
    )  # fmt: skip
    assert store.path(sha(b"pdf bytes")).stat().st_ino == (tmp_path / "a.pdf").stat().st_ino
    again = store.import_manifest(manifest, apply=True)
    assert (again.imported, again.already_present) == (0, 2)
    assert store.verify().problems == []


def test_bad_lines_are_counted_with_line_numbers(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "ok.bin").write_bytes(b"ok")
    outside = tmp_path.parent / "outside.bin"
    outside.write_bytes(b"outside")
    manifest = write_manifest(
        tmp_path / "m.jsonl",
        [
            "{not json",
            generic("ok.bin", b"ok"),
            {"artifact_id": "x", "path": "ok.bin"},
            generic(str(outside), b"outside"),
            generic("../outside.bin", b"outside"),
            "[1, 2]",
            "x" * (10 * 1024 * 1024),
            generic("ok.bin", None) | {"sha256": "../../etc/passwd"},
            generic("missing.bin", b"never"),
            generic("ok.bin", None),
            generic("ok.bin", b"ok") | {"bytes": 3},
        ],
    )
    report = store.import_manifest(manifest, apply=True)
    assert report.imported == 1
    assert [n for n, _ in report.malformed] == [1, 3, 6, 7, 8]
    reasons = dict(report.malformed)
    assert reasons[1].startswith("invalid JSON")
    assert reasons[3] == "missing field 'source_url'; missing field 'resolver'"
    assert reasons[6] == "expected a JSON object, got list"
    assert reasons[7] == "line too long (10,485,761 bytes)"
    assert "Invalid SHA-256 digest '../../etc/passwd'" in reasons[8]
    skipped = dict(report.skipped)
    assert sorted(skipped) == [4, 5, 9, 10, 11]
    assert "is outside" in skipped[4] and "is outside" in skipped[5]
    assert skipped[9] == "file 'missing.bin' not found and its content is not stored"
    assert skipped[10] == "no sha256 (use --hash-missing to hash the file)"
    assert skipped[11] == "file 'ok.bin' has 2 bytes, the manifest says 3"
    assert report.lines == 11


def test_hash_missing_hashes_the_file(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "n.bin").write_bytes(b"no digest given")
    manifest = write_manifest(tmp_path / "m.jsonl", [generic("n.bin", None)])
    report = store.import_manifest(manifest, apply=True, hash_missing=True)
    assert report.imported == 1
    assert store.where(sha(b"no digest given"))[0].artifact_id == "n.bin"


def test_allowed_roots_widen_where_files_may_come_from(
    store: ArtifactStore, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "d.bin").write_bytes(b"d")
    manifest_dir = tmp_path / "manifests"
    manifest_dir.mkdir()
    manifest = write_manifest(manifest_dir / "m.jsonl", [generic(str(data_dir / "d.bin"), b"d")])
    assert store.import_manifest(manifest, apply=True).imported == 0
    report = store.import_manifest(manifest, apply=True, allowed_roots=[data_dir])
    assert report.imported == 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_line_parses_or_gets_a_reason(raw: bytes) -> None:
    parsed = parse_line(raw, 1)
    assert not isinstance(parsed, str) or parsed.strip() != ""


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["artifact_id", "source_url", "resolver", "path", "sha256", "bytes",
                         "record_type", "work_id", "url", "classification", "dry_run"]),
        st.none() | st.integers(-5, 5) | st.text(max_size=8) | st.booleans(),
    )
)  # fmt: skip
def test_any_object_parses_or_gets_a_reason(row: dict[str, Any]) -> None:
    parsed = parse_line(json.dumps(row).encode(), 7)
    assert not isinstance(parsed, str) or parsed


def test_a_symlink_out_of_the_allowed_root_is_skipped(store: ArtifactStore, tmp_path: Path) -> None:
    inside = tmp_path / "inside"
    inside.mkdir()
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"secret")
    (inside / "link.bin").symlink_to(secret)
    manifest = write_manifest(inside / "m.jsonl", [generic("link.bin", b"secret")])
    report = store.import_manifest(manifest, apply=True)
    assert report.imported == 0
    assert report.skipped == [
        (1, f"path 'link.bin' resolves to {secret}, outside the allowed roots")
    ]
    assert not store.exists(sha(b"secret"))
