"""Ranked step search over the index: every result says how well it matched and why.

A query is a few words in any order. Each word matches a word of a step's name (or of its
description) as it is, by its form (``calibrate`` ~ ``calibration``: the same :func:`stem`),
through an abbreviation either way (:data:`stepkit.names.ABBREVIATIONS`: ``xgb`` →
``xgboost``, ``evaluation`` ← ``eval``), or — only for a word no step has, a typo — by
spelling similar above :data:`FUZZY_FLOOR`. A step is a hit when every word of the query
matches; its reasons name each match (``abbreviation xgb → xgboost in name``,
``word calibrat* in name``, ``typo tabulr ≈ tabular``).

Kinds, best first: ``exact`` (the canonical name), ``normalized`` (the same words in the
same order, any case or separator: ``tabular_preprocessing``), ``abbreviation`` (the same
once short forms are expanded), ``partial`` (every query word in the name, any order or
form; more of the name covered ranks higher), ``name and description``, ``description``,
``fuzzy``. The words are kept in the index (``listing.words``,
``listing.description_words``): a search reads, never builds; a fuzzy pass reads the
names' words once per index version.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from rapidfuzz import fuzz, process

from stepkit.names import ABBREVIATIONS, pascal_to_snake

_SPLIT: Final = re.compile(r"[^a-z0-9]+")
SCORES: Final = {"exact": 100.0, "normalized": 95.0, "abbreviation": 90.0}
#: How alike (0–100) a typed word and a name word must be spelled to match, tried only
#: for a word no step has: ``tabulr`` finds ``tabular``, while ``eval`` (a word steps
#: have) never pulls in ``validation``.
FUZZY_FLOOR: Final = 80.0
#: Endings removed to find a word's stem, longest first (the first that leaves three
#: letters or more): ``calibrate``, ``calibration``, ``calibrator`` share ``calibr``.
_ENDINGS: Final = (
    "izations", "ization", "ations", "ation", "ators", "ator", "ates", "ated", "ate",
    "ings", "ing", "ions", "ion", "ments", "ment", "ers", "er", "ors", "or",
    "ies", "ied", "es", "ed", "s", "e",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One hit: the step, a score in 0–100, the kind of match and what matched."""

    step_name: str
    score: float
    reason: str
    workspace_id: str
    matches: tuple[str, ...] = field(default=())

    @property
    def explanation(self) -> str:
        """What matched, for people: ``abbreviation xgb → xgboost in name; word train…``."""
        return "; ".join(self.matches) or self.reason


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


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The part of ``word`` its forms share: ``evaluation``, ``evaluate`` → ``evalu``;
    ``running`` → ``run``; ``models`` → ``model``. Words with digits and short words stay
    whole."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            base = word[: -len(ending)]
            if ending in ("ies", "ied"):
                return base + "y"
            if ending == "s" and base.endswith(("s", "u", "i")):
                return word  # class, status, analysis
            if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "aeiouls":
                base = base[:-1]  # running → run, mapped → map
            return base
    return word


# -- one query word against the words of a name ----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Term:
    """One word of the query and the word(s) it stands for (two for ``rf``)."""

    typed: str
    wanted: tuple[str, ...]

    @property
    def marks(self) -> tuple[str, ...]:
        """How a name holding a match begins one of its words (``_calibr``, ``_eval``):
        the index is filtered on these, the rows found are matched word by word."""
        found = {self.typed, *(stem(w) for w in self.wanted)}
        found.update(s for w in self.wanted for s in _short_forms().get(stem(w), ()))
        found.update(s for s, long in ABBREVIATIONS.items() if long == "_".join(self.wanted))
        return tuple(sorted("_" + m for m in found))


@lru_cache(maxsize=1)
def _short_forms() -> Mapping[str, tuple[str, ...]]:
    """Short forms by the stem of what they stand for (``evalu`` → ``eval``): a name may
    hold the short form of any form of a word."""
    found: dict[str, list[str]] = {}
    for short, long in ABBREVIATIONS.items():
        if "_" not in long:
            found.setdefault(stem(long), []).append(short)
    return {key: tuple(shorts) for key, shorts in found.items()}


def _terms(tokens: list[str]) -> list[_Term]:
    return [_Term(t, tuple(ABBREVIATIONS.get(t, t).split("_"))) for t in tokens]


def _same_word(wanted: str, candidate: str) -> bool:
    """``candidate`` is ``wanted``, a short form of it, one of its forms, or (for a typed
    word of four letters or more) a word it begins: ``preproc`` → ``preprocessing``."""
    if candidate == wanted:
        return True
    if candidate in ABBREVIATIONS and "_" not in ABBREVIATIONS[candidate]:
        return _same_word(wanted, ABBREVIATIONS[candidate])  # eval: evaluation, evaluate
    if len(wanted) >= 4 and candidate.startswith(wanted):
        return True
    key = stem(wanted)
    if not candidate.startswith(key[:3]):
        return False
    other = stem(candidate)
    short, long = sorted((key, other), key=len)
    # the same stem, or one a longer form of the other (register ~ registration)
    return other == key or (len(short) >= 5 and long.startswith(short))


