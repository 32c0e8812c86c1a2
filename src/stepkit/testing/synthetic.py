"""Folders for a test: the contract's container paths mapped under the test's temp dir,
and inputs made up when no real data is given.

An input is a small seeded CSV when it is tabular (a processing output or training data),
a JSON file when it is hyperparameters or config, and an empty folder otherwise (model
artifacts, or anything we cannot tell). Container paths with a file suffix
(``/opt/ml/input/config/hyperparameters.json``) map to a file of that name in a folder of
the input's logical name; other paths map to the folder itself.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from stepkit.components import DependencySpec

Kind = Literal["csv", "json", "folder"]


def local_path(root: Path, logical: str, container_path: str) -> Path:
    """Where a container path lives in a test: ``root/logical`` (plus the file name)."""
    name = PurePosixPath(container_path).name
    folder = root / logical
    return folder / name if PurePosixPath(name).suffix else folder


def input_kind(logical: str, container_path: str, dependency: DependencySpec | None) -> Kind:
    """What to synthesize for an input: from its spec when there is one, else its names."""
    suffix = PurePosixPath(container_path).suffix
    words = f"{logical} {container_path}".lower()
    if suffix == ".json" or "hyperparam" in words or "config" in words:
        return "json"
    if suffix == ".csv":
        return "csv"
    if dependency is not None:
        kind = dependency.dependency_type.value
        if kind == "hyperparameters":
            return "json"
        if kind in ("processing_output", "training_data") and "model" not in logical.lower():
            return "csv"
        return "folder"
    return "folder" if "model" in words else "csv"


def write_csv(path: Path, *, rows: int, seed: int, environ: Mapping[str, str]) -> None:
    """A small, seeded table: an id, three numbers, a category and a 0/1 label.

    The id and label columns take their names from ``ID_FIELD`` and ``LABEL_FIELD`` when
    the environment has them, so a script that looks those columns up finds them.
    """
    rng = random.Random(seed)
    id_field = environ.get("ID_FIELD", "id")
    label = environ.get("LABEL_FIELD", "label")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([id_field, "feature_1", "feature_2", "feature_3", "category", label])
        for i in range(rows):
            writer.writerow(
                [
                    i + 1,
                    round(rng.gauss(0, 1), 4),
                    round(rng.uniform(0, 100), 2),
                    rng.randint(0, 9),
                    rng.choice("abc"),
                    rng.randint(0, 1),
                ]
            )


def write_json(path: Path, *, seed: int, environ: Mapping[str, str]) -> None:
    """Hyperparameters or config: the label and id fields the environment names, a seed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {
        "label_name": environ.get("LABEL_FIELD", "label"),
        "id_name": environ.get("ID_FIELD", "id"),
        "seed": seed,
    }
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


def synthesize(
    target: Path, kind: Kind, *, rows: int, seed: int, environ: Mapping[str, str]
) -> None:
    """Make one input at ``target`` (a folder, or a file path when the contract names one)."""
    is_file = bool(target.suffix)
    if kind == "csv":
        write_csv(target if is_file else target / "data.csv", rows=rows, seed=seed, environ=environ)
    elif kind == "json":
        name = target if is_file else target / "hyperparameters.json"
        write_json(name, seed=seed, environ=environ)
    else:
        (target.parent if is_file else target).mkdir(parents=True, exist_ok=True)


def copy_input(source: Path, target: Path) -> None:
    """Copy a ``--data`` input into the test: a folder as it is, or the one file it names."""
    if target.suffix:
        target.parent.mkdir(parents=True, exist_ok=True)
        candidate = source / target.name
        if candidate.is_file():
            shutil.copy2(candidate, target)
            return
        shutil.copytree(source, target.parent, dirs_exist_ok=True)
    else:
        shutil.copytree(source, target, dirs_exist_ok=True)
