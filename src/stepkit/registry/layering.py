"""The layered registry: core definitions, and each developer workspace's additions and overrides.

The last workspace of a project is the core. A developer workspace's view is the core
plus that workspace's own layer: steps it adds, and fields it explicitly overrides.
Redefining a core step without saying so is a conflict, reported with both places.

A broken registry hurts only its own workspace: a file that cannot be read, or an entry
that conflicts, becomes a :attr:`Registry.problems` entry and is left out, so every other
workspace (and every pipeline that does not use those steps) keeps working. ``strict=True``
raises the first problem instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from stepkit.errors import (
    RegistryConflictError,
    RegistryFileError,
    UnknownStepError,
    UnknownWorkspaceError,
)
from stepkit.names import STANDARD_JOB_TYPES, close_matches
from stepkit.registry.context import active_workspace
from stepkit.registry.definitions import (
    Origin,
    RegistryEntry,
    StepDefinition,
    apply_override,
    build_definition,
)
from stepkit.registry.sources import RegistrySource, read_registry

if TYPE_CHECKING:
    from stepkit.project import Project


@dataclass(frozen=True, slots=True)
class Override:
    name: str
    fields: Mapping[str, tuple[Any, Any]]  # field -> (core value, new value)
    origin: Origin


@dataclass(frozen=True, slots=True)
class LayerReport:
    """What one workspace does to the core: ``registry conflicts`` prints these."""

    workspace_id: str
    source: Path | None
    is_core: bool
    defines: tuple[str, ...] = ()  # core: every step; developer: the steps it adds
    overrides: tuple[Override, ...] = ()
    shadows: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> other workspaces


@dataclass(frozen=True, slots=True)
class RegistryProblem:
    """A registry file, or one entry of it, left out of its workspace's view."""

    workspace_id: str
    error: RegistryFileError | RegistryConflictError

    def __str__(self) -> str:
        return f"workspace {self.workspace_id!r}: {self.error}"


