"""Keep the features most correlated with churn (alice's experiment)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np


def main(input_paths, output_paths, environ_vars, job_args):
    max_features = int(environ_vars.get("MAX_FEATURES", 8))
    out = Path(output_paths["selected_data"])
    for path in sorted(Path(input_paths["input_data"]).rglob("data.csv")):
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            rows = list(reader)
        values = np.array([[float(v) for v in r[1:]] for r in rows])
        x, y = values[:, :-1], values[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.nan_to_num([abs(np.corrcoef(x[:, j], y)[0, 1]) for j in range(x.shape[1])])
        keep = sorted(np.argsort(corr)[::-1][:max_features].tolist())
        target = out / path.parent.relative_to(Path(input_paths["input_data"]))
        target.mkdir(parents=True, exist_ok=True)
        with (target / "data.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([header[0], *(header[1 + j] for j in keep), header[-1]])
            for r in rows:
                writer.writerow([r[0], *(r[1 + j] for j in keep), r[-1]])
        (target / "selection.json").write_text(
            json.dumps({header[1 + j]: round(float(corr[j]), 4) for j in keep}, indent=2)
        )
    return {"kept": max_features}
