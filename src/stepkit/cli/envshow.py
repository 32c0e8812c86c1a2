"""What ``stepkit catalog show`` says of a step's own environment (``stepkit env`` builds
them): what its contract asks for and, once built, what the lock resolved it to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from stepkit.catalog import StepCatalog


def environment_summary(catalog: StepCatalog, name: str) -> dict[str, Any] | None:
    """What ``catalog show`` says of a step's environment: what its contract asks for and,
    once built, the environment and the versions its lock holds for what was asked (never
    builds one). None for a step that runs in stepkit's own environment."""
    from stepkit.catalog.models import contract_of
    from stepkit.envs import EnvStore, default_root, read_lock
    from stepkit.envs.spec import wanted_spec
    from stepkit.errors import EnvironmentLockError

    contract = contract_of(catalog, name)
    spec = wanted_spec(contract) if contract is not None else None
    if spec is None:
        return None
    summary: dict[str, Any] = {"requirements": list(spec.requirements), "python": spec.python}
    environment = EnvStore(default_root(catalog.project)).lookup(spec, touch=False)
    summary["built"] = environment is not None
    if environment is not None:
        summary |= {
            "key": environment.key,
            "python_version": environment.python_version,
            "identity": environment.identity,
            "path": str(environment.path),
        }
        try:
            lock = read_lock(environment.lock_path)
            summary["versions"] = {n: lock.version_of(n) for n in spec.names}
        except EnvironmentLockError as exc:
            summary["versions"] = {}
            summary["problem"] = str(exc)
    return summary


def print_environment_summary(summary: dict[str, Any], *, step: str) -> None:
    """The lines ``catalog show`` prints for a step's environment."""
    asked = ", ".join(summary["requirements"]) or "nothing but pip"
    if summary["python"]:
        asked += f" on Python {summary['python']}"
    typer.echo(f"  environment: {asked}")
    if not summary["built"]:
        typer.echo(f"    not built yet (stepkit env build {step})")
        return
    versions = ", ".join(f"{n} {v}" for n, v in summary["versions"].items() if v)
    typer.echo(
        f"    built {summary['key']}: Python {summary['python_version']}"
        + (f"; {versions}" if versions else "")
    )
    if "problem" in summary:
        typer.echo(f"    {summary['problem']}")
