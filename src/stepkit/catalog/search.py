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
``listing.description_words``, and an index holding both): a view reads them once per
index version, and its searches match them in memory.
"""

from __future__ import annotations

import re
import sqlite3
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate
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


@lru_cache(maxsize=256)
def _pattern(term: _Term) -> re.Pattern[str]:
    """Any of a term's marks."""
    return re.compile("|".join(map(re.escape, term.marks)))


class Searcher:
    """Searches the listing's words, read once (a view makes a new searcher whenever the
    index changes): every row's words and description words are one text, a line a row,
    in which each query word's marks are found at once."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        rows = conn.execute(  # what every search needs of a row (a scan of a narrow index)
            "SELECT name, '_' || words || ' _' || description_words FROM listing ORDER BY name"
        ).fetchall()
        self.names: list[str] = [name for name, _ in rows]
        self.lines: list[str] = [line for _, line in rows]
        self.text = "\n".join(self.lines)
        self._starts: list[int] | None = None
        self._joined: list[str] | None = None
        self._workspaces: dict[str, str] | None = None

    def workspace_of(self, name: str) -> str:
        """The workspace a hit is listed in (read once, when the first hit comes)."""
        if self._workspaces is None:
            self._workspaces = dict(self.conn.execute("SELECT name, workspace_id FROM listing"))
        return self._workspaces.get(name, "")  # "": gone since, by another process's change

    @property
    def starts(self) -> list[int]:
        """Where each row's line begins in :attr:`text`."""
        if self._starts is None:
            self._starts = list(accumulate((len(line) + 1 for line in self.lines), initial=0))
        return self._starts

    @property
    def joined(self) -> list[str]:
        """Each name's words (``tabular_preprocessing``), for a fuzzy pass."""
        if self._joined is None:
            self._joined = [line[1 : line.index(" ")] for line in self.lines]
        return self._joined

    def _rows_with(self, term: _Term) -> set[int]:
        """The rows with a word (of the name or description) beginning like one of the
        term's marks."""
        starts = self.starts
        return {bisect_right(starts, m.start()) - 1 for m in _pattern(term).finditer(self.text)}

    def _row(self, i: int) -> _Row:
        name = self.names[i]
        description = self.lines[i].partition(" _")[2]
        return _Row(name, self.workspace_of(name), self._words(i), description)

    def _words(self, i: int) -> tuple[str, ...]:
        line = self.lines[i]
        return tuple(line[1 : line.index(" ")].split("_"))

    def search(
        self, query: str, *, allowed: set[str] | None = None, limit: int = 20
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
        same = self._named(query.strip(), column="name")
        for names, kind, details in (
            (same, "exact", ("exact name",)),
            (self._named("_".join(tokens)), "normalized", ("same name, other spelling",)),
            (self._named(expanded), "abbreviation", abbreviated),
        ):
            for name in names:
                hit(SearchResult(name, SCORES[kind], kind, self.workspace_of(name), details))
        unknown = [t for t in terms if not _pattern(t).search(self.text)]
        if not unknown:  # else no row can hold every word
            for i in sorted(set.intersection(*map(self._rows_with, terms))):
                matched = _match_row(row := self._row(i), terms)
                if matched is not None:
                    kind, score, details = matched
                    hit(SearchResult(row.name, score, kind, row.workspace_id, details))
        if unknown or not found:  # a word no step has: a typo, perhaps
            for result in self._fuzzy(terms, first=unknown):
                hit(result)
        return sorted(found.values(), key=lambda r: (-r.score, r.step_name))[:limit]

    def _named(self, value: str, *, column: str = "words") -> list[str]:
        sql = f"SELECT name FROM listing WHERE {column} = ? ORDER BY name"
        return [name for (name,) in self.conn.execute(sql, (value,))]

    def _fuzzy(self, terms: list[_Term], *, first: list[_Term]) -> list[SearchResult]:
        """Steps whose name has, for every query word, the word itself or a form of it,
        or — for a word no name has — a word spelled like it (at least the floor). The
        terms in ``first`` (no step has them) are looked at first: one with no look-alike
        either ends the search."""
        Found = dict[str, tuple[list[tuple[str, str]], float, bool]]  # name → match, typo?
        per_term: list[Found] = []
        ordered = [*first, *(t for t in terms if t not in first)]
        for term in ordered:
            best: Found = {}
            for i in () if term in first else sorted(self._rows_with(term)):
                pairs = _match(term, self._words(i))
                if pairs is not None:
                    best[self.names[i]] = (pairs, 100.0, False)
            if not best:
                best = self._spelled_like(term.typed)
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
            workspace_id = self.workspace_of(name)
            results.append(SearchResult(name, score, "fuzzy", workspace_id, tuple(details)))
        return results

    def _spelled_like(self, typed: str) -> dict[str, tuple[list[tuple[str, str]], float, bool]]:
        """Names holding a word spelled like ``typed`` (similarity at least the floor).

        The names' words are screened together first (rapidfuzz's partial ratio over each
        name's words, a bound a little under the floor); the few names that pass are then
        compared word by word."""
        found: dict[str, tuple[list[tuple[str, str]], float, bool]] = {}
        for _, _, i in process.extract(
            typed, self.joined, scorer=fuzz.partial_ratio, score_cutoff=FUZZY_FLOOR - 15, limit=None
        ):
            score, word = max((fuzz.ratio(typed, word), word) for word in self._words(i))
            if score >= FUZZY_FLOOR:
                found[self.names[i]] = ([(typed, word)], float(score), True)
        return found
