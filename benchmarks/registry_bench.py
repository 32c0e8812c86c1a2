"""Registry figures: loading 10,000 steps across 3 workspaces, live-map lookup, import time.

Prints one JSON object. Each figure is a median over repeats; the bound it is compared
with is measured in the same run where there is one (``ast.parse`` of the same files).
"""

from __future__ import annotations

import ast
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stepkit.project import Project
from stepkit.registry import Registry, step_names, workspace_context

N_STEPS = 10_000
REPEATS = 7


def _entry(name: str, kind: str = "Processing") -> str:
    return (
        f'    "{name}": {{"config_class": "{name}Config", '
        f'"builder_step_name": "{name}StepBuilder", '
        f'"spec_type": "{name}", "sagemaker_step_type": "{kind}", "description": "Step {name}"}},\n'
    )


def write_project(root: Path) -> Path:
    """3 workspaces: the core defines 9,000 steps; two developers add 500 each (+ overrides)."""
    core_n = N_STEPS - 1_000
    (root / "steps").mkdir(parents=True)
    (root / "steps/step_names.py").write_text(
        "STEP_NAMES = {\n" + "".join(_entry(f"Core{i}Step") for i in range(core_n)) + "}\n"
    )
    for ws in ("alice", "bob"):
        folder = root / "dev" / ws / "steps"
        folder.mkdir(parents=True)
        local = "".join(_entry(f"{ws.title()}{i}Step") for i in range(500))
        overrides = "".join(
            f'    "Core{i}Step": {{"description": "{ws} version"}},\n' for i in range(0, 100)
        )
        (folder / "step_names.py").write_text(
            f"LOCAL_STEPS = {{\n{local}}}\nSTEP_OVERRIDES = {{\n{overrides}}}\n"
        )
    (root / "stepkit.toml").write_text(
        '[project]\nname = "bench"\n'
        '[[workspaces]]\nid = "alice"\npath = "dev/alice/steps"\n'
        '[[workspaces]]\nid = "bob"\npath = "dev/bob/steps"\n'
        '[[workspaces]]\nid = "shared"\npath = "steps"\n'
    )
    return root


def median_ms(fn: object, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Project.load(write_project(Path(tmp)))
        files = [ws.registry_file for ws in project.workspaces if ws.registry_file]
        texts = [f.read_text() for f in files if f is not None]

        parse_ms = median_ms(lambda: [ast.parse(t) for t in texts])
        cold_ms = median_ms(lambda: Registry.load(project, use_cache=False))
        Registry.load(project)  # fills the cache
        warm_ms = median_ms(lambda: Registry.load(project))
        registry = Registry.load(project)
        assert len(registry.view("alice")) == N_STEPS - 500

        step_names.set_registry(registry)
        mapping = step_names.STEP_NAMES
        keys = [f"Core{i}Step" for i in range(0, 9_000, 7)] + [
            f"Alice{i}Step" for i in range(0, 500, 3)
        ]
        lookups: list[float] = []
        with workspace_context("alice"):
            for k in keys:  # warm the view
                mapping[k]
            for _ in range(REPEATS):
                start = time.perf_counter_ns()
                for k in keys:
                    mapping[k]
                lookups.append((time.perf_counter_ns() - start) / len(keys))
            plain = {k: 1 for k in keys}
            start = time.perf_counter_ns()
            for k in keys:
                plain[k]
            dict_ns = (time.perf_counter_ns() - start) / len(keys)

    import_runs: list[float] = []
    bare_runs: list[float] = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import stepkit"], check=True)
        import_runs.append(time.perf_counter() - began)
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare_runs.append(time.perf_counter() - began)
    import_ms = (statistics.median(import_runs) - statistics.median(bare_runs)) * 1000

    print(
        json.dumps(
            {
                "steps": N_STEPS,
                "workspaces": 3,
                "load_cold_ms": round(cold_ms, 1),
                "load_warm_ms": round(warm_ms, 1),
                "load_target_ms": 150,
                "ast_parse_same_files_ms": round(parse_ms, 1),
                "cold_over_ast_parse": round(cold_ms / parse_ms, 2),
                "live_lookup_ns_median": round(statistics.median(lookups), 1),
                "live_lookup_target_ns": 1000,
                "plain_dict_lookup_ns": round(dict_ns, 1),
                "import_stepkit_ms_over_bare_python": round(import_ms, 1),
                "import_target_ms": 100,
                "repeats": REPEATS,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
