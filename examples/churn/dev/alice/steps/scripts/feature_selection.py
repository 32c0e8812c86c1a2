"""Keep the features most correlated with churn (alice's experiment)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np


def _numeric(values) -> bool:
    try:
        for v in values:
            float(v)
    except ValueError:
        return False
    return True


def main(input_paths, output_paths, environ_vars, job_args):
    max_features = int(environ_vars.get("MAX_FEATURES", 8))
    out = Path(output_paths["selected_data"])
    for path in sorted(Path(input_paths["input_data"]).rglob("*.csv")):
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            rows = list(reader)
        label = header.index(environ_vars["LABEL_FIELD"])
        numeric = [j for j in range(1, len(header)) if j != label and _numeric(r[j] for r in rows)]
        x = np.array([[float(r[j]) for j in numeric] for r in rows])
        y = np.array([float(r[label]) for r in rows])
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.nan_to_num([abs(np.corrcoef(x[:, j], y)[0, 1]) for j in range(x.shape[1])])
        keep = sorted(numeric[j] for j in np.argsort(corr)[::-1][:max_features].tolist())
        target = out / path.parent.relative_to(Path(input_paths["input_data"]))
        target.mkdir(parents=True, exist_ok=True)
        with (target / "data.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([header[0], *(header[j] for j in keep), header[label]])
            for r in rows:
                writer.writerow([r[0], *(r[j] for j in keep), r[label]])
        (target / "selection.json").write_text(
            json.dumps({header[j]: round(float(corr[numeric.index(j)]), 4) for j in keep}, indent=2)
        )
    return {"kept": max_features}
