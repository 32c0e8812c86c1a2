"""§2 of the catalog: every file goes to the right step, registry first, names last."""

from __future__ import annotations

import pytest

from catalog.conftest import MakeProject
from catalog.synth import Step, open_catalog, write_step
from stepkit.catalog import contract_of, file_facts, find_problems, spec_of
from stepkit.errors import UnknownStepError
from stepkit.project import Project
from stepkit.registry import Registry


def test_brand_name_steps_resolve_every_component(make_project: MakeProject) -> None:
    root = make_project(
        {
            "shared": [
                Step("XGBoostTraining", step_type="Training"),
                Step("PyTorchModelEval"),
                Step("LightGBMTraining", step_type="Training"),
            ]
        }
    )
    catalog = open_catalog(root)
    info = catalog.get_step_info("XGBoostTraining")
    assert {c: f.path.name for c, f in info.components.items()} == {
        "script": "xgboost_training.py",
        "contract": "xgboost_training_contract.py",
        "spec": "xgboost_training_spec.py",
        "config": "config_xgboost_training_step.py",
        "builder": "builder_xgboost_training_step.py",
    }
    assert info.components["config"].via == "registry"
    assert info.components["spec"].via == "declared"
    assert info.components["contract"].via == "spec"
    assert info.components["script"].via == "contract"
    assert info.is_complete
    assert catalog.get_step_info("PyTorchModelEval").path("script") == (
        root / "steps" / "scripts" / "pytorch_model_eval.py"
    )
    assert catalog.get_step_info("LightGBMTraining").is_complete
    assert find_problems(catalog) == []


def test_variant_only_step_has_no_generic_spec(make_project: MakeProject) -> None:
    step = Step("CradleDataLoading", job_types=["training", "calibration"], generic_spec=False)
    root = make_project({"shared": [step]})
    catalog = open_catalog(root)
    info = catalog.get_step_info("CradleDataLoading")
    assert sorted(j for j in info.specs if j) == ["calibration", "training"]
    assert None not in info.specs
    assert catalog.get_job_type_variants("CradleDataLoading") == ["calibration", "training"]
    node = catalog.resolve_pipeline_node("CradleDataLoading_training")
    assert node is not None and node.job_type == "training"
    assert node.path("spec") == root / "steps/specs/cradle_data_loading_training_spec.py"
    shared = catalog.get_shared_components("CradleDataLoading")
    assert shared["script"] == node.components["script"]
    assert catalog.resolve_pipeline_node("CradleDataLoading_validation") is None


def test_generic_and_variant_specs(make_project: MakeProject) -> None:
    step = Step("TabularPreprocessing", job_types=["training"], registry_job_types=["validation"])
    root = make_project({"shared": [step]})
    catalog = open_catalog(root)
    specs = root / "steps" / "specs"
    assert catalog.get_step_info("TabularPreprocessing").path("spec") == (
        specs / "tabular_preprocessing_spec.py"
    )
    training = catalog.get_step_info("TabularPreprocessing", "training")
    assert training.path("spec") == specs / "tabular_preprocessing_training_spec.py"
    # a registered job type without its own spec falls back to the generic spec
    validation = catalog.get_step_info("TabularPreprocessing_validation")
    assert validation.path("spec") == specs / "tabular_preprocessing_spec.py"
    assert validation.node_name == "TabularPreprocessing_validation"
    with pytest.raises(
        UnknownStepError, match="No job-type variant named 'TabularPreprocessing_testing'"
    ):
        catalog.get_step_info("TabularPreprocessing", "testing")


def test_look_alike_spec_names_follow_the_declared_step_type(make_project: MakeProject) -> None:
    # "xgboost_training_spec.py" could read as XGBoost + job type "training"
    root = make_project(
        {
            "shared": [
                Step("XGBoost", components=("config", "builder"), step_type="Base"),
                Step("XGBoostTraining", step_type="Training", job_types=["testing"]),
            ]
        }
    )
    catalog = open_catalog(root)
    training = catalog.get_step_info("XGBoostTraining")
    assert training.specs[None].path.name == "xgboost_training_spec.py"
    assert training.specs["testing"].path.name == "xgboost_training_testing_spec.py"
    assert catalog.get_step_info("XGBoost").specs == {}
    assert catalog.get_job_type_variants("XGBoost") == []


def test_literal_step_type_gives_the_job_type(make_project: MakeProject) -> None:
    step = Step("ModelEval", job_types=["calibration"], literal_step_type=True)
    root = make_project({"shared": [step]})
    info = open_catalog(root).get_step_info("ModelEval", "calibration")
    assert info.components["spec"].job_type == "calibration"
    assert info.components["spec"].path.name == "model_eval_calibration_spec.py"


