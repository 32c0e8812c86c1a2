"""A generator of interface-first workspaces (``interfaces/<stem>.step.yaml``), written the
way the framework's current releases write them, with the hard cases a reader must get
right: job-type variants, acronym names, packaged scripts, abstract registry rows, a
duplicate, and a classic step beside an interface one."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stepkit.names import pascal_to_snake


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@dataclass
class InterfaceStep:
    """One interface step to write; defaults follow the framework's conventions."""

    name: str
    sagemaker_step_type: str = "Processing"
    stem: str | None = None  # file stem of the interface and config (default: snake_case)
    entry_point: str | None = None  # script file name (default: <stem>.py)
    source_dir: str | None = None  # the script's package folder, relative to the steps folder
    node_type: str = "internal"
    variants: Sequence[str] = ()
    variant_step_types: Mapping[str, str] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(
        default_factory=lambda: {"input_data": "/opt/ml/processing/input/data"}
    )
    outputs: Mapping[str, str] = field(
        default_factory=lambda: {"processed_data": "/opt/ml/processing/output"}
    )
    channels: Mapping[str, Sequence[str]] = field(default_factory=dict)
    compatible_sources: Sequence[str] = ()
    requirements: Mapping[str, str] = field(default_factory=dict)
    script: bool = True
    config: bool = True

    @property
    def file_stem(self) -> str:
        return self.stem or pascal_to_snake(self.name)

    @property
    def script_name(self) -> str:
        return self.entry_point or f"{self.file_stem}.py"


def interface_document(step: InterfaceStep) -> dict[str, Any]:
    """The ``.step.yaml`` content of ``step``."""
    inputs: dict[str, Any] = {}
    for logical, path in step.inputs.items():
        entry: dict[str, Any] = {"path": path, "required": True}
        if logical in step.channels:
            entry["channels"] = list(step.channels[logical])
        inputs[logical] = entry
    contract: dict[str, Any] = {"entry_point": step.script_name}
    if step.source_dir:
        contract["source_dir"] = step.source_dir
    contract.update(
        {
            "inputs": inputs,
            "outputs": {k: {"path": v} for k, v in step.outputs.items()},
            "arguments": {"job_type": "the job type: training, calibration, ..."},
            "job_arguments": [{"flag": "--job_type", "source": "job_type"}],
            "env_vars": {"required": ["LABEL_FIELD"], "optional": {"TRAIN_RATIO": "0.7"}},
            "framework_requirements": dict(step.requirements),
            "description": f"Runs {step.name}.",
        }
    )
    spec = {
        "dependencies": {
            logical: {
                "type": "processing_output",
                "required": True,
                "compatible_sources": list(step.compatible_sources),
                "semantic_keywords": ["data", "input"],
                "data_type": "S3Uri",
            }
            for logical in step.inputs
        },
        "outputs": {
            logical: {
                "type": "processing_output",
                "property_path": f"properties.ProcessingOutputConfig.Outputs['{logical}']",
                "semantic_keywords": ["processed", "data"],
                "data_type": "S3Uri",
            }
            for logical in step.outputs
        },
    }
    document: dict[str, Any] = {
        "step_type": step.name,
        "node_type": step.node_type,
        "registry": {
            "sagemaker_step_type": step.sagemaker_step_type,
            "description": f"{step.name} step",
        },
        "contract": contract,
        "spec": spec,
    }
    if step.variants:
        document["variants"] = {
            job_type: {
                "step_type": step.variant_step_types.get(
                    job_type, f"{step.name}_{job_type.capitalize()}"
                ),
                "spec": {
                    "dependencies": {
                        logical: {"semantic_keywords": [job_type, "data"]}
                        for logical in step.inputs
                    }
                },
            }
            for job_type in step.variants
        }
    document["compute"] = {"instance_type": "ml.m5.xlarge", "volume_size": 30}
    document["patterns"] = {"output_path": "{pipeline_s3_loc}/{step}/{output}"}
    return document


def write_interface_step(steps: Path, step: InterfaceStep) -> dict[str, Path]:
    """Write the interface, script and config of ``step``; returns them by component."""
    written: dict[str, Path] = {}
    text = yaml.safe_dump(interface_document(step), sort_keys=False)
    written["interface"] = _write(steps / "interfaces" / f"{step.file_stem}.step.yaml", text)
    if step.script:
        folder = steps / step.source_dir if step.source_dir else steps / "scripts"
        written["script"] = _write(
            folder / step.script_name,
            '''
            """A script as the framework writes them: main plus an argparse __main__."""

            import argparse
            import os


            def main(input_paths, output_paths, environ_vars, job_args):
                os.makedirs(output_paths["processed_data"], exist_ok=True)
                return {"job_type": job_args.job_type}


            if __name__ == "__main__":
                parser = argparse.ArgumentParser()
                parser.add_argument("--job_type", required=True)
                args = parser.parse_args()
                main({}, {}, dict(os.environ), args)
            ''',
        )
    if step.config:
        written["config"] = _write(
            steps / "configs" / f"config_{step.file_stem}_step.py",
            f'''
            """Config of {step.name}."""

            from stepkit.components import StepConfig


            class {step.name}Config(StepConfig):
                label_field: str = "label"
            ''',
        )
    return written


