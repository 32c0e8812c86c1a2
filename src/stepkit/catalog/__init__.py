"""The step catalog: every component of every step across workspaces, found with ``ast``."""

from __future__ import annotations

from stepkit.catalog.catalog import StepCatalog
from stepkit.catalog.check import find_problems
from stepkit.catalog.models import contract_of, file_facts, interface_of, spec_of
from stepkit.catalog.records import ComponentFile, ListRow, Problem, RefreshReport, StepInfo
from stepkit.catalog.search import SearchResult

__all__ = [
    "ComponentFile",
    "ListRow",
    "Problem",
    "RefreshReport",
    "SearchResult",
    "StepCatalog",
    "StepInfo",
    "contract_of",
    "file_facts",
    "find_problems",
    "interface_of",
    "spec_of",
]
