"""Script ↔ contract alignment, read statically (``ast``; the script is never imported).

What ``main(input_paths, output_paths, environ_vars, job_args)`` reads — the keys it
subscripts, ``.get``s or tests with ``in`` on the first three, the attributes it takes of
``job_args`` — is compared with what the contract declares. Two kinds of mismatch:

- a key read but not declared (``input_paths["processed_data"]`` when the contract names
  ``eval_output``): the script fails on it at run time, often several frames deep;
- a required input never read, where ``main`` reads others by key (one that reads none
  gets its data some other way — fixed container paths — and one that hands
  ``input_paths`` on whole, to a helper or a loop, cannot be followed).

``catalog check`` reports both; ``test script`` names a read-but-undeclared key in the
reason when the script failed, instead of the ``KeyError`` or ``TypeError`` it caused.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from stepkit.names import close_matches
from stepkit.reads import Param, Reads, read_main

if TYPE_CHECKING:
    from stepkit.catalog import StepCatalog
    from stepkit.catalog.records import Problem
    from stepkit.components import ScriptContract, StepSpecification


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A read the contract does not declare (``kind="undeclared"``) or a required input
    ``main`` never reads (``kind="unread"``)."""

    kind: Literal["undeclared", "unread"]
    script: Path
    line: int
    param: Param
    name: str
    declared: tuple[str, ...]
    suggestions: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.kind == "unread":
            return (
                f"main never reads required input {self.name!r} of the contract "
                f"(input_paths reads: {', '.join(self.declared) or 'none'})"
            )
        what = (
            f"job_args.{self.name}" if self.param == "job_args" else f"{self.param}[{self.name!r}]"
        )
        hint = (
            f". Did you mean {', '.join(map(repr, self.suggestions))}?" if self.suggestions else ""
        )
        return (
            f"main reads {what}, which the contract does not declare "
            f"(declared: {', '.join(self.declared) or 'none'}){hint}"
        )


def declared_names(contract: ScriptContract) -> dict[Param, tuple[str, ...]]:
    """What the contract declares for each of ``main``'s parameters."""
    return {
        "input_paths": tuple(contract.expected_input_paths),
        "output_paths": tuple(contract.expected_output_paths),
        "environ_vars": (*contract.required_env_vars, *contract.optional_env_vars),
        "job_args": tuple(contract.declared_arguments()),
    }


def mismatches(
    script: Path, contract: ScriptContract, spec: StepSpecification | None = None
) -> list[Mismatch]:
    """Every read of ``main`` the contract does not declare, then every required input
    (the spec's required dependencies; every contract input without a spec) never read
    while others are."""
    return _mismatches(script, _reads(script), contract, spec)


def _reads(script: Path) -> Reads | None:
    try:
        return read_main(script.read_bytes(), str(script))
    except OSError:  # no readable script: the tester and the catalog say so themselves
        return None


def _reads_inputs(reads: Reads) -> bool:
    """Whether an unread required input can be told: ``main`` reads inputs by key and
    does not hand ``input_paths`` on whole."""
    return "input_paths" not in reads.escapes and any(r.param == "input_paths" for r in reads.reads)


def _mismatches(
    script: Path, reads: Reads | None, contract: ScriptContract, spec: StepSpecification | None
) -> list[Mismatch]:
    if reads is None:
        return []
    declared = declared_names(contract)
    found: list[Mismatch] = []
    seen: set[tuple[Param, str]] = set()
    for read in reads.reads:
        names = declared[read.param]
        if read.name in names or (read.param, read.name) in seen:
            continue
        seen.add((read.param, read.name))
        found.append(
            Mismatch(
                "undeclared",
                script,
                read.line,
                read.param,
                read.name,
                names,
                tuple(close_matches(read.name, names)),
            )
        )
    read_inputs = {r.name for r in reads.reads if r.param == "input_paths"}
    if _reads_inputs(reads):
        for logical in contract.expected_input_paths:
            dependency = spec.dependencies.get(logical) if spec is not None else None
            required = dependency.required if dependency is not None else spec is None
            if required and logical not in read_inputs:
                found.append(
                    Mismatch(
                        "unread",
                        script,
                        reads.line,
                        "input_paths",
                        logical,
                        tuple(sorted(read_inputs)),
                    )
                )
    return found


def alignment_problems(catalog: StepCatalog, workspace: str | None = None) -> list[Problem]:
    """``catalog check``'s alignment problems: one per mismatch of every step (and job-type
    variant) that has a script and a valid contract, naming the script's file and line.
    Each script and contract is read once, whatever the number of variants."""
    from pydantic import ValidationError

    from stepkit.catalog.models import contract_for, spec_for
    from stepkit.catalog.records import Problem
    from stepkit.errors import InterfaceFileError

    problems = []
    scripted = [
        (info, script)
        for info in catalog.steps()
        if (script := info.components.get("script")) is not None
        and (workspace is None or script.workspace_id == workspace)
    ]
    # what each main reads, from the scripts' summaries (read once, in parallel, and kept)
    summaries = catalog.session.summaries(script.location for _, script in scripted)
    for info, script in scripted:
        found = summaries.get(script.location, {}).get("reads")
        reads = Reads.from_facts(found) if found else None
        if reads is None or not reads.reads:  # a main that reads nothing by name aligns
            continue
        try:
            contract = contract_for(catalog, info)
        except (ValidationError, KeyError, TypeError, InterfaceFileError):
            continue  # a file that makes no contract is a problem of its own, said apart
        if contract is None:
            continue
        for variant in [info.variant(job) for job in info.job_types] or [info]:
            spec = None  # which inputs are required: asked only where main reads inputs
            if variant.specs and _reads_inputs(reads):
                with contextlib.suppress(ValidationError, KeyError, TypeError, InterfaceFileError):
                    spec = spec_for(catalog, variant, contract)  # else names only
            for mismatch in _mismatches(script.path, reads, contract, spec):
                problems.append(
                    Problem(
                        "alignment",
                        f"{variant.node_name}: {mismatch}",
                        path=mismatch.script,
                        line=mismatch.line,
                        step=variant.node_name,
                    )
                )
    return problems
