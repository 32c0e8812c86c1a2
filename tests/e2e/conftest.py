"""A tiny three-step project (Make → Double → Report) whose scripts use only the stdlib."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

STEPS = {
    "Make": {
        "inputs": {},
        "outputs": {"numbers": "/opt/ml/processing/output/numbers"},
        "env": {"COUNT": "5"},
    },
    "Double": {
        "inputs": {"numbers": "/opt/ml/processing/input/numbers"},
        "outputs": {"doubled": "/opt/ml/processing/output/doubled"},
        "env": {"FACTOR": "2"},
    },
    "Report": {
        "inputs": {"doubled": "/opt/ml/processing/input/doubled"},
        "outputs": {"report": "/opt/ml/processing/output/report"},
        "env": {},
    },
}

SCRIPTS = {
    "Make": """
        from pathlib import Path

        def main(input_paths, output_paths, environ_vars, job_args):
            count = int(environ_vars["COUNT"])
            Path(output_paths["numbers"], "numbers.txt").write_text("\\n".join(str(i) for i in range(count)))
        """,
    "Double": """
        from pathlib import Path

        def main(input_paths, output_paths, environ_vars, job_args):
            numbers = Path(input_paths["numbers"], "numbers.txt").read_text().split()
            factor = int(environ_vars["FACTOR"])
            Path(output_paths["doubled"], "doubled.txt").write_text("\\n".join(str(int(n) * factor) for n in numbers))
        """,
    "Report": """
        from pathlib import Path

        def main(input_paths, output_paths, environ_vars, job_args):
            values = [int(v) for v in Path(input_paths["doubled"], "doubled.txt").read_text().split()]
            Path(output_paths["report"], "report.txt").write_text(f"sum={sum(values)}")
            return {"sum": sum(values)}
        """,
}


def _snake(name: str) -> str:
    return name.lower()


def write_tiny_project(root: Path) -> Path:
    def put(rel: str, text: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())

    put(
        "stepkit.toml",
        """
        [project]
        name = "tiny"

        [[workspaces]]
        id = "core"
        path = "steps"
        """,
    )
    registry = "STEP_NAMES = {\n"
    for name in STEPS:
        registry += (
            f'    "{name}": {{"config_class": "{name}Config", "builder_step_name": "{name}StepBuilder",'
            f' "spec_type": "{name}", "sagemaker_step_type": "Processing", "description": "{name} numbers"}},\n'
        )
    put("steps/step_names.py", registry + "}\n")
    previous = None
    for name, info in STEPS.items():
        snake = _snake(name)
        put(f"steps/scripts/{snake}.py", SCRIPTS[name])
        put(
            f"steps/contracts/{snake}_contract.py",
            f"""
            from stepkit.components import ScriptContract

            {name.upper()}_CONTRACT = ScriptContract(
                entry_point="{snake}.py",
                expected_input_paths={info["inputs"]!r},
                expected_output_paths={info["outputs"]!r},
                optional_env_vars={info["env"]!r},
            )
            """,
        )
        deps = ""
        if previous is not None:
            (dep,) = info["inputs"]
            deps = (
                f'DependencySpec(logical_name="{dep}", dependency_type=DependencyType.PROCESSING_OUTPUT,'
                f' compatible_sources=["{previous}"], semantic_keywords=["{dep}"])'
            )
        (out,) = info["outputs"]
        node_type = "SOURCE" if previous is None else "INTERNAL"
        put(
            f"steps/specs/{snake}_spec.py",
            f"""
            from stepkit.components import DependencySpec, DependencyType, NodeType, OutputSpec, StepSpecification

            {name.upper()}_SPEC = StepSpecification(
                step_type="{name}",
                node_type=NodeType.{node_type},
                dependencies=[{deps}],
                outputs=[OutputSpec(logical_name="{out}", output_type=DependencyType.PROCESSING_OUTPUT)],
            )
            """,
        )
        fields = (
            "".join(f"\n    {k.lower()}: int = {v}" for k, v in info["env"].items()) or "\n    pass"
        )
        put(
            f"steps/configs/config_{snake}_step.py",
            f"from stepkit.components import StepConfig\n\n\nclass {name}Config(StepConfig):{fields}\n",
        )
        put(
            f"steps/builders/builder_{snake}_step.py",
            f"from stepkit.components import StepBuilder\n\n\nclass {name}StepBuilder(StepBuilder):\n    pass\n",
        )
        previous = name
    put(
        "dag.yaml",
        """
        name: tiny
        nodes: [Make, Double, Report]
        edges:
          - Make -> Double
          - Double -> Report
        """,
    )
    return root


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    return write_tiny_project(tmp_path / "tiny")


TinyProject = Callable[[], Path]
