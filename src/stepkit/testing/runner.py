"""``RuntimeTester``: test one script, a pipeline of scripts, or every script of a project.

The tester resolves names through the project's catalog and hands each script to
:func:`stepkit.testing.script.run_test`; :mod:`stepkit.testing.pipeline` chains scripts
along a DAG.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from stepkit.sandbox import unavailable
from stepkit.testing.checks import ScriptResult
from stepkit.testing.lookup import Target, resolve, scripted_steps
from stepkit.testing.pipeline import PipelineResult, load_dag, run_pipeline
from stepkit.testing.script import TestOptions, fast_import_check, run_test

if TYPE_CHECKING:
    from stepkit.catalog import StepCatalog
    from stepkit.project import Project

__all__ = ["RuntimeTester", "TestOptions"]


class RuntimeTester:
    """Test step scripts for real: one by name or path, a pipeline, or all of them.

    >>> tester = RuntimeTester(Project.load("examples/churn"), env={"LABEL_FIELD": "y"})
    >>> tester.test_script("TabularPreprocessing").status
    <Status.PASS: 'PASS'>
    """

    __test__ = False  # not a pytest class

    def __init__(
        self,
        project: Project | None = None,
        *,
        catalog: StepCatalog | None = None,
        timeout: float | None = None,
        rows: int = 100,
        seed: int = 0,
        env: Mapping[str, str] | None = None,
        args: Mapping[str, str] | None = None,
        sandbox: bool = True,
        keep: bool = False,
        temp_root: Path | None = None,
        env_mode: str | None = None,
        env_notice: Callable[[str], None] | None = None,
    ) -> None:
        """``env_mode``: ``shared`` or ``per-step`` (default: the project's ``[run]
        environments``); ``env_notice`` is told when a step's environment is built."""
        from stepkit.envs.modes import StepEnvironments

        self.project = project if project is not None else (catalog.project if catalog else None)
        self._catalog = catalog
        settings = self.project.test if self.project else None
        self.options = TestOptions(
            timeout=timeout if timeout is not None else (settings.timeout if settings else 300.0),
            rows=rows,
            seed=seed,
            env=dict(env or {}),
            project_env=dict(settings.env) if settings else {},
            args=dict(args or {}),
            project_args=dict(settings.args) if settings else {},
            sandbox=sandbox,
            keep=keep,
            temp_root=temp_root,
            environments=StepEnvironments.for_mode(self.project, env_mode, notice=env_notice),
        )

    @property
    def sandbox_off(self) -> str | None:
        """Why scripts run without the sandbox (asked for, or bwrap missing or not
        permitted), or None when they run in it."""
        if not self.options.sandbox:
            return "--no-sandbox"
        return unavailable()

    @property
    def catalog(self) -> StepCatalog | None:
        """The project's step catalog, opened on first use (None without a project)."""
        if self._catalog is None and self.project is not None:
            from stepkit.catalog import StepCatalog

            self._catalog = StepCatalog(self.project)
        return self._catalog

    def resolve(self, name_or_path: str | Path) -> Target:
        """What a step name, pipeline node name or script path stands for."""
        return resolve(self.catalog, str(name_or_path))

    def test_script(
        self, name_or_path: str | Path, *, data: Path | None = None, fast: bool = False
    ) -> ScriptResult:
        """Test one script: imported, checked and run in a child process (``fast``: only
        imported and checked, in this process)."""
        target = self.resolve(name_or_path)
        if fast:
            return fast_import_check(target)
        return run_test(target, self.options, data=data)

    def test_pipeline(
        self, dag_file: Path, *, data: Mapping[str, str | Path] | None = None
    ) -> PipelineResult:
        """Run a DAG's scripts in order, each on what its upstream steps wrote; ``data``
        (``"NODE.INPUT"`` -> a local file or folder) gives a node's input instead.

        Raises:
            PlanError: ``data`` names no node of the DAG, or no input of its contract.
        """
        from stepkit.plan.seeds import parse_seeds

        catalog = self.catalog
        if catalog is None:
            raise ValueError("testing a pipeline needs a project (its steps come from the catalog)")
        dag = load_dag(dag_file, catalog)
        contracts = {node: target.contract for node, target in dag.targets.items()}
        given = {key: str(path) for key, path in (data or {}).items()}
        seeds = parse_seeds(given, contracts, option="--data")
        return run_pipeline(dag, self.options, seeds=seeds)

    def test_all(
        self,
        *,
        workspace: str | None = None,
        jobs: int = 2,
        on_result: Callable[[ScriptResult], None] | None = None,
    ) -> list[ScriptResult]:
        """Test every step that has a script, ``jobs`` at a time, in name order."""
        catalog = self.catalog
        if catalog is None:
            raise ValueError("testing all steps needs a project")
        targets = scripted_steps(catalog, workspace)

        def one(target: Target) -> ScriptResult:
            result = run_test(target, self.options)
            if on_result is not None:
                on_result(result)
            return result

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            return list(pool.map(one, targets))
