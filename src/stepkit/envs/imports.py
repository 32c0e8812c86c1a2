"""The check of a built environment: every declared package imports in it.

A resolution can install and still not work — an old pinned binary package beside a new
unpinned one fails at import ("numpy.dtype size changed"). The check runs inside the
environment's own interpreter (any Python from 3.8 on, so the program is stdlib-only) and
maps each distribution to what it installs with ``importlib.metadata``: the package the
distribution is named for when it ships one (``backports.zoneinfo``), else the names in
its ``top_level.txt``, else the top-level modules listed in its ``RECORD``, else a short
table of well-known differences (``scikit-learn`` → ``sklearn``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: Distributions whose import name is not their own and whose metadata may not say so.
KNOWN_IMPORT_NAMES: Final = {
    "scikit-learn": "sklearn",
    "scikit-image": "skimage",
    "pyyaml": "yaml",
    "pillow": "PIL",
    "beautifulsoup4": "bs4",
    "python-dateutil": "dateutil",
    "opencv-python": "cv2",
    "opencv-python-headless": "cv2",
    "protobuf": "google.protobuf",
    "attrs": "attr",
    "pytorch": "torch",
    "msgpack-python": "msgpack",
}

# Runs in the environment's interpreter; stdlib only, Python 3.8 syntax.
_CHECK_PROGRAM: Final = r"""
import importlib, importlib.metadata as md, json, re, sys
SKIP = {"test", "tests", "docs", "doc", "examples", "benchmarks", "testing"}
def normal(name):
    return re.sub(r"[-_.]+", "-", name).lower()
# Looked up by normalized name: Python 3.8's importlib.metadata does not normalize.
DISTS = {}
for d in md.distributions():
    DISTS.setdefault(normal(d.metadata["Name"] or ""), d)
def modules_of(dist_name, known):
    dist = DISTS.get(normal(dist_name))
    if dist is None:
        raise md.PackageNotFoundError(dist_name)
    name = (dist.metadata["Name"] or dist_name).replace("-", "_")
    tops = []
    text = dist.read_text("top_level.txt")
    if text:
        tops = [t.strip().replace("/", ".") for t in text.splitlines() if t.strip()]
    elif dist.files:
        for f in dist.files:
            parts = f.parts
            if not parts or parts[0].endswith((".dist-info", ".data", ".egg-info")):
                continue
            if parts[0] in ("..", "__pycache__") or parts[0].endswith(".pth"):
                continue
            if len(parts) == 1:  # a module file at the top: six.py
                if not parts[0].endswith(".py"):
                    continue
                top = parts[0][:-3]
            else:  # a package folder (not scikit_learn.libs, which only holds libraries)
                top = parts[0]
            if top.isidentifier() and top not in tops:
                tops.append(top)
    lowered = {t.lower(): t for t in tops}
    if "." in name and name.split(".")[0] in tops:
        return [name]
    if name.lower() in lowered:
        return [lowered[name.lower()]]
    if not tops and known:
        return [known]
    public = [t for t in tops if not t.startswith("_") and t.lower() not in SKIP]
    return public or tops or ([known] if known else [name])
failures = []
for dist_name, known in json.loads(sys.argv[1]):
    try:
        modules = modules_of(dist_name, known)
    except md.PackageNotFoundError:
        failures.append([dist_name, "", "not installed"])
        continue
    for module in modules:
        try:
            importlib.import_module(module)
        except BaseException as exc:
            message = (str(exc).strip().splitlines() or [""])[-1]
            failures.append([dist_name, module, type(exc).__name__ + ": " + message])
            break
print(json.dumps(failures))
"""


@dataclass(frozen=True, slots=True)
class ImportFailure:
    """A declared distribution whose package does not import in the environment."""

    distribution: str
    module: str
    error: str

    def describe(self) -> str:
        what = f"{self.distribution} ({self.module})" if self.module else self.distribution
        return f"{what} does not import: {self.error}"


def check_imports(
    python: Path, distributions: Iterable[str], *, timeout: float = 300.0
) -> list[ImportFailure]:
    """Import every declared distribution's package with ``python``; the ones that fail."""
    items = [[name, KNOWN_IMPORT_NAMES.get(name, "")] for name in distributions]
    if not items:
        return []
    completed = subprocess.run(
        [str(python), "-I", "-c", _CHECK_PROGRAM, json.dumps(items)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        rows = json.loads(completed.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        # The interpreter itself died (a crashing extension module): blame them all.
        tail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return [ImportFailure(name, "", tail) for name, _ in items]
    return [ImportFailure(str(d), str(m), str(e)) for d, m, e in rows]
