"""How ModelRegistration becomes a runnable task: in-process, since it has no script."""

import datetime
import hashlib
import json
from pathlib import Path

from stepkit.components import StepBuilder


class ModelRegistrationStepBuilder(StepBuilder):
    """Registers the packaged model: a record with its digest, metrics and approval status."""

    def run(self, context):
        inputs, outputs = context["inputs"], context["outputs"]
        package_dir = Path(inputs["packaged_model"])
        archives = sorted(package_dir.glob("*.tar.gz"))
        if not archives:
            raise FileNotFoundError(f"no packaged model (*.tar.gz) in {package_dir}")
        metrics = {}
        if inputs.get("metrics_input"):
            metrics_file = Path(inputs["metrics_input"]) / "metrics.json"
            if metrics_file.is_file():
                metrics = json.loads(metrics_file.read_text())
        min_auc = float(getattr(self.config, "min_auc", 0.7))
        record = {
            "model": archives[0].name,
            "sha256": hashlib.sha256(archives[0].read_bytes()).hexdigest(),
            "metrics": metrics,
            "approval": "approved" if metrics.get("auc", 0.0) >= min_auc else "pending-review",
            "registered_at": datetime.datetime.now(datetime.UTC).date().isoformat(),
        }
        out = Path(outputs["registration"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "registration.json").write_text(json.dumps(record, indent=2, sort_keys=True))
        return {"approval": record["approval"]}
