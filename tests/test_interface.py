"""Reading ``.step.yaml`` interface files into the shared models."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepkit.components import (
    DependencySpec,
    DependencyType,
    JobArgument,
    NodeType,
    OutputSpec,
    ScriptContract,
)
from stepkit.errors import InterfaceFileError
from stepkit.interface import (
    StepInterface,
    interface_document,
    parse_interface,
    read_interface,
    render_interface,
    summarize_interface,
)

PREPROCESSING = """\
step_type: TabularPreprocessing
node_type: internal
registry:
  sagemaker_step_type: Processing
  description: Splits tabular data
contract:
  entry_point: tabular_preprocessing.py
  inputs:
    DATA:
      path: /opt/ml/processing/input/data
      required: true
      channels: [train, val, test]
  outputs:
    processed_data:
      path: /opt/ml/processing/output
  arguments:
    job_type: one of training, validation, testing, calibration
  job_arguments:
    - flag: --job_type
      source: job_type
  env_vars:
    required: [LABEL_FIELD]
    optional:
      TRAIN_RATIO: 0.7
  framework_requirements:
    pandas: ">=1.2.0,<2.0.0"
  include_job_type_in_path: true
spec:
  dependencies:
    DATA:
      type: processing_output
      required: true
      compatible_sources: [DummyDataLoading]
      semantic_keywords: [data, raw]
  outputs:
    processed_data:
      type: processing_output
      property_path: properties.ProcessingOutputConfig.Outputs['processed_data'].S3Output.S3Uri
      semantic_keywords: [processed]
      aliases: [output]
variants:
  training:
    step_type: TabularPreprocessing_Training
    spec:
      dependencies:
        DATA:
          semantic_keywords: [training]
  calibration:
    spec:
      outputs:
        processed_data:
          description: calibration split
compute:
  instance_type: ml.m5.2xlarge
patterns:
  output_path: "{bucket}/{step}"
