"""bob's evaluation: the shared one, while he works on bootstrap confidence intervals."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score, roc_curve


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


def plot_roc(y: np.ndarray, scores: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, s):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("Churn model: ROC on the testing data")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(input_paths, output_paths, environ_vars, job_args):
    model_dir = Path(input_paths["model_input"])
    if not (model_dir / "model.pkl").is_file():
        raise FileNotFoundError(f"no model.pkl in {model_dir}: this step needs a trained model")
    with (model_dir / "model.pkl").open("rb") as handle:
        model = pickle.load(handle)
    trained = json.loads((model_dir / "model.json").read_text())
    label = environ_vars["LABEL_FIELD"]
    ids, x, y, _ = read_table(Path(input_paths["processed_data"]), label, trained["features"])
    raw = model.predict_proba(x)[:, 1]
    scores = {"raw": raw}
    calibration = input_paths.get("calibration_input")
    if calibration and (Path(calibration) / "calibrator.pkl").is_file():
        with (Path(calibration) / "calibrator.pkl").open("rb") as handle:
            packed = pickle.load(handle)
        calibrator = packed["calibrator"]
        if packed["method"] == "isotonic":
            scores["calibrated"] = calibrator.predict(raw)
        else:
            scores["calibrated"] = calibrator.predict_proba(raw.reshape(-1, 1))[:, 1]
    final = scores.get("calibrated", raw)
    metrics = {
        "rows": len(y),
        "churn_rate": round(float(y.mean()), 4),
        "auc": round(float(roc_auc_score(y, final)), 4),
        "accuracy": round(float(accuracy_score(y, final >= 0.5)), 4),
        "brier": round(float(brier_score_loss(y, np.clip(final, 0, 1))), 5),
        "log_loss": round(float(log_loss(y, np.clip(final, 1e-6, 1 - 1e-6))), 5),
        "calibrated": "calibrated" in scores,
    }
    metrics_dir = Path(output_paths["metrics_output"])
    metrics_dir.mkdir(parents=True, exist_ok=True)
    (metrics_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    eval_dir = Path(output_paths["eval_output"])
    eval_dir.mkdir(parents=True, exist_ok=True)
    plot_roc(y, scores, eval_dir / "roc.png")
    with (eval_dir / "predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "label", "score"])
        writer.writerows(zip(ids, y.tolist(), np.round(final, 6).tolist(), strict=True))
    return metrics
