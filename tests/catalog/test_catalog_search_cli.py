"""Search (ranked, with reasons), the CLI commands, watch mode, and the example project."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog.conftest import MakeProject
from catalog.synth import Step, open_catalog
from stepkit.catalog import find_problems
from stepkit.cli import main
from stepkit.cli.app import app

STEPS = [
    Step("XGBoostTraining", step_type="Training", job_types=["training"]),
    Step("XGBoostModelEval"),
    Step("LightGBMTraining", step_type="Training"),
    Step("TabularPreprocessing", job_types=["training", "testing"]),
    Step("RandomForestTraining", step_type="Training"),
    Step("ModelCalibration", extra={"description": "Fit a probability calibrator"}),
]


def _search(root: Path, query: str, job_type: str | None = None) -> list[tuple[str, str]]:
    return [(r.step_name, r.reason) for r in open_catalog(root).search_steps(query, job_type)]


def test_search_reasons_and_ranking(make_project: MakeProject) -> None:
    root = make_project({"shared": STEPS})
    assert _search(root, "XGBoostTraining")[0] == ("XGBoostTraining", "exact")
    assert _search(root, "xgboost_training")[0] == ("XGBoostTraining", "normalized")
    assert _search(root, "xgb training")[0] == ("XGBoostTraining", "abbreviation")
    assert _search(root, "lgb training")[0] == ("LightGBMTraining", "abbreviation")
    assert _search(root, "preprocess")[0] == ("TabularPreprocessing", "partial")
    assert _search(root, "rf training")[0] == ("RandomForestTraining", "abbreviation")
    # "xgb" covers half of XGBoostTraining's words, a third of XGBoostModelEval's
    assert _search(root, "xgb")[:2] == [
        ("XGBoostTraining", "partial"),
        ("XGBoostModelEval", "partial"),
    ]
    assert _search(root, "tabulr preprocesing")[0] == ("TabularPreprocessing", "fuzzy")
    assert _search(root, "probability calibrator")[0] == (
        "ModelCalibration",
        "name and description",
    )
    assert _search(root, "probability fit")[0] == ("ModelCalibration", "description")
    assert _search(root, "xgb", job_type="training") == [("XGBoostTraining", "partial")]
    assert _search(root, "   ") == []


SEARCHED = [
    Step("ModelCalibration", extra={"description": "Fit a probability calibrator"}),
    Step("ModelEvaluation", extra={"description": "Metrics with bootstrap intervals"}),
    Step("XGBoostModelEval"),
    Step("XGBoostTraining", step_type="Training"),
    Step("DataValidation"),
    Step("EvaluationReport"),
    Step("TabularPreprocessing"),
    Step("ModelRegistration"),
    Step("DummyTraining", step_type="Training"),
    Step("CurrencyConversion"),
]


def _why(root: Path, query: str) -> list[tuple[str, str, tuple[str, ...]]]:
    found = open_catalog(root).search_steps(query)
    return [(r.step_name, r.reason, r.matches) for r in found]


def test_word_forms_and_word_order_match(make_project: MakeProject) -> None:
    root = make_project({"shared": SEARCHED})
    # calibrate ~ calibration, in either order, and each reason says which word matched
    assert _why(root, "calibrate model")[0] == (
        "ModelCalibration",
        "partial",
        ("word calibrat* in name", "word model in name"),
    )
    assert _why(root, "model calibration")[0][:2] == ("ModelCalibration", "normalized")
    assert _why(root, "calibration model")[0][:2] == ("ModelCalibration", "partial")
    evaluate = [name for name, _, _ in _why(root, "evaluate")]
    assert evaluate[:2] == ["EvaluationReport", "ModelEvaluation"]
    assert "XGBoostModelEval" in evaluate  # its name has the short form, eval
    assert _why(root, "register")[0] == (
        "ModelRegistration",
        "partial",
        ("word regist* in name",),
    )
    assert _why(root, "intervals bootstrap") == [
        (
            "ModelEvaluation",
            "description",
            ("word intervals in description", "word bootstrap in description"),
        )
    ]


def test_abbreviations_say_what_they_stand_for_and_unrelated_steps_stay_out(
    make_project: MakeProject,
) -> None:
    root = make_project({"shared": SEARCHED})
    assert _why(root, "xgb") == [
        ("XGBoostTraining", "partial", ("abbreviation xgb → xgboost in name",)),
        ("XGBoostModelEval", "partial", ("abbreviation xgb → xgboost in name",)),
    ]
    # eval stands for evaluation: steps with either word, never a look-alike (validation)
    assert {name for name, _, _ in _why(root, "eval")} == {
        "EvaluationReport",
        "ModelEvaluation",
        "XGBoostModelEval",
    }
    assert ("XGBoostModelEval", "partial", ("word eval in name",)) in _why(root, "eval")


def test_a_typo_still_finds_its_step_and_a_floor_drops_the_rest(
    make_project: MakeProject,
) -> None:
    root = make_project({"shared": SEARCHED})
    assert _why(root, "tabulr preprocesing") == [
        (
            "TabularPreprocessing",
            "fuzzy",
            ("typo tabulr ≈ tabular", "word preproces* in name"),
        )
    ]
    assert _why(root, "curency") == [("CurrencyConversion", "fuzzy", ("typo curency ≈ currency",))]
    assert _why(root, "qqqq zzzz") == []
    assert _why(root, "dumy") == [("DummyTraining", "fuzzy", ("typo dumy ≈ dummy",))]


def test_search_table_shows_why_each_step_matched(make_project: MakeProject) -> None:
    root = make_project({"shared": SEARCHED})
    code, out = _cli(root, "search", "calibrate model")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["step", "score", "match", "why", "workspace"]
    assert re.split(r"\s{2,}", lines[2]) == [
        "ModelCalibration",
        "84.0",
        "partial",
        "word calibrat* in name; word model in name",
        "shared",
    ]


def test_abbreviations_and_scores_are_ordered_and_bounded(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("GradientBoostingTraining"), *STEPS[:2]]})
    assert _search(root, "gb train")[0] == ("GradientBoostingTraining", "abbreviation")
    results = open_catalog(root).search_steps("xgb training")
    assert results[0].step_name == "XGBoostTraining"
    assert all(0 <= r.score <= 100 for r in results)
    assert results == sorted(results, key=lambda r: -r.score)


def _main(args: list[str]) -> None:
    """The console entry point, as a shell runs it (Typer exits 0 on success)."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code in (0, None)