def test_spec_declaration_beats_its_file_name(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("RiskScoring"), Step("Packaging")]})
    specs = root / "steps" / "specs"
    text = (specs / "risk_scoring_spec.py").read_text()
    (specs / "packaging_extra_spec.py").write_text(text.replace("RISK_SCORING_SPEC", "OTHER_SPEC"))
    catalog = open_catalog(root)
    assert catalog.find_steps_by_component(specs / "packaging_extra_spec.py") == ["RiskScoring"]


def test_contract_entry_point_names_a_script_with_another_stem(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("TabularPreprocessing", script_stem="preprocess")]})
    catalog = open_catalog(root)
    info = catalog.get_step_info("TabularPreprocessing")
    assert info.path("script") == root / "steps" / "scripts" / "preprocess.py"
    assert info.components["script"].via == "contract"
    assert catalog.find_step_by_component(root / "steps/scripts/preprocess.py") == (
        "TabularPreprocessing"
    )
    assert find_problems(catalog) == []


def test_config_entry_point_counts_when_no_spec_names_the_contract(
    make_project: MakeProject,
) -> None:
    step = Step("FeatureGen", components=("script", "contract", "config", "builder"))
    root = make_project({"shared": [step]})
    contracts = root / "steps" / "contracts"
    (contracts / "feature_gen_contract.py").rename(contracts / "features_contract.py")
    info = open_catalog(root).get_step_info("FeatureGen")
    assert info.path("contract") == contracts / "features_contract.py"
    assert info.components["contract"].via == "entry_point"


def test_step_without_registry_entry_is_listed_unregistered(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("DataLoading"), Step("Experimental", register=False)]})
    (root / "steps" / "scripts" / "helpers_io.py").write_text("def load():\n    return 1\n")
    catalog = open_catalog(root)
    assert catalog.step_names() == ["DataLoading", "Experimental"]
    info = catalog.get_step_info("Experimental")
    assert not info.registered and not info.is_complete
    assert info.path("config") == root / "steps/configs/config_experimental_step.py"
    problems = [str(p) for p in find_problems(catalog)]
    scripts = root / "steps" / "scripts"
    assert problems == [
        f"{scripts / 'helpers_io.py'}: script file matches no step (its name suggests 'HelpersIo')",
        f"{scripts / 'experimental.py'}: step 'Experimental' has components "
        "(builder, config, contract, script, spec) but no registry entry",
    ]
    row = next(r.as_json() for r in catalog.list_rows() if r.name == "Experimental")
    assert row["registered"] is False


def test_one_file_serves_two_steps(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Scoring"), Step("Rescoring", components=("spec",))]})
    configs = root / "steps" / "configs"
    text = (configs / "config_scoring_step.py").read_text()
    (configs / "config_scoring_step.py").write_text(
        text + "\n\nclass RescoringConfig(ScoringConfig):\n    pass\n"
    )
    catalog = open_catalog(root)
    owners = catalog.find_steps_by_component(configs / "config_scoring_step.py")
    assert sorted(owners) == ["Rescoring", "Scoring"]
    assert catalog.get_step_info("Rescoring").path("config") == configs / "config_scoring_step.py"


def test_two_workspaces_shadow_each_other(make_project: MakeProject) -> None:
    shared = Step("ModelEvaluation")
    mine = Step("ModelEvaluation", components=("script", "config"), register=False)
    root = make_project({"alice": [mine], "shared": [shared]})
    catalog = open_catalog(root)
    info = catalog.get_step_info("ModelEvaluation")
    assert info.workspace_id == "alice"
    assert info.components["script"].workspace_id == "alice"
    assert info.components["contract"].workspace_id == "shared"
    shadowed = {(f.component, f.workspace_id) for f in info.shadowed}
    assert shadowed == {("script", "shared"), ("config", "shared")}
    assert catalog.list_available_steps(workspace_id="alice") == ["ModelEvaluation"]
    as_json = info.as_json(with_shadowed=True)
    assert [s["workspace_id"] for s in as_json["shadowed"]] == ["shared", "shared"]


def test_unknown_step_suggests_close_names(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("TabularPreprocessing")]})
    catalog = open_catalog(root)
    with pytest.raises(UnknownStepError, match="Did you mean 'TabularPreprocessing'"):
        catalog.get_step_info("TabularPreprocesing")
    assert catalog.get_step_info("tabular_preprocessing").name == "TabularPreprocessing"


def test_list_filters(make_project: MakeProject) -> None:
    root = make_project(
        {
            "alice": [Step("Sampler", job_types=["training"])],
            "shared": [Step("Train", step_type="Training"), Step("Prep", job_types=["testing"])],
        }
    )
    catalog = open_catalog(root)
    assert catalog.list_available_steps() == ["Prep", "Sampler", "Train"]
    assert catalog.list_available_steps(step_type="Training") == ["Train"]
    assert catalog.list_available_steps(job_type="testing") == ["Prep"]
    assert catalog.list_available_steps(workspace_id="alice") == ["Sampler"]


