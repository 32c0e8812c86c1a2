"""The catalog of interface-first workspaces (``interfaces/<stem>.step.yaml``): discovery,
derived and YAML registries, completeness by layout, duplicates and mixed projects."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from interface_layout import (
    HARD_CASES,
    InterfaceStep,
    write_duplicate,
    write_hard_cases,
    write_interface_project,
    write_interface_step,
    write_yaml_registry,
)
from typer.testing import CliRunner

from catalog.synth import Step, write_project
from stepkit.catalog import StepCatalog, contract_of, find_problems, interface_of, spec_of
from stepkit.cli.app import app
from stepkit.errors import UnknownStepError
from stepkit.interface import read_interface
from stepkit.project import Project
from stepkit.registry.layering import Registry


def _hard_project(root: Path) -> Path:
    write_interface_project(root, {"shared": []})
    write_hard_cases(root / "steps")
    return root


def _catalog(root: Path) -> StepCatalog:
    return StepCatalog(Project.load(root))


def _cli(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["-p", str(root), *args])
    return result.exit_code, result.output


def test_every_hard_case_is_found_complete_with_no_problem(tmp_path: Path) -> None:
    root = _hard_project(tmp_path / "p")
    catalog = _catalog(root)
    assert catalog.step_names() == sorted(step.name for step in HARD_CASES)
    for step in HARD_CASES:
        info = catalog.get_step_info(step.name)
        assert info.layout == "interface"
        assert info.is_complete, (step.name, info.missing)
        assert "builder" not in info.required  # builders are made at run time
    assert find_problems(catalog) == []  # helper modules of the package are not "unmatched"


def test_entry_point_and_acronym_stems_find_the_script(tmp_path: Path) -> None:
    root = _hard_project(tmp_path / "p")
    catalog = _catalog(root)
    steps = root / "steps"
    risk = catalog.get_step_info("RiskTableMapping")
    assert risk.path("script") == steps / "scripts" / "risk_mapping_main.py"
    for name, stem in [
        ("LightGBMMTTraining", "lightgbmmt_training"),
        ("GraphStormGNNTraining", "graphstorm_gnn_training"),
        ("XgboostMtTraining", "xgboost_mt_training"),
    ]:
        info = catalog.get_step_info(name)
        assert info.path("config") == steps / "configs" / f"config_{stem}_step.py"
        assert info.path("script") == steps / "scripts" / f"{stem}.py"
    packaged = catalog.get_step_info("PackagedScoring")
    assert packaged.path("script") == steps / "scripts" / "scoring" / "packaged_scoring.py"
    assert catalog.find_steps_by_component(steps / "scripts" / "risk_mapping_main.py") == [
        "RiskTableMapping"
    ]


def test_acronym_stems_of_classic_files_match_registered_names(tmp_path: Path) -> None:
    steps = [Step("LightGBMMTTraining", "Training", stem="lightgbmmt_training")]
    root = write_project(tmp_path / "p", {"shared": steps})
    catalog = _catalog(root)
    info = catalog.get_step_info("LightGBMMTTraining")
    assert info.is_complete
    assert not [p for p in find_problems(catalog) if p.kind == "unmatched"]


def test_models_from_the_interface_equal_the_file_read_directly(tmp_path: Path) -> None:
    root = _hard_project(tmp_path / "p")
    catalog = _catalog(root)
    path = root / "steps" / "interfaces" / "tabular_preprocessing.step.yaml"
    read = read_interface(path, workspace_id="shared")
    assert contract_of(catalog, "TabularPreprocessing") == read.contract
    assert contract_of(catalog, "TabularPreprocessing_training") == read.contract
    training = spec_of(catalog, "TabularPreprocessing_training")
    assert training == read.variants["training"]
    assert training is not None and training.step_type == "TabularPreprocessing_Training"
    assert training.dependencies["input_data"].semantic_keywords == ["training", "data"]
    assert spec_of(catalog, "TabularPreprocessing") == read.spec
    found = interface_of(catalog, "TabularPreprocessing")
    assert found is not None and found.metadata["compute"]["instance_type"] == "ml.m5.xlarge"
    info = catalog.get_step_info("TabularPreprocessing")
    assert info.job_types == ("calibration", "training")
    assert info.definition is not None and info.definition.job_types == ("training", "calibration")


def test_show_prints_the_metadata_and_the_layout(tmp_path: Path) -> None:
    root = _hard_project(tmp_path / "p")
    code, out = _cli(root, "catalog", "show", "TabularPreprocessing_training")
    assert code == 0, out
    assert out.splitlines()[0] == (
        "TabularPreprocessing_training (Processing, from shared, interface layout)"
    )
    assert "compute:\n  instance_type: ml.m5.xlarge\n  volume_size: 30" in out
    assert "patterns:\n  output_path: '{pipeline_s3_loc}/{step}/{output}'" in out
    code, out = _cli(root, "catalog", "show", "TabularPreprocessing", "--json")
    assert json.loads(out)["metadata"]["patterns"] == {
        "output_path": "{pipeline_s3_loc}/{step}/{output}"
    }


def test_a_broken_interface_is_a_problem_with_its_line(tmp_path: Path) -> None:
    root = _hard_project(tmp_path / "p")
    bad = root / "steps" / "interfaces" / "broken_step.step.yaml"
    bad.write_text("step_type: BrokenStep\nnode_type: internal\nregistry: [oops\n")
    other = root / "steps" / "interfaces" / "typo_step.step.yaml"
    other.write_text(
        "step_type: TypoStep\nnode_type: source\nregistry:\n  sagemaker_step_type: Processing\n"
        "contract:\n  entry_point: typo.py\n  outputz: {}\n"
    )
    found = find_problems(_catalog(root))
    problems = {str(p.path): p for p in found if p.kind in ("syntax", "interface")}
    assert problems[str(bad)].kind == "syntax"
    assert problems[str(bad)].line == 4
    assert problems[str(other)].kind == "interface"
    assert str(problems[str(other)]) == (
        f"{other}:7: unknown key 'contract.outputz'; did you mean outputs?"
    )
    code, _ = _cli(root, "catalog", "list")
    assert code == 0  # the rest of the workspace is catalogued


def test_discovery_never_executes_anything(tmp_path: Path) -> None:
    root = _hard_project(tmp_path / "p")
    marker = tmp_path / "ran"
    hostile = root / "steps" / "interfaces" / "hostile.step.yaml"
    hostile.write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    problems = [p for p in find_problems(_catalog(root)) if p.path == hostile]
    assert problems and not marker.exists()


def test_yaml_registry_with_abstract_rows(tmp_path: Path) -> None:
    root = _hard_project(tmp_path / "p")
    write_yaml_registry(root / "steps" / "step_names.yaml", HARD_CASES)
    catalog = _catalog(root)
    assert {"Base", "Processing"} <= set(catalog.step_names())
    assert find_problems(catalog) == []  # abstract rows are not incomplete steps
    rows = {row.name: row.as_json() for row in catalog.list_rows()}
    assert rows["Base"]["abstract"] is True and rows["Base"]["missing"] == []


@pytest.mark.parametrize("where", ["steps/step_names.yaml", "steps/interfaces"])
def test_registry_may_name_a_yaml_file_or_an_interfaces_folder(tmp_path: Path, where: str) -> None:
    root = tmp_path / "p"
    write_interface_project(root, {"shared": HARD_CASES[:2]}, registry={"shared": where})
    if where.endswith(".yaml"):
        write_yaml_registry(root / where, HARD_CASES[:2])
    registry = Registry.load(Project.load(root))
    assert {"TabularPreprocessing", "DummyDataLoading"} <= set(registry.view("shared"))
    assert registry.problems == ()
    definition = registry.get("TabularPreprocessing", workspace_id="shared")
    assert definition.config_class == "TabularPreprocessingConfig"
    assert definition.sagemaker_step_type == "Processing"


def test_a_derived_registry_follows_edits_to_the_interfaces(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_interface_project(root, {"shared": HARD_CASES[:2]})
    assert _catalog(root).get_step_info("DummyDataLoading").definition is not None
    path = root / "steps" / "interfaces" / "dummy_data_loading.step.yaml"
    path.write_text(path.read_text().replace("DummyDataLoading step", "Loads dummies"))
    info = _catalog(root).get_step_info("DummyDataLoading")
    assert info.definition is not None and info.definition.description == "Loads dummies"
    write_interface_step(root / "steps", InterfaceStep(name="NewStep"))
    catalog = _catalog(root)
    assert catalog.get_step_info("NewStep").is_complete
    assert [row.name for row in catalog.list_rows()] == [
        "DummyDataLoading",
        "NewStep",
        "TabularPreprocessing",
    ]
    path.unlink()  # its config and script are left: a step with no registry entry now
    assert _catalog(root).get_step_info("DummyDataLoading").definition is None


def test_two_interfaces_of_one_step_are_a_duplicate_naming_both(tmp_path: Path) -> None:
    root = _hard_project(tmp_path / "p")
    second = write_duplicate(root / "steps")
    first = root / "steps" / "interfaces" / "tabular_preprocessing.step.yaml"
    duplicates = [p for p in find_problems(_catalog(root)) if p.kind == "duplicate"]
    assert len(duplicates) == 1
    assert duplicates[0].path == second and str(first) in duplicates[0].message


def test_a_generic_and_a_job_type_spec_of_one_node_are_a_duplicate(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"shared": [Step("Foo", job_types=("training",))]})
    specs = root / "steps" / "specs"
    text = (specs / "foo_training_spec.py").read_text()
    (specs / "foo_copy_spec.py").write_text(text)  # declares Foo_Training as well
    duplicates = [p for p in find_problems(_catalog(root)) if p.kind == "duplicate"]
    assert [(p.path, p.step) for p in duplicates] == [(specs / "foo_training_spec.py", "Foo")]
    assert "foo_copy_spec.py" in duplicates[0].message


def test_mixed_in_one_workspace_the_interface_wins(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"shared": [Step("TabularPreprocessing")]})
    steps = root / "steps"
    interface = write_interface_step(steps, HARD_CASES[0])["interface"]
    catalog = _catalog(root)
    info = catalog.get_step_info("TabularPreprocessing")
    assert info.path("contract") == interface and info.path("spec") == interface
    assert {f.location for f in info.shadowed} == {
        str(steps / "contracts" / "tabular_preprocessing_contract.py"),
        str(steps / "specs" / "tabular_preprocessing_spec.py"),
    }
    assert not [p for p in find_problems(catalog) if p.kind == "duplicate"]
    code, out = _cli(root, "catalog", "show", "TabularPreprocessing", "--all")
    assert code == 0 and "contract (shadowed)" in out and "tabular_preprocessing_contract.py" in out


def test_mixed_across_workspaces_precedence_decides(tmp_path: Path) -> None:
    # alice's classic step overrides a shared interface step; bob's interface a classic one
    root = write_project(
        tmp_path / "p",
        {"alice": [Step("TabularPreprocessing")], "bob": [], "shared": [Step("Classic")]},
    )
    write_interface_step(root / "steps", HARD_CASES[0])
    write_interface_step(root / "dev" / "bob" / "steps", InterfaceStep(name="Classic"))
    catalog = _catalog(root)
    tabular = catalog.get_step_info("TabularPreprocessing")
    assert tabular.components["contract"].workspace_id == "alice"
    assert tabular.layout == "classic"
    assert any(f.via == "interface" and f.workspace_id == "shared" for f in tabular.shadowed)
    classic = catalog.get_step_info("Classic")
    assert classic.components["contract"].workspace_id == "bob"
    assert classic.layout == "interface"
    assert {f.workspace_id for f in classic.shadowed} == {"shared"}
    code, out = _cli(root, "catalog", "show", "Classic", "--all")
    assert code == 0 and "(shadowed)" in out and "shared" in out


def test_an_unknown_variant_never_suggests_the_name_asked_for(tmp_path: Path) -> None:
    root = _hard_project(tmp_path / "p")
    catalog = _catalog(root)
    info = catalog.get_step_info("TabularPreprocessing", "Training")  # any casing
    assert info.node_name == "TabularPreprocessing_training"
    assert catalog.get_step_info("TabularPreprocessing_Training").job_type == "training"
    with pytest.raises(UnknownStepError) as caught:
        catalog.get_step_info("TabularPreprocessing_testing")
    assert caught.value.name not in caught.value.suggestions


def _stored(catalog: StepCatalog) -> dict[str, list[object]]:
    """Every resolved table of the index, sorted: what answers are made of."""
    conn = catalog.session.conn
    tables = ("placements", "listing", "links", "unmatched", "definitions")
    return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_every_change_to_interfaces_resolves_like_a_rebuild(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shared = [*HARD_CASES[:3], InterfaceStep(name="Scorer", entry_point="score_main.py")]
    write_interface_project(root, {"alice": [InterfaceStep(name="Scorer")], "shared": shared})
    steps = root / "steps"
    interfaces = steps / "interfaces"
    (steps / "configs" / "config_other_step.py").write_text(
        "from stepkit.components import StepConfig\n\n\nclass OtherConfig(StepConfig):\n"
        "    x: int = 1\n"
    )
    changes: list[Callable[[], object]] = [
        lambda: _edit(interfaces / "dummy_data_loading.step.yaml", "DummyDataLoading step", "new"),
        lambda: _edit(interfaces / "scorer.step.yaml", "score_main.py", "scorer.py"),
        lambda: _edit(
            interfaces / "scorer.step.yaml", "description: Scorer step", "config_class: OtherConfig"
        ),
        lambda: _edit(
            interfaces / "lightgbmmt_training.step.yaml",
            "compute:",
            "variants:\n  calibration:\ncompute:",
        ),
        lambda: (interfaces / "tabular_preprocessing.step.yaml").unlink(),
        lambda: write_interface_step(steps, InterfaceStep(name="Added", variants=("testing",))),
        lambda: _edit(
            root / "dev" / "alice" / "steps" / "interfaces" / "scorer.step.yaml",
            "Scorer step",
            "alice's scorer",
        ),
    ]
    catalog = _catalog(root)
    for change in changes:
        change()
        catalog = _catalog(root)
        catalog.session.ensure_walked()  # as list and check do: an edit keeps the folder's stat
        fresh = StepCatalog(Project.load(root), persist=False)
        assert _stored(catalog) == _stored(fresh)
        assert find_problems(catalog) == find_problems(fresh)
    scorer = catalog.get_step_info("Scorer")
    assert scorer.definition is not None
    assert scorer.definition.workspace_id == "alice"  # alice's row overrides what differs
    assert scorer.definition.description == "alice's scorer"
    # alice's file names no config class: by the defaults it is ScorerConfig, over shared's
    assert scorer.definition.config_class == "ScorerConfig"
    assert "config_class" in scorer.definition.overridden_fields
    assert catalog.get_step_info("Added_testing").job_type == "testing"
    assert catalog.get_step_info("TabularPreprocessing").definition is None  # files left


def test_index_lookups_answer_as_the_tables_in_memory(tmp_path: Path) -> None:
    from stepkit.catalog.resolution import MemoryLookups
    from stepkit.catalog.store import StoredLookups, open_index, write_definitions
    from stepkit.registry.definitions import StepDefinition

    names = [
        "LightGBMMTTraining",
        "GraphStormGNNTraining",
        "XgboostMtTraining",
        "XGBoostMTTraining",
    ]
    definitions = {
        n: StepDefinition(n, f"{n[:5]}Config", f"{n}StepBuilder", n[:8], "Training") for n in names
    }
    conn = open_index(tmp_path / "index.sqlite")
    write_definitions(conn, definitions)
    stored, memory = StoredLookups(conn), MemoryLookups(definitions)
    for name in names:
        d = definitions[name]
        assert stored.config_owners(d.config_class) == memory.config_owners(d.config_class)
        assert stored.builder_owners(d.builder_step_name) == memory.builder_owners(
            d.builder_step_name
        )
        assert stored.spec_type_owner(d.spec_type) == memory.spec_type_owner(d.spec_type)
    for stem in ("lightgbmmt_training", "graphstorm_gnn_training", "xgboost_mt_training", "nope"):
        assert stored.stem_owner(stem) == memory.stem_owner(stem)
    conn.close()


def test_one_interface_that_makes_no_contract_stops_neither_check_nor_test_all(
    tmp_path: Path,
) -> None:
    """Its summary reads (so it is catalogued), its whole file does not: ``check`` says so
    with the line and goes on to every other step, and so does ``test all``."""
    root = _hard_project(tmp_path / "p")
    interfaces = sorted((root / "steps" / "interfaces").glob("*.step.yaml"))
    interface = next(path for path in interfaces if "source_dir" not in path.read_text())
    text = interface.read_text()
    entry = next(line for line in text.splitlines() if line.strip().startswith("entry_point:"))
    interface.write_text(text.replace(entry, f"{entry}\n  source_dir: [not, a, folder]", 1))

    code, output = _cli(root, "catalog", "check")
    assert code == 1
    said = [line for line in output.splitlines() if str(interface) in line]
    assert said and "source_dir" in said[0], output
    assert output.rstrip().endswith("problem(s)")
    code, output = _cli(root, "test", "all", "--env", "LABEL_FIELD=label")
    assert "Traceback" not in output
    assert code in (0, 1), output
    assert "passed" in output, output
