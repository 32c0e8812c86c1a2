"""§5 and §7: the persisted index is reused, refreshed incrementally, never trusted when
broken; bad files are reported with path and line and the rest is still indexed."""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.conftest import MakeProject
from catalog.synth import Step, open_catalog, write_step
from stepkit.catalog import StepCatalog, index, store
from stepkit.project import Project
from stepkit.registry import Registry


def test_second_start_parses_nothing(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader"), Step("Trainer", step_type="Training")]})
    first = open_catalog(root).last_refresh
    assert (first.parsed, first.reused, first.saved) == (10, 0, True)
    second = open_catalog(root).last_refresh
    assert (second.parsed, second.reused, second.removed) == (0, 10, 0)
    assert second.resolved_again is False and second.saved is False


def test_added_changed_renamed_and_deleted_files(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader"), Step("Trainer", step_type="Training")]})
    open_catalog(root)
    steps = root / "steps"
    # added: a variant spec; changed: the builder gains run(); renamed: a config file;
    # deleted: Trainer's contract
    spec = (steps / "specs" / "loader_spec.py").read_text()
    training = spec.replace(
        'get_spec_step_type("Loader")', 'get_spec_step_type_with_job_type("Loader", "training")'
    )
    training = training.replace(
        "import get_spec_step_type", "import get_spec_step_type_with_job_type"
    )
    (steps / "specs" / "loader_training_spec.py").write_text(training)
    builder = steps / "builders" / "builder_loader_step.py"
    builder.write_text(builder.read_text() + "\n    def run(self, context):\n        return {}\n")
    (steps / "configs" / "config_trainer_step.py").rename(steps / "configs" / "trainer_params.py")
    (steps / "contracts" / "trainer_contract.py").unlink()

    catalog = open_catalog(root)
    report = catalog.last_refresh
    assert (report.parsed, report.removed) == (3, 2)  # new spec, builder, renamed config
    assert report.reused == 7
    assert catalog.get_job_type_variants("Loader") == ["training"]
    assert catalog.summary(builder) == {
        "problems": [],
        "classes": [["LoaderStepBuilder", True, []]],
    }
    trainer = catalog.get_step_info("Trainer")
    assert trainer.path("config") == steps / "configs" / "trainer_params.py"  # by class name
    assert trainer.missing == ("contract",)
    # the script is still the trainer's: its config's entry point names it
    assert trainer.components["script"].via == "entry_point"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b[:-10] + b"0123456789", "checksum mismatch"),
        (lambda b: b"garbage", "truncated header"),
        (lambda b: b[:16] + (99).to_bytes(4, "little") + b[20:], "format version 99"),
    ],
)
def test_broken_index_is_rebuilt_with_a_warning(
    make_project: MakeProject, damage: object, reason: str
) -> None:
    root = make_project({"shared": [Step("Loader")]})
    catalog = open_catalog(root)
    path = store.index_path(catalog.project)
    assert callable(damage)
    path.write_bytes(damage(path.read_bytes()))
    again = open_catalog(root)
    (warning,) = again.last_refresh.warnings
    assert warning.startswith(f"catalog index {path} is unusable (")
    assert reason in warning and warning.endswith("; rebuilding it")
    assert again.last_refresh.parsed == 5 and again.last_refresh.saved
    assert again.get_step_info("Loader").is_complete
    assert open_catalog(root).last_refresh.warnings == ()


def _section_files(folder: Path) -> dict[str, tuple[str, int]]:
    """Section → (file name, inode) of the files the header names."""
    named = store.section_files(folder / "index.bin")
    return {section: (name, (folder / name).stat().st_ino) for section, name in named.items()}


