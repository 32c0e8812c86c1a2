"""A step's registry definition and the rules for its fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

#: Fields every core definition has (``description`` may be empty).
REQUIRED_FIELDS: Final = ("config_class", "builder_step_name", "spec_type", "sagemaker_step_type")
#: Every field a definition may carry.
FIELDS: Final = (*REQUIRED_FIELDS, "description", "job_types")

#: Step types stepkit knows; anything else is reported as custom, not rejected.
KNOWN_STEP_TYPES: Final = (
    "Processing",
    "Training",
    "CreateModel",
    "RegisterModel",
    "Transform",
    "Lambda",
    "Base",
    "Utility",
    "Tuning",
    "Condition",
    "Fail",
    "EMR",
    "Cradle",
    "MimsModelRegistrationProcessing",
)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a definition (or an override of it) was written."""

    workspace_id: str
    path: Path
    line: int | None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else str(self.path)


@dataclass(frozen=True, slots=True)
class StepDefinition:
    """What the registry says about one step, as seen from one workspace."""

    name: str
    config_class: str
    builder_step_name: str
    spec_type: str
    sagemaker_step_type: str
    description: str = ""
    job_types: tuple[str, ...] = ()
    workspace_id: str = ""  # the workspace whose layer last set a field of it
    origin: Origin | None = field(default=None, compare=False)
    overridden_fields: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The classic ``STEP_NAMES`` entry (``job_types`` only when declared)."""
        entry: dict[str, Any] = {
            "config_class": self.config_class,
            "builder_step_name": self.builder_step_name,
            "spec_type": self.spec_type,
            "sagemaker_step_type": self.sagemaker_step_type,
            "description": self.description,
        }
        if self.job_types:
            entry["job_types"] = list(self.job_types)
        return entry


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One step as written in one registry source, before layering.

    ``kind`` is ``define`` (a new step), ``override`` (fields replacing those of a
    step defined in a later workspace) or ``derive`` (an interface file's row: a
    definition, or an override where a later workspace defines the step).
    """

    name: str
    fields: Mapping[str, Any]
    kind: str
    origin: Origin


def build_definition(entry: RegistryEntry) -> StepDefinition:
    """A definition from a ``define`` entry whose fields have been checked."""
    f = entry.fields
    return StepDefinition(
        name=entry.name,
        config_class=f["config_class"],
        builder_step_name=f["builder_step_name"],
        spec_type=f["spec_type"],
        sagemaker_step_type=f["sagemaker_step_type"],
        description=f.get("description", ""),
        job_types=tuple(f.get("job_types", ())),
        workspace_id=entry.origin.workspace_id,
        origin=entry.origin,
    )


def apply_override(base: StepDefinition, entry: RegistryEntry) -> StepDefinition:
    """``base`` with the fields of an ``override`` entry replaced."""
    f = entry.fields
    changed = tuple(sorted(f))
    return StepDefinition(
        name=base.name,
        config_class=f.get("config_class", base.config_class),
        builder_step_name=f.get("builder_step_name", base.builder_step_name),
        spec_type=f.get("spec_type", base.spec_type),
        sagemaker_step_type=f.get("sagemaker_step_type", base.sagemaker_step_type),
        description=f.get("description", base.description),
        job_types=tuple(f["job_types"]) if "job_types" in f else base.job_types,
        workspace_id=entry.origin.workspace_id,
        origin=entry.origin,
        overridden_fields=tuple(sorted({*base.overridden_fields, *changed})),
    )
