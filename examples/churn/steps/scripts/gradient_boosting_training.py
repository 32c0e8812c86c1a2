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
    data_dir = Path(input_paths["input_path"])
    params = dict(DEFAULTS)
    hp_file = input_paths.get("hyperparameters_s3_uri")
    if hp_file and Path(hp_file).is_file():
        given = json.loads(Path(hp_file).read_text())
        params.update({k: v for k, v in given.items() if k in DEFAULTS})  # others: not ours
    label = environ_vars.get("LABEL_FIELD", "churned")
    if (data_dir / "train").is_dir():
        _, x_train, y_train, features = read_table(data_dir / "train", label)
        val_ids, x_val, y_val, _ = read_table(data_dir / "val", label, features)
    else:  # one table: hold a fifth of it out for validation
        ids, x, y, features = read_table(data_dir, label)
        cut = max(1, int(len(y) * 0.8))
        x_train, y_train, x_val, y_val, val_ids = x[:cut], y[:cut], x[cut:], y[cut:], ids[cut:]
    model = HistGradientBoostingClassifier(random_state=0, **params)
    model.fit(x_train, y_train)
    val_scores = model.predict_proba(x_val)[:, 1] if len(y_val) else np.array([])
    val_auc = float(roc_auc_score(y_val, val_scores)) if len(set(y_val.tolist())) == 2 else None
    model_dir = Path(output_paths["model_output"])
    model_dir.mkdir(parents=True, exist_ok=True)
    with (model_dir / "model.pkl").open("wb") as handle:
        pickle.dump(model, handle)
    (model_dir / "model.json").write_text(
        json.dumps({"features": features, "params": params, "label": label, "val_auc": val_auc}, indent=2)
    )
    eval_dir = Path(output_paths["evaluation_output"])
    eval_dir.mkdir(parents=True, exist_ok=True)
    with (eval_dir / "val_predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "label", "score"])
        writer.writerows(zip(val_ids, y_val.tolist(), np.round(val_scores, 6).tolist(), strict=True))
    return {"val_auc": round(val_auc, 4) if val_auc is not None else None}