#: The hard cases, by what they test.
HARD_CASES: tuple[InterfaceStep, ...] = (
    InterfaceStep(
        name="TabularPreprocessing",
        variants=("training", "calibration"),
        channels={"input_data": ("train", "val", "test")},
        compatible_sources=("DummyDataLoading",),
    ),
    InterfaceStep(name="DummyDataLoading", node_type="source", inputs={}, variants=("training",)),
    # acronyms cased differently in file stems and step names
    InterfaceStep(
        name="LightGBMMTTraining", stem="lightgbmmt_training", sagemaker_step_type="Training"
    ),
    InterfaceStep(
        name="GraphStormGNNTraining",
        stem="graphstorm_gnn_training",
        sagemaker_step_type="Training",
    ),
    InterfaceStep(name="XgboostMtTraining", sagemaker_step_type="Training"),
    # an entry point whose name follows no pattern: the interface's entry_point wins
    InterfaceStep(name="RiskTableMapping", entry_point="risk_mapping_main.py"),
    # a packaged script with relative imports
    InterfaceStep(
        name="PackagedScoring",
        source_dir="scripts/scoring",
        entry_point="packaged_scoring.py",
    ),
    # a step type that builds no script (no builder file expected either)
    InterfaceStep(
        name="ModelRegistration",
        sagemaker_step_type="RegisterModel",
        node_type="sink",
        outputs={},
        script=False,
    ),
)


def write_hard_cases(steps: Path) -> dict[str, dict[str, Path]]:
    """An interface workspace holding :data:`HARD_CASES`, the package's helper modules and
    a YAML registry table with the abstract rows (``Base``, ``Processing``) that have no files."""
    written = {step.name: write_interface_step(steps, step) for step in HARD_CASES}
    package = steps / "scripts" / "scoring"
    _write(package / "__init__.py", "")
    _write(package / "helpers.py", "def score(x):\n    return x\n")
    _write(
        package / "packaged_scoring.py",
        """
        from .helpers import score


        def main(input_paths, output_paths, environ_vars, job_args):
            return {"score": score(1)}
        """,
    )
    return written


def write_yaml_registry(path: Path, steps: Sequence[InterfaceStep]) -> Path:
    """A YAML table registry (the transition release) for ``steps``, plus abstract rows."""
    table: dict[str, Any] = {
        step.name: {
            "config_class": f"{step.name}Config",
            "builder_step_name": f"{step.name}StepBuilder",
            "spec_type": step.name,
            "sagemaker_step_type": step.sagemaker_step_type,
            "description": f"{step.name} step",
        }
        for step in steps
    }
    for abstract in ("Base", "Processing"):
        table[abstract] = {
            "config_class": f"{abstract}PipelineConfig",
            "builder_step_name": f"{abstract}StepBuilder",
            "spec_type": abstract,
            "sagemaker_step_type": "Base",
            "description": f"abstract {abstract.lower()} step",
        }
    return _write(path, yaml.safe_dump({"step_names": table}, sort_keys=False))


def write_duplicate(steps: Path) -> Path:
    """A second interface declaring a step another interface of the workspace declares."""
    step = InterfaceStep(name="TabularPreprocessing", stem="tabular_preprocessing_v2")
    return write_interface_step(steps, step)["interface"]


def write_interface_project(
    root: Path,
    workspaces: Mapping[str, Sequence[InterfaceStep]],
    *,
    registry: Mapping[str, str] | None = None,
) -> Path:
    """A project of interface workspaces in precedence order (the last is the core);
    ``registry``: workspace → its ``registry =`` line (default: derived)."""
    lines = ['[project]\nname = "interfaces"\n']
    for ws, steps in workspaces.items():
        rel = "steps" if ws == list(workspaces)[-1] else f"dev/{ws}/steps"
        (root / rel / "interfaces").mkdir(parents=True, exist_ok=True)
        for step in steps:
            write_interface_step(root / rel, step)
        line = f'registry = "{registry[ws]}"\n' if registry and ws in registry else ""
        lines.append(f'[[workspaces]]\nid = "{ws}"\npath = "{rel}"\n{line}')
    (root / "stepkit.toml").write_text("\n".join(lines), encoding="utf-8")
    return root