def test_index_is_a_header_and_one_file_per_section(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader")]})
    open_catalog(root)
    folder = root / ".stepkit" / "catalog"
    names = sorted(p.name for p in folder.iterdir())
    assert names[:2] == [".lock", "index.bin"] and not [n for n in names if n.endswith(".tmp")]
    assert sorted(_section_files(folder)) == sorted(store.SECTIONS)
    for name, _inode in _section_files(folder).values():  # named for their content
        _section, crc, length = name.removesuffix(".bin").split("-")
        blob = (folder / name).read_bytes()
        assert (len(blob), zlib.crc32(blob)) == (int(length, 16), int(crc, 16))


def test_an_edit_keeping_declarations_rewrites_the_header_only(
    make_project: MakeProject,
) -> None:
    root = make_project({"shared": [Step("Loader"), Step("Saver")]})
    open_catalog(root)
    folder = root / ".stepkit" / "catalog"
    before = _section_files(folder)
    header = (folder / "index.bin").stat().st_ino
    with (root / "steps" / "scripts" / "loader.py").open("a") as handle:
        handle.write("# a comment\n")
    report = open_catalog(root).last_refresh
    assert report.saved and not report.resolved_again
    assert (folder / "index.bin").stat().st_ino != header  # replaced
    assert _section_files(folder) == before  # the same files, not written again


def test_a_new_declaration_writes_new_sections_and_old_ones_go(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project({"shared": [Step("Loader")]})
    open_catalog(root)
    folder = root / ".stepkit" / "catalog"
    before = _section_files(folder)
    write_step(root / "steps", Step("Saver"))
    open_catalog(root)
    after = _section_files(folder)
    assert after["summaries"] != before["summaries"] and after["listing"] != before["listing"]
    # the replaced files stay a little (a reader may be about to open them), then go
    assert len(list(folder.iterdir())) > len(store.SECTIONS) + 2
    monkeypatch.setattr(store, "ORPHAN_GRACE_S", -1.0)
    write_step(root / "steps", Step("Third"))
    catalog = open_catalog(root)
    assert len(list(folder.iterdir())) == len(store.SECTIONS) + 2  # and index.bin, .lock
    assert catalog.get_step_info("Third").path("builder") is not None


def test_a_section_read_but_unchanged_keeps_its_file(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader"), Step("Saver")]})
    open_catalog(root)
    folder = root / ".stepkit" / "catalog"
    before = _section_files(folder)
    (root / "steps" / "specs" / "saver_spec.py").unlink()  # resolved again, incrementally
    report = open_catalog(root).last_refresh
    assert report.resolved_again and report.saved
    after = _section_files(folder)
    assert after["registry"] == before["registry"]  # read for its stems, not rewritten
    assert after["resolved"] != before["resolved"]


def test_a_section_file_of_another_user_is_written_anew(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project({"shared": [Step("Loader")]})
    open_catalog(root)
    folder = root / ".stepkit" / "catalog"
    before = _section_files(folder)

    def refused(path: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "utime", refused)  # a shared state folder: not ours to touch
    with (root / "steps" / "scripts" / "loader.py").open("a") as handle:
        handle.write("# edited\n")
    assert open_catalog(root).last_refresh.saved
    monkeypatch.undo()
    after = _section_files(folder)
    assert {k: n for k, (n, _) in after.items()} == {k: n for k, (n, _) in before.items()}
    assert all(after[k][1] != before[k][1] for k in after)  # the same bytes, written anew
    assert open_catalog(root).last_refresh.parsed == 0


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.unlink(), "is missing"),
        (lambda p: p.write_bytes(p.read_bytes()[:-3]), "is truncated"),
    ],
)
def test_a_missing_or_short_section_file_is_rebuilt_on_open(
    make_project: MakeProject, damage: object, reason: str
) -> None:
    root = make_project({"shared": [Step("Loader")]})
    open_catalog(root)
    folder = root / ".stepkit" / "catalog"
    assert callable(damage)
    damage(folder / _section_files(folder)["resolved"][0])
    again = open_catalog(root)
    (warning,) = again.last_refresh.warnings
    assert reason in warning and warning.endswith("; rebuilding it")
    assert again.get_step_info("Loader").is_complete
    assert open_catalog(root).last_refresh.warnings == ()


@pytest.mark.parametrize("section", ["resolved", "listing", "registry"])
def test_a_corrupt_section_is_found_when_read_and_rebuilt(
    make_project: MakeProject, section: str
) -> None:
    root = make_project({"shared": [Step("Loader"), Step("Saver")]})
    open_catalog(root)
    folder = root / ".stepkit" / "catalog"
    path = folder / _section_files(folder)[section][0]
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # same size: only the checksum can tell
    path.write_bytes(bytes(blob))
    catalog = open_catalog(root)
    assert not catalog.last_refresh.warnings  # not read yet: a warm start reads no section
    rows = catalog.list_rows() if section != "listing" else []
    listed = catalog.list_json()
    assert catalog.get_step_info("Saver").is_complete
    assert len(listed) == 2 and (not rows or len(rows) == 2)
    (warning,) = catalog.last_refresh.warnings
    assert "fails its checksum; rebuilding the catalog index" in warning
    assert open_catalog(root).last_refresh.warnings == ()


def test_a_reader_keeps_its_sections_while_another_process_replaces_them(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project({"shared": [Step("Loader")]})
    open_catalog(root)
    reader = open_catalog(root)  # sections opened, none read yet
    monkeypatch.setattr(store, "ORPHAN_GRACE_S", -1.0)
    write_step(root / "steps", Step("Saver"))
    writer = open_catalog(root)  # new sections; the reader's files are removed
    assert "Saver" in writer.step_names()
    assert reader.step_names() == ["Loader"]  # the index as it was when it was opened
    assert reader.last_refresh.warnings == ()


def test_parallel_parse_gives_the_same_index(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project({"shared": [Step(f"Step{i}") for i in range(12)]})
    project = Project.load(root)
    serial = StepCatalog(project, persist=False, workers=1)
    monkeypatch.setattr(index, "PARALLEL_THRESHOLD", 4)
    parallel = StepCatalog(project, persist=False, workers=2)
    assert parallel.data.resolved == serial.data.resolved
    assert parallel.data.summaries == serial.data.summaries


def test_apply_changes_updates_only_those_paths(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader")]})
    catalog = open_catalog(root)
    steps = root / "steps"
    new = steps / "builders" / "builder_other_step.py"
    new.write_text("class OtherStepBuilder:\n    pass\n")
    gone = steps / "contracts" / "loader_contract.py"
    gone.unlink()
    assert catalog.apply_changes([new, gone, root / "README.md"]) == 2
    assert catalog.get_step_info("Loader").missing == ("contract",)
    assert catalog.get_step_info("Other").path("builder") == new
    # saved: the next start sees the same thing without parsing
    again = open_catalog(root)
    assert again.last_refresh.parsed == 0
    assert again.get_step_info("Other").path("builder") == new


# -- bad input -------------------------------------------------------------------------------


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
    problems = [str(p) for p in open_catalog(root).check()]
    assert f"{steps / 'specs' / 'loader_spec.py'}:2: syntax error: '(' was never closed" in problems
    assert (
        f"{contract}:9: contract TRAINER_CONTRACT: required_env_vars is not a literal (Name)"
        in problems
    )
    assert f"{steps / 'builders' / 'builder_latin1_step.py'}:1: is not UTF-8 text" in problems
    assert (
        f"{steps / 'scripts' / 'trainer.py'}: script of step 'Trainer' has no main() entry point"
        in problems
    )
    assert f"{steps / 'scripts' / 'broken.py'}:1: invalid syntax" not in problems
    assert any(p.startswith(f"{steps / 'scripts' / 'broken.py'}:1: syntax error") for p in problems)
    catalog = open_catalog(root)
    assert catalog.get_step_info("Trainer").is_complete  # the rest of the contract still counts
    assert catalog.get_step_info("Loader").missing == ()  # its spec is known by its file name


def test_symlink_loop_empty_folder_and_missing_steps_folder(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root = make_project({"alice": [], "shared": [Step("Loader")]})
    scripts = root / "steps" / "scripts"
    os.symlink(scripts, scripts / "loop")
    catalog = open_catalog(root)
    messages = [str(p) for p in catalog.check()]
    assert f"{scripts / 'loop'}: symlink loop: folder already visited" in messages
    assert catalog.get_step_info("Loader").is_complete
    # a workspace folder removed after the project was loaded
    project = Project.load(root)
    registry = Registry.load(project)
    for child in sorted((root / "dev" / "alice" / "steps").rglob("*"), reverse=True):
        child.rmdir() if child.is_dir() else child.unlink()
    (root / "dev" / "alice" / "steps").rmdir()
    gone = StepCatalog(project, registry=registry, persist=False)
    assert f"{root / 'dev' / 'alice' / 'steps'}: steps folder does not exist" in [
        str(p) for p in gone.check()
    ]


def test_empty_project_reports_empty_workspaces(make_project: MakeProject) -> None:
    root = make_project({"shared": []})
    catalog = open_catalog(root)
    assert catalog.step_names() == []
    assert [str(p) for p in catalog.check()] == [
        f"{root / 'steps'}: no component files in this workspace"
    ]


def test_a_changed_registry_is_read_again(make_project: MakeProject) -> None:
    from catalog.synth import registry_toml

    root = make_project({"shared": [Step("Loader"), Step("Experimental", register=False)]})
    catalog = open_catalog(root)
    assert not catalog.get_step_info("Experimental").registered
    (root / "steps" / "registry.toml").write_text(
        registry_toml([Step("Loader"), Step("Experimental", step_type="Utility")])
    )
    report = catalog.refresh()
    assert report.resolved_again and report.parsed == 0
    info = catalog.get_step_info("Experimental")
    assert info.registered and info.step_type == "Utility"
    assert open_catalog(root).get_step_info("Experimental").registered


@settings(max_examples=60, deadline=None)
@given(
    value=st.dictionaries(
        st.text(max_size=3),
        st.one_of(
            st.integers(),
            st.lists(st.text(max_size=2), max_size=8),
            st.dictionaries(st.integers(0, 50), st.integers(), max_size=12),
        ),
        max_size=12,
    )
)
def test_packed_pieces_give_back_the_same_dict_in_the_same_order(value: dict[str, Any]) -> None:
    # tiny pieces, so that top-level and nested dicts are both split
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "PIECE_ENTRIES", 3)
        pieces = list(store.pack(value))
    unpacked = store.unpack(b"".join(pieces))
    assert unpacked == value
    assert list(unpacked) == list(value)
    for key, item in value.items():
        if isinstance(item, dict):
            assert list(unpacked[key]) == list(item)


def test_watch_mode_follows_whole_folders_moved_out_and_in(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader")]})
    catalog = open_catalog(root)
    specs = root / "steps" / "specs"
    nested = specs / "extra"
    nested.mkdir()
    (nested / "other_spec.py").write_text((specs / "loader_spec.py").read_text())
    assert catalog.apply_changes([nested]) == 1  # a folder moved in: its files, one event
    assert str(nested / "other_spec.py") in catalog.data.files
    moved = root / "elsewhere"
    nested.rename(moved)  # moved out: one event for the folder, none for its files
    assert catalog.apply_changes([nested]) == 1
    assert str(nested / "other_spec.py") not in catalog.data.files
    fresh = StepCatalog(Project.load(root), persist=False)
    assert catalog.data.resolved == fresh.data.resolved


def test_a_dangling_symlink_to_a_folder_is_reported(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader")]})
    link = root / "steps" / "specs" / "vendor"
    link.symlink_to(root / "missing")
    catalog = open_catalog(root)
    messages = [str(p) for p in catalog.check()]
    assert any(str(link) in m and "cannot be read" in m for m in messages), messages


def test_step_info_pickles_with_its_definition(make_project: MakeProject) -> None:
    import pickle

    root = make_project({"shared": [Step("Loader")]})
    open_catalog(root)
    info = open_catalog(root).get_step_info("Loader")  # read from the saved index
    again = pickle.loads(pickle.dumps(info))
    assert again == info and again.definition == info.definition is not None
    assert again.components["spec"].path == info.components["spec"].path


@pytest.mark.parametrize("workers", [1, 2])
def test_a_cold_start_resolving_as_it_parses_equals_a_whole_resolution(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    from stepkit.catalog.incremental import resolve_all
    from stepkit.catalog.resolution import registry_stems

    root = make_project(
        {
            "alice": [
                Step("Loader", components=("script", "config"), register=False),
                Step("Extra"),
            ],
            "shared": [
                Step("Loader"),
                Step("XGBoostTraining", step_type="Training", job_types=("training",)),
                Step("Scorer", script_stem="score_main"),
                Step("Orphan", register=False),
                Step("VariantOnly", job_types=("calibration",), generic_spec=False),
            ],
        }
    )
    (root / "steps" / "specs" / "broken_spec.py").write_text("def (:\n")
    (root / "steps" / "builders" / "builder_nothing_step.py").write_text("x = 1\n")
    (root / "steps" / "specs" / "nested").mkdir()  # paths sort across folders
    (root / "steps" / "specs" / "nested" / "extra_training_spec.py").write_text("x = 1\n")
    monkeypatch.setattr(index, "PARALLEL_THRESHOLD", 4)
    catalog = StepCatalog(Project.load(root), persist=False, workers=workers)
    data = catalog.data
    facts = catalog._facts()
    entries = (index._entry(path, row, data.summaries) for path, row in data.files.items())
    whole = resolve_all(entries, facts, catalog.project.workspace_ids, registry_stems(facts))
    assert data.resolved == whole.resolved and data.listing == whole.listing
    assert dict(data.links) == whole.links
    assert data.resolved["problems"] and data.resolved["unmatched"]  # covered, not empty
    assert catalog.last_refresh.parsed == len(list(data.files))


def _open_whole(root: str) -> None:
    """Open (and save) the catalog; exit 1 if the index found was not whole."""
    if StepCatalog(Project.load(root)).last_refresh.warnings:
        raise SystemExit(1)


def _add_steps(root: str, rounds: int) -> None:
    """In a process of its own: add a step at a time, opening (and saving) each time."""
    for i in range(rounds):
        write_step(Path(root) / "steps", Step(f"Added{i}", register=False))
        _open_whole(root)


def _edit_code(root: str, rounds: int) -> None:
    """In a process of its own: edits that keep declarations (every section reused)."""
    script = Path(root) / "steps" / "scripts" / "loader.py"
    for i in range(rounds):
        with script.open("a") as handle:
            handle.write(f"# edit {i}\n")
        _open_whole(root)


def test_two_processes_saving_at_once_leave_a_whole_index(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    root = make_project({"shared": [Step("Loader")]})
    open_catalog(root)
    # orphans go at once: a writer reusing a section another has just replaced would lose
    # it between touching it and naming it, were writers not taking turns
    monkeypatch.setattr(store, "ORPHAN_GRACE_S", 0.0)
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_add_steps, args=(str(root), 12)),
        context.Process(target=_edit_code, args=(str(root), 40)),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    catalog = open_catalog(root)
    assert catalog.last_refresh.warnings == ()  # every file the header names is there
    fresh = StepCatalog(Project.load(root), persist=False)
    assert catalog.data.resolved == fresh.data.resolved
    assert {f"Added{i}" for i in range(12)} <= set(catalog.step_names())


def test_a_broken_registry_stops_a_parallel_cold_start(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepkit.errors import StepkitError

    root = make_project({"shared": [Step(f"Step{i}") for i in range(12)]})
    (root / "steps" / "registry.toml").write_text("[steps.Broken\n")
    monkeypatch.setattr(index, "PARALLEL_THRESHOLD", 4)
    project = Project.load(root)  # the registry is read by the catalog, while it parses
    with pytest.raises(StepkitError, match=r"registry\.toml"):
        StepCatalog(project, persist=False, workers=2)
