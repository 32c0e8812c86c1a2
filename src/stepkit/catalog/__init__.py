"""The step catalog: every component of every step across workspaces, found with ``ast``."""

from __future__ import annotations

from stepkit.catalog.catalog import StepCatalog
from stepkit.catalog.index import RefreshReport
from stepkit.catalog.records import ComponentFile, Problem, StepInfo
from stepkit.catalog.search import SearchResult

__all__ = ["ComponentFile", "Problem", "RefreshReport", "SearchResult", "StepCatalog", "StepInfo"]
