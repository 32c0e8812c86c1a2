"""A generator of synthetic workspaces: step files written the way real repositories write
them (contracts, specs with registry helpers, configs, builders, scripts)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepkit.catalog import StepCatalog
from stepkit.names import pascal_to_snake
from stepkit.project import Project

FOLDERS = ("scripts", "contracts", "specs", "configs", "builders")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@dataclass
class Step:
    """One step to write; every file is optional, names default to the conventions."""

    name: str
    step_type: str = "Processing"
    components: Sequence[str] = ("script", "contract", "spec", "config", "builder")
    job_types: Sequence[str] = ()  # one spec file per job type
    generic_spec: bool = True  # also a spec without job type
    script_stem: str | None = None  # the contract's entry point (default: the step's stem)
    stem: str | None = None  # file-name stem (default: snake_case of the name)
    literal_step_type: bool = False  # step_type="X_Training" instead of the helper
    register: bool = True
    registry_job_types: Sequence[str] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def file_stem(self) -> str:
        return self.stem or pascal_to_snake(self.name)

    @property
    def contract_var(self) -> str:
        return f"{self.file_stem.upper()}_CONTRACT"


def write_contract(steps: Path, step: Step) -> Path:
    entry = f"{step.script_stem or step.file_stem}.py"
    return _write(
        steps / "contracts" / f"{step.file_stem}_contract.py",
        f'''
        """Contract of {step.name}."""

        from stepkit.components import ScriptContract

        {step.contract_var} = ScriptContract(
            entry_point="{entry}",
            expected_input_paths={{"data": "/opt/ml/processing/input/data"}},
            expected_output_paths={{"out": "/opt/ml/processing/output"}},
            required_env_vars=["LABEL_FIELD"],
            optional_env_vars={{"RATIO": "0.7"}},
            expected_arguments={{"job_type": "training"}},
            framework_requirements={{"pandas": ">=2"}},
            description="{step.name} contract",
        )
        ''',
    )


def write_spec(steps: Path, step: Step, job_type: str | None) -> Path:
    suffix = f"_{job_type}" if job_type else ""
    if step.literal_step_type:
        declared = f'"{step.name}{"_" + job_type.capitalize() if job_type else ""}"'
        helper_import = ""
    elif job_type:
        declared = f'get_spec_step_type_with_job_type("{step.name}", "{job_type}")'
        helper_import = "from stepkit.registry.step_names import get_spec_step_type_with_job_type"
    else:
        declared = f'get_spec_step_type("{step.name}")'
        helper_import = "from stepkit.registry.step_names import get_spec_step_type"
    has_contract = "contract" in step.components
    contract_helper = (
        f"""

        def _get_contract():
            from ..contracts.{step.file_stem}_contract import {step.contract_var}

            return {step.contract_var}

        """
        if has_contract
        else "\n"
    )
    contract_kw = "script_contract=_get_contract()," if has_contract else ""
    var = f"{step.file_stem.upper()}{suffix.upper()}_SPEC"
    return _write(
        steps / "specs" / f"{step.file_stem}{suffix}_spec.py",
        f'''
        """Spec of {step.name}{" (" + job_type + ")" if job_type else ""}."""

        from stepkit.components import (
            DependencySpec,
            DependencyType,
            NodeType,
            OutputSpec,
            StepSpecification,
        )
        {helper_import}
        {contract_helper}
        {var} = StepSpecification(
            step_type={declared},
            node_type=NodeType.INTERNAL,
            {contract_kw}
            dependencies=[
                DependencySpec(
                    logical_name="data",
                    dependency_type=DependencyType.PROCESSING_OUTPUT,
                    required=True,
                    compatible_sources=["DataLoading"],
                    semantic_keywords=["data", "raw"],
                    data_type="S3Uri",
                    description="input data",
                ),
            ],
            outputs=[
                OutputSpec(
                    logical_name="out",
                    aliases=["output"],
                    output_type=DependencyType.PROCESSING_OUTPUT,
                    data_type="S3Uri",
                    description="the output",
                ),
            ],
        )
        ''',
    )


def write_config(steps: Path, step: Step) -> Path:
    field_name = (
        "training_entry_point" if step.step_type == "Training" else "processing_entry_point"
    )
    entry = f"{step.script_stem or step.file_stem}.py"
    return _write(
        steps / "configs" / f"config_{step.file_stem}_step.py",
        f'''
        """Config of {step.name}."""

        from stepkit.components import StepConfig


        class {step.name}Config(StepConfig):
            """Parameters of {step.name}."""

            {field_name}: str = "{entry}"
            label_field: str = "y"
            ratio: float = 0.7
        ''',
    )


def write_builder(steps: Path, step: Step) -> Path:
    return _write(
        steps / "builders" / f"builder_{step.file_stem}_step.py",
        f'''
        """Builder of {step.name}."""

        from stepkit.components import StepBuilder


        class {step.name}StepBuilder(StepBuilder):
            """Builds {step.name}."""
        ''',
    )


def write_script(steps: Path, step: Step) -> Path:
    return _write(
        steps / "scripts" / f"{step.script_stem or step.file_stem}.py",
        f'''
        """Script of {step.name}."""


        def main(input_paths, output_paths, environ_vars, job_args):
            return {{}}


        if __name__ == "__main__":
            main({{}}, {{}}, {{}}, None)
        ''',
    )


def write_step(steps: Path, step: Step) -> dict[str, list[Path]]:
    """Write a step's files into a steps folder; returns them by component."""
    written: dict[str, list[Path]] = {}
    if "script" in step.components:
        written["script"] = [write_script(steps, step)]
    if "contract" in step.components:
        written["contract"] = [write_contract(steps, step)]
    if "spec" in step.components:
        jobs: list[str | None] = [None] if step.generic_spec else []
        written["spec"] = [write_spec(steps, step, job) for job in [*jobs, *step.job_types]]
    if "config" in step.components:
        written["config"] = [write_config(steps, step)]
    if "builder" in step.components:
        written["builder"] = [write_builder(steps, step)]
    return written


