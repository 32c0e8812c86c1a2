"""``.step.yaml`` interface files: the framework's current, interface-first step layout.

One file per step holds what the classic layout spreads over a contract, one spec per job
type and a registry row (see docs/add-a-step.md). It is read with PyYAML's safe loader
(libyaml where installed), so nothing in it is ever executed, into the same models the
classic files become: :class:`~stepkit.components.ScriptContract`,
:class:`~stepkit.components.StepSpecification` (one per job-type variant) and a registry
entry. Every error names the file and the line of the offending key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from stepkit.components import (
    DependencySpec,
    JobArgument,
    NodeType,
    OutputSpec,
    ScriptContract,
    StepSpecification,
)
from stepkit.errors import InterfaceFileError, validation_message
from stepkit.project import INTERFACE_SUFFIX
from stepkit.registry.definitions import RegistryEntry
from stepkit.registry.interface_nodes import (
    LOADER,
    METADATA_KEYS,
    TOP_KEYS,
    NodeReader,
    source_dir_of,
    summarize_interface,
)

__all__ = [
    "INTERFACE_SUFFIX",
    "StepInterface",
    "interface_document",
    "interface_summary",
    "parse_interface",
    "read_interface",
    "render_interface",
    "summarize_interface",
]


_CONTRACT_KEYS: Final = (
    "entry_point",
    "source_dir",
    "inputs",
    "outputs",
    "arguments",
    "job_arguments",
    "env_vars",
    "framework_requirements",
    "python",
    "description",
)
#: Build details of the framework's cloud jobs: read without error, not used locally.
_CONTRACT_BUILD_KEYS: Final = (
    "include_job_type_in_path",
    "input_source_overrides",
    "skip_inputs",
    "runtime_requires",
    "computed_env_paths",
    "output_path_token",
    "sink",
    "circular_ref_check",
)
_DEPENDENCY_KEYS: Final = (
    "type",
    "required",
    "compatible_sources",
    "compatible_output_types",
    "semantic_keywords",
    "data_type",
    "description",
)
_OUTPUT_KEYS: Final = (
    "type",
    "property_path",
    "semantic_keywords",
    "aliases",
    "data_type",
    "description",
)


@dataclass(frozen=True, slots=True)
class StepInterface:
    """What one ``.step.yaml`` file says about its step."""

    path: Path
    name: str
    node_type: NodeType
    #: None for a step with no script (``entry_point: null``: a CreateModel, a Transform)
    contract: ScriptContract | None
    #: The base spec (``step_type`` is the step name), with the contract attached.
    spec: StepSpecification
    #: Job type → that variant's spec, the variant's partial spec merged over the base.
    variants: Mapping[str, StepSpecification]
    #: The registry row, defaults filled in; ``kind`` is always ``define``.
    registry: RegistryEntry
    #: ``compute`` and ``patterns``: how the framework builds the cloud job, kept as read.
    metadata: Mapping[str, Any]


def read_interface(path: Path, *, workspace_id: str) -> StepInterface:
    """Read and check one interface file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InterfaceFileError(path, f"cannot be read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InterfaceFileError(path, "is not UTF-8 text") from exc
    return parse_interface(text, path=path, workspace_id=workspace_id)


def parse_interface(text: str, *, path: Path, workspace_id: str) -> StepInterface:
    """An interface from its text; ``path`` names the file in errors."""
    try:
        data = yaml.load(text, Loader=LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise InterfaceFileError(path, f"is not valid YAML: {exc.problem}", line=line) from exc
    except yaml.YAMLError as exc:
        raise InterfaceFileError(path, f"is not valid YAML: {exc}") from exc
    return _Reader(text, path, workspace_id).read(data)


class _Reader(NodeReader):
    """Turns the loaded mapping into models; finds the line of a key only on error."""

    def model(self, where: tuple[str | int, ...], build: Any, **fields: Any) -> Any:
        try:
            return build(**fields)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"])
            message = validation_message(error)
            label = ".".join(str(part) for part in where)
            raise self.fail(where, f"{label}: {field}: {message}") from exc

    # -- the file -------------------------------------------------------------------------

    def read(self, data: Any) -> StepInterface:
        top = self.mapping(data, ())
        self.known_keys(top, (), (*TOP_KEYS, *METADATA_KEYS))
        for key in ("step_type", "node_type", "registry", "contract"):
            if key not in top:
                raise self.fail((), f"has no {key!r}")
        name = top["step_type"]
        if not isinstance(name, str) or not name:
            raise self.fail(("step_type",), "step_type must be the step's name")
        try:
            node_type = NodeType(top["node_type"])
        except ValueError:
            allowed = [t.value for t in NodeType]
            raise self.fail(
                ("node_type",),
                f"node_type {top['node_type']!r} is not one of {', '.join(allowed)}",
            ) from None
        contract = self.contract(self.mapping(top["contract"], ("contract",)))
        spec_data = self.mapping(top.get("spec"), ("spec",))
        self.known_keys(spec_data, ("spec",), ("dependencies", "outputs"))
        base = self.spec(name, node_type, spec_data, contract, ("spec",))
        variants = {
            job_type: self.variant(name, node_type, spec_data, contract, job_type, value)
            for job_type, value in self.mapping(top.get("variants"), ("variants",)).items()
        }
        metadata: dict[str, Any] = {key: top[key] for key in METADATA_KEYS if key in top}
        return StepInterface(
            path=self.path,
            name=name,
            node_type=node_type,
            contract=contract,
            spec=base,
            variants=variants,
            registry=self.registry(name, self.mapping(top["registry"], ("registry",))),
            metadata=metadata,
        )

    def contract(self, data: dict[str, Any]) -> ScriptContract | None:
        where = ("contract",)
        self.known_keys(data, where, (*_CONTRACT_KEYS, *_CONTRACT_BUILD_KEYS))
        if "entry_point" in data and data["entry_point"] is None:
            return None  # no script: its inputs and outputs have no container paths either
        inputs: dict[str, str] = {}
        channels: dict[str, list[str]] = {}
        for logical, entry in self.mapping(data.get("inputs"), (*where, "inputs")).items():
            at = (*where, "inputs", logical)
            spec = self.mapping(entry, at)
            self.known_keys(spec, at, ("path", "required", "channels"))
            inputs[logical] = self.text_value(spec.get("path"), (*at, "path"))
            if spec.get("channels"):
                channels[logical] = [str(c) for c in self.text_list(spec["channels"], at)]
        outputs = {
            logical: self.text_value(self.mapping(entry, at).get("path"), (*at, "path"))
            for logical, entry in self.mapping(data.get("outputs"), (*where, "outputs")).items()
            for at in [(*where, "outputs", logical)]
        }
        env = self.mapping(data.get("env_vars"), (*where, "env_vars"))
        self.known_keys(env, (*where, "env_vars"), ("required", "optional"))
        optional = self.mapping(env.get("optional"), (*where, "env_vars", "optional"))
        job_arguments = [
            self.model(at, JobArgument, **self.mapping(item, at))
            for index, item in enumerate(data.get("job_arguments") or [])
            for at in [(*where, "job_arguments", index)]
        ]
        return self.model(  # type: ignore[no-any-return]
            where,
            ScriptContract,
            entry_point=data.get("entry_point"),
            source_dir=source_dir_of(data.get("source_dir")),
            expected_input_paths=inputs,
            expected_output_paths=outputs,
            channels=channels,
            required_env_vars=[str(n) for n in env.get("required") or []],
            optional_env_vars={k: "" if v is None else str(v) for k, v in optional.items()},
            expected_arguments={
                k: "" if v is None else str(v)
                for k, v in self.mapping(data.get("arguments"), (*where, "arguments")).items()
            },
            job_arguments=job_arguments,
            framework_requirements={
                k: "" if v is None else str(v)
                for k, v in self.mapping(
                    data.get("framework_requirements"), (*where, "framework_requirements")
                ).items()
            },
            python=data.get("python"),
            description=data.get("description") or "",
        )

    def spec(
        self,
        step_type: str,
        node_type: NodeType,
        data: Mapping[str, Any],
        contract: ScriptContract | None,
        where: tuple[str, ...],
    ) -> StepSpecification:
        dependencies = self.entries(data, (*where, "dependencies"), DependencySpec)
        outputs = self.entries(data, (*where, "outputs"), OutputSpec)
        return self.model(  # type: ignore[no-any-return]
            where,
            StepSpecification,
            step_type=step_type,
            node_type=node_type,
            dependencies=dependencies,
            outputs=outputs,
            script_contract=contract,
        )

    def entries(
        self, data: Mapping[str, Any], where: tuple[str, ...], model: type[Any]
    ) -> list[Any]:
        """The dependencies or outputs of a spec: logical name → fields, ``type`` required."""
        section = where[-1]
        allowed, type_field = (
            (_DEPENDENCY_KEYS, "dependency_type")
            if section == "dependencies"
            else (_OUTPUT_KEYS, "output_type")
        )
        found = []
        for logical, entry in self.mapping(data.get(section), where).items():
            at = (*where, logical)
            fields = self.mapping(entry, at)
            self.known_keys(fields, at, allowed)
            if "type" not in fields:
                raise self.fail(at, f"{'.'.join(at)} has no type")
            values = {k: v for k, v in fields.items() if k != "type"}
            values[type_field] = fields["type"]
            found.append(self.model(at, model, logical_name=logical, **values))
        return found

    def variant(
        self,
        name: str,
        node_type: NodeType,
        base: Mapping[str, Any],
        contract: ScriptContract | None,
        job_type: str,
        value: Any,
    ) -> StepSpecification:
        where = ("variants", job_type)
        data = self.mapping(value, where)
        self.known_keys(data, where, ("step_type", "spec"))
        step_type = data.get("step_type") or f"{name}_{job_type.capitalize()}"
        if not isinstance(step_type, str):
            raise self.fail((*where, "step_type"), "step_type must be text")
        partial = self.mapping(data.get("spec"), (*where, "spec"))
        self.known_keys(partial, (*where, "spec"), ("dependencies", "outputs"))
        merged = {
            section: _merge_by_name(
                self.mapping(base.get(section), ("spec", section)),
                self.mapping(partial.get(section), (*where, "spec", section)),
            )
            for section in ("dependencies", "outputs")
        }
        return self.spec(step_type, node_type, merged, contract, (*where, "spec"))

    def text_value(self, value: Any, where: tuple[str, ...]) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"{'.'.join(where)} must be a container path")
        return value

    def text_list(self, value: Any, where: tuple[str, ...]) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, f"{'.'.join(where)} must be a list of names")
        return value


