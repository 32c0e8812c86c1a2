from __future__ import annotations

from dataclasses import dataclass, field

from stepkit.plan.wiring import Upstream, wire_node


@dataclass
class Dep:
    logical_name: str
    required: bool = True
    compatible_sources: list[str] = field(default_factory=list)
    semantic_keywords: list[str] = field(default_factory=list)
    dependency_type: str = "processing_output"


@dataclass
class Out:
    logical_name: str
    aliases: list[str] = field(default_factory=list)
    output_type: str = "processing_output"


def test_logical_name_and_compatible_source_win() -> None:
    loading = Upstream("DataLoading_training", "DataLoading", [Out("DATA"), Out("METADATA")])
    wires, issues = wire_node(
        "TabularPreprocessing_training",
        [Dep("DATA", compatible_sources=["DataLoading"], semantic_keywords=["data", "raw"])],
        [loading],
    )
    assert issues == []
    (wire,) = wires
    assert (wire.source, wire.output) == ("DataLoading_training", "DATA")
    assert wire.score == 0.9
    assert "same logical name" in wire.reasons


def test_alias_and_keywords_match_a_differently_named_output() -> None:
    prep = Upstream(
        "Prep", "TabularPreprocessing", [Out("processed_data", aliases=["training_data"])]
    )
    wires, issues = wire_node(
        "Train",
        [
            Dep(
                "training_data",
                compatible_sources=["TabularPreprocessing"],
                dependency_type="training_data",
            )
        ],
        [prep],
    )
    assert issues == [] and wires[0].output == "processed_data" and "alias" in wires[0].reasons


def test_compatible_source_and_two_keywords_are_enough() -> None:
    prep = Upstream("Prep", "TabularPreprocessing", [Out("processed_data", aliases=["features"])])
    dep = Dep(
        "input_path",
        compatible_sources=["TabularPreprocessing"],
        semantic_keywords=["processed", "features", "x"],
    )
    wires, issues = wire_node("Train", [dep], [prep])
    assert issues == [] and wires[0].score == 0.5
    one_keyword = Dep(
        "input_path", compatible_sources=["TabularPreprocessing"], semantic_keywords=["processed"]
    )
    wires, issues = wire_node("Train", [one_keyword], [prep])
    assert wires == [] and issues[0].kind == "missing" and issues[0].candidates[0].score == 0.4


def test_type_clash_never_matches_and_missing_required_is_reported() -> None:
    model = Upstream("Train", "Training", [Out("model", output_type="model_artifacts")])
    wires, issues = wire_node("Eval", [Dep("DATA", compatible_sources=["Training"])], [model])
    assert wires == []
    (issue,) = issues
    assert issue.kind == "missing" and issue.required
    assert str(issue) == "Eval: no upstream output satisfies required input 'DATA'"


def test_optional_dependency_without_source_is_silent() -> None:
    wires, issues = wire_node("Eval", [Dep("calibration", required=False)], [])
    assert wires == [] and issues == []


def test_two_equal_sources_are_ambiguous_with_candidates() -> None:
    a = Upstream("Prep_a", "TabularPreprocessing", [Out("DATA")])
    b = Upstream("Prep_b", "TabularPreprocessing", [Out("DATA")])
    wires, issues = wire_node(
        "Train", [Dep("DATA", compatible_sources=["TabularPreprocessing"])], [a, b]
    )
    assert wires == []
    (issue,) = issues
    assert issue.kind == "ambiguous"
    assert [c.node for c in issue.candidates] == ["Prep_a", "Prep_b"]
    assert "ambiguous between Prep_a.DATA (0.80" in str(issue)
