"""The artifact store on a real S3-compatible server (moto's server mode), through s3fs."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from stepkit.artifacts.fsspec_blobs import MULTIPART_CHUNK
from stepkit.artifacts.store import ArtifactStore, FinalizeItem
from stepkit.cli import main
from stepkit.errors import ArtifactNotFoundError, ArtifactStoreError, ProjectFileError
from stepkit.project import Project

WriteProject = Callable[..., Path]


@pytest.fixture
def store(s3_bucket: str, tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(root=f"{s3_bucket}/team", catalog_path=tmp_path / "state" / "cat.sqlite")


def _file(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def test_finalize_uploads_the_object_and_where_show_open_find_it(
    store: ArtifactStore, s3_bucket: str, tmp_path: Path
) -> None:
    source = _file(tmp_path / "out", "model.bin", b"weights v1")
    done = store.finalize(source, artifact_id="model", source="train", producer="Train")
    url = f"{s3_bucket}/team/cas/sha256/{done.sha256[:2]}/{done.sha256[2:]}"
    assert done.location == url and done.record.storage_uri == url
    assert done.layout_path is None and not source.exists()  # move: the source is gone
    assert store.remote is not None and store.remote.fs.cat_file(url) == b"weights v1"
    assert [r.artifact_id for r in store.where(done.sha256)] == ["model"]
    assert [r.sha256 for r in store.show("model")] == [done.sha256]
    with store.open(done.sha256) as handle:
        assert handle.read() == b"weights v1"
    with pytest.raises(ArtifactStoreError, match="a remote object has no local path"):
        _ = done.storage_path


def test_a_digest_already_uploaded_is_not_sent_again(store: ArtifactStore, tmp_path: Path) -> None:
    first = store.finalize(
        _file(tmp_path / "a", "x", b"same"), artifact_id="a", source="s", producer="p"
    )
    assert store.remote is not None
    before = store.remote.info(first.sha256)["LastModified"]
    items = [
        FinalizeItem(
            _file(tmp_path / "b", "x", b"same"), artifact_id="b", source="s", producer="p"
        ),
        FinalizeItem(io.BytesIO(b"same"), artifact_id="c", source="s", producer="p"),
    ]
    again = store.finalize_many(items, mode="copy")
    assert [f.dedup_hit for f in again] == [True, True]
    assert store.remote.info(first.sha256)["LastModified"] == before  # never re-PUT
    assert [o.sha256 for o in store.blobs.iter_objects()] == [first.sha256]
    assert (tmp_path / "b" / "x").read_bytes() == b"same"  # copy: the file stays
    assert not list(store.local.tmp.iterdir())  # the stream's spool file is gone


def test_large_files_go_up_as_multipart_uploads(store: ArtifactStore, tmp_path: Path) -> None:
    big = _file(tmp_path / "big", "big.bin", os.urandom(2 * MULTIPART_CHUNK + 1024))
    small = _file(tmp_path / "small", "small.bin", b"tiny")
    big_done = store.finalize(big, artifact_id="big", source="s", producer="p")
    small_done = store.finalize(small, artifact_id="small", source="s", producer="p")
    assert store.remote is not None
    # S3 gives a multipart object the ETag "<md5 of part md5s>-<number of parts>"
    assert store.remote.info(big_done.sha256)["ETag"].strip('"').endswith("-3")
    assert "-" not in store.remote.info(small_done.sha256)["ETag"]
    assert store.verify().ok == 2


def test_verify_catches_a_corrupted_and_a_missing_object(
    store: ArtifactStore, tmp_path: Path
) -> None:
    bad = store.put_bytes(b"good bytes", artifact_id="bad", source="s", producer="p")
    gone = store.put_bytes(b"will vanish", artifact_id="gone", source="s", producer="p")
    fine = store.put_bytes(b"untouched", artifact_id="fine", source="s", producer="p")
    assert store.remote is not None
    store.remote.fs.pipe_file(store.remote.key(bad.sha256), b"evil bytes")
    store.remote.fs.rm_file(store.remote.key(gone.sha256))
    report = store.verify()
    kinds = {p.sha256: (p.kind, p.path) for p in report.problems}
    assert kinds == {
        bad.sha256: ("mismatch", bad.location),
        gone.sha256: ("missing", gone.location),
    }
    assert report.ok == 1 and fine.sha256 not in kinds


def test_gc_removes_orphans_by_digest_after_the_grace_period(store: ArtifactStore) -> None:
    kept = store.put_bytes(b"kept", artifact_id="kept", source="s", producer="p")
    orphan = store.put_bytes(b"orphan", artifact_id="orphan", source="s", producer="p")
    store.forget(store.show("orphan")[0].id)
    assert store.gc(apply=True).kept_in_grace == 1  # just uploaded: inside the hour of grace
    assert store.exists(orphan.sha256)
    dry = store.gc(grace=timedelta(0))
    assert [d.sha256 for d in dry.objects] == [orphan.sha256] and store.exists(orphan.sha256)
    report = store.gc(apply=True, grace=timedelta(0))
    assert [(d.sha256, d.path) for d in report.objects] == [(orphan.sha256, orphan.location)]
    assert not store.exists(orphan.sha256) and store.exists(kept.sha256)
    with pytest.raises(ArtifactNotFoundError):
        store.open(orphan.sha256)


def test_project_root_url_selects_the_s3_store_and_the_cli_works_on_it(
    s3_bucket: str, write_project: WriteProject, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(
        {
            "stepkit.toml": f"""
            [project]
            name = "team"

            [[workspaces]]
            id = "core"
            path = "steps"

            [artifacts]
            root = "{s3_bucket}/shared"
            """,
            "steps/.keep": "",
        }
    )
    project = Project.load(root)
    assert project.artifacts_root == f"{s3_bucket}/shared"
    with ArtifactStore.for_project(project) as store:
        done = store.put_bytes(b"report", artifact_id="report", source="s", producer="p")
        assert store.location == f"{s3_bucket}/shared"
    assert _cli(str(root), "artifacts", "where", done.sha256) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{s3_bucket}/shared/cas/sha256/{done.sha256[:2]}/{done.sha256[2:]}\n")
    assert _cli(str(root), "artifacts", "verify", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["objects"], report["ok"], report["problems"]) == (1, 1, [])


def _cli(root: str, *args: str) -> int:
    try:
        main(["-p", root, *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_credentials_in_stepkit_toml_are_refused(write_project: WriteProject) -> None:
    root = write_project(
        {
            "stepkit.toml": """
            [project]
            name = "team"

            [[workspaces]]
            id = "core"
            path = "steps"

            [artifacts]
            root = "s3://bucket/prefix"
            aws_secret_access_key = "hunter2"
            """,
            "steps/.keep": "",
        }
    )
    with pytest.raises(ProjectFileError) as caught:
        Project.load(root)
    message = str(caught.value)
    assert "hunter2" not in message and "\n" not in message
    assert message.endswith(
        "artifacts.aws_secret_access_key: credentials never go in stepkit.toml; set "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, ~/.aws/credentials) in the environment."
    )


def test_keys_in_the_root_url_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactStoreError, match="credentials never go in the URL") as caught:
        ArtifactStore(root="s3://AKIA:secret@bucket/p", catalog_path=tmp_path / "c.sqlite")
    assert "secret" not in str(caught.value).replace("credentials never go", "")


def test_local_roots_stay_local(tmp_path: Path) -> None:
    with ArtifactStore(root=tmp_path / "store") as store:
        done = store.put_bytes(b"x", artifact_id="x", source="s", producer="p")
        assert store.remote is None and done.storage_path.read_bytes() == b"x"
        assert done.layout_path is not None and done.layout_path.read_bytes() == b"x"
