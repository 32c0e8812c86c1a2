"""Fit a probability calibrator (isotonic or Platt) on the calibration job's data."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss


def read_table(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    files = sorted(folder.rglob("data.csv"))
    if not files:
        raise FileNotFoundError(f"no data.csv under {folder}")
    with files[0].open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = list(reader)
    data = np.array([[float(v) for v in r[1:]] for r in rows])
    return data[:, :-1], data[:, -1].astype(int), [r[0] for r in rows]


def main(input_paths, output_paths, environ_vars, job_args):
    method = environ_vars.get("CALIBRATION_METHOD", "isotonic")
    with (Path(input_paths["model_input"]) / "model.pkl").open("rb") as handle:
        model = pickle.load(handle)
    x, y, ids = read_table(Path(input_paths["evaluation_data"]))
    raw = model.predict_proba(x)[:, 1]
    if method == "isotonic":
        calibrator = IsotonicRegression(out_of_bounds="clip").fit(raw, y)
        calibrated = calibrator.predict(raw)
    elif method == "platt":
        calibrator = LogisticRegression().fit(raw.reshape(-1, 1), y)
        calibrated = calibrator.predict_proba(raw.reshape(-1, 1))[:, 1]
    else:
        raise ValueError(f"CALIBRATION_METHOD must be isotonic or platt, not {method!r}")
    out = Path(output_paths["calibration_output"])
    out.mkdir(parents=True, exist_ok=True)
    with (out / "calibrator.pkl").open("wb") as handle:
        pickle.dump({"method": method, "calibrator": calibrator}, handle)
    summary = {
        "method": method,
        "rows": len(y),
        "brier_raw": round(float(brier_score_loss(y, raw)), 5),
        "brier_calibrated": round(float(brier_score_loss(y, calibrated)), 5),
    }
    (out / "calibration.json").write_text(json.dumps(summary, indent=2))
    data_out = Path(output_paths["calibrated_data"])
    data_out.mkdir(parents=True, exist_ok=True)
    with (data_out / "predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "label", "raw_score", "calibrated_score"])
        writer.writerows(zip(ids, y.tolist(), np.round(raw, 6).tolist(), np.round(calibrated, 6).tolist(), strict=True))
    return summary
