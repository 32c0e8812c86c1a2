"""Incremental resolution: after any change, the same answers as resolving everything."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.conftest import MakeProject
from catalog.synth import Step, open_catalog
from stepkit.catalog import StepCatalog, find_problems
from stepkit.catalog.resolution import (
    FileEntry,
    PartialResolution,
    RegistryFacts,
    Resolution,
    Resolver,
    resolve_changed,
)
from stepkit.project import Project
from stepkit.registry.definitions import StepDefinition

WORKSPACES = ("alice", "shared")
NAMES = ("Alpha", "AlphaTraining", "XGBoostTraining", "Beta", "Gamma")
STEMS = ("alpha", "alpha_training", "xgboost_training", "xgb_training", "beta", "gamma", "gam")
JOBS = (None, "training", "calibration")

names = st.sampled_from(NAMES)
stems = st.sampled_from(STEMS)
entry_points = st.lists(stems.map(lambda s: f"{s}.py"), max_size=2)
problems = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["bad", "worse"])), max_size=1)


def _classes(suffix: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    one = st.fixed_dictionaries(
        {
            "name": names.map(lambda n: f"{n}{suffix}"),
            "has_run": st.booleans(),
            "entry_points": entry_points,
        }
    )
    return st.lists(one, max_size=2)


_spec = st.fixed_dictionaries(
    {
        "var": st.sampled_from(["SPEC", "OTHER_SPEC"]),
        "line": st.integers(1, 9),
        "step": st.one_of(st.none(), names),
        "job_type": st.sampled_from(JOBS),
        "step_type": st.one_of(
            st.none(), st.sampled_from(["Alpha_Training", "Gamma", "Delta_Calibration"])
        ),
        "contract_ref": st.one_of(
            st.none(),
            st.tuples(
                st.sampled_from(["", "..contracts.alpha_contract", "..contracts.beta_contract"]),
                st.sampled_from(["CONTRACT", "ALPHA_CONTRACT"]),
            ).map(list),
        ),
        "node_type": st.just("internal"),
        "dependencies": st.just(0),
        "outputs": st.just(0),
    }
)
_contract = st.fixed_dictionaries(
    {
        "var": st.sampled_from(["CONTRACT", "ALPHA_CONTRACT"]),
        "line": st.integers(1, 9),
        "entry_point": st.one_of(st.none(), stems.map(lambda s: f"{s}.py")),
    }
)

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
    summary: dict[str, Any] = dict(draw(summaries))
    summary["problems"] = [list(p) for p in draw(problems)]
    parsed = summary if draw(st.integers(0, 9)) else None  # None: not parsed
    return FileEntry(f"/{ws}/{folder}/{stem}.py", ws, component, parsed)


def _by_path(entries: list[FileEntry]) -> dict[str, FileEntry]:
    return {f.path: f for f in entries}


REGISTRY = RegistryFacts.of(
    {
        name: StepDefinition(
            name=name,
            config_class=f"{name}Config",
            builder_step_name=f"{name}StepBuilder",
            spec_type=name,
            sagemaker_step_type="Processing",
            job_types=jobs,
            workspace_id="shared",
        )
        for name, jobs in (("Alpha", ()), ("XGBoostTraining", ("training",)), ("Beta", ()))
    }
)


def _spliced(previous: Resolution, partial: PartialResolution) -> Resolution:
    """What the index holds after storing ``partial`` in place of what it replaces."""
    steps = {n: p for n, p in previous.steps.items() if n not in partial.names}
    steps.update(partial.result.steps)
    return Resolution(
        steps={n: steps[n] for n in sorted(steps)},
        unmatched=sorted(
            [u for u in previous.unmatched if u.path not in partial.paths]
            + partial.result.unmatched
        ),
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
    resolver = Resolver(REGISTRY, WORKSPACES)
    previous = Resolver(REGISTRY, WORKSPACES).run(list(before.values()))
    after = dict(before)
    after.update(edits)  # a changed file (same path) or a new one
    paths = sorted(before)
    for i in removals:
        if paths:
            after.pop(paths[i % len(paths)], None)
    changed = {p for p in {*before, *after} if before.get(p) != after.get(p)}
    whole = Resolver(REGISTRY, WORKSPACES).run(list(after.values()))
    links: dict[str, list[str]] = {}
    for key, path in previous.links:
        links.setdefault(key, []).append(path)
    partial = resolve_changed(
        resolver,
        old={p: before.get(p) for p in changed},
        current={p: after[p] for p in changed if p in after},
        linked=lambda key: links.get(key, []),
        entry=after.__getitem__,
        total=len(after),
    )
    if partial is None:  # the change reaches too many files: resolved as a whole instead
        return
    spliced = _spliced(previous, partial)
    assert spliced.steps == whole.steps
    assert list(spliced.steps) == list(whole.steps)
    assert spliced.unmatched == sorted(whole.unmatched)
    # the links the index keeps: those of the files that did not change, and the new ones
    kept = {(k, p) for k, p in previous.links if p not in changed}
    kept |= {(k, p) for k, p in partial.result.links if p in changed}
    assert kept == set(whole.links)


def _stored(catalog: StepCatalog) -> dict[str, list[Any]]:
    """Every resolved table of the index, sorted: what answers are made of."""
    conn = catalog.session.conn
    tables = ("placements", "listing", "links", "unmatched")
    return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}


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
    assert _stored(catalog) == _stored(fresh)
    assert find_problems(catalog) == find_problems(fresh)


def test_watch_updates_resolve_incrementally_like_a_rebuild(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader"), Step("Scorer")]})
    catalog = open_catalog(root)
    steps = root / "steps"
    spec = steps / "specs" / "loader_spec.py"
    spec.write_text(spec.read_text().replace('get_spec_step_type("Loader")', '"Scorer_Training"'))
    gone = steps / "builders" / "builder_scorer_step.py"
    gone.unlink()
    assert catalog.session.apply_changes([spec, gone]) == 2
    assert catalog.get_job_type_variants("Scorer") == ["training"]
    # the spec refers to Loader's contract, which follows it (and the script the contract)
    assert catalog.get_step_info("Loader").missing == ("script", "contract", "spec")
    assert catalog.get_step_info("Scorer").missing == ("builder",)
    fresh = StepCatalog(Project.load(root), persist=False)
    assert _stored(catalog) == _stored(fresh)
