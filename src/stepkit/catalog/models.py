"""The models of a step's files, built on demand from what discovery reads of them.

Functions over a :class:`~stepkit.catalog.catalog.StepCatalog` view: the index keeps only
small summaries; everything else is read from the file when asked. A classic contract or
spec is read with ``ast``; an interface file with :mod:`stepkit.interface`, into the same
models.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepkit.catalog.catalog import StepCatalog
from stepkit.catalog.discovery import contract_from_facts, read_facts, spec_from_facts
from stepkit.catalog.resolution import broken_reason

if TYPE_CHECKING:
    from stepkit.catalog.records import StepInfo
    from stepkit.components import ScriptContract, StepSpecification
    from stepkit.interface import StepInterface


def _kind(catalog: StepCatalog, path: Path | str) -> str | None:
    found = catalog.session.read(
        lambda c: c.execute("SELECT kind FROM files WHERE path = ?", (str(path),)).fetchone()
    )
    return found[0] if found else None


def file_facts(catalog: StepCatalog, path: Path | str) -> dict[str, Any] | None:
    """Everything discovery reads from an indexed file, read now (None: not indexed)."""
    kind = _kind(catalog, path)
    return read_facts(str(path), kind) if kind else None


def unreadable(catalog: StepCatalog, path: Path | str) -> str | None:
    """``path:line: why`` when nothing of this indexed file can be read (a syntax error, not
    UTF-8, unreadable), from its summary in the index: a script, indexed lazily, is read the
    first time this is asked (and kept), so its step looks complete until then."""
    found = catalog.session.summaries([str(path)]).get(str(path))
    return broken_reason(str(path), found) if found is not None else None


def interface_of(catalog: StepCatalog, name_or_node: str) -> StepInterface | None:
    """The interface file of a step, read now (None: its contract and spec are classic).

    Raises:
        InterfaceFileError: the file cannot be read, naming it and the line.
    """
    from stepkit.interface import read_interface

    info = catalog.get_step_info(name_or_node)
    found = info.components.get("contract") or info.components.get("spec")
    if found is None or _kind(catalog, found.location) != "interface":
        return None
    return read_interface(found.path, workspace_id=found.workspace_id)


def contract_of(catalog: StepCatalog, name_or_node: str) -> ScriptContract | None:
    """The step's contract as a :class:`ScriptContract`."""
    return contract_for(catalog, catalog.get_step_info(name_or_node))


def spec_of(
    catalog: StepCatalog, name_or_node: str, job_type: str | None = None
) -> StepSpecification | None:
    """The step's spec for a job type as a :class:`StepSpecification`, contract included."""
    info = catalog.get_step_info(name_or_node, job_type)
    return spec_for(catalog, info, contract_for(catalog, info))


def contract_for(catalog: StepCatalog, info: StepInfo) -> ScriptContract | None:
    """:func:`contract_of` a step already looked up."""
    component = info.components.get("contract")
    if component is None:
        return None
    if _kind(catalog, component.location) == "interface":
        from stepkit.interface import read_interface

        return read_interface(component.path, workspace_id=component.workspace_id).contract
    facts = file_facts(catalog, component.location)
    contracts = facts.get("contracts") if facts else None
    return contract_from_facts(contracts[0]) if contracts else None


def spec_for(
    catalog: StepCatalog, info: StepInfo, contract: ScriptContract | None
) -> StepSpecification | None:
    """:func:`spec_of` a step (or job-type variant) already looked up, with its contract."""
    component = info.components.get("spec")
    if component is not None and _kind(catalog, component.location) == "interface":
        from stepkit.interface import read_interface

        found = read_interface(component.path, workspace_id=component.workspace_id)
        variant = found.variants.get(info.job_type or "") if component.job_type else None
        spec = variant or found.spec
        return (
            spec
            if contract == found.contract
            else spec.model_copy(update={"script_contract": contract})
        )
    facts = (file_facts(catalog, component.location) if component else None) or {}
    every = list(facts.get("specs", ()))
    specs = [s for s in every if s.get("job_type") == info.job_type] or every
    if not specs:
        return None
    spec_type = info.definition.spec_type if info.definition else info.name
    if info.job_type:
        spec_type = f"{spec_type}_{info.job_type.capitalize()}"
    return spec_from_facts(specs[0], step_type=spec_type, contract=contract)
