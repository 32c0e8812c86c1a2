"""In-process tasks of the steps that have no script (run through their builder)."""

import json
from pathlib import Path


def model_registration(context):
    """Write a registration record next to the run's outputs."""
    out = Path(context["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    record = {"model": str(context["inputs"].get("packaged_model")), "status": "registered"}
    (out / "registration.json").write_text(json.dumps(record, indent=2))
    return {"registration": str(out)}


def batch_transform(context):
    """Score a batch with the packaged model (placeholder output until the model is real)."""
    out = Path(context["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.json").write_text(json.dumps({"inputs": sorted(context["inputs"])}))
    return {"transform_output": str(out)}
