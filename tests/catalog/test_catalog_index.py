"""The catalog index as users meet it: fresh answers after every kind of change, damaged
files rebuilt with a warning, two processes at once, bad input reported."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from catalog.conftest import MakeProject
from catalog.synth import Step, open_catalog, registry_toml, write_project, write_step
from stepkit.catalog import StepCatalog, changes, find_problems
from stepkit.catalog.store import index_path
from stepkit.errors import UnknownStepError
from stepkit.project import Project


def _stored(catalog: StepCatalog) -> dict[str, list[Any]]:
    """Every resolved table of the index, sorted: what answers are made of."""
    conn = catalog.session.conn
    tables = ("placements", "listing", "links", "unmatched", "definitions")
    return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}


def test_second_start_parses_nothing(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader"), Step("Trainer", step_type="Training")]})
    first = open_catalog(root).last_refresh
    assert (first.parsed, first.reused, first.saved) == (10, 0, True)
    catalog = open_catalog(root)
    catalog.list_rows()
    second = catalog.last_refresh
    assert (second.removed, second.resolved_again) == (0, False)
    assert second.parsed + second.reused == 10  # files just written are read again, once


# -- every kind of change, seen by a lookup (folders and the step's files) and by a list ----


def _edit(steps: Path) -> None:
    spec = steps / "specs" / "loader_spec.py"
    text = spec.read_text().replace(
        'get_spec_step_type("Loader")', 'get_spec_step_type_with_job_type("Loader", "training")'
    )
    spec.write_text(
        text.replace("import get_spec_step_type", "import get_spec_step_type_with_job_type")
    )


def _add(steps: Path) -> None:
    (steps / "specs" / "loader_calibration_spec.py").write_text(
        (steps / "specs" / "loader_spec.py")
        .read_text()
        .replace('get_spec_step_type("Loader")', '"Loader_Calibration"')
    )


def _delete(steps: Path) -> None:
    (steps / "contracts" / "trainer_contract.py").unlink()


def _rename(steps: Path) -> None:
    (steps / "configs" / "config_trainer_step.py").rename(steps / "configs" / "trainer_params.py")


def _new_folder(steps: Path) -> None:
    (steps / "builders" / "more").mkdir()
    (steps / "builders" / "more" / "builder_extra_step.py").write_text(
        "class ExtraStepBuilder:\n    pass\n"
    )


CHANGES: dict[str, tuple[Callable[[Path], None], Callable[[StepCatalog], Any], Any]] = {
    "edit": (_edit, lambda c: c.get_step_info("Loader").job_types, ("training",)),
    "add": (_add, lambda c: c.get_step_info("Loader").job_types, ("calibration",)),
    "delete": (_delete, lambda c: c.get_step_info("Trainer").missing, ("contract",)),
    "rename": (
        _rename,
        lambda c: c.get_step_info("Trainer").components["config"].path.name,
        "trainer_params.py",
    ),
    "new folder": (
        _new_folder,
        lambda c: c.get_step_info("Extra").components["builder"].path.name,
        "builder_extra_step.py",
    ),
}


@pytest.mark.parametrize("how", ["lookup", "list", "same catalog"])
@pytest.mark.parametrize("kind", sorted(CHANGES))
def test_every_change_is_seen(make_project: MakeProject, kind: str, how: str) -> None:
    root = make_project({"shared": [Step("Loader"), Step("Trainer", step_type="Training")]})
    before = open_catalog(root)
    change, answer, expected = CHANGES[kind]
    with contextlib.suppress(UnknownStepError):  # "Extra" is not there yet
        assert answer(before) != expected
    change(root / "steps")
    if how == "same catalog":  # a long-lived catalog, refreshed
        before.session.refresh()
        catalog = before
    else:
        catalog = open_catalog(root)
        if how == "list":
            catalog.list_rows()
    assert answer(catalog) == expected
    assert _stored(catalog) == _stored(StepCatalog(Project.load(root), persist=False))


def test_a_new_workspace_in_the_project_file_is_seen(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader")]})
    assert open_catalog(root).get_step_info("Loader").workspace_id == "shared"
    again = write_project(
        root,
        {
            "alice": [Step("Loader", components=("script",), register=False)],
            "shared": [Step("Loader")],
        },
    )
    catalog = open_catalog(again)
    info = catalog.get_step_info("Loader")
    assert info.workspace_id == "alice" and info.components["script"].workspace_id == "alice"
    assert [f.workspace_id for f in info.shadowed] == ["shared"]


def test_a_lookup_reads_only_the_files_it_answers_about(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader"), Step("Trainer", step_type="Training")]})
    _age(root)
    open_catalog(root).list_rows()
    builder = root / "steps" / "builders" / "builder_trainer_step.py"
    builder.write_text(builder.read_text() + "\n    def run(self, context):\n        return {}\n")
    catalog = open_catalog(root)
    assert catalog.get_step_info("Loader").is_complete
    assert catalog.last_refresh.parsed == 0  # the trainer's builder is not looked at
    catalog.get_step_info("Trainer")
    assert catalog.last_refresh.parsed >= 1  # now it is
    assert catalog.session.summaries([str(builder)])[str(builder)]["classes"] == [
        {"entry_points": [], "has_run": True, "name": "TrainerStepBuilder"}
    ]


def _age(root: Path) -> None:
    """Every file and folder as if written a minute ago (not in the racy window)."""
    then = os.stat(root).st_mtime - 60
    for path in [root, *root.rglob("*")]:
        os.utime(path, (then, then))


# -- a damaged index ----------------------------------------------------------------------------


def _foreign(path: Path) -> None:
    path.unlink()
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE notes (text TEXT)")
    other.commit()
    other.close()


def _newer(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.write_bytes(b"garbage" * 100), "file is not a database"),
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "database disk image is malformed"),
        (_foreign, "not a catalog index"),
        (_newer, "newer than this stepkit"),
    ],
)
def test_a_damaged_or_foreign_index_is_rebuilt_with_a_warning_naming_it(
    make_project: MakeProject, damage: Callable[[Path], None], reason: str
) -> None:
    root = make_project({"shared": [Step("Loader")]})
    catalog = open_catalog(root)
    path = index_path(catalog.project)
    catalog.session.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    damage(path)
    again = open_catalog(root)
    (warning,) = again.last_refresh.warnings
    assert warning.startswith(f"catalog index {path} cannot be used (")
    assert reason in warning and warning.endswith("; rebuilding it")
    assert again.last_refresh.parsed == 5
    assert again.get_step_info("Loader").is_complete
    assert open_catalog(root).last_refresh.warnings == ()


def test_the_cli_prints_the_rebuild_warning(make_project: MakeProject) -> None:
    from typer.testing import CliRunner

    from stepkit.cli.app import app

    root = make_project({"shared": [Step("Loader")]})
    first = open_catalog(root)
    first.session.close()
    path = index_path(first.project)
    path.write_bytes(b"garbage" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    result = CliRunner().invoke(app, ["-p", str(root), "catalog", "show", "Loader"])
    assert result.exit_code == 0
    assert f"warning: catalog index {path} cannot be used (file is not a database)" in result.output


# -- processes ---------------------------------------------------------------------------------


def test_parallel_parse_gives_the_same_index(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project({"shared": [Step(f"Step{i}") for i in range(12)]})
    project = Project.load(root)
    serial = StepCatalog(project, persist=False, workers=1)
    monkeypatch.setattr(changes, "PARALLEL_THRESHOLD", 4)
    parallel = StepCatalog(project, persist=False, workers=2)
    assert _stored(parallel) == _stored(serial)
    assert parallel.last_refresh.parsed == 60


def _add_steps(root: str, rounds: int) -> None:
    """In a process of its own: add a step at a time, listing each time."""
    for i in range(rounds):
        write_step(Path(root) / "steps", Step(f"Added{i}", register=False))
        if StepCatalog(Project.load(root)).list_rows() == []:
            raise SystemExit(1)


def _edit_code(root: str, rounds: int) -> None:
    """In a process of its own: edits that keep declarations, looked up each time."""
    script = Path(root) / "steps" / "scripts" / "loader.py"
    for i in range(rounds):
        with script.open("a") as handle:
            handle.write(f"# edit {i}\n")
        if not StepCatalog(Project.load(root)).get_step_info("Loader").is_complete:
            raise SystemExit(1)


def test_two_processes_refreshing_at_once_leave_a_right_index(make_project: MakeProject) -> None:
    import multiprocessing

    root = make_project({"shared": [Step("Loader")]})
    open_catalog(root)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_add_steps, args=(str(root), 12)),
        context.Process(target=_edit_code, args=(str(root), 30)),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(240)
        assert worker.exitcode == 0
    catalog = open_catalog(root)
    catalog.list_rows()
    assert catalog.last_refresh.warnings == ()
    assert _stored(catalog) == _stored(StepCatalog(Project.load(root), persist=False))
    assert {f"Added{i}" for i in range(12)} <= set(catalog.step_names())


def test_a_refresh_while_another_connection_writes_leaves_a_right_index(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project({"shared": [Step("Loader")]})
    open_catalog(root)
    write_step(root / "steps", Step("Early", register=False))  # seen by both walks
    real = changes.parsing  # what the index parses with

    @contextlib.contextmanager
    def parsing_while_another_refreshes(*args: Any, **kwargs: Any) -> Any:
        with real(*args, **kwargs) as parsed:
            monkeypatch.setattr("stepkit.catalog.index.parsing", real)  # the other: as usual
            other = open_catalog(root)  # another connection indexes Early meanwhile
            assert "Early" in other.step_names()
            yield parsed

    monkeypatch.setattr("stepkit.catalog.index.parsing", parsing_while_another_refreshes)
    catalog = open_catalog(root)
    catalog.list_rows()
    assert _stored(catalog) == _stored(StepCatalog(Project.load(root), persist=False))
    assert "Early" in catalog.step_names()


def test_an_index_another_process_holds_too_long_is_named(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepkit.errors import StateStoreError

    root = make_project({"shared": [Step("Loader")]})
    open_catalog(root)
    write_step(root / "steps", Step("Late", register=False))  # the next look must write
    holder = sqlite3.connect(index_path(Project.load(root)))
    holder.execute("BEGIN IMMEDIATE")  # another process, writing for longer than we wait
    monkeypatch.setattr("stepkit.sqlite.BUSY_TIMEOUT_MS", 50)
    try:
        with pytest.raises(StateStoreError) as caught:
            open_catalog(root).list_rows()
    finally:
        holder.rollback()
        holder.close()
    message = str(caught.value)
    assert message.startswith(f"The catalog index {index_path(Project.load(root))}: ")
    assert "another process kept it busy" in message


def test_a_broken_registry_is_a_problem_not_a_failed_cold_start(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepkit.catalog.check import find_problems

    root = make_project({"shared": [Step(f"Step{i}") for i in range(12)]})
    (root / "steps" / "registry.toml").write_text("[steps.Broken\n")
    monkeypatch.setattr(changes, "PARALLEL_THRESHOLD", 4)
    catalog = StepCatalog(Project.load(root), persist=False, workers=2)
    registry_problems = [p for p in find_problems(catalog) if p.kind == "registry"]
    assert len(registry_problems) == 1
    assert "registry.toml" in registry_problems[0].message
    assert "is not valid TOML" in registry_problems[0].message


# -- watch mode --------------------------------------------------------------------------------


def test_apply_changes_updates_only_those_paths(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader")]})
    catalog = open_catalog(root)
    steps = root / "steps"
    new = steps / "builders" / "builder_other_step.py"
    new.write_text("class OtherStepBuilder:\n    pass\n")
    gone = steps / "contracts" / "loader_contract.py"
    gone.unlink()
    assert catalog.session.apply_changes([new, gone, root / "README.md"]) == 2
    assert catalog.get_step_info("Loader").missing == ("contract",)
    assert catalog.get_step_info("Other").path("builder") == new
    again = open_catalog(root)  # stored: the next start sees the same
    assert again.get_step_info("Other").path("builder") == new


def test_watch_mode_follows_whole_folders_moved_out_and_in(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader")]})
    catalog = open_catalog(root)
    specs = root / "steps" / "specs"
    nested = specs / "extra"
    nested.mkdir()
    (nested / "other_spec.py").write_text((specs / "loader_spec.py").read_text())
    assert catalog.session.apply_changes([nested]) == 1  # a folder moved in: one event
    assert catalog.find_steps_by_component(nested / "other_spec.py") == ["Loader"]
    nested.rename(root / "elsewhere")  # moved out: one event for the folder
    assert catalog.session.apply_changes([nested]) == 1
    assert catalog.find_steps_by_component(nested / "other_spec.py") == []
    assert _stored(catalog) == _stored(StepCatalog(Project.load(root), persist=False))


# -- bad input ---------------------------------------------------------------------------------


def test_bad_files_are_reported_and_the_rest_indexed(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader"), Step("Trainer", step_type="Training")]})
    steps = root / "steps"
    (steps / "specs" / "loader_spec.py").write_text("X = StepSpecification(\n    step_type=(\n")
    contract = steps / "contracts" / "trainer_contract.py"
    contract.write_text(
        contract.read_text().replace('required_env_vars=["LABEL_FIELD"]', "required_env_vars=ENV")
    )
    (steps / "builders" / "builder_latin1_step.py").write_bytes(b"# caf\xe9\nx = 1\n")
    (steps / "scripts" / "broken.py").write_text("def main(:\n")
    (steps / "scripts" / "trainer.py").write_text("def run():\n    pass\n")
    problems = [str(p) for p in find_problems(open_catalog(root))]
    assert f"{steps / 'specs' / 'loader_spec.py'}:2: syntax error: '(' was never closed" in problems
    assert (
        f"{contract}:9: contract TRAINER_CONTRACT: required_env_vars refers to the name ENV, "
        "not a literal value: write the value itself" in problems
    )
    assert f"{steps / 'builders' / 'builder_latin1_step.py'}:1: is not UTF-8 text" in problems
    assert (
        f"{steps / 'scripts' / 'trainer.py'}: script of step 'Trainer' has no main() entry point"
        in problems
    )
    assert any(p.startswith(f"{steps / 'scripts' / 'broken.py'}:1: syntax error") for p in problems)
    assert len(problems) == len(set(problems))  # each once, however often it is asked
    catalog = open_catalog(root)
    assert find_problems(catalog) == find_problems(catalog)
    assert catalog.get_step_info("Trainer").is_complete  # the rest of the contract still counts
    assert catalog.get_step_info("Loader").missing == ()  # its spec is known by its file name


def test_symlink_loop_and_missing_steps_folder(make_project: MakeProject) -> None:
    root = make_project({"alice": [], "shared": [Step("Loader")]})
    scripts = root / "steps" / "scripts"
    os.symlink(scripts, scripts / "loop")
    catalog = open_catalog(root)
    messages = [str(p) for p in find_problems(catalog)]
    assert f"{scripts / 'loop'}: symlink loop: folder already visited" in messages
    assert catalog.get_step_info("Loader").is_complete
    project = Project.load(root)  # a workspace folder removed after the project was loaded
    for child in sorted((root / "dev" / "alice" / "steps").rglob("*"), reverse=True):
        child.rmdir() if child.is_dir() else child.unlink()
    (root / "dev" / "alice" / "steps").rmdir()
    gone = StepCatalog(project, persist=False)
    assert f"{root / 'dev' / 'alice' / 'steps'}: steps folder does not exist" in [
        str(p) for p in find_problems(gone)
    ]


def test_a_dangling_symlink_to_a_folder_is_reported(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader")]})
    link = root / "steps" / "specs" / "vendor"
    link.symlink_to(root / "missing")
    messages = [str(p) for p in find_problems(open_catalog(root))]
    assert any(str(link) in m and "cannot be read" in m for m in messages), messages


def test_empty_project_reports_empty_workspaces(make_project: MakeProject) -> None:
    root = make_project({"shared": []})
    catalog = open_catalog(root)
    assert catalog.step_names() == []
    assert [str(p) for p in find_problems(catalog)] == [
        f"{root / 'steps'}: no component files in this workspace"
    ]


def test_a_changed_registry_is_read_again(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader"), Step("Experimental", register=False)]})
    catalog = open_catalog(root)
    assert not catalog.get_step_info("Experimental").registered
    (root / "steps" / "registry.toml").write_text(
        registry_toml([Step("Loader"), Step("Experimental", step_type="Utility")])
    )
    report = catalog.session.refresh()
    assert report.resolved_again
    info = catalog.get_step_info("Experimental")
    assert info.registered and info.step_type == "Utility"
    assert open_catalog(root).get_step_info("Experimental").registered


def test_step_info_pickles_with_its_definition(make_project: MakeProject) -> None:
    import pickle

    root = make_project({"shared": [Step("Loader")]})
    open_catalog(root)
    info = open_catalog(root).get_step_info("Loader")  # read from the saved index
    again = pickle.loads(pickle.dumps(info))
    assert again == info and again.definition == info.definition is not None
    assert again.components["spec"].path == info.components["spec"].path


def test_a_component_file_that_cannot_be_read_makes_its_step_incomplete(
    make_project: MakeProject,
) -> None:
    root = make_project({"shared": [Step("Trainer", step_type="Training")]})
    # (scripts are read on demand, by check and by plan; the files the index reads say at once)
    contract = root / "steps" / "contracts" / "trainer_contract.py"
    good = contract.read_text()
    assert open_catalog(root).get_step_info("Trainer").is_complete
    contract.write_text("X = (\n")
    catalog = open_catalog(root)
    info = catalog.get_step_info("Trainer")
    assert not info.is_complete
    assert info.missing == ()
    assert info.broken == {"contract": f"{contract}:1: syntax error: '(' was never closed"}
    assert info.components["contract"].path == contract  # it still holds its place
    (row,) = [r.as_json() for r in catalog.list_rows() if r.name == "Trainer"]
    assert row["complete"] is False and row["broken"] == info.broken
    contract.write_text(good)  # mended: complete again, on the next look
    assert open_catalog(root).get_step_info("Trainer").is_complete


def test_every_step_read_in_one_pass_is_what_a_lookup_answers(make_project: MakeProject) -> None:
    """``check`` and ``test all`` read every step at once: the same records, variants and
    shadowed files as one lookup per step and job type."""
    shared = [
        Step("TabularPreprocessing", job_types=("training", "calibration")),
        Step("XGBoostTraining", step_type="Training", job_types=("training",), generic_spec=False),
        Step("ModelCalibration"),
        Step("Orphan", register=False, components=("script", "contract")),
    ]
    mine = [Step("ModelCalibration"), Step("TabularPreprocessing", job_types=("training",))]
    catalog = StepCatalog(Project.load(make_project({"alice": mine, "shared": shared})))

    every = catalog.steps()

    fresh = StepCatalog(catalog.project)  # no record kept from the pass
    assert [info.name for info in every] == catalog.step_names()
    assert every == [fresh.get_step_info(name) for name in fresh.step_names()]
    for info in every:
        for job_type in info.job_types:
            assert info.variant(job_type) == fresh.get_step_info(info.name, job_type)
            assert info.variant(job_type.upper()) == fresh.get_step_info(info.name, job_type)
    tabular = next(info for info in every if info.name == "TabularPreprocessing")
    assert tabular.variant("training").components["spec"].workspace_id == "alice"
    assert tabular.variant("calibration").components["spec"].workspace_id == "shared"
    with pytest.raises(UnknownStepError, match="TabularPreprocessing_testing"):
        tabular.variant("testing")


def test_the_view_and_the_session_each_keep_to_fifteen_public_members(
    make_project: MakeProject,
) -> None:
    catalog = open_catalog(make_project({"shared": [Step("Loader")]}))
    for kept in (catalog, catalog.session):  # what a reader must know of each, at most
        public = {name for name in dir(kept) if not name.startswith("_")}
        assert len(public) <= 15, sorted(public)
