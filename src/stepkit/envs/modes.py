"""Which environment each step runs in, for one test session or one run.

``[run] environments`` in stepkit.toml (or ``--env-mode``): ``shared``, the default, runs
every step on stepkit's own interpreter; ``per-step`` runs a step whose contract declares
``framework_requirements`` (or a ``python`` stepkit's own is not) on its own environment's
interpreter, building the environment first when it is missing — before any sandbox
starts, since only a build needs the network. :class:`StepEnvironments` asks the store
once per set of requirements and remembers the answer, so a run of many steps with equal
requirements pays for one look-up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from stepkit.envs.build import ensure_environment
from stepkit.envs.spec import wanted_spec
from stepkit.envs.store import Environment, EnvStore, default_root
from stepkit.errors import EnvModeError
from stepkit.project import ENV_MODES

if TYPE_CHECKING:
    from stepkit.components import ScriptContract
    from stepkit.envs.spec import EnvSpec
    from stepkit.project import Project

#: Told one line when an environment is built (never when one is reused).
Notice = Callable[[str], None]


def check_env_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`stepkit.project.ENV_MODES`, else an error."""
    if mode not in ENV_MODES:
        raise EnvModeError(mode, ENV_MODES)
    return mode


class StepEnvironments:
    """The per-step environments of one session: each looked up (built if missing) once.

    Safe to share between threads (``test all`` tests two scripts at once); two steps
    asking for the same requirements at once get one build (:func:`ensure_environment`).
    """

    def __init__(self, store: EnvStore, *, notice: Notice | None = None) -> None:
        self.store = store
        self._notice = notice
        self._lock = threading.Lock()
        self._found: dict[EnvSpec, Environment] = {}

    @classmethod
    def for_mode(
        cls, project: Project | None, mode: str | None = None, *, notice: Notice | None = None
    ) -> StepEnvironments | None:
        """The environments of ``project`` in ``mode`` (default: its ``[run] environments``);
        None in ``shared`` mode, where every step runs in stepkit's own environment."""
        chosen = check_env_mode(mode or (project.run.environments if project else "shared"))
        if chosen == "shared":
            return None
        return cls(EnvStore(default_root(project)), notice=notice)

    def environment(self, contract: ScriptContract) -> Environment | None:
        """The environment a step's contract asks for, built if missing; None when stepkit's
        own fits it (no requirements, and no other ``python`` asked for).

        Raises:
            EnvironmentBuildError: no local interpreter gives one that installs and imports.
        """
        spec = wanted_spec(contract)
        if spec is None:
            return None
        with self._lock:
            found = self._found.get(spec)
        if found is not None:
            return found
        found = self.store.lookup(spec)
        if found is None:
            found = self._build(spec)
        with self._lock:
            self._found[spec] = found
        return found

    def _build(self, spec: EnvSpec) -> Environment:
        say = self._notice or (lambda _line: None)
        say(f"building an environment for {spec.describe()} (reused once built)")
        started = time.perf_counter()
        environment = ensure_environment(spec, store=self.store)
        say(
            f"environment {environment.key} ready: Python {environment.python_version}, "
            f"{time.perf_counter() - started:.1f} s"
        )
        return environment
