"""From a name (or a script path) to what the tester needs, through the step catalog.

The tester's core works on a :class:`Target`: a script path, its contract (or why there is
none), its spec. This module is the thin layer that asks the catalog for them; the catalog
reads contracts and specs with ``ast``, so nothing here imports user code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stepkit.catalog.models import contract_for, spec_for
from stepkit.errors import UnknownStepError
from stepkit.names import close_matches, pascal_to_snake, split_node_name

if TYPE_CHECKING:
    from stepkit.catalog import StepCatalog, StepInfo
    from stepkit.components import ScriptContract, StepSpecification
    from stepkit.project import Project


@dataclass(frozen=True, slots=True)
class Target:
    """A script to test, with everything already resolved."""

    name: str  # the step or pipeline node name, or the script's file name
    script: Path | None
    contract: ScriptContract | None = None
    spec: StepSpecification | None = None
    job_type: str | None = None
    no_contract_reason: str = "no contract was given"
    no_script_reason: str = ""
    samples: Mapping[str, Path] = field(default_factory=dict)  # input -> its sample data
    sample_problems: tuple[str, ...] = ()  # [test.data] entries naming no input


def _is_path(name_or_path: str) -> bool:
    return name_or_path.endswith(".py") or "/" in name_or_path or Path(name_or_path).is_file()


def _models(
    catalog: StepCatalog, info: StepInfo
) -> tuple[ScriptContract | None, str, StepSpecification | None]:
    """The contract (or why none) and spec of a step; a broken file is a reason, not a crash."""
    from pydantic import ValidationError

    from stepkit.errors import InterfaceFileError, validation_message

    contract_file = info.path("contract")
    contract = None
    reason = ""
    try:
        contract = contract_for(catalog, info)
    except ValidationError as exc:  # facts that make no valid model
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        reason = f"contract {contract_file} is invalid: {field}: {validation_message(error)}"
    except (KeyError, TypeError) as exc:
        reason = f"contract {contract_file} is invalid: {exc}"
    except InterfaceFileError as exc:  # it names the file and the line itself
        reason = str(exc)
    if contract is None and not reason:
        reason = (
            f"contract {contract_file} declares no ScriptContract"
            if contract_file
            else f"step {info.name} has no contract file"
        )
    spec = None
    if info.specs:
        try:
            spec = spec_for(catalog, info, contract)
        except (ValidationError, KeyError, TypeError, InterfaceFileError):
            spec = None  # no spec beats a broken one: names only
    return contract, reason, spec


def target_for_step(catalog: StepCatalog, info: StepInfo) -> Target:
    contract, reason, spec = _models(catalog, info)
    script = info.path("script")
    samples, problems = sample_inputs(catalog.project, info, contract)
    return Target(
        name=info.node_name,
        script=script,
        contract=contract,
        spec=spec,
        job_type=info.job_type,
        no_contract_reason=reason,
        no_script_reason="" if script else f"step {info.name} has no script",
        samples=samples,
        sample_problems=problems,
    )


def sample_inputs(
    project: Project, info: StepInfo, contract: ScriptContract | None
) -> tuple[dict[str, Path], tuple[str, ...]]:
    """The sample data that ships with a step, by input, and the ``[test.data]`` entries
    that name no input of its contract.

    First ``[test.data]`` in ``stepkit.toml`` for the node name, then for the step name
    (a folder with one sub-folder per input, or a table input -> path); then the steps
    folder's ``samples/<stem>_<job_type>/<input>`` and ``samples/<stem>/<input>``: in the
    workspace of the step's script, then in every workspace in precedence order (a
    developer's copy of a script reads the shared workspace's samples).
    """
    if contract is None:
        return {}, ()
    declared = contract.expected_input_paths
    found: dict[str, Path] = {}
    problems: list[str] = []
    for key in dict.fromkeys((info.node_name, info.name)):
        given = project.test.data.get(key)
        if isinstance(given, Mapping):
            for logical, path in given.items():
                if logical in declared:
                    found.setdefault(logical, path)
                    continue
                close = close_matches(logical, declared)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                problems.append(
                    f"[test.data] {key}.{logical}: {info.name}'s contract has no input "
                    f"{logical!r} (inputs: {', '.join(declared) or 'none'}).{hint}"
                )
        elif given is not None:
            if not given.is_dir():
                problems.append(f"[test.data] {key}: {given} is not a folder")
            for logical in declared:
                if (given / logical).exists():
                    found.setdefault(logical, given / logical)
    component = info.components.get("script")
    first = [component.workspace_id] if component is not None else []
    stem = pascal_to_snake(info.name)
    for workspace_id in dict.fromkeys([*first, *project.workspace_ids]):
        samples = project.workspace(workspace_id).steps_dir / "samples"
        folders = [samples / f"{stem}_{info.job_type}"] if info.job_type else []
        for folder in [*folders, samples / stem]:
            for logical in declared:
                if (folder / logical).exists():
                    found.setdefault(logical, folder / logical)
    return found, tuple(problems)


def resolve(catalog: StepCatalog | None, name_or_path: str) -> Target:
    """The target a CLI argument names: a script file, else a step or pipeline node name.

    Raises:
        UnknownStepError: a name the catalog does not know (with close names).
    """
    if _is_path(name_or_path):
        script = Path(name_or_path).expanduser().absolute()
        step = catalog.find_step_by_component(script) if catalog else None
        if catalog is None or step is None:
            why = (
                "the script is not part of a project"
                if catalog is None
                else (f"{script.name} belongs to no step of the catalog")
            )
            return Target(name=script.name, script=script, no_contract_reason=why)
        info = catalog.get_step_info(step)
        found = target_for_step(catalog, info)
        return Target(
            name=found.name,
            script=script,
            contract=found.contract,
            spec=found.spec,
            job_type=found.job_type,
            no_contract_reason=found.no_contract_reason,
            samples=found.samples,
            sample_problems=found.sample_problems,
        )
    if catalog is None:
        raise UnknownStepError(name_or_path, [], what="step (no project to look it up in)")
    return target_for_step(catalog, node_info(catalog, name_or_path))


def node_info(catalog: StepCatalog, node: str) -> StepInfo:
    """The step a name or pipeline node name (``Foo_training``) means, with did-you-mean
    suggestions that keep the job type."""
    try:
        return catalog.get_step_info(node)
    except UnknownStepError as exc:
        base, job_type = split_node_name(node)
        if job_type is None:
            raise
        close = [f"{name}_{job_type}" for name in close_matches(base, catalog.step_names())]
        if not [c for c in close if c != node]:  # the base is right: its job type is not
            raise
        raise UnknownStepError(node, close) from exc


def scripted_steps(catalog: StepCatalog, workspace: str | None = None) -> list[Target]:
    """A target for every step that has a script (in ``workspace``, when given); a step
    with job-type variants gets one per job type (``X_training``, ``X_calibration``…), as
    its pipeline nodes run it: the framework's scripts read ``job_args.job_type``."""
    targets = []
    for info in catalog.steps():
        script = info.components.get("script")
        if script is None or (workspace is not None and script.workspace_id != workspace):
            continue
        variants = [info.variant(job) for job in info.job_types] or [info]
        targets += [target_for_step(catalog, variant) for variant in variants]
    return targets
