"""Bundle the model, its calibrator and a manifest into one deployable archive."""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from pathlib import Path


def main(input_paths, output_paths, environ_vars, job_args):
    name = environ_vars.get("PACKAGE_NAME", "churn-model")
    members = sorted(p for p in Path(input_paths["model_input"]).rglob("*") if p.is_file())
    calibration = input_paths.get("calibration_input")
    if calibration:
        members += sorted(p for p in Path(calibration).rglob("*") if p.is_file())
    if not members:
        raise FileNotFoundError("nothing to package: the model folder is empty")
    out = Path(output_paths["packaged_model"])
    out.mkdir(parents=True, exist_ok=True)
    archive = out / f"{name}.tar.gz"
    manifest = {"name": name, "files": {}}
    # gzip and tar both stamp times; pin them so the same inputs give the same bytes
    with (
        archive.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        for path in members:
            arcname = f"{path.parent.name}/{path.name}"
            info = tar.gettarinfo(str(path), arcname=arcname)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with path.open("rb") as handle:
                tar.addfile(info, handle)
            manifest["files"][arcname] = hashlib.sha256(path.read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return {"archive": archive.name, "files": len(members)}
