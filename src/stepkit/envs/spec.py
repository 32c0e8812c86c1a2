"""What a step asks of its environment, in one normal form, and the hashes that name it.

A contract's ``framework_requirements`` map a distribution to a specifier
(``{"scikit-learn": ">=0.23.2,<1.0.0"}``). Two steps that ask for the same thing in
different spellings (``Scikit_Learn``, a different order, spaces) get the same
:class:`EnvSpec` and therefore the same environment.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from stepkit.envs.interpreters import Interpreter, version_matches

if TYPE_CHECKING:
    from stepkit.components import ScriptContract

#: Every environment gets pip, because real scripts run ``python -m pip install`` of their pins.
SEED_REQUIREMENTS: Final = ("pip",)
#: Bumped when the layout of an environment changes, so old ones are not reused.
LAYOUT_VERSION: Final = 1

_SEPARATORS = re.compile(r"[-_.]+")
_BARE_VERSION = re.compile(r"^\d[\w.!+*-]*$")


def normalize_name(name: str) -> str:
    """The PEP 503 form of a distribution name: ``Scikit_Learn`` → ``scikit-learn``."""
    return _SEPARATORS.sub("-", name.strip()).lower()


def requirement_line(name: str, specifier: str) -> str:
    """One requirements-file line: ``scikit-learn>=0.23.2,<1.0.0``.

    A bare version (``1.7.6``) means that version exactly; an empty specifier or ``*``
    means any version. Extras and markers pass through as written.
    """
    spec = "".join(specifier.split())
    if spec in ("", "*"):
        return normalize_name(name)
    if _BARE_VERSION.match(spec):
        spec = f"=={spec}"
    return f"{normalize_name(name)}{spec}"


@dataclass(frozen=True, slots=True)
class EnvSpec:
    """The requirements of an environment (sorted lines) and the Python asked for, if any."""

    requirements: tuple[str, ...]
    python: str | None = None  # a version prefix such as "3.9"; None: any local interpreter

    @classmethod
    def from_requirements(
        cls, requirements: Mapping[str, str], *, python: str | None = None
    ) -> EnvSpec:
        lines = sorted({requirement_line(name, spec) for name, spec in requirements.items()})
        return cls(requirements=tuple(lines), python=python.strip() if python else None)

    @classmethod
    def from_contract(cls, contract: ScriptContract, *, python: str | None = None) -> EnvSpec:
        """The environment a contract declares: its ``framework_requirements`` on its
        ``python`` (``python`` given here wins)."""
        return cls.from_requirements(
            contract.framework_requirements, python=python or contract.python
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The declared distributions, normalized, in requirement order."""
        return tuple(_requirement_name(line) for line in self.requirements)

    @property
    def install_lines(self) -> tuple[str, ...]:
        """What is installed: the declared requirements plus pip (unless declared)."""
        declared = set(self.names)
        extra = tuple(seed for seed in SEED_REQUIREMENTS if seed not in declared)
        return (*self.requirements, *extra)

    @property
    def digest(self) -> str:
        """What the step asks for, hashed: the name of the pointer to its environment."""
        return _digest(
            {"layout": LAYOUT_VERSION, "requirements": self.requirements, "python": self.python}
        )

    def describe(self) -> str:
        text = ", ".join(self.requirements) or "(no requirements)"
        return f"{text} on Python {self.python}" if self.python else text


def wanted_spec(contract: ScriptContract) -> EnvSpec | None:
    """What a step's contract asks of its environment; None when it asks nothing stepkit's
    own environment lacks (no ``framework_requirements``, and no ``python`` other than
    the one stepkit runs on). Runs no interpreter: ``catalog show`` asks it of every step."""
    spec = EnvSpec.from_contract(contract)
    if not spec.requirements and version_matches(tuple(sys.version_info[:3]), spec.python):
        return None
    return spec


def env_key(spec: EnvSpec, interpreter: Interpreter) -> str:
    """An environment's name: the requirements and the interpreter it is built on, hashed."""
    return _digest(
        {
            "layout": LAYOUT_VERSION,
            "requirements": spec.requirements,
            "interpreter": [
                interpreter.implementation,
                interpreter.version_text,
                str(interpreter.path),
            ],
        }
    )[:24]


def _requirement_name(line: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
    return normalize_name(match.group(0)) if match else line


def _digest(data: object) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
