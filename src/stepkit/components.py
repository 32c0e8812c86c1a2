"""The vocabulary every part of stepkit shares: contracts, specifications, configs, builders.

These follow the conventions of the SageMaker pipeline framework the step files come from,
so a repository of such steps imports them unchanged. Discovery (``stepkit.catalog``) reads
the same keyword arguments from a file with ``ast`` and builds these same models, so a
contract read from disk and one constructed in code compare equal.

This module imports pydantic; ``import stepkit`` does not import it (it is loaded on use).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stepkit.registry.context import active_workspace

if TYPE_CHECKING:
    from stepkit.registry.definitions import StepDefinition
    from stepkit.registry.layering import Registry

__all__ = [
    "ENTRY_POINT_FIELDS",
    "DependencySpec",
    "DependencyType",
    "JobArgument",
    "NodeType",
    "OutputSpec",
    "ScriptContract",
    "StepBuilder",
    "StepConfig",
    "StepSpecification",
]

#: Config fields that name a step's script, in the order they are consulted.
ENTRY_POINT_FIELDS: Final = ("processing_entry_point", "training_entry_point", "entry_point")

_JOB_TYPE: Final = re.compile(r"[a-z][a-z0-9_]*")


class NodeType(enum.StrEnum):
    """Where a step sits in a DAG: what it may depend on and produce."""

    SOURCE = "source"  # no dependencies, has outputs
    INTERNAL = "internal"  # dependencies and outputs
    SINK = "sink"  # dependencies, no outputs
    SINGULAR = "singular"  # neither


class DependencyType(enum.StrEnum):
    """What kind of thing flows along an edge."""

    MODEL_ARTIFACTS = "model_artifacts"
    PROCESSING_OUTPUT = "processing_output"
    TRAINING_DATA = "training_data"
    HYPERPARAMETERS = "hyperparameters"
    PAYLOAD_SAMPLES = "payload_samples"
    CUSTOM_PROPERTY = "custom_property"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class JobArgument(_Frozen):
    """A command-line flag the script's ``__main__`` parses (``--job_type``), and where
    its value comes from: ``job_type`` (the node's job type) or a config field's name."""

    flag: str
    source: str | None = None  # default: the flag's own name (``--job_type`` → job_type)

    @field_validator("flag")
    @classmethod
    def _is_a_long_flag(cls, value: str) -> str:
        if not value.startswith("--") or len(value) < 3:
            raise ValueError(f"job argument flag {value!r} must look like '--job_type'")
        return value

    @property
    def dest(self) -> str:
        """The attribute argparse makes of the flag: ``--job-type`` → ``job_type``."""
        return self.flag[2:].replace("-", "_")


class ScriptContract(_Frozen):
    """What a script expects of its container: paths by logical name, env vars, arguments.

    ``expected_arguments`` maps argument names to text that is mostly a *description*:
    it is never passed as a value. ``job_arguments`` are the flags the script's own parser
    reads, with where each value comes from; ``source_dir`` is the package folder the
    script is run from; ``channels`` lists, per input, the sub-folders it holds.
    """

    entry_point: str
    expected_input_paths: dict[str, str] = Field(default_factory=dict)
    expected_output_paths: dict[str, str] = Field(default_factory=dict)
    required_env_vars: list[str] = Field(default_factory=list)
    optional_env_vars: dict[str, str] = Field(default_factory=dict)
    expected_arguments: dict[str, str] = Field(default_factory=dict)
    job_arguments: list[JobArgument] = Field(default_factory=list)
    source_dir: str | None = None
    channels: dict[str, list[str]] = Field(default_factory=dict)
    framework_requirements: dict[str, str] = Field(default_factory=dict)
    #: the Python the script was written for, a version prefix ("3.9", "3.9.18"); with
    #: per-step environments it runs on a local interpreter of that version
    python: str | None = None
    #: what the framework writes as ``python`` among the requirements (``">=3.7"``): the
    #: interpreter's versions the script runs on, never a package to install
    python_requires: str | None = None
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _python_is_no_package(cls, data: Any) -> Any:
        requirements = data.get("framework_requirements") if isinstance(data, dict) else None
        if not isinstance(requirements, dict) or "python" not in requirements:
            return data
        rest = {k: v for k, v in requirements.items() if k != "python"}
        given = str(requirements["python"]).strip()
        return {**data, "framework_requirements": rest, "python_requires": given or None}

    @field_validator("python", mode="before")
    @classmethod
    def _python_is_a_version(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(
                f"python must be text such as '3.10', not the number {value!r} "
                "(3.10 written as a number is 3.1)"
            )
        if isinstance(value, str) and not re.fullmatch(r"\d+(\.\d+){0,2}", value.strip()):
            raise ValueError(f"python {value!r} must be a version such as '3.9' or '3.9.18'")
        return value.strip() if isinstance(value, str) else value

    def declared_arguments(self) -> dict[str, JobArgument]:
        """Every argument the script reads, by attribute name: ``job_arguments`` first,
        then each expected argument as ``--<name>`` whose value comes from its own name."""
        declared = {arg.dest: arg for arg in self.job_arguments}
        for name in self.expected_arguments:
            argument = JobArgument(flag=f"--{name}")
            declared.setdefault(argument.dest, argument)
        return declared

    def argument_values(
        self,
        *,
        job_type: str | None = None,
        config: Mapping[str, Any] | None = None,
        given: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The job arguments the script's own parser would have produced, by attribute
        name: a value ``given`` (``--arg``, ``[test] args``) first, then the node's job type
        for an argument whose source is ``job_type``, then the config field its source
        names. A declared argument with none of these is left out (a description is never
        a value); an argument given but not declared is passed as well."""
        config = config or {}
        values = {_dest(name): value for name, value in (given or {}).items()}
        for dest, argument in self.declared_arguments().items():
            source = argument.source or dest
            if dest in values:
                continue
            if source == "job_type" and job_type:
                values[dest] = job_type
            elif config.get(source) is not None:
                values[dest] = _as_text(config[source])
        return values

    @field_validator("entry_point")
    @classmethod
    def _entry_point_is_a_python_file(cls, value: str) -> str:
        if not value.endswith(".py") or "/" in value or value == ".py":
            raise ValueError(f"entry point {value!r} must be a Python file name like 'train.py'")
        return value

    @property
    def script_stem(self) -> str:
        """The entry point without ``.py``: the script's file stem."""
        return self.entry_point[:-3]


def _dest(name: str) -> str:
    """An argument's attribute name, from a flag or a name: ``--job-type`` → ``job_type``."""
    return name.lstrip("-").replace("-", "_")


def _as_text(value: Any) -> str:
    """A value as it would come on a command line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, sort_keys=True)
    return str(value)


class DependencySpec(_Frozen):
    """One input a step needs, and what may provide it."""

    logical_name: str
    dependency_type: DependencyType
    required: bool = True
    compatible_sources: list[str] = Field(default_factory=list)
    compatible_output_types: list[str] = Field(default_factory=list)  # outputs it takes
    semantic_keywords: list[str] = Field(default_factory=list)
    data_type: str = "S3Uri"
    description: str = ""

    @field_validator("logical_name")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("logical_name must not be empty")
        return value


class OutputSpec(_Frozen):
    """One output a step makes, under its logical name and aliases."""

    logical_name: str
    output_type: DependencyType
    aliases: list[str] = Field(default_factory=list)
    semantic_keywords: list[str] = Field(default_factory=list)
    property_path: str | None = None  # the framework's runtime property; unused locally
    data_type: str = "S3Uri"
    description: str = ""

    @field_validator("logical_name")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("logical_name must not be empty")
        return value


def _logical_name(item: Any, what: str) -> str:
    name = (
        item.get("logical_name")
        if isinstance(item, Mapping)
        else getattr(item, "logical_name", None)
    )
    if not isinstance(name, str):
        raise ValueError(f"each {what} needs a logical_name, got {item!r}")
    return name


def _by_logical_name(value: Any, what: str) -> Any:
    """Accept a list (the usual way specs are written) or a dict keyed by logical name."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = _logical_name(item, what)
            if name != key:
                raise ValueError(f"{what} key {key!r} differs from its logical_name {name!r}")
        return dict(value)
    if not isinstance(value, (list, tuple)):
        return value
    out: dict[str, Any] = {}
    for item in value:
        name = _logical_name(item, what)
        if name in out:
            raise ValueError(f"{what} {name!r} is listed twice")
        out[name] = item
    return out


class StepSpecification(_Frozen):
    """A step's place in a DAG: its type, what it depends on, what it outputs, its contract."""

    step_type: str
    node_type: NodeType
    dependencies: dict[str, DependencySpec] = Field(default_factory=dict)
    outputs: dict[str, OutputSpec] = Field(default_factory=dict)
    script_contract: ScriptContract | None = None

    @model_validator(mode="before")
    @classmethod
    def _lists_to_dicts(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = dict(data)
            if "dependencies" in data:
                data["dependencies"] = _by_logical_name(data["dependencies"], "dependency")
            if "outputs" in data:
                data["outputs"] = _by_logical_name(data["outputs"], "output")
        return data

    @property
    def base_step_type(self) -> str:
        """The step type without a job-type suffix: ``Foo_Training`` → ``Foo``."""
        return self.step_type.split("_", 1)[0]

    @property
    def job_type(self) -> str | None:
        """The job type the step type carries (``Foo_Training`` → ``training``), if any."""
        _, sep, suffix = self.step_type.partition("_")
        return suffix.lower() if sep and suffix else None

    def get_dependency(self, logical_name: str) -> DependencySpec | None:
        return self.dependencies.get(logical_name)

    def get_output(self, name_or_alias: str) -> OutputSpec | None:
        """The output with this logical name, else the first whose aliases include it."""
        found = self.outputs.get(name_or_alias)
        if found is not None:
            return found
        return next((o for o in self.outputs.values() if name_or_alias in o.aliases), None)

    def required_dependencies(self) -> list[DependencySpec]:
        return [d for d in self.dependencies.values() if d.required]

    def optional_dependencies(self) -> list[DependencySpec]:
        return [d for d in self.dependencies.values() if not d.required]

    def node_type_problems(self) -> list[str]:
        """Where dependencies/outputs disagree with the node type (reported, not rejected)."""
        has_deps, has_outs = bool(self.dependencies), bool(self.outputs)
        expected = {
            NodeType.SOURCE: (False, True),
            NodeType.INTERNAL: (True, True),
            NodeType.SINK: (True, False),
            NodeType.SINGULAR: (False, False),
        }[self.node_type]
        problems = []
        if has_deps != expected[0]:
            need = "needs dependencies" if expected[0] else "must have no dependencies"
            problems.append(f"{self.node_type.value} node {need}")
        if has_outs != expected[1]:
            need = "needs outputs" if expected[1] else "must have no outputs"
            problems.append(f"{self.node_type.value} node {need}")
        return problems


# -- configs and builders ---------------------------------------------------------------------


def _registry_or_default(registry: Registry | None) -> Registry:
    if registry is not None:
        return registry
    from stepkit.registry.step_names import get_registry

    return get_registry()


class StepConfig(BaseModel):
    """Base of every step config: validated parameters; unknown fields are errors.

    The registry is read through the active workspace: the config's own ``workspace_id``,
    else the workspace context, else ``STEPKIT_WORKSPACE``.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    job_type: str | None = None
    processing_entry_point: str | None = None
    training_entry_point: str | None = None
    entry_point: str | None = None
    workspace_id: str | None = None

    @field_validator("job_type")
    @classmethod
    def _job_type_is_snake_case(cls, value: str | None) -> str | None:
        if value is not None and _JOB_TYPE.fullmatch(value) is None:
            raise ValueError(f"job type {value!r} must be lower-case snake_case like 'training'")
        return value

    @field_validator("processing_entry_point", "training_entry_point", "entry_point")
    @classmethod
    def _entry_point_is_a_python_file(cls, value: str | None) -> str | None:
        if value is not None and (not value.endswith(".py") or value == ".py"):
            raise ValueError(f"entry point {value!r} must be a Python file like 'train.py'")
        return value

    @property
    def script_entry_point(self) -> str | None:
        """The first entry-point field that is set (processing, training, plain)."""
        for name in ENTRY_POINT_FIELDS:
            value = getattr(self, name)
            if value:
                return str(value)
        return None

    @property
    def active_workspace_id(self) -> str | None:
        """The workspace this config resolves registry names in."""
        return active_workspace(self.workspace_id)

    def registry_definition(self, *, registry: Registry | None = None) -> StepDefinition:
        """The registry definition whose ``config_class`` is this class, in the active view."""
        from stepkit.errors import UnknownStepError

        reg = _registry_or_default(registry)
        view = reg.view(self.active_workspace_id)
        name = type(self).__name__
        for definition in view.values():
            if definition.config_class == name:
                return definition
        raise UnknownStepError(
            name, [d.config_class for d in view.values()], what="step with config class"
        )

    def step_name(self, *, registry: Registry | None = None) -> str:
        """The canonical step name this config belongs to."""
        return self.registry_definition(registry=registry).name

    def node_name(self, *, registry: Registry | None = None) -> str:
        """The pipeline node name: the step name with the job type, if any."""
        from stepkit.names import node_name

        return node_name(self.step_name(registry=registry), self.job_type)


class StepBuilder:
    """Base of step builders: how a step becomes a runnable task.

    A builder gets the step's config and (optionally) its specification. A subclass that
    defines ``run(self, context)`` runs in-process instead of the default, which runs the
    step's script. ``STEP_NAMES`` is the registry as the builder's workspace sees it.
    """

    #: Set by subclasses that know their spec statically; overridden by ``spec=``.
    SPEC: ClassVar[StepSpecification | None] = None

    def __init__(
        self,
        config: StepConfig,
        *,
        spec: StepSpecification | None = None,
        workspace_id: str | None = None,
        registry: Registry | None = None,
    ) -> None:
        if not isinstance(config, StepConfig):
            raise TypeError(
                f"{type(self).__name__} needs a StepConfig, got {type(config).__name__}"
            )
        if spec is not None and not isinstance(spec, StepSpecification):
            raise TypeError(
                f"{type(self).__name__} spec must be a StepSpecification, got {type(spec).__name__}"
            )
        self.config = config
        self.spec = spec if spec is not None else type(self).SPEC
        self.workspace_id = workspace_id if workspace_id is not None else config.workspace_id
        self._registry = registry

    @property
    def contract(self) -> ScriptContract | None:
        """The spec's script contract, if the spec has one."""
        return self.spec.script_contract if self.spec is not None else None

    @property
    def has_run(self) -> bool:
        """True when the builder defines its own in-process ``run(context)``."""
        return callable(getattr(type(self), "run", None))

    @property
    def active_workspace_id(self) -> str | None:
        return active_workspace(self.workspace_id)

    @property
    def STEP_NAMES(self) -> Mapping[str, Mapping[str, Any]]:
        """The classic ``STEP_NAMES`` map as this builder's workspace sees it."""
        return _registry_or_default(self._registry).classic(self.active_workspace_id)

    def registry_definition(self) -> StepDefinition:
        """The definition whose ``builder_step_name`` is this class, in the active view."""
        from stepkit.errors import UnknownStepError

        view = _registry_or_default(self._registry).view(self.active_workspace_id)
        name = type(self).__name__
        for definition in view.values():
            if definition.builder_step_name == name:
                return definition
        raise UnknownStepError(
            name, [d.builder_step_name for d in view.values()], what="step with builder"
        )

    @property
    def step_name(self) -> str:
        """The canonical name of the step this builder builds."""
        return self.registry_definition().name
