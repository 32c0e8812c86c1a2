"""Incremental resolution (§2 under §5): resolving only the steps a change can reach gives
exactly what resolving every file again gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.conftest import MakeProject
from catalog.synth import Step, open_catalog
from stepkit.catalog import StepCatalog
from stepkit.catalog.discovery import encode_summary
from stepkit.catalog.incremental import Resolution, resolve_all, resolve_changed
from stepkit.catalog.resolution import FileEntry, RegistryFacts, registry_stems
from stepkit.project import Project

WORKSPACES = ("alice", "shared")
NAMES = ("Alpha", "AlphaTraining", "XGBoostTraining", "Beta", "Gamma")
STEMS = ("alpha", "alpha_training", "xgboost_training", "xgb_training", "beta", "gamma", "gam")
JOBS = (None, "training", "calibration")

names = st.sampled_from(NAMES)
stems = st.sampled_from(STEMS)
entry_points = st.lists(stems.map(lambda s: f"{s}.py"), max_size=2)
problems = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["bad", "worse"])), max_size=1)


def _classes(suffix: str) -> st.SearchStrategy[list[list[Any]]]:
    one = st.tuples(names.map(lambda n: f"{n}{suffix}"), st.booleans(), entry_points)
    return st.lists(one.map(list), max_size=2)


_spec = st.tuples(
    st.sampled_from(["SPEC", "OTHER_SPEC"]),
    st.integers(1, 9),
    st.one_of(st.none(), names),
    st.sampled_from(JOBS),
    st.one_of(st.none(), st.sampled_from(["Alpha_Training", "Gamma", "Delta_Calibration"])),
    st.one_of(
        st.none(),
        st.tuples(
            st.sampled_from(["", "..contracts.alpha_contract", "..contracts.beta_contract"]),
            st.sampled_from(["CONTRACT", "ALPHA_CONTRACT"]),
        ).map(list),
    ),
    st.just("internal"),
    st.just(0),
    st.just(0),
).map(list)
_contract = st.tuples(
    st.sampled_from(["CONTRACT", "ALPHA_CONTRACT"]),
    st.integers(1, 9),
    st.one_of(st.none(), stems.map(lambda s: f"{s}.py")),
).map(list)

FILES = {
    "config": ("configs", "config_{}_step", st.fixed_dictionaries({"classes": _classes("Config")})),
    "builder": (
        "builders",
        "builder_{}_step",
        st.fixed_dictionaries({"classes": _classes("StepBuilder")}),
    ),
    "hyperparams": (
        "hyperparams",
        "hyperparameters_{}",
        st.fixed_dictionaries({"classes": _classes("Hyperparameters")}),
    ),
    "spec": ("specs", "{}_spec", st.fixed_dictionaries({"specs": st.lists(_spec, max_size=2)})),
    "contract": (
        "contracts",
        "{}_contract",
        st.fixed_dictionaries({"contracts": st.lists(_contract, max_size=2)}),
    ),
    "script": ("scripts", "{}", st.just({})),
}


@st.composite
def file_entries(draw: st.DrawFn) -> FileEntry:
    component = draw(st.sampled_from(sorted(FILES)))
    folder, pattern, summaries = FILES[component]
    stem = pattern.format(draw(stems))
    ws = draw(st.sampled_from(WORKSPACES))
    summary = dict(draw(summaries))
    summary["problems"] = [list(p) for p in draw(problems)]
    encoded = encode_summary(summary) if draw(st.integers(0, 9)) else None  # None: not parsed
    return FileEntry(f"/{ws}/{folder}/{stem}.py", ws, component, encoded)


def _by_path(entries: list[FileEntry]) -> dict[str, FileEntry]:
    return {f.path: f for f in entries}


REGISTRY = RegistryFacts.from_rows(
    {
        name: [
            f"{name}Config",
            f"{name}StepBuilder",
            name,
            "Processing",
            "",
            jobs,
            "shared",
            None,
            None,
            [],
        ]
        for name, jobs in (("Alpha", []), ("XGBoostTraining", ["training"]), ("Beta", []))
    }
)


@settings(max_examples=300, deadline=None)
@given(
    before=st.lists(file_entries(), max_size=25).map(_by_path),
    edits=st.lists(file_entries(), max_size=4).map(_by_path),
    removals=st.lists(st.integers(0, 30), max_size=3),
)
def test_incremental_resolution_equals_a_whole_one(
    before: dict[str, FileEntry], edits: dict[str, FileEntry], removals: list[int]
) -> None:
    stems_ = registry_stems(REGISTRY)
    previous = resolve_all(list(before.values()), REGISTRY, WORKSPACES, stems_)
    after = dict(before)
    after.update(edits)  # a changed file (same path) or a new one
    paths = sorted(before)
    for i in removals:
        if paths:
            after.pop(paths[i % len(paths)], None)
    changed = {p for p in {*before, *after} if before.get(p) != after.get(p)}
    whole = resolve_all(list(after.values()), REGISTRY, WORKSPACES, stems_)
    links_before = _normal(previous)
    partial = resolve_changed(
        previous=previous,
        old={p: before.get(p) for p in changed},
        current={p: after[p] for p in changed if p in after},
        entry=after.__getitem__,
        registry=REGISTRY,
        workspace_order=WORKSPACES,
        by_stem=stems_,
        total=len(after),
    )
    assert _normal(previous) == links_before  # the previous resolution is left whole
    if partial is None:  # the change reaches too many files: resolved as a whole instead
        return
    assert partial.resolved == whole.resolved
    assert list(partial.resolved["steps"]) == list(whole.resolved["steps"])
    assert partial.listing == whole.listing
    assert _normal(partial) == _normal(whole)


def _normal(resolution: Resolution) -> dict[str, list[str]]:
    return {k: sorted(v) for k, v in resolution.links.items()}


def test_a_new_entry_point_moves_the_script_and_resolves_only_that_step(
    make_project: MakeProject,
) -> None:
    root = make_project({"shared": [Step("Loader"), Step("Trainer", step_type="Training")]})
    open_catalog(root)
    steps = root / "steps"
    (steps / "scripts" / "load_v2.py").write_text("def main():\n    pass\n")
    config = steps / "configs" / "config_loader_step.py"
    config.write_text(config.read_text() + '\n    processing_entry_point: str = "load_v2.py"\n')
    contract = steps / "contracts" / "loader_contract.py"
    contract.write_text(contract.read_text().replace('"loader.py"', '"load_v2.py"'))
    catalog = open_catalog(root)
    assert catalog.last_refresh.resolved_again is True
    loader = catalog.get_step_info("Loader")
    assert loader.path("script") == steps / "scripts" / "load_v2.py"
    assert catalog.get_step_info("Trainer").path("script") == steps / "scripts" / "trainer.py"
    # exactly what a catalog built from nothing says
    fresh = StepCatalog(Project.load(root), persist=False)
    assert catalog.data.resolved == fresh.data.resolved
    assert catalog.data.listing == fresh.data.listing
    assert catalog.check() == fresh.check()


def test_watch_updates_resolve_incrementally_like_a_rebuild(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader"), Step("Scorer")]})
    catalog = open_catalog(root)
    steps = root / "steps"
    spec = steps / "specs" / "loader_spec.py"
    spec.write_text(spec.read_text().replace('get_spec_step_type("Loader")', '"Scorer_Training"'))
    gone = steps / "builders" / "builder_scorer_step.py"
    gone.unlink()
    assert catalog.apply_changes([spec, gone]) == 2
    assert catalog.get_job_type_variants("Scorer") == ["training"]
    # the spec refers to Loader's contract, which follows it (and the script the contract)
    assert catalog.get_step_info("Loader").missing == ("script", "contract", "spec")
    assert catalog.get_step_info("Scorer").missing == ("builder",)
    fresh = StepCatalog(Project.load(root), persist=False)
    assert catalog.data.resolved == fresh.data.resolved
    assert catalog.data.listing == fresh.data.listing
