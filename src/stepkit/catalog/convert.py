"""``catalog convert --to interface``: a workspace's classic contracts, specs and registry
rows written as ``interfaces/<stem>.step.yaml`` files.

The classic files are left in place (within a workspace the interface wins, so the catalog
answers the same either way) for the user to delete once they trust the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stepkit.atomic import atomic_writer
from stepkit.catalog.catalog import StepCatalog
from stepkit.catalog.discovery import contract_from_facts, read_facts, spec_from_facts
from stepkit.catalog.records import ComponentFile
from stepkit.names import component_stem

if TYPE_CHECKING:
    from stepkit.components import ScriptContract, StepSpecification


@dataclass(frozen=True, slots=True)
class Conversion:
    """One step of a workspace: the interface file to write (its text), or why not."""

    step: str
    workspace_id: str
    path: Path | None
    text: str = ""
    skipped: str = ""  # why there is nothing to write


def plan_conversion(catalog: StepCatalog, workspace_id: str) -> list[Conversion]:
    """What converting ``workspace_id`` writes: one interface per step with a classic
    contract and spec there, in step order (steps with neither there are not named)."""
    workspace = catalog.project.workspace(workspace_id)
    out = []
    for name in catalog.list_available_steps(workspace_id):
        info = catalog.get_step_info(name)
        here = [
            f
            for f in (*info.components.values(), *info.specs.values(), *info.shadowed)
            if f.workspace_id == workspace_id and f.component in ("contract", "spec")
        ]
        if not here or any(f.via == "interface" for f in here):
            continue  # nothing classic of this step here, or converted already
        contracts = [f for f in here if f.component == "contract"]
        specs = _specs_by_job_type([f for f in here if f.component == "spec"])
        if not contracts or not specs:
            has, lacks = ("a contract", "spec") if contracts else ("a spec", "contract")
            reason = (
                f"has {has} but no {lacks} in workspace {workspace_id!r}; an interface holds both"
            )
            out.append(Conversion(name, workspace_id, None, skipped=reason))
            continue
        if info.definition is None:
            reason = "has no registry entry to write the interface's registry block from"
            out.append(Conversion(name, workspace_id, None, skipped=reason))
            continue
        target = workspace.steps_dir / "interfaces" / f"{_stem(contracts[0])}.step.yaml"
        if target.exists():
            reason = f"{target} exists already (and is not this step's interface)"
            out.append(Conversion(name, workspace_id, target, skipped=reason))
            continue
        try:
            text = _render(name, info.definition.as_dict(), contracts[0], specs)
        except (ValueError, KeyError, TypeError) as exc:  # facts no model can be made of
            out.append(Conversion(name, workspace_id, target, skipped=str(exc).splitlines()[0]))
            continue
        out.append(Conversion(name, workspace_id, target, text))
    return out


def _specs_by_job_type(files: list[ComponentFile]) -> dict[str | None, ComponentFile]:
    found: dict[str | None, ComponentFile] = {}
    for f in files:
        found.setdefault(f.job_type, f)  # the one in effect: the first of its job type
    return found


def _stem(contract: ComponentFile) -> str:
    """The interface's file stem as the classic contract spells it (acronyms kept)."""
    return component_stem(contract.path.name.removesuffix(".py"), "contract")


def _render(
    name: str,
    registry: dict[str, object],
    contract_file: ComponentFile,
    specs: dict[str | None, ComponentFile],
) -> str:
    from stepkit.interface import interface_document, render_interface

    contract = _contract(contract_file)
    base_file = specs.get(None) or next(iter(specs.values()))
    base = _spec(base_file, name, None, contract)
    variants = {
        job: _spec(f, f"{registry['spec_type']}_{job.capitalize()}", job, contract)
        for job, f in sorted(specs.items(), key=lambda item: item[0] or "")
        if job is not None
    }
    document = interface_document(
        registry=registry, contract=contract, spec=base, variants=variants
    )
    return render_interface(document)


def _contract(f: ComponentFile) -> ScriptContract:
    contracts = read_facts(f.location, "contract").get("contracts")
    if not contracts:
        raise ValueError(f"{f.path} declares no literal contract")
    return contract_from_facts(contracts[0])


def _spec(
    f: ComponentFile, step_type: str, job_type: str | None, contract: ScriptContract
) -> StepSpecification:
    every = read_facts(f.location, "spec").get("specs") or []
    specs = [s for s in every if s.get("job_type") == job_type] or every
    if not specs:
        raise ValueError(f"{f.path} declares no literal spec")
    return spec_from_facts(specs[0], step_type=step_type, contract=contract)


def write_conversion(conversions: list[Conversion]) -> list[Path]:
    """Write the interface files (each atomically); an existing file is never replaced."""
    written = []
    for c in conversions:
        if c.path is None or c.skipped or c.path.exists():
            continue
        with atomic_writer(c.path) as handle:
            handle.write(c.text.encode("utf-8"))
        written.append(c.path)
    return written