class Registry:
    """Step definitions of every workspace of a project, resolved per active workspace."""

    def __init__(
        self,
        sources: Mapping[str, RegistrySource | None],
        order: Sequence[str],
        *,
        problems: Sequence[RegistryProblem] = (),
        strict: bool = False,
    ) -> None:
        """``order`` is the precedence order of workspace ids; its last one is the core.

        ``problems`` are those met while reading the sources; with ``strict`` the first
        problem (met reading or layering) is raised instead of recorded.
        """
        if not order:
            raise ValueError("a registry needs at least one workspace")
        self._order = tuple(order)
        self._sources = dict(sources)
        self._strict = strict
        self._problems = list(problems)
        if strict and self._problems:
            raise self._problems[0].error
        self._core_id = self._order[-1]
        self._sources[self._core_id] = _derived_as_layer(self._sources.get(self._core_id), {})
        self._core = self._build_core()
        for workspace_id in self._order[:-1]:
            self._sources[workspace_id] = _derived_as_layer(
                self._sources.get(workspace_id), self._core
            )
        self._views: dict[str | None, dict[str, StepDefinition]] = {}
        self._classic: dict[str | None, dict[str, Mapping[str, Any]]] = {}
        for workspace_id in self._order[:-1]:
            self._views[workspace_id] = self._build_layer(workspace_id)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        project: Project,
        *,
        use_cache: bool = True,
        strict: bool = False,
        derived: Mapping[str, RegistrySource] | None = None,
    ) -> Registry:
        """Read every workspace's registry file of ``project`` (cached by file stat).

        A file that cannot be read leaves its workspace without a registry layer and is
        recorded in :attr:`problems` (raised with ``strict``). ``derived``: the sources of
        workspaces whose registry is derived from interface files, as the caller already
        read them (the catalog has them in its index); others are read here.
        """
        state_dir = project.state_dir if use_cache else None
        sources: dict[str, RegistrySource | None] = {}
        problems: list[RegistryProblem] = []
        for ws in project.workspaces:
            if ws.registry_file is None:
                sources[ws.id] = None
                continue
            if derived is not None and ws.id in derived:
                sources[ws.id] = derived[ws.id]
                continue
            try:
                sources[ws.id] = read_registry(ws.registry_file, ws.id, state_dir=state_dir)
            except RegistryFileError as exc:
                sources[ws.id] = None
                problems.append(RegistryProblem(ws.id, exc))
        return cls(sources, project.workspace_ids, problems=problems, strict=strict)

    @property
    def problems(self) -> tuple[RegistryProblem, ...]:
        """What was left out, in workspace order: unreadable files and conflicting entries."""
        return tuple(self._problems)

    def _problem(self, workspace_id: str, error: RegistryFileError | RegistryConflictError) -> None:
        if self._strict:
            raise error
        self._problems.append(RegistryProblem(workspace_id, error))

    @classmethod
    def from_dict(
        cls, step_names: Mapping[str, Mapping[str, Any]], *, workspace_id: str = "core"
    ) -> Registry:
        """A one-workspace registry from a classic ``STEP_NAMES`` dict (tests, embedding)."""
        path = Path("<memory>")
        entries = tuple(
            RegistryEntry(name, dict(fields), "define", Origin(workspace_id, path, None))
            for name, fields in step_names.items()
        )
        return cls({workspace_id: RegistrySource(path, workspace_id, entries)}, [workspace_id])

    def _build_core(self) -> dict[str, StepDefinition]:
        core: dict[str, StepDefinition] = {}
        source = self._sources.get(self._core_id)
        if source is None:
            return core
        for entry in source.entries:
            if entry.kind == "override":
                self._problem(
                    self._core_id,
                    RegistryFileError(
                        entry.origin.path,
                        f"step {entry.name!r}: the core workspace has nothing to override;"
                        " define the step instead",
                        line=entry.origin.line,
                    ),
                )
                continue
            existing = core.get(entry.name)
            if existing is not None:
                self._problem(self._core_id, _conflict(entry, existing, source))
                continue
            core[entry.name] = build_definition(entry)
        return core

    def _build_layer(self, workspace_id: str) -> dict[str, StepDefinition]:
        view = dict(self._core)
        source = self._sources.get(workspace_id)
        if source is None:
            return view
        added: set[str] = set()
        for entry in source.entries:
            existing = view.get(entry.name)
            if entry.kind == "define":
                if existing is not None:
                    self._problem(workspace_id, _conflict(entry, existing, source))
                    continue
                view[entry.name] = build_definition(entry)
                added.add(entry.name)
            else:
                if existing is None:
                    self._problem(
                        workspace_id,
                        RegistryFileError(
                            entry.origin.path,
                            f"step {entry.name!r} overrides a step that is not defined.",
                            line=entry.origin.line,
                            suggestions=close_matches(entry.name, view),
                        ),
                    )
                    continue
                view[entry.name] = apply_override(existing, entry)
        return view

    # -- lookups -----------------------------------------------------------------------------

    @property
    def workspace_ids(self) -> tuple[str, ...]:
        """Workspace ids in precedence order; the last is the core."""
        return self._order

    @property
    def core_id(self) -> str:
        return self._core_id

    def view(self, workspace_id: str | None = None) -> Mapping[str, StepDefinition]:
        """Every definition as seen from a workspace (``None``: the active one, else core)."""
        ws = active_workspace(workspace_id)
        if ws is None or ws == self._core_id:
            return self._core
        view = self._views.get(ws)
        if view is None:
            raise UnknownWorkspaceError(ws, self._order)
        return view

    def classic(self, workspace_id: str | None = None) -> Mapping[str, Mapping[str, Any]]:
        """The view as a classic ``STEP_NAMES`` dict of read-only entries (built once per view)."""
        ws = active_workspace(workspace_id)
        key = None if ws == self._core_id else ws
        cached = self._classic.get(key)
        if cached is None:
            cached = {name: MappingProxyType(d.as_dict()) for name, d in self.view(ws).items()}
            self._classic[key] = cached
        return cached

    def get(self, name: str, workspace_id: str | None = None) -> StepDefinition:
        """The definition of ``name``; an unknown name suggests close ones."""
        view = self.view(workspace_id)
        try:
            return view[name]
        except KeyError:
            raise UnknownStepError(name, view) from None

    def __contains__(self, name: object) -> bool:
        return name in self.view()

    def names(self, workspace_id: str | None = None) -> list[str]:
        """Step names of a view, sorted."""
        return sorted(self.view(workspace_id))

    def all_names(self) -> set[str]:
        """Every step name any workspace defines."""
        names = set(self._core)
        for view in self._views.values():
            names.update(view)
        return names

    def job_types(self, workspace_id: str | None = None) -> tuple[str, ...]:
        """The standard job types plus every custom one a definition declares."""
        custom = {jt for d in self.view(workspace_id).values() for jt in d.job_types}
        return (*STANDARD_JOB_TYPES, *sorted(custom - set(STANDARD_JOB_TYPES)))

    def source(self, workspace_id: str) -> RegistrySource | None:
        if workspace_id not in self._order:
            raise UnknownWorkspaceError(workspace_id, self._order)
        return self._sources.get(workspace_id)

    # -- layering report -----------------------------------------------------------------------

    def reports(self) -> list[LayerReport]:
        """Per workspace, in precedence order: what it adds, overrides and shadows."""
        added_by: dict[str, list[str]] = {}
        for ws in self._order[:-1]:
            source = self._sources.get(ws)
            for entry in source.entries if source else ():
                if entry.kind == "define":
                    added_by.setdefault(entry.name, []).append(ws)
        out: list[LayerReport] = []
        for ws in self._order:
            source = self._sources.get(ws)
            if ws == self._core_id:
                out.append(
                    LayerReport(
                        ws, source.path if source else None, True, tuple(sorted(self._core))
                    )
                )
                continue
            adds: list[str] = []
            overrides: list[Override] = []
            for entry in source.entries if source else ():
                if entry.kind == "define":
                    adds.append(entry.name)
                    continue
                base = self._core.get(entry.name)
                changed = {
                    key: (getattr(base, key, None) if base else None, value)
                    for key, value in entry.fields.items()
                }
                overrides.append(Override(entry.name, changed, entry.origin))
            shadows = {
                name: tuple(other for other in added_by[name] if other != ws)
                for name in adds
                if len(added_by.get(name, ())) > 1
            }
            out.append(
                LayerReport(
                    ws,
                    source.path if source else None,
                    False,
                    tuple(sorted(adds)),
                    tuple(overrides),
                    shadows,
                )
            )
        return out


