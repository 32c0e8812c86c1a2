"""Ranked step search over the index: every result says how well it matched and why.

Reasons, best first: ``exact`` (the canonical name), ``normalized`` (same words, any case
or separator: ``tabular_preprocessing``), ``abbreviation`` (short forms expanded with
:data:`stepkit.names.ABBREVIATIONS`: ``xgb train`` → ``xgboost training``), ``partial``
(every query word is a word of the name), ``fuzzy`` (rapidfuzz similarity of the words),
``description`` (every query word in the step's description). The words are kept in the
index (``listing.words``, ``listing.description_words``), so a first search reads, never
builds.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from rapidfuzz import fuzz, process

from stepkit.names import ABBREVIATIONS, pascal_to_snake

_SPLIT: Final = re.compile(r"[^a-z0-9]+")
SCORES: Final = {"exact": 100.0, "normalized": 95.0, "abbreviation": 90.0, "partial": 80.0}
FUZZY_CUTOFF: Final = 60.0


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One hit: the step, a score in 0–100 and the reason it matched."""

    step_name: str
    score: float
    reason: str
    workspace_id: str


def words(text: str) -> list[str]:
    """Lower-case words of a name or query: PascalCase and separators both split."""
    snake = pascal_to_snake(text) if any(c.isupper() for c in text) else text
    return [w for w in _SPLIT.split(snake.lower()) if w]


def expand(tokens: Iterable[str]) -> list[str]:
    """Each short form replaced by what it stands for (``rf`` → ``random``, ``forest``)."""
    out: list[str] = []
    for token in tokens:
        out.extend(ABBREVIATIONS.get(token, token).split("_"))
    return out


class Searcher:
    """Searches the index; keeps the names' words after the first fuzzy pass (a view
    makes a new one whenever the index changes)."""

    def __init__(self) -> None:
        self._choices: tuple[list[str], list[str], list[str]] | None = None

    def search(
        self,
        conn: sqlite3.Connection,
        query: str,
        *,
        allowed: set[str] | None = None,
        limit: int = 20,
    ) -> list[SearchResult]:
        """The best ``limit`` steps for ``query`` (only names in ``allowed`` when given)."""
        tokens = words(query.strip())
        if not tokens:
            return []
        expanded = expand(tokens)
        found: dict[str, SearchResult] = {}

        def hit(name: str, workspace_id: str, score: float, reason: str) -> None:
            if allowed is not None and name not in allowed:
                return
            current = found.get(name)
            if current is None or current.score < score:
                found[name] = SearchResult(name, score, reason, workspace_id)

        # each reason scores below the one before: the best reason of a step comes first
        for column, value, reason in (
            ("name", query.strip(), "exact"),
            ("words", "_".join(tokens), "normalized"),
            ("words", "_".join(expanded), "abbreviation"),
        ):
            for name, workspace_id in conn.execute(
                f"SELECT name, workspace_id FROM listing WHERE {column} = ?", (value,)
            ):
                hit(name, workspace_id, SCORES[reason], reason)
        wanted = sorted(set(expanded))
        having = " AND ".join("instr('_' || {0} || '_', ?) > 0" for _ in wanted)
        marks = [f"_{w}_" for w in wanted]
        for column, reason in (("words", "partial"), ("description_words", "description")):
            for name, workspace_id, count in conn.execute(
                f"SELECT name, workspace_id, word_count FROM listing WHERE {having.format(column)}",
                marks,
            ):
                # more of the name covered by the query ranks higher
                coverage = len(wanted) / count
                score = SCORES["partial"] - 10 * (1 - coverage) if reason == "partial" else 50.0
                hit(name, workspace_id, score, reason)
        if len(found) < limit:
            names, spaces, joined = self._fuzzy_choices(conn)
            for _choice, score, i in process.extract(
                "_".join(expanded), joined, scorer=fuzz.WRatio, limit=50, score_cutoff=FUZZY_CUTOFF
            ):
                # fuzzy never outranks a word match
                hit(names[i], spaces[i], round(min(float(score), 100.0) * 0.75, 1), "fuzzy")
        return sorted(found.values(), key=lambda r: (-r.score, r.step_name))[:limit]

    def _fuzzy_choices(self, conn: sqlite3.Connection) -> tuple[list[str], list[str], list[str]]:
        if self._choices is None:
            names: list[str] = []
            spaces: list[str] = []
            joined: list[str] = []
            sql = "SELECT name, workspace_id, words FROM listing ORDER BY name"
            for name, workspace_id, text in conn.execute(sql):
                names.append(name)
                spaces.append(workspace_id)
                joined.append(text)
            self._choices = (names, spaces, joined)
        return self._choices