def _match(term: _Term, pool: Iterable[str]) -> list[tuple[str, str]] | None:
    """(wanted word, the word of ``pool`` it matched) for each word the term stands for,
    or None when one has no match. The word as typed counts too (a name with ``rf``)."""
    pool = tuple(pool)
    if term.typed in pool:
        return [(term.typed, term.typed)]
    found = []
    for wanted in term.wanted:
        exact = wanted if wanted in pool else None
        got = exact or next((c for c in pool if _same_word(wanted, c)), None)
        if got is None:
            return None
        found.append((wanted, got))
    return found


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


def _describe(term: _Term, pairs: list[tuple[str, str]], where: str) -> str:
    """``word model in name``, ``word calibrat* in name``, ``abbreviation xgb → xgboost
    in name``, ``abbreviation eval → evaluation in name`` (the short form in the name)."""
    got = [g for _, g in pairs]
    if got == [term.typed]:
        return f"word {term.typed} in {where}"
    if term.typed not in term.wanted:
        return f"abbreviation {term.typed} → {' '.join(got)} in {where}"
    ((wanted, found),) = pairs
    if found == wanted:
        return f"word {wanted} in {where}"
    if found in ABBREVIATIONS:
        return f"abbreviation {found} → {ABBREVIATIONS[found]} in {where}"
    return f"word {_common_prefix(wanted, found) or stem(wanted)}* in {where}"


@dataclass(frozen=True, slots=True)
class _Row:
    """A row of the index as a search reads it (the description split only if needed)."""

    name: str
    workspace_id: str
    words: tuple[str, ...]
    description_words: str = ""

    @property
    def description(self) -> tuple[str, ...]:
        return tuple(filter(None, self.description_words.split("_")))


def _match_row(row: _Row, terms: list[_Term]) -> tuple[str, float, tuple[str, ...]] | None:
    """(kind, score, what matched) when every term matches the row's name or description."""
    in_name: set[str] = set()
    forms = 0
    details: list[str] = []
    described = 0
    description: tuple[str, ...] | None = None
    for term in terms:
        for where in ("name", "description"):
            if where == "name":
                pool = row.words
            else:
                description = row.description if description is None else description
                pool = description
            pairs = _match(term, pool)
            if pairs is not None:
                details.append(_describe(term, pairs, where))
                if where == "name":
                    in_name.update(got for _, got in pairs)
                    forms += sum(got != w and got != term.typed for w, got in pairs)
                else:
                    described += 1
                break
        else:
            return None
    if not described:
        coverage = len(in_name) / max(len(set(row.words)), 1)
        return "partial", round(70 + 15 * coverage - min(forms, 5), 1), tuple(details)
    if described == len(terms):
        return "description", 50.0, tuple(details)
    score = round(55 + 10 * (1 - described / len(terms)), 1)
    return "name and description", score, tuple(details)


# -- the search --------------------------------------------------------------------------------


