"""Score the model on the testing data: metrics JSON, predictions and an ROC plot (PNG)."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score, roc_curve


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
    with (Path(input_paths["model_input"]) / "model.pkl").open("rb") as handle:
        model = pickle.load(handle)
    x, y, ids = read_table(Path(input_paths["processed_data"]))
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