def test_models_read_with_ast_equal_models_built_in_code(make_project: MakeProject) -> None:
    from stepkit.components import (
        DependencySpec,
        DependencyType,
        NodeType,
        OutputSpec,
        ScriptContract,
        StepSpecification,
    )

    root = make_project({"shared": [Step("DataPrep", job_types=["training"])]})
    catalog = open_catalog(root)
    contract = ScriptContract(
        entry_point="data_prep.py",
        expected_input_paths={"data": "/opt/ml/processing/input/data"},
        expected_output_paths={"out": "/opt/ml/processing/output"},
        required_env_vars=["LABEL_FIELD"],
        optional_env_vars={"RATIO": "0.7"},
        expected_arguments={"job_type": "training"},
        framework_requirements={"pandas": ">=2"},
        description="DataPrep contract",
    )
    assert contract_of(catalog, "DataPrep") == contract
    spec = StepSpecification(
        step_type="DataPrep_Training",
        node_type=NodeType.INTERNAL,
        script_contract=contract,
        dependencies=[
            DependencySpec(
                logical_name="data",
                dependency_type=DependencyType.PROCESSING_OUTPUT,
                required=True,
                compatible_sources=["DataLoading"],
                semantic_keywords=["data", "raw"],
                data_type="S3Uri",
                description="input data",
            )
        ],
        outputs=[
            OutputSpec(
                logical_name="out",
                aliases=["output"],
                output_type=DependencyType.PROCESSING_OUTPUT,
                data_type="S3Uri",
                description="the output",
            )
        ],
    )
    assert spec_of(catalog, "DataPrep", "training") == spec


def test_script_facts_are_read_on_demand(make_project: MakeProject) -> None:
    root = make_project({"shared": [Step("Loader")]})
    catalog = open_catalog(root)
    facts = file_facts(catalog, root / "steps/scripts/loader.py")
    assert facts is not None
    assert facts["main"]["params"] == ["input_paths", "output_paths", "environ_vars", "job_args"]
    assert facts["has_main_block"] is True


def test_steps_written_later_in_a_new_workspace_folder(make_project: MakeProject) -> None:
    root = make_project({"alice": [], "shared": [Step("Loader")]})
    write_step(root / "dev" / "alice" / "steps", Step("Loader", components=("builder",)))
    info = open_catalog(root).get_step_info("Loader")
    assert info.components["builder"].workspace_id == "alice"


def test_definitions_come_from_the_index_as_the_registry_gives_them(
    make_project: MakeProject,
) -> None:
    root = make_project(
        {
            "alice": [Step("Scorer")],
            "shared": [Step("Loader"), Step("Trainer", step_type="Training")],
        }
    )
    with (root / "dev" / "alice" / "steps" / "registry.toml").open("a") as handle:
        handle.write('\n[steps.Trainer]\noverride = true\ndescription = "alice trains"\n')
    project = Project.load(root)
    registry = Registry.load(project)
    open_catalog(root)
    catalog = open_catalog(root)  # warm: the digest is read from the index
    for name in ("Scorer", "Loader", "Trainer"):
        info = catalog.get_step_info(name)
        expected = registry.view(info.definition.workspace_id if info.definition else "").get(name)
        assert info.definition is not None and expected is not None
        assert info.definition == expected
        assert info.definition.origin == expected.origin  # not part of ==
    trainer = catalog.get_step_info("Trainer").definition
    assert trainer is not None and trainer.workspace_id == "alice"
    assert trainer.description == "alice trains" and trainer.overridden_fields == ("description",)
    assert trainer.origin is not None and trainer.origin.path.name == "registry.toml"
    assert catalog.get_step_info("Trainer").step_type == "Training"


def test_a_spec_helper_resolves_to_its_own_last_return_before_nested_ones() -> None:
    from stepkit.catalog.discovery import parse_text

    source = (
        "from stepkit.components import StepSpecification\n\n"
        "def _get_contract(job='x'):\n"
        "    from ..contracts.eval_contract import EVAL_CONTRACT\n"
        "    if job == 'training':\n"
        "        from ..contracts.train_contract import TRAIN_CONTRACT\n"
        "        return TRAIN_CONTRACT\n"
        "    return EVAL_CONTRACT\n\n"
        "SPEC = StepSpecification(step_type='X', script_contract=_get_contract())\n"
    )
    (spec,) = parse_text(source, "spec")["specs"]
    # as ast.walk meets them: the helper's own return before the one nested in ``if``
    assert spec["contract_ref"] == ["..contracts.eval_contract", "EVAL_CONTRACT"]