class Searcher:
    """Searches the index; keeps the names' words after the first fuzzy pass (a view
    makes a new one whenever the index changes)."""

    def __init__(self) -> None:
        self._names: list[str] | None = None
        self._joined: list[str] = []
        self._workspaces: dict[str, str] = {}

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
        terms = _terms(tokens)
        found: dict[str, SearchResult] = {}

        def hit(result: SearchResult) -> None:
            if allowed is not None and result.step_name not in allowed:
                return
            current = found.get(result.step_name)
            if current is None or current.score < result.score:
                found[result.step_name] = result

        expanded = "_".join(w for term in terms for w in term.wanted)
        abbreviated = tuple(
            _describe(t, list(zip(t.wanted, t.wanted, strict=True)), "name")
            for t in terms
            if t.typed not in t.wanted
        )
        for column, value, kind, details in (
            ("name", query.strip(), "exact", ("exact name",)),
            ("words", "_".join(tokens), "normalized", ("same name, other spelling",)),
            ("words", expanded, "abbreviation", abbreviated),
        ):
            sql = f"SELECT name, workspace_id FROM listing WHERE {column} = ?"
            for name, workspace_id in conn.execute(sql, (value,)):
                hit(SearchResult(name, SCORES[kind], kind, workspace_id, details))
        present = _somewhere(conn, terms)
        known = [t for t, here in zip(terms, present, strict=True) if here]
        if known and len(known) == len(terms):  # else no row can hold every word
            for row in _candidates(conn, known):
                matched = _match_row(row, terms)
                if matched is not None:
                    kind, score, details = matched
                    hit(SearchResult(row.name, score, kind, row.workspace_id, details))
        if len(known) < len(terms) or not found:  # a word no step has: a typo, perhaps
            unknown = [t for t, here in zip(terms, present, strict=True) if not here]
            for result in self._fuzzy(conn, terms, first=unknown):
                hit(result)
        return sorted(found.values(), key=lambda r: (-r.score, r.step_name))[:limit]

    def _fuzzy(
        self, conn: sqlite3.Connection, terms: list[_Term], *, first: list[_Term]
    ) -> list[SearchResult]:
        """Steps whose name has, for every query word, the word itself or a form of it,
        or — for a word no name has — a word spelled like it (at least the floor). The
        terms in ``first`` (no step has them) are looked at first: one with no look-alike
        either ends the search."""
        Found = dict[str, tuple[list[tuple[str, str]], float, bool]]  # name → match, typo?
        per_term: list[Found] = []
        ordered = [*first, *(t for t in terms if t not in first)]
        for term in ordered:
            best: Found = {}
            for row in [] if term in first else _candidates(conn, [term]):
                pairs = _match(term, row.words)
                if pairs is not None:
                    best[row.name] = (pairs, 100.0, False)
            if not best:
                best = self._spelled_like(conn, term.typed)
            if not best:
                return []
            per_term.append(best)
        if not any(typo for best in per_term for _, _, typo in best.values()):
            return []  # every word matched as it is: the word pass found all there is
        order = {term: n for n, term in enumerate(ordered)}  # equal terms match alike
        common = set.intersection(*(set(best) for best in per_term))
        results = []
        for name in sorted(common):
            details, similarity = [], []
            for term in terms:
                pairs, score, typo = per_term[order[term]][name]
                similarity.append(score)
                if typo:
                    details.append(f"typo {term.typed} ≈ {pairs[0][1]}")
                else:
                    details.append(_describe(term, pairs, "name"))
            score = round(0.7 * sum(similarity) / len(similarity), 1)
            workspace_id = self._workspaces[name]
            results.append(SearchResult(name, score, "fuzzy", workspace_id, tuple(details)))
        return results

    def _spelled_like(
        self, conn: sqlite3.Connection, typed: str
    ) -> dict[str, tuple[list[tuple[str, str]], float, bool]]:
        """Names holding a word spelled like ``typed`` (similarity at least the floor).

        The names' words are screened together first (rapidfuzz's partial ratio over each
        name's words, a bound a little under the floor); the few names that pass are then
        compared word by word."""
        names, joined = self._index(conn)
        found: dict[str, tuple[list[tuple[str, str]], float, bool]] = {}
        for _, _, i in process.extract(
            typed, joined, scorer=fuzz.partial_ratio, score_cutoff=FUZZY_FLOOR - 15, limit=None
        ):
            scored = [(fuzz.ratio(typed, word), word) for word in joined[i].split("_")]
            score, word = max(scored)
            if score >= FUZZY_FLOOR:
                found[names[i]] = ([(typed, word)], float(score), True)
        return found

    def _index(self, conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
        """Every step's name and its words (read once per index version)."""
        if self._names is None:
            sql = "SELECT name, workspace_id, words FROM listing ORDER BY name"
            rows = conn.execute(sql).fetchall()
            self._names = [name for name, _, _ in rows]
            self._joined = [words for _, _, words in rows]
            self._workspaces = {name: workspace_id for name, workspace_id, _ in rows}
        return self._names, self._joined


_ANY_MARK = "(instr('_' || words, ?) > 0 OR instr('_' || description_words, ?) > 0)"


def _somewhere(conn: sqlite3.Connection, terms: list[_Term]) -> list[bool]:
    """For each term, whether a step's name or description has a word beginning like one
    of its matches (a quick test, in one pass, for whether a typed word is a typo)."""
    tests = ["max(" + " OR ".join([_ANY_MARK] * len(t.marks)) + ")" for t in terms]
    params = [m for t in terms for m in t.marks for _ in (0, 1)]
    row = conn.execute(f"SELECT {', '.join(tests)} FROM listing", params).fetchone()
    return [bool(value) for value in row] if row else [False] * len(terms)


def _candidates(conn: sqlite3.Connection, terms: list[_Term]) -> list[_Row]:
    """Rows with, for every term, a word beginning like one of its matches."""
    where = " AND ".join("(" + " OR ".join([_ANY_MARK] * len(t.marks)) + ")" for t in terms)
    params = [m for t in terms for m in t.marks for _ in (0, 1)]
    sql = f"SELECT name, workspace_id, words, description_words FROM listing WHERE {where}"
    return [
        _Row(name, ws, tuple(text.split("_")), desc)
        for name, ws, text, desc in conn.execute(sql, params)
    ]
