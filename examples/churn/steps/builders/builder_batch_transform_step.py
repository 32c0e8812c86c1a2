"""How BatchTransform becomes a runnable task: in-process, since it has no script."""

import csv
import pickle
import tarfile
from pathlib import Path

from stepkit.components import StepBuilder


class BatchTransformStepBuilder(StepBuilder):
    """Scores a batch of processed customers with the packaged (or raw) model."""

    def run(self, context):
        inputs, outputs = context["inputs"], context["outputs"]
        model_dir = Path(inputs["model_input"])
        model_file = model_dir / "model.pkl"
        if not model_file.is_file():
            archives = sorted(model_dir.glob("*.tar.gz"))
            if not archives:
                raise FileNotFoundError(f"no model.pkl or packaged model in {model_dir}")
            with tarfile.open(archives[0]) as tar:
                member = next(m for m in tar.getmembers() if m.name.endswith("model.pkl"))
                model = pickle.load(tar.extractfile(member))
        else:
            with model_file.open("rb") as handle:
                model = pickle.load(handle)
        data_files = sorted(Path(inputs["processed_data"]).rglob("data.csv"))
        if not data_files:
            raise FileNotFoundError(f"no data.csv under {inputs['processed_data']}")
        with data_files[0].open(newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            rows = list(reader)
        features = [[float(v) for v in r[1:-1]] for r in rows]
        scores = model.predict_proba(features)[:, 1]
        out = Path(outputs["transform_output"])
        out.mkdir(parents=True, exist_ok=True)
        with (out / "scores.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["customer_id", "score"])
            writer.writerows((r[0], round(float(s), 6)) for r, s in zip(rows, scores, strict=True))
        return {"rows": len(rows)}
