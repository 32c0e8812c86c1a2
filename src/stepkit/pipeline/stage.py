"""Stages and their retry policy.

A stage is a plain function ``fn(context) -> outputs`` or an object with
``execute(context) -> outputs`` and optional ``validate(context)`` / ``cleanup(context)``.
An object may also have

- ``lookup(context)``: its outputs found, not made (a ``CacheHit``), or None; asked first;
- ``finish(context, made) -> outputs``: the part of its work that belongs to the runner's
  side, given what ``execute`` returned (not called on a cache hit); it runs right after
  ``execute`` and ``cleanup``;
- ``keep(context, made, outputs)``: what it remembers for later runs of what ``finish``
  stored; right after ``finish``.

For a ``subprocess`` stage these three run in the runner's process, only ``execute`` (with
``validate`` and ``cleanup``) in the child: ``lookup`` before the child is started (a hit
starts none), ``finish`` once the child has reported, ``keep`` once the stage's completion
is committed, beside its dependents' start (they do not wait for it; the run's end does; a
failure there is logged, the stage stays completed). stepkit's step nodes look up their
cache, store their outputs and record them this way: the runner has the store's modules
loaded already, and the step's process ends as soon as the step does.

Retries are decided by tenacity's stop/wait/retry strategies; the runner schedules each
attempt itself, so a stage waiting to retry holds no worker and every attempt is recorded.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast, runtime_checkable

import tenacity

from stepkit.errors import PipelineDefinitionError, StageOutputError, StageValidationError
from stepkit.pipeline.context import StageContext
from stepkit.pipeline.invoke import CacheHit

Mode = Literal["direct", "subprocess", "distributed"]
MODES: tuple[Mode, ...] = ("direct", "subprocess", "distributed")

#: Errors that say the stage is wrong, not unlucky: never retried.
__all__ = ["NO_RETRY", "CacheHit", "Mode", "RetryPolicy", "Stage", "StageObject"]

NEVER_RETRIED: tuple[type[BaseException], ...] = (StageOutputError, StageValidationError)


@runtime_checkable
class StageObject(Protocol):
    """A stage written as an object; ``validate``, ``cleanup``, ``finish`` and ``keep`` are
    optional."""

    def execute(self, context: StageContext) -> Mapping[str, Any] | None: ...


StageFunction = Callable[[StageContext], Any]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and when to try a failing stage again.

    Args:
        max_attempts: attempts in all, the first included (1: never retry).
        backoff: ``"fixed"`` waits ``delay`` each time; ``"exponential"`` waits
            ``delay * 2**(n-1)``, capped at ``max_delay``.
        jitter: up to this many seconds added at random to each wait.
        retry_on: exception types worth another attempt (timeouts are ``TimeoutError``).
    """

    max_attempts: int = 3
    backoff: Literal["fixed", "exponential"] = "exponential"
    delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise PipelineDefinitionError(
                f"RetryPolicy max_attempts must be at least 1, not {self.max_attempts}."
            )
        if self.backoff not in ("fixed", "exponential"):
            raise PipelineDefinitionError(
                f"RetryPolicy backoff must be 'fixed' or 'exponential', not {self.backoff!r}."
            )
        if min(self.delay, self.max_delay, self.jitter) < 0:
            raise PipelineDefinitionError("RetryPolicy delay, max_delay and jitter must be >= 0.")

    def wait(self) -> tenacity.wait.wait_base:
        """The wait between attempts, as tenacity's own wait strategies."""
        wait: tenacity.wait.wait_base
        if self.backoff == "fixed":
            wait = tenacity.wait_fixed(self.delay)
        else:
            wait = tenacity.wait_exponential(multiplier=self.delay, max=self.max_delay)
        if self.jitter:
            wait = wait + tenacity.wait_random(0, self.jitter)
        return wait

    def next_delay(self, attempt: int, error: BaseException) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up."""
        if attempt >= self.max_attempts or isinstance(error, NEVER_RETRIED):
            return None
        if not isinstance(error, self.retry_on):
            return None
        # tenacity's wait strategies read only ``attempt_number`` from the call state they
        # are given; the runner, not tenacity, keeps the attempts, so it hands them that.
        wait = cast("Callable[[_Attempt], float]", self.wait())
        return float(wait(_Attempt(attempt)))


@dataclass(frozen=True, slots=True)
class _Attempt:
    """The part of a tenacity call state a wait strategy reads."""

    attempt_number: int


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True, slots=True)
class Stage:
    """One node of a pipeline. ``aliases`` maps a dependency's full name to the name the
    stage knows it by (they differ once a pipeline is included under a prefix)."""

    name: str
    target: Any  # the function, or the object with execute and its optional hooks
    depends_on: tuple[str, ...] = ()
    retry: RetryPolicy = NO_RETRY
    timeout: float | None = None
    mode: Mode = "direct"
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise PipelineDefinitionError(
                f"Stage {self.name!r}: mode must be one of {', '.join(MODES)}, not {self.mode!r}."
            )
        if self.timeout is not None and self.timeout <= 0:
            raise PipelineDefinitionError(
                f"Stage {self.name!r}: timeout must be positive seconds, not {self.timeout!r}."
            )
        if not (callable(self.target) or isinstance(self.target, StageObject)):
            raise PipelineDefinitionError(
                f"Stage {self.name!r}: expected a function or an object with execute(context), "
                f"got {type(self.target).__name__}."
            )

    def check_portable(self) -> None:
        """A subprocess or distributed stage must be importable by another process; checked
        when the pipeline runs (at decoration time the function's name is not bound yet)."""
        if self.mode == "direct":
            return
        try:
            pickle.dumps(self.target)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise PipelineDefinitionError(
                f"Stage {self.name!r} runs in {self.mode} mode, so its function or object "
                f"must be importable by another process (defined at module level): {exc}"
            ) from exc

    def local_name(self, dependency: str) -> str:
        return self.aliases.get(dependency, dependency)