"""


def _parse(text: str) -> object:
    return parse_interface(text, path=Path("steps/interfaces/x.step.yaml"), workspace_id="shared")


def test_contract_equals_the_classic_contract_it_replaces(tmp_path: Path) -> None:
    path = tmp_path / "tabular_preprocessing.step.yaml"
    path.write_text(PREPROCESSING)
    step = read_interface(path, workspace_id="shared")
    classic = ScriptContract(
        entry_point="tabular_preprocessing.py",
        expected_input_paths={"DATA": "/opt/ml/processing/input/data"},
        expected_output_paths={"processed_data": "/opt/ml/processing/output"},
        required_env_vars=["LABEL_FIELD"],
        optional_env_vars={"TRAIN_RATIO": "0.7"},
        expected_arguments={"job_type": "one of training, validation, testing, calibration"},
        framework_requirements={"pandas": ">=1.2.0,<2.0.0"},
        job_arguments=[JobArgument(flag="--job_type", source="job_type")],
        channels={"DATA": ["train", "val", "test"]},
    )
    assert step.contract == classic
    assert step.contract.job_arguments[0].dest == "job_type"
    assert step.name == "TabularPreprocessing"
    assert step.node_type is NodeType.INTERNAL
    assert step.spec.script_contract == classic


def test_spec_and_registry_defaults() -> None:
    step = _parse(PREPROCESSING)
    assert step.spec.step_type == "TabularPreprocessing"  # type: ignore[attr-defined]
    assert step.spec.dependencies["DATA"] == DependencySpec(  # type: ignore[attr-defined]
        logical_name="DATA",
        dependency_type=DependencyType.PROCESSING_OUTPUT,
        compatible_sources=["DummyDataLoading"],
        semantic_keywords=["data", "raw"],
    )
    output = step.spec.outputs["processed_data"]  # type: ignore[attr-defined]
    assert isinstance(output, OutputSpec)
    assert output.aliases == ["output"]
    assert output.semantic_keywords == ["processed"]
    registry = step.registry  # type: ignore[attr-defined]
    assert registry.kind == "define"
    assert dict(registry.fields) == {
        "config_class": "TabularPreprocessingConfig",
        "builder_step_name": "TabularPreprocessingStepBuilder",
        "spec_type": "TabularPreprocessing",
        "sagemaker_step_type": "Processing",
        "description": "Splits tabular data",
    }
    assert registry.origin.line == 3
    assert step.metadata == {  # type: ignore[attr-defined]
        "compute": {"instance_type": "ml.m5.2xlarge"},
        "patterns": {"output_path": "{bucket}/{step}"},
    }


def test_variants_merge_their_partial_spec_over_the_base() -> None:
    step = _parse(PREPROCESSING)
    training = step.variants["training"]  # type: ignore[attr-defined]
    assert training.step_type == "TabularPreprocessing_Training"
    assert training.job_type == "training"
    data = training.dependencies["DATA"]
    assert data.semantic_keywords == ["training"]  # replaced
    assert data.compatible_sources == ["DummyDataLoading"]  # kept
    calibration = step.variants["calibration"]  # type: ignore[attr-defined]
    assert calibration.step_type == "TabularPreprocessing_Calibration"
    assert calibration.outputs["processed_data"].description == "calibration split"
    assert calibration.outputs["processed_data"].aliases == ["output"]
    # the base spec is untouched by its variants
    assert step.spec.dependencies["DATA"].semantic_keywords == ["data", "raw"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("  entry_point: tabular_preprocessing.py", "  entry_pont: x.py"),
            "x.step.yaml:7: unknown key 'contract.entry_pont'; did you mean entry_point?",
        ),
        (
            (
                "      type: processing_output\n      required: true\n      compatible",
                "      type: nonsense\n      required: true\n      compatible",
            ),
            "x.step.yaml:30: spec.dependencies.DATA: dependency_type: Input should be",
        ),
        (
            ("node_type: internal", "node_type: middle"),
            "x.step.yaml:2: node_type 'middle' is not one of source, internal, sink, singular",
        ),
        (
            ("  sagemaker_step_type: Processing\n", ""),
            "x.step.yaml:3: registry needs sagemaker_step_type",
        ),
        (
            ("    - flag: --job_type", "    - flag: job_type"),
            "x.step.yaml:19: contract.job_arguments.0: flag: job argument flag 'job_type' must look like",
        ),
        (
            ("      path: /opt/ml/processing/output", "      path: 3"),
            "x.step.yaml:15: contract.outputs.processed_data.path must be a container path",
        ),
    ],
)
def test_errors_name_the_file_and_the_line(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in PREPROCESSING
    with pytest.raises(InterfaceFileError) as caught:
        _parse(PREPROCESSING.replace(old, new, 1))
    assert str(caught.value).startswith(f"steps/interfaces/{message}")


def test_bad_yaml_names_its_line() -> None:
    with pytest.raises(InterfaceFileError, match=r"x\.step\.yaml:4: is not valid YAML"):
        _parse("step_type: A\nnode_type: source\nregistry: [unclosed\n")


def test_yaml_that_would_run_code_is_refused() -> None:
    hostile = "!!python/object/apply:os.system ['echo pwned']\n"
    with pytest.raises(InterfaceFileError, match="is not valid YAML"):
        _parse(hostile)


def test_missing_top_key_is_named() -> None:
    with pytest.raises(InterfaceFileError, match=r"x\.step\.yaml:1: has no 'contract'"):
        _parse("step_type: A\nnode_type: source\nregistry: {sagemaker_step_type: Processing}\n")


def test_a_step_written_out_reads_back_the_same() -> None:
    step = _parse(PREPROCESSING)
    document = interface_document(
        registry=step.registry.fields,  # type: ignore[attr-defined]
        contract=step.contract,  # type: ignore[attr-defined]
        spec=step.spec,  # type: ignore[attr-defined]
        variants=step.variants,  # type: ignore[attr-defined]
    )
    again = _parse(render_interface(document))
    for field in ("name", "node_type", "contract", "spec", "variants"):
        assert getattr(again, field) == getattr(step, field), field
    assert dict(again.registry.fields) == dict(step.registry.fields)  # type: ignore[attr-defined]
    # only what differs from the base is written for a variant
    assert document["variants"]["training"] == {  # its step_type is the default one
        "spec": {"dependencies": {"DATA": {"semantic_keywords": ["training"]}}},
    }
    assert document["variants"]["calibration"] == {
        "spec": {"outputs": {"processed_data": {"description": "calibration split"}}}
    }


def test_a_variant_cannot_drop_what_the_base_has() -> None:
    step = _parse(PREPROCESSING)
    base = step.spec  # type: ignore[attr-defined]
    without = base.model_copy(
        update={"dependencies": {}, "step_type": "TabularPreprocessing_Testing"}
    )
    with pytest.raises(ValueError, match="TabularPreprocessing_testing has no dependency 'DATA'"):
        interface_document(
            registry={"sagemaker_step_type": "Processing"},
            contract=step.contract,  # type: ignore[attr-defined]
            spec=base,
            variants={"testing": without},
        )


def test_node_types_of_the_summary_are_the_models() -> None:
    from stepkit.registry.interface_nodes import NODE_TYPES

    assert tuple(t.value for t in NodeType) == NODE_TYPES


def test_what_the_frameworks_own_interfaces_write_is_read() -> None:
    """Seen in the framework's files: ``source_dir: true`` (the job runs from its scripts
    folder), ``python`` among the requirements (the interpreter, not a package), and a
    dependency's ``compatible_output_types``."""
    text = (
        PREPROCESSING.replace(
            "  entry_point: tabular_preprocessing.py\n",
            "  entry_point: tabular_preprocessing.py\n  source_dir: true\n",
        )
        .replace(
            '    pandas: ">=1.2.0,<2.0.0"\n',
            "    python: '>=3.7'\n    pandas: \">=1.2.0,<2.0.0\"\n",
        )
        .replace(
            "      compatible_sources: [DummyDataLoading]\n",
            "      compatible_sources: [DummyDataLoading]\n      compatible_output_types: [model]\n",
        )
    )
    step = _parse(text)
    assert isinstance(step, StepInterface) and step.contract is not None
    assert step.contract.source_dir == "scripts"
    assert step.contract.framework_requirements == {"pandas": ">=1.2.0,<2.0.0"}
    assert step.contract.python_requires == ">=3.7"
    assert step.spec.dependencies["DATA"].compatible_output_types == ["model"]
    summary = summarize_interface(text, path=Path("steps/interfaces/x.step.yaml"))
    assert summary["source_dir"] == "scripts"
    assert ScriptContract(
        entry_point="x.py", framework_requirements={"python": ">=3.8", "numpy": "*"}
    ).framework_requirements == {"numpy": "*"}


def test_a_step_without_a_script_has_no_contract() -> None:
    """``entry_point: null`` (a CreateModel or Transform step): its spec is read, and its
    inputs have no container paths to check."""
    text = PREPROCESSING.replace(
        "  entry_point: tabular_preprocessing.py\n", "  entry_point: null\n"
    ).replace("      path: /opt/ml/processing/input/data\n", "      path: null\n")
    step = _parse(text)
    assert isinstance(step, StepInterface)
    assert step.contract is None
    assert step.spec.script_contract is None
    assert "DATA" in step.spec.dependencies
    summary = summarize_interface(text, path=Path("steps/interfaces/x.step.yaml"))
    assert summary["entry_point"] is None