def _derived_as_layer(
    source: RegistrySource | None, core: Mapping[str, StepDefinition]
) -> RegistrySource | None:
    """A source's ``derive`` entries (rows of interface files, which have no override form)
    as a layer: a step the core defines is overridden where the row differs, others defined."""
    if source is None or all(e.kind != "derive" for e in source.entries):
        return source
    entries = []
    for entry in source.entries:
        base = core.get(entry.name) if entry.kind == "derive" else None
        if base is None:
            kind = "define" if entry.kind == "derive" else entry.kind
            entries.append(RegistryEntry(entry.name, entry.fields, kind, entry.origin))
            continue
        differs = {
            key: value
            for key, value in entry.fields.items()
            if getattr(base, key) != (tuple(value) if key == "job_types" else value)
        }
        entries.append(RegistryEntry(entry.name, differs, "override", entry.origin))
    return RegistrySource(source.path, source.workspace_id, tuple(entries))


def _conflict(
    entry: RegistryEntry, existing: StepDefinition, source: RegistrySource
) -> RegistryConflictError:
    return RegistryConflictError(
        entry.name,
        path=entry.origin.path,
        line=entry.origin.line,
        existing_path=existing.origin.path if existing.origin else source.path,
        existing_line=existing.origin.line if existing.origin else None,
    )