def registry_toml(steps: Iterable[Step]) -> str:
    out = []
    for step in steps:
        if not step.register:
            continue
        out.append(
            f"[steps.{step.name}]\n"
            f'config_class = "{step.name}Config"\n'
            f'builder_step_name = "{step.name}StepBuilder"\n'
            f'spec_type = "{step.name}"\n'
            f'sagemaker_step_type = "{step.step_type}"\n'
            f'description = "{step.extra.get("description", step.name + " step")}"\n'
            + (
                f"job_types = {list(step.registry_job_types)!r}\n"
                if step.registry_job_types
                else ""
            )
        )
    return "\n".join(out).replace("'", '"')


def write_project(
    root: Path, workspaces: Mapping[str, Sequence[Step]], *, registries: bool = True
) -> Path:
    """A project with these workspaces, in precedence order (the last is the core); each
    workspace's registered steps go into its ``registry.toml``."""
    lines = ['[project]\nname = "synthetic"\n']
    for ws, steps in workspaces.items():
        rel = "steps" if ws == list(workspaces)[-1] else f"dev/{ws}/steps"
        folder = root / rel
        for name in FOLDERS:
            (folder / name).mkdir(parents=True, exist_ok=True)
        for step in steps:
            write_step(folder, step)
        if registries:
            (folder / "registry.toml").write_text(registry_toml(steps), encoding="utf-8")
        lines.append(f'[[workspaces]]\nid = "{ws}"\npath = "{rel}"\n')
    (root / "stepkit.toml").write_text("\n".join(lines), encoding="utf-8")
    return root


def steps_dir(root: Path, workspace: str, *, core: bool = False) -> Path:
    return root / "steps" if core else root / "dev" / workspace / "steps"


def open_catalog(root: Path, *, rebuild: bool = False) -> StepCatalog:
    """The catalog of the project at ``root`` (persisted index under its .stepkit)."""
    return StepCatalog(Project.load(root), rebuild=rebuild)
