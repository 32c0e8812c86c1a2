"""Wiring: which upstream output feeds each dependency of a node, matched through the specs.

Each (dependency, upstream output) pair gets a score from what the specs declare:

- the dependency and output types must be compatible, else the pair is out;
- the logical name equals the output's name or one of its aliases: +0.5;
- the upstream step is one of the dependency's compatible sources: +0.3;
- semantic keywords found in the output's name and aliases: +0.1 each, at most +0.2.

A pair scoring at least :data:`THRESHOLD` is a match; the best match wins, and two matches
within :data:`TIE_MARGIN` of each other are reported as ambiguous, with their candidates.
Works on anything shaped like :mod:`stepkit.components` specs (see the protocols below).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

THRESHOLD: Final = 0.5
TIE_MARGIN: Final = 0.05

#: Dependency types an output of another type may still satisfy.
_COMPATIBLE: Final[Mapping[str, frozenset[str]]] = {
    "training_data": frozenset({"processing_output", "training_data"}),
    "processing_output": frozenset({"processing_output", "training_data"}),
    "model_artifacts": frozenset({"model_artifacts"}),
    "hyperparameters": frozenset({"hyperparameters", "processing_output"}),
}


class DependencyLike(Protocol):
    @property
    def logical_name(self) -> str: ...
    @property
    def required(self) -> bool: ...
    @property
    def compatible_sources(self) -> Sequence[str]: ...
    @property
    def semantic_keywords(self) -> Sequence[str]: ...
    @property
    def dependency_type(self) -> object: ...


class OutputLike(Protocol):
    @property
    def logical_name(self) -> str: ...
    @property
    def aliases(self) -> Sequence[str]: ...
    @property
    def output_type(self) -> object: ...


@dataclass(frozen=True, slots=True)
class Candidate:
    """One upstream output considered for a dependency, with its score and why."""

    node: str
    step: str
    output: str
    score: float
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.node}.{self.output} ({self.score:.2f}: {', '.join(self.reasons)})"


@dataclass(frozen=True, slots=True)
class Wire:
    """A dependency of ``node`` satisfied by ``source.output``."""

    node: str
    dependency: str
    source: str
    output: str
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WiringIssue:
    """A dependency left unwired (``missing``) or with two equally good sources (``ambiguous``)."""

    kind: str  # "missing" | "ambiguous"
    node: str
    dependency: str
    required: bool
    candidates: tuple[Candidate, ...]

    def __str__(self) -> str:
        need = "required" if self.required else "optional"
        if self.kind == "ambiguous":
            options = "; ".join(str(c) for c in self.candidates)
            return f"{self.node}: {need} input {self.dependency!r} is ambiguous between {options}"
        near = (
            f" (closest: {'; '.join(str(c) for c in self.candidates)})" if self.candidates else ""
        )
        return f"{self.node}: no upstream output satisfies {need} input {self.dependency!r}{near}"


@dataclass(frozen=True, slots=True)
class Upstream:
    """An upstream node as wiring sees it: its node name, base step and declared outputs."""

    node: str
    step: str
    outputs: Sequence[OutputLike]


def _type_name(value: object) -> str:
    return str(getattr(value, "value", value)).lower()


def _tokens(*names: str) -> set[str]:
    out: set[str] = set()
    for name in names:
        out.update(t for t in re.split(r"[^a-z0-9]+", name.lower()) if t)
    return out


def score(dependency: DependencyLike, upstream: Upstream, output: OutputLike) -> Candidate | None:
    """The candidate for one (dependency, output) pair, or None when the types clash."""
    dep_type, out_type = _type_name(dependency.dependency_type), _type_name(output.output_type)
    if out_type not in _COMPATIBLE.get(dep_type, frozenset({dep_type})):
        return None
    total = 0.0
    reasons: list[str] = []
    names = [output.logical_name, *output.aliases]
    if dependency.logical_name in names:
        total += 0.5
        reasons.append(
            "same logical name" if dependency.logical_name == output.logical_name else "alias"
        )
    if upstream.step in dependency.compatible_sources:
        total += 0.3
        reasons.append(f"{upstream.step} is a compatible source")
    keywords = [k.lower() for k in dependency.semantic_keywords]
    if keywords:
        hits = sorted(set(keywords) & _tokens(*names))
        if hits:
            total += 0.1 * min(len(hits), 2)
            reasons.append(f"keywords {', '.join(hits)}")
    return Candidate(
        upstream.node, upstream.step, output.logical_name, round(total, 4), tuple(reasons)
    )


def wire_node(
    node: str, dependencies: Iterable[DependencyLike], upstream: Sequence[Upstream]
) -> tuple[list[Wire], list[WiringIssue]]:
    """Wire every dependency of one node to the outputs of its upstream nodes."""
    wires: list[Wire] = []
    issues: list[WiringIssue] = []
    for dependency in dependencies:
        scored = [
            c
            for up in upstream
            for out in up.outputs
            if (c := score(dependency, up, out)) is not None
        ]
        scored.sort(key=lambda c: c.score, reverse=True)
        matches = [c for c in scored if c.score >= THRESHOLD]
        if not matches:
            near = tuple(c for c in scored if c.score > 0)[:3]
            if dependency.required or near:
                issues.append(
                    WiringIssue("missing", node, dependency.logical_name, dependency.required, near)
                )
            continue
        best = matches[0]
        rivals = [c for c in matches[1:] if best.score - c.score < TIE_MARGIN]
        if rivals:
            issues.append(
                WiringIssue(
                    "ambiguous", node, dependency.logical_name, dependency.required, (best, *rivals)
                )
            )
            continue
        wires.append(
            Wire(node, dependency.logical_name, best.node, best.output, best.score, best.reasons)
        )
    return wires, issues
