"""Ranked step search: every result says how well it matched and why.

Reasons, best first: ``exact`` (the canonical name), ``normalized`` (same words, any case
or separator: ``tabular_preprocessing``), ``abbreviation`` (short forms expanded with
:data:`stepkit.names.ABBREVIATIONS`: ``xgb train`` → ``xgboost training``), ``partial``
(every query word is a word of the name), ``fuzzy`` (rapidfuzz similarity of the words),
``description`` (every query word in the step's description).
"""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Callable, Iterable, Mapping
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


class SearchIndex:
    """The words of every step, prepared once: an inverted index (word → steps) for the
    word matches, the joined words for the fuzzy one. Small: 10,000 steps take ~2 MB."""

    def __init__(self, steps: Iterable[tuple[str, str, str]]) -> None:
        """``steps``: (name, workspace id, description)."""
        self._names: list[str] = []
        self._workspaces: list[str] = []
        self._joined: list[str] = []  # each name's words joined by "_"
        self._sizes = array("H")  # how many distinct words each name has
        self._position: dict[str, int] = {}
        self._by_joined: dict[str, array[int]] = {}
        self._by_word: dict[str, array[int]] = {}
        self._by_description: dict[str, array[int]] = {}
        for i, (name, workspace_id, description) in enumerate(steps):
            tokens = words(name)
            joined = sys.intern("_".join(tokens))
            self._names.append(name)
            self._workspaces.append(sys.intern(workspace_id))
            self._joined.append(joined)
            self._sizes.append(len(set(tokens)))
            self._position.setdefault(name, i)
            _post(self._by_joined, joined, i)
            for word in set(tokens):
                _post(self._by_word, word, i)
            for word in set(words(description)):
                _post(self._by_description, word, i)

    def search(
        self, query: str, *, allowed: set[str] | None = None, limit: int = 20
    ) -> list[SearchResult]:
        """The best ``limit`` steps for ``query`` (only names in ``allowed`` when given)."""
        raw = query.strip()
        tokens = words(raw)
        if not tokens:
            return []
        expanded = expand(tokens)
        expanded_joined = "_".join(expanded)
        expanded_set = set(expanded)
        found: dict[str, SearchResult] = {}

        def hit(i: int, score: float, reason: str) -> None:
            name = self._names[i]
            if allowed is not None and name not in allowed:
                return
            current = found.get(name)
            if current is None or current.score < score:
                found[name] = SearchResult(name, score, reason, self._workspaces[i])

        # each reason scores below the one before: the best reason of a step comes first
        if (exact := self._position.get(raw)) is not None:
            hit(exact, SCORES["exact"], "exact")
        for i in self._by_joined.get("_".join(tokens), ()):
            hit(i, SCORES["normalized"], "normalized")
        for i in self._by_joined.get(expanded_joined, ()):
            hit(i, SCORES["abbreviation"], "abbreviation")
        for i in _having_all(self._by_word, expanded_set):
            # more of the name covered by the query ranks higher
            coverage = len(expanded_set) / self._sizes[i]
            hit(i, SCORES["partial"] - 10 * (1 - coverage), "partial")
        for i in _having_all(self._by_description, expanded_set):
            hit(i, 50.0, "description")
        if len(found) < limit:
            self._fuzzy(expanded_joined, hit)
        ranked = sorted(found.values(), key=lambda r: (-r.score, r.step_name))
        return ranked[:limit]

    def _fuzzy(self, text: str, hit: Callable[[int, float, str], None]) -> None:
        from rapidfuzz import fuzz, process

        for _choice, score, i in process.extract(
            text, self._joined, scorer=fuzz.WRatio, limit=50, score_cutoff=FUZZY_CUTOFF
        ):
            # fuzzy never outranks a word match
            hit(i, round(min(float(score), 100.0) * 0.75, 1), "fuzzy")


def _post(postings: dict[str, array[int]], key: str, i: int) -> None:
    found = postings.get(key)
    if found is None:
        postings[sys.intern(key)] = found = array("I")
    found.append(i)


def _having_all(postings: Mapping[str, array[int]], wanted: set[str]) -> list[int]:
    """The steps whose words include every word of ``wanted``, in index order."""
    lists = sorted((postings.get(word, ()) for word in wanted), key=len)
    if not lists or not lists[0]:
        return []
    common = set(lists[0])
    for other in lists[1:]:
        common.intersection_update(other)
        if not common:
            return []
    return sorted(common)
