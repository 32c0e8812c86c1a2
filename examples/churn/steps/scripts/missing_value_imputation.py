"""Fill missing numeric values with the column median (or mean) of the data at hand."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path


def _csv_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.csv"))


def main(input_paths, output_paths, environ_vars, job_args):
    strategy = environ_vars.get("STRATEGY", "median")
    if strategy not in ("median", "mean"):
        raise ValueError(f"STRATEGY must be median or mean, not {strategy!r}")
    files = _csv_files(Path(input_paths["DATA"]))
    if not files:
        raise FileNotFoundError(f"no CSV file under {input_paths['DATA']}")
    out = Path(output_paths["DATA"])
    out.mkdir(parents=True, exist_ok=True)
    filled: dict[str, float] = {}
    for path in files:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        for column in rows[0]:
            values = [r[column] for r in rows]
            if "" not in values:
                continue
            try:
                present = [float(v) for v in values if v != ""]
            except ValueError:
                continue  # a text column: leave it
            fill = statistics.median(present) if strategy == "median" else statistics.fmean(present)
            filled[column] = round(fill, 4)
            for r in rows:
                if r[column] == "":
                    r[column] = str(fill)
        with (out / path.name).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    (out / "imputation.json").write_text(json.dumps({"strategy": strategy, "filled": filled}, indent=2))
    return {"filled_columns": sorted(filled)}
