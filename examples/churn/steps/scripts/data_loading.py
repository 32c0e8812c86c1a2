"""Load the raw customer table for one job type.

This example has no data warehouse to read from, so "loading" draws a realistic, seeded
customer table: tenure, charges, contract, payment method, support calls… and whether the
customer churned, from a known logistic model with noise (and a few missing values).
"""

from __future__ import annotations

import csv
import json
import zlib
from pathlib import Path

import numpy as np

CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENTS = ["card", "bank-transfer", "electronic-check", "mailed-check"]


def make_customers(n_rows: int, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 73, n_rows)
    contract = rng.choice(3, n_rows, p=[0.55, 0.25, 0.20])
    payment = rng.choice(4, n_rows, p=[0.3, 0.25, 0.3, 0.15])
    internet = rng.random(n_rows) < 0.78
    senior = rng.random(n_rows) < 0.16
    monthly = np.round(20 + 45 * internet + rng.gamma(2.0, 9.0, n_rows), 2)
    calls = rng.poisson(1.2 + 1.5 * (contract == 0), n_rows)
    logit = (
        0.9
        - 0.045 * tenure
        + 0.018 * (monthly - 60)
        - 1.1 * (contract == 1)
        - 2.0 * (contract == 2)
        + 0.55 * (payment == 2)
        + 0.32 * calls
        + 0.35 * senior
        + rng.normal(0, 0.6, n_rows)
    )
    churned = rng.random(n_rows) < 1 / (1 + np.exp(-logit))
    total = np.round(monthly * np.maximum(tenure, 1) * rng.normal(1.0, 0.03, n_rows), 2)
    missing = rng.random(n_rows) < 0.02
    rows = []
    for i in range(n_rows):
        rows.append(
            {
                "customer_id": f"C{seed:04d}{i:06d}",
                "tenure_months": int(tenure[i]),
                "monthly_charges": float(monthly[i]),
                "total_charges": "" if missing[i] else float(total[i]),
                "contract": CONTRACTS[contract[i]],
                "payment_method": PAYMENTS[payment[i]],
                "support_calls": int(calls[i]),
                "has_internet": int(internet[i]),
                "senior_citizen": int(senior[i]),
                "churned": int(churned[i]),
            }
        )
    return rows


def main(input_paths, output_paths, environ_vars, job_args):
    """Write DATA/customers.csv and METADATA/schema.json for this job type."""
    job_type = getattr(job_args, "job_type", "training")
    label = environ_vars["LABEL_FIELD"]
    n_rows = int(environ_vars.get("N_ROWS", 5000))
    # each job type draws its own customers, reproducibly
    seed = int(environ_vars.get("SEED", 7)) * 1000 + zlib.crc32(job_type.encode()) % 1000
    rows = make_customers(n_rows, seed)
    if label != "churned":
        for row in rows:
            row[label] = row.pop("churned")
    data_dir = Path(output_paths["DATA"])
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "customers.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    meta_dir = Path(output_paths["METADATA"])
    meta_dir.mkdir(parents=True, exist_ok=True)
    schema = {
        "job_type": job_type,
        "rows": len(rows),
        "label": label,
        "columns": list(rows[0]),
        "categorical": ["contract", "payment_method"],
        "id": "customer_id",
        "churn_rate": round(sum(int(r[label]) for r in rows) / len(rows), 4),
    }
    (meta_dir / "schema.json").write_text(json.dumps(schema, indent=2))
    return {"rows": len(rows)}
