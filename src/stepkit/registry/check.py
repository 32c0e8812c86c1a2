"""``registry check``: the rules a registry must keep, each breach reported with file and line."""

from __future__ import annotations

from dataclasses import dataclass

from stepkit.names import close_matches, is_pascal_case
from stepkit.registry.definitions import KNOWN_STEP_TYPES, Origin, StepDefinition
from stepkit.registry.layering import Registry


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding; ``error`` findings make ``registry check`` exit 1, warnings do not."""

    severity: str  # "error" | "warning"
    step: str
    message: str
    origin: Origin | None

    def __str__(self) -> str:
        where = f"{self.origin}: " if self.origin else ""
        return f"{where}{self.severity}: {self.step}: {self.message}"


def check_registry(registry: Registry) -> list[Problem]:
    """Check every workspace's view: names, spec types, step types, unique class names;
    first what loading left out (unreadable files, conflicting entries)."""
    problems: list[Problem] = [
        Problem(
            "error",
            f"workspace {left_out.workspace_id!r}",
            f"left out: {left_out.error}",
            None,
        )
        for left_out in registry.problems
    ]
    seen: set[tuple[str, str, str]] = set()
    for workspace_id in registry.workspace_ids:
        view = registry.view(workspace_id)
        for definition in view.values():
            for problem in _check_definition(definition):
                key = (problem.step, problem.message, str(problem.origin))
                if key not in seen:
                    seen.add(key)
                    problems.append(problem)
        for problem in _check_unique(view.values()):
            key = (problem.step, problem.message, str(problem.origin))
            if key not in seen:
                seen.add(key)
                problems.append(problem)
    return problems


def _check_definition(d: StepDefinition) -> list[Problem]:
    out: list[Problem] = []
    if not is_pascal_case(d.name):
        out.append(
            Problem(
                "error",
                d.name,
                "name is not PascalCase (letters and digits, first upper-case)",
                d.origin,
            )
        )
    if d.spec_type != d.name:
        out.append(
            Problem(
                "error", d.name, f"spec_type {d.spec_type!r} differs from the step name", d.origin
            )
        )
    if d.sagemaker_step_type not in KNOWN_STEP_TYPES:
        near = close_matches(d.sagemaker_step_type, KNOWN_STEP_TYPES)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        out.append(
            Problem(
                "warning",
                d.name,
                f"custom sagemaker_step_type {d.sagemaker_step_type!r}{hint}",
                d.origin,
            )
        )
    if not d.description:
        out.append(Problem("warning", d.name, "no description", d.origin))
    return out


def _check_unique(definitions: object) -> list[Problem]:
    out: list[Problem] = []
    for field in ("config_class", "builder_step_name"):
        owners: dict[str, StepDefinition] = {}
        for d in definitions:  # type: ignore[attr-defined]
            value = getattr(d, field)
            first = owners.setdefault(value, d)
            if first is not d:
                out.append(
                    Problem(
                        "error",
                        d.name,
                        f"{field} {value!r} is also used by {first.name} ({first.origin})",
                        d.origin,
                    )
                )
    return out