def _cli(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["-p", str(root), "catalog", *args])
    return result.exit_code, result.output


def test_cli_list_json_from_the_console_entry_equals_the_typer_app(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project({"alice": [Step("Sampler")], "shared": STEPS})
    _main(["-p", str(root), "catalog", "list", "--json"])  # no index yet: built here
    cold = capsys.readouterr().out
    assert (root / ".stepkit" / "catalog" / "index.sqlite").is_file()
    code, warm = _cli(root, "list", "--json")
    assert code == 0
    assert json.loads(cold) == json.loads(warm)
    rows = json.loads(warm)["steps"]
    assert [r["name"] for r in rows][:2] == ["LightGBMTraining", "ModelCalibration"]
    sampler = next(r for r in rows if r["name"] == "Sampler")
    assert sampler == {
        "broken": {},
        "complete": True,
        "components": {c: "alice" for c in ("builder", "config", "contract", "script", "spec")},
        "job_types": [],
        "layout": "classic",
        "missing": [],
        "name": "Sampler",
        "registered": True,
        "step_type": "Processing",
        "workspace_id": "alice",
    }
    _main(["-p", str(root), "catalog", "list", "--json", "--type", "Training", "-j", "training"])
    filtered = json.loads(capsys.readouterr().out)["steps"]
    assert [r["name"] for r in filtered] == ["XGBoostTraining"]
    _main(["-p", str(root), "catalog", "list", "-w", "alice"])
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "Steps: 1"
    assert table[1].split() == [
        "name",
        "type",
        "workspace",
        "job",
        "types",
        "components",
        "complete",
    ]
    assert table[3].split() == [
        "Sampler",
        "Processing",
        "alice",
        "builder",
        "config",
        "contract",
        "script",
        "spec",
        "yes",
    ]


def test_cli_list_reports_unknown_workspace(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project({"shared": STEPS})
    _cli(root, "index")
    with pytest.raises(SystemExit) as exit_info:
        main(["-p", str(root), "catalog", "list", "--json", "-w", "alcie"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "error: No workspace named 'alcie'. Known: shared.\n"


def test_cli_show_which_variants_search_check_index(make_project: MakeProject) -> None:
    shared = Step("TabularPreprocessing", job_types=["training"])
    mine = Step("TabularPreprocessing", components=("script",), register=False)
    root = make_project({"alice": [mine], "shared": [shared, Step("Orphan", register=False)]})
    code, out = _cli(root, "show", "TabularPreprocessing", "--all", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["components"]["script"]["workspace_id"] == "alice"
    assert [s["workspace_id"] for s in shown["shadowed"]] == ["shared"]
    code, out = _cli(root, "show", "TabularPreprocessing_training")
    assert code == 0 and "TabularPreprocessing_training (Processing, from alice)" in out
    code, out = _cli(
        root, "which", str(root / "steps/configs/config_tabular_preprocessing_step.py")
    )
    assert (code, out) == (0, "TabularPreprocessing\n")
    code, out = _cli(root, "which", str(root / "stepkit.toml"))
    assert code == 1
    code, out = _cli(root, "variants", "TabularPreprocessing", "--json")
    assert json.loads(out)["nodes"] == ["TabularPreprocessing_training"]
    code, out = _cli(root, "search", "tabular prep", "--json")
    assert json.loads(out)[0] == {
        "name": "TabularPreprocessing",
        "reason": "abbreviation",
        "matches": ["abbreviation prep → preprocessing in name"],
        "score": 90.0,
        "workspace_id": "alice",
    }
    code, out = _cli(root, "check", "--json")
    assert code == 1
    assert [p["kind"] for p in json.loads(out)] == ["unregistered"]
    code, out = _cli(root, "index", "--rebuild", "--json")
    assert code == 0 and json.loads(out)["parsed"] == 12


def test_cli_errors_are_one_line(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project({"shared": [Step("TabularPreprocessing")]})
    with pytest.raises(SystemExit) as exit_info:
        main(["-p", str(root), "catalog", "show", "TabularPreprocesing"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == (
        "error: No step named 'TabularPreprocesing'. Did you mean 'TabularPreprocessing'?\n"
    )


def test_watch_applies_a_saved_change(make_project: MakeProject) -> None:
    from stepkit.catalog.watch import watch_catalog

    root = make_project({"shared": [Step("Loader")]})
    catalog = open_catalog(root)
    stop = threading.Event()
    updates = []

    def run() -> None:
        for update in watch_catalog(catalog, stop_event=stop):
            updates.append(update)
            stop.set()

    thread = threading.Thread(target=run)
    thread.start()
    builder = root / "steps" / "builders" / "builder_extra_step.py"
    try:
        for _ in range(100):  # until the watcher has seen it (it may start after the write)
            builder.write_text("class ExtraStepBuilder:\n    pass\n")
            if stop.wait(0.2):
                break
    finally:
        stop.set()
        thread.join(timeout=10)
    assert updates and str(builder) in updates[0].paths
    assert catalog.get_step_info("Extra").path("builder") == builder


def test_example_project_is_complete_and_clean(example_project: Path) -> None:
    from stepkit.catalog import StepCatalog
    from stepkit.project import Project

    catalog = StepCatalog(Project.load(example_project), persist=False)
    assert len(catalog.step_names()) == 10
    assert all(catalog.get_step_info(n).is_complete for n in catalog.step_names())
    assert find_problems(catalog) == []
    assert catalog.get_step_info("ModelEvaluation").workspace_id == "bob"
    assert catalog.get_step_info("FeatureSelection").workspace_id == "alice"
    assert catalog.get_job_type_variants("DataLoading") == [
        "calibration",
        "testing",
        "training",
        "validation",
    ]


def test_a_view_searches_what_its_index_holds_now(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("XGBoostTraining", step_type="Training")]})
    catalog = open_catalog(root)
    assert [r.step_name for r in catalog.search_steps("xgb train")] == ["XGBoostTraining"]
    assert catalog.search_steps("calibrat") == []
    builder = root / "steps" / "builders" / "builder_model_calibration_step.py"
    builder.write_text("class ModelCalibrationStepBuilder:\n    pass\n")
    catalog.session.apply_changes([builder])  # as watch mode does, in the same view
    (found,) = catalog.search_steps("calibrat")
    assert (found.step_name, found.reason, found.workspace_id) == (
        "ModelCalibration",
        "partial",
        "shared",
    )
    assert [r.step_name for r in catalog.search_steps("xgb train")] == ["XGBoostTraining"]


def test_a_search_of_an_empty_project_finds_nothing(make_project: MakeProject) -> None:
    root = make_project({"shared": []})
    assert open_catalog(root).search_steps("xgb tranin") == []
