"""Folders for a test: the contract's container paths mapped under the test's temp dir,
and inputs made up when no real data is given.

An input is a small seeded CSV when it is tabular (a processing output or training data),
a JSON file when it is hyperparameters or config, and an empty folder otherwise (model
artifacts, or anything we cannot tell). Container paths with a file suffix
(``/opt/ml/input/config/hyperparameters.json``) map to a file of that name in a folder of
the input's logical name; other paths map to the folder itself.

A table takes the shape the step that would feed it writes (:func:`input_shape`), as the
framework's steps exchange data: a data loader's shards (``part-00000.csv``, …), a
preprocessing step's per-split files (``train/train_processed_data.csv``, …) and an
evaluation's scores (``prob_class_0``, ``prob_class_1`` columns). An input whose contract
lists ``channels`` is a folder with one sub-folder per channel, each holding the input.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from stepkit.components import DependencySpec

Kind = Literal["csv", "json", "folder"]
#: How a table is laid out: one file, a loader's shards, per-split files, or scores.
Shape = Literal["table", "shards", "splits", "scores"]

#: Words in a compatible source's name (or the input's keywords) that say which step feeds
#: the input, and so which shape its data has; the first that matches wins.
_SHAPES: tuple[tuple[Shape, tuple[str, ...]], ...] = (
    ("scores", ("eval", "inference", "predict", "score")),
    ("splits", ("preprocess",)),
    ("shards", ("dataload", "loading", "cradle")),
)

#: The splits a training job's preprocessing writes.
SPLITS = ("train", "val", "test")


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


def input_shape(dependency: DependencySpec | None) -> Shape:
    """The shape of a table input, from the steps its spec says may feed it (then its
    keywords): what those steps write is what the script was written to read."""
    if dependency is None:
        return "table"
    for words in (
        [name.lower() for name in dependency.compatible_sources],
        [word.lower() for word in dependency.semantic_keywords],
    ):
        for shape, signs in _SHAPES:
            if any(sign in word for word in words for sign in signs):
                return shape
    return "table"


def write_csv(
    path: Path, *, rows: int, seed: int, environ: Mapping[str, str], scores: bool = False
) -> None:
    """A small, seeded table: an id, three numbers, a category and a 0/1 label (and, for
    ``scores``, the ``prob_class_0``/``prob_class_1`` columns an evaluation writes).

    The id and label columns take their names from ``ID_FIELD`` and ``LABEL_FIELD`` when
    the environment has them, so a script that looks those columns up finds them.
    """
    rng = random.Random(seed)
    id_field = environ.get("ID_FIELD", "id")
    label = environ.get("LABEL_FIELD", "label")
    path.parent.mkdir(parents=True, exist_ok=True)
    header = [id_field, "feature_1", "feature_2", "feature_3", "category", label]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header + (["prob_class_0", "prob_class_1"] if scores else []))
        for i in range(rows):
            row: list[object] = [
                i + 1,
                round(rng.gauss(0, 1), 4),
                round(rng.uniform(0, 100), 2),
                rng.randint(0, 9),
                rng.choice("abc"),
                rng.randint(0, 1),
            ]
            if scores:
                p1 = round(rng.random(), 4)
                row += [round(1 - p1, 4), p1]
            writer.writerow(row)


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
    target: Path,
    kind: Kind,
    *,
    rows: int,
    seed: int,
    environ: Mapping[str, str],
    shape: Shape = "table",
    channels: Sequence[str] = (),
    job_type: str | None = None,
) -> None:
    """Make one input at ``target`` (a folder, or a file path when the contract names one):
    one sub-folder per channel when it has channels, each laid out as ``shape`` says."""
    if channels and not target.suffix:
        for index, channel in enumerate(channels):
            synthesize(
                target / channel,
                kind,
                rows=rows,
                seed=seed + index,
                environ=environ,
                shape=shape,
                job_type=job_type,
            )
        return
    is_file = bool(target.suffix)
    if kind == "csv" and not is_file and shape != "table":
        _write_shaped(target, shape, rows=rows, seed=seed, environ=environ, job_type=job_type)
    elif kind == "csv":
        write_csv(target if is_file else target / "data.csv", rows=rows, seed=seed, environ=environ)
    elif kind == "json":
        name = target if is_file else target / "hyperparameters.json"
        write_json(name, seed=seed, environ=environ)
    else:
        (target.parent if is_file else target).mkdir(parents=True, exist_ok=True)


def _write_shaped(
    folder: Path,
    shape: Shape,
    *,
    rows: int,
    seed: int,
    environ: Mapping[str, str],
    job_type: str | None,
) -> None:
    """A table laid out the way the step that feeds it writes it."""
    if shape == "shards":
        half = max(1, rows // 2)
        write_csv(folder / "part-00000.csv", rows=half, seed=seed, environ=environ)
        write_csv(
            folder / "part-00001.csv", rows=max(1, rows - half), seed=seed + 1, environ=environ
        )
    elif shape == "splits":  # a training job's three splits, else its own job type's one
        splits = SPLITS if job_type in (None, "training") else (job_type,)
        for index, split in enumerate(splits):
            path = folder / split / f"{split}_processed_data.csv"
            write_csv(path, rows=rows, seed=seed + index, environ=environ)
    else:
        write_csv(folder / "predictions.csv", rows=rows, seed=seed, environ=environ, scores=True)


def copy_input(source: Path, target: Path) -> None:
    """Copy a given input into the test: a folder as it is (or the one file of it the
    contract names), a file under the contract's file name or into the input's folder."""
    if source.is_file():
        into = target if target.suffix else target / source.name
        into.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, into)
        return
    if target.suffix:
        target.parent.mkdir(parents=True, exist_ok=True)
        candidate = source / target.name
        if candidate.is_file():
            shutil.copy2(candidate, target)
            return
        shutil.copytree(source, target.parent, dirs_exist_ok=True)
    else:
        shutil.copytree(source, target, dirs_exist_ok=True)
