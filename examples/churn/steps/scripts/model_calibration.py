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


def _number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def read_table(folder: Path, label: str, features: list[str] | None = None):
    """(ids, X, y, feature names) from the CSV files under ``folder``.

    Features are the given names, else every numeric column but the label and the id.
    """
    rows: list[dict[str, str]] = []
    for path in sorted(folder.rglob("*.csv")):
        with path.open(newline="") as handle:
            rows.extend(csv.DictReader(handle))
    if not rows:
        raise FileNotFoundError(f"no CSV rows under {folder}")
    if label not in rows[0]:
        raise KeyError(f"label column {label!r} not in {sorted(rows[0])}")
    id_field = next(iter(rows[0]))
    if features is None:
        features = [
            c for c in rows[0] if c not in (label, id_field) and all(_number(r[c]) for r in rows)
        ]
    x = np.array([[float(r[c]) for c in features] for r in rows])
    y = np.array([int(float(r[label])) for r in rows])
    return [r[id_field] for r in rows], x, y, features


def main(input_paths, output_paths, environ_vars, job_args):
    method = environ_vars.get("CALIBRATION_METHOD", "isotonic")
    model_dir = Path(input_paths["model_input"])
    if not (model_dir / "model.pkl").is_file():
        raise FileNotFoundError(f"no model.pkl in {model_dir}: this step needs a trained model")
    with (model_dir / "model.pkl").open("rb") as handle:
        model = pickle.load(handle)
    trained = json.loads((model_dir / "model.json").read_text())
    label = environ_vars["LABEL_FIELD"]
    ids, x, y, _ = read_table(Path(input_paths["evaluation_data"]), label, trained["features"])
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
