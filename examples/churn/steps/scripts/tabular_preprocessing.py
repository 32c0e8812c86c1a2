"""Clean and type the customer table, one-hot encode categoricals, split by job type.

The training job splits its data into train / val / test folders; other job types write
their whole (processed) table into one folder named after the job type.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

CATEGORICAL = {
    "contract": ["month-to-month", "one-year", "two-year"],
    "payment_method": ["card", "bank-transfer", "electronic-check", "mailed-check"],
}


def load_rows(folder: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted(folder.rglob("*.csv")):
        with path.open(newline="") as handle:
            rows.extend(csv.DictReader(handle))
    if not rows:
        raise FileNotFoundError(f"no CSV rows under {folder}")
    return rows


def _number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def featurize(
    rows: list[dict[str, str]], label: str, id_field: str
) -> tuple[list[str], list[list[object]]]:
    """Numeric columns as they are (missing: the median), known categoricals one-hot."""
    categorical = {c: levels for c, levels in CATEGORICAL.items() if c in rows[0]}
    skip = {label, id_field, *categorical}
    numeric = [
        c for c in rows[0] if c not in skip and all(r[c] == "" or _number(r[c]) for r in rows)
    ]
    medians = {}
    for c in numeric:
        present = [float(r[c]) for r in rows if r[c] != ""]
        medians[c] = float(np.median(present)) if present else 0.0
    header = [id_field, *numeric]
    for c, levels in categorical.items():
        header += [f"{c}={level}" for level in levels]
    header.append(label)
    table: list[list[object]] = []
    for i, r in enumerate(rows):
        values: list[object] = [float(r[c]) if r[c] != "" else medians[c] for c in numeric]
        for c, levels in categorical.items():
            values += [1.0 if r.get(c) == level else 0.0 for level in levels]
        table.append([r.get(id_field) or f"row-{i}", *values, int(float(r[label]))])
    return header, table


def write(folder: Path, header: list[str], table: list[list[object]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "data.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(table)


def main(input_paths, output_paths, environ_vars, job_args):
    label = environ_vars["LABEL_FIELD"]
    job_type = getattr(job_args, "job_type", "training")
    rows = load_rows(Path(input_paths["DATA"]))
    if label not in rows[0]:
        raise KeyError(f"label field {label!r} not in columns {sorted(rows[0])}")
    id_field = environ_vars.get("ID_FIELD", "customer_id")
    if id_field not in rows[0]:
        id_field = next(iter(rows[0]))  # the first column names the rows
    header, table = featurize(rows, label, id_field)
    out = Path(output_paths["processed_data"])
    counts = {}
    if job_type == "training":
        train_ratio = float(environ_vars.get("TRAIN_RATIO", 0.7))
        test_val_ratio = float(environ_vars.get("TEST_VAL_RATIO", 0.5))
        order = np.random.default_rng(17).permutation(len(table))
        n_train = int(len(table) * train_ratio)
        n_test = int((len(table) - n_train) * test_val_ratio)
        splits = {
            "train": order[:n_train],
            "test": order[n_train : n_train + n_test],
            "val": order[n_train + n_test :],
        }
        for name, index in splits.items():
            write(out / name, header, [table[i] for i in index])
            counts[name] = len(index)
    else:
        write(out / job_type, header, table)
        counts[job_type] = len(table)
    (out / "features.json").write_text(json.dumps({"features": header[1:-1], "label": label}, indent=2))
    return counts
