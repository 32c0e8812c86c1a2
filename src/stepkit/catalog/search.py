"""Ranked step search: every result says how well it matched and why.

Reasons, best first: ``exact`` (the canonical name), ``normalized`` (same words, any case
or separator: ``tabular_preprocessing``), ``abbreviation`` (short forms expanded with
:data:`stepkit.names.ABBREVIATIONS`: ``xgb train`` → ``xgboost training``), ``partial``
(every query word is a word of the name), ``fuzzy`` (rapidfuzz similarity of the words),
``description`` (every query word in the step's description).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

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


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    workspace_id: str
    joined: str  # words joined by "_"
    word_set: frozenset[str]
    description: frozenset[str]


class SearchIndex:
    """The words of every step, prepared once; queries are then cheap."""

    def __init__(self, steps: Iterable[tuple[str, str, str]]) -> None:
        """``steps``: (name, workspace id, description)."""
        self._entries = [
            _Entry(n, ws, "_".join(w := words(n)), frozenset(w), frozenset(words(desc)))
            for n, ws, desc in steps
        ]
        self._joined = [e.joined for e in self._entries]

    def search(
        self, query: str, *, allowed: set[str] | None = None, limit: int = 20
    ) -> list[SearchResult]:
        """The best ``limit`` steps for ``query`` (only names in ``allowed`` when given)."""
        raw = query.strip()
        tokens = words(raw)
        if not tokens:
            return []
        normalized = "_".join(tokens)
        expanded = expand(tokens)
        expanded_joined = "_".join(expanded)
        expanded_set = set(expanded)
        found: dict[str, SearchResult] = {}

        def hit(entry: _Entry, score: float, reason: str) -> None:
            current = found.get(entry.name)
            if current is None or current.score < score:
                found[entry.name] = SearchResult(entry.name, score, reason, entry.workspace_id)

        for entry in self._entries:
            if allowed is not None and entry.name not in allowed:
                continue
            if entry.name == raw:
                hit(entry, SCORES["exact"], "exact")
            elif entry.joined == normalized:
                hit(entry, SCORES["normalized"], "normalized")
            elif entry.joined == expanded_joined:
                hit(entry, SCORES["abbreviation"], "abbreviation")
            elif expanded_set <= entry.word_set:
                # more of the name covered by the query ranks higher
                coverage = len(expanded_set) / len(entry.word_set)
                hit(entry, SCORES["partial"] - 10 * (1 - coverage), "partial")
            elif expanded_set <= entry.description:
                hit(entry, 50.0, "description")
        if len(found) < limit:
            self._fuzzy(expanded_joined, allowed, hit)
        ranked = sorted(found.values(), key=lambda r: (-r.score, r.step_name))
        return ranked[:limit]

    def _fuzzy(
        self,
        text: str,
        allowed: set[str] | None,
        hit: Callable[[_Entry, float, str], None],
    ) -> None:
        from rapidfuzz import fuzz, process

        for _choice, score, i in process.extract(
            text, self._joined, scorer=fuzz.WRatio, limit=50, score_cutoff=FUZZY_CUTOFF
        ):
            entry = self._entries[i]
            if allowed is None or entry.name in allowed:
                # fuzzy never outranks a word match
                hit(entry, round(min(float(score), 100.0) * 0.75, 1), "fuzzy")
