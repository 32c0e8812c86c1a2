"""Train a gradient-boosted tree classifier (scikit-learn) on the processed training data."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

DEFAULTS = {"max_iter": 200, "learning_rate": 0.08, "max_leaf_nodes": 15, "l2_regularization": 1.0}


def read_split(folder: Path) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    with (folder / "data.csv").open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    ids = [r[0] for r in rows]
    data = np.array([[float(v) for v in r[1:]] for r in rows])
    return header[1:-1], data[:, :-1], data[:, -1].astype(int), ids


def main(input_paths, output_paths, environ_vars, job_args):
    data_dir = Path(input_paths["input_path"])
    params = dict(DEFAULTS)
    hp_file = input_paths.get("hyperparameters_s3_uri")
    if hp_file and Path(hp_file).is_file():
        params.update(json.loads(Path(hp_file).read_text()))
    features, x_train, y_train, _ = read_split(data_dir / "train")
    _, x_val, y_val, val_ids = read_split(data_dir / "val")
    model = HistGradientBoostingClassifier(random_state=0, **params)
    model.fit(x_train, y_train)
    val_scores = model.predict_proba(x_val)[:, 1]
    model_dir = Path(output_paths["model_output"])
    model_dir.mkdir(parents=True, exist_ok=True)
    with (model_dir / "model.pkl").open("wb") as handle:
        pickle.dump(model, handle)
    (model_dir / "model.json").write_text(
        json.dumps({"features": features, "params": params, "val_auc": float(roc_auc_score(y_val, val_scores))}, indent=2)
    )
    eval_dir = Path(output_paths["evaluation_output"])
    eval_dir.mkdir(parents=True, exist_ok=True)
    with (eval_dir / "val_predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "label", "score"])
        writer.writerows(zip(val_ids, y_val.tolist(), np.round(val_scores, 6).tolist(), strict=True))
    return {"val_auc": round(float(roc_auc_score(y_val, val_scores)), 4)}