def _merge_by_name(
    base: Mapping[str, Any], override: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Entries named in ``override`` replace the fields they name and keep the rest."""
    merged = {key: dict(value or {}) for key, value in base.items()}
    for key, value in override.items():
        merged.setdefault(key, {}).update(value or {})
    return merged


def interface_summary(interface: StepInterface) -> dict[str, Any]:
    """What the catalog's index keeps of an interface file, as plain values: the step it
    declares, its script, its variants (job type → step type) and its registry row."""
    contract = interface.contract
    registry = dict(interface.registry.fields)
    if interface.variants:
        registry["job_types"] = list(interface.variants)
    return {
        "step": interface.name,
        "node_type": interface.node_type.value,
        "entry_point": contract.entry_point if contract else None,
        "source_dir": contract.source_dir if contract else None,
        "variants": {job: spec.step_type for job, spec in interface.variants.items()},
        "registry": registry,
        "registry_line": interface.registry.origin.line,
        "dependencies": len(interface.spec.dependencies),
        "outputs": len(interface.spec.outputs),
    }


# -- writing: the classic layout converted ------------------------------------------------


def interface_document(
    *,
    registry: Mapping[str, Any],
    contract: ScriptContract,
    spec: StepSpecification,
    variants: Mapping[str, StepSpecification],
) -> dict[str, Any]:
    """The ``.step.yaml`` content of a step: its registry row, contract, base spec and the
    job-type variants as partial specs over the base (what differs, key by key).

    Raises :class:`ValueError` when a variant lacks a dependency or output of the base,
    which a partial spec cannot express.
    """
    name = spec.step_type
    row = {"sagemaker_step_type": registry["sagemaker_step_type"]}
    if registry.get("description"):
        row["description"] = registry["description"]
    for key, default in (
        ("config_class", f"{name}Config"),
        ("builder_step_name", f"{name}StepBuilder"),
        ("spec_type", name),
    ):
        if registry.get(key) and registry[key] != default:
            row[key] = registry[key]
    base = _spec_document(spec)
    document: dict[str, Any] = {
        "step_type": name,
        "node_type": spec.node_type.value,
        "registry": row,
        "contract": _contract_document(contract),
        "spec": base,
    }
    written: dict[str, Any] = {}
    for job_type, variant in variants.items():
        entry: dict[str, Any] = {}
        if variant.step_type != f"{name}_{job_type.capitalize()}":
            entry["step_type"] = variant.step_type
        partial = _difference(base, _spec_document(variant), f"{name}_{job_type}")
        if partial:
            entry["spec"] = partial
        written[job_type] = entry or None
    if written:
        document["variants"] = written
    return document


def render_interface(document: Mapping[str, Any]) -> str:
    """YAML text of an interface document, keys in the documented order."""
    return yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True, width=100)


def _contract_document(contract: ScriptContract) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for logical, path in contract.expected_input_paths.items():
        entry: dict[str, Any] = {"path": path}
        if logical in contract.channels:
            entry["channels"] = list(contract.channels[logical])
        inputs[logical] = entry
    document: dict[str, Any] = {"entry_point": contract.entry_point}
    if contract.source_dir:
        document["source_dir"] = contract.source_dir
    document["inputs"] = inputs
    document["outputs"] = {k: {"path": v} for k, v in contract.expected_output_paths.items()}
    if contract.expected_arguments:
        document["arguments"] = dict(contract.expected_arguments)
    if contract.job_arguments:
        document["job_arguments"] = [a.model_dump() for a in contract.job_arguments]
    env: dict[str, Any] = {}
    if contract.required_env_vars:
        env["required"] = list(contract.required_env_vars)
    if contract.optional_env_vars:
        env["optional"] = dict(contract.optional_env_vars)
    if env:
        document["env_vars"] = env
    if contract.framework_requirements:
        document["framework_requirements"] = dict(contract.framework_requirements)
    if contract.python:
        document["python"] = contract.python
    if contract.description:
        document["description"] = contract.description
    return document


def _spec_document(spec: StepSpecification) -> dict[str, Any]:
    def fields(model: DependencySpec | OutputSpec, type_field: str) -> dict[str, Any]:
        # exclude_defaults keeps the file to what the step really says
        dumped = model.model_dump(
            mode="json", exclude={"logical_name", type_field}, exclude_defaults=True
        )
        return {"type": getattr(model, type_field).value, **dumped}

    document: dict[str, Any] = {}
    if spec.dependencies:
        document["dependencies"] = {
            k: fields(d, "dependency_type") for k, d in spec.dependencies.items()
        }
    if spec.outputs:
        document["outputs"] = {k: fields(o, "output_type") for k, o in spec.outputs.items()}
    return document


def _difference(base: Mapping[str, Any], variant: Mapping[str, Any], node: str) -> dict[str, Any]:
    """The partial spec that, merged over ``base``, gives ``variant``."""
    partial: dict[str, Any] = {}
    for section in ("dependencies", "outputs"):
        ours, theirs = base.get(section, {}), variant.get(section, {})
        missing = sorted(set(ours) - set(theirs))
        if missing:
            raise ValueError(
                f"{node} has no {section[:-1] if section == 'outputs' else 'dependency'} "
                f"{', '.join(map(repr, missing))} that the base spec has; "
                "a variant can change or add entries, not remove them"
            )
        changes: dict[str, Any] = {}
        for logical, fields in theirs.items():
            before = ours.get(logical)
            if before is None:
                changes[logical] = fields
                continue
            changed = {k: v for k, v in fields.items() if before.get(k) != v}
            dropped = [k for k in before if k not in fields]
            for key in dropped:  # back to the model's default, said explicitly
                changed[key] = _FIELD_DEFAULTS[section][key]
            if changed:
                changes[logical] = changed
        if changes:
            partial[section] = changes
    return partial


_FIELD_DEFAULTS: Final[Mapping[str, Mapping[str, Any]]] = {
    section: {
        key: info.get_default(call_default_factory=True)
        for key, info in model.model_fields.items()
        if not info.is_required()
    }
    for section, model in (("dependencies", DependencySpec), ("outputs", OutputSpec))
}
