from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepkit.names import (
    BRAND_WORDS,
    StemIndex,
    canonical_name_from_file_name,
    close_matches,
    component_stem,
    is_pascal_case,
    name_key,
    pascal_to_snake,
    snake_to_pascal,
    split_node_name,
    strip_job_type,
)


@pytest.mark.parametrize(
    ("pascal", "snake"),
    [
        ("XGBoostTraining", "xgboost_training"),
        ("PyTorchModel", "pytorch_model"),
        ("LightGBMTraining", "lightgbm_training"),
        ("TabularPreprocessing", "tabular_preprocessing"),
        ("XGBoostModelEval", "xgboost_model_eval"),
        ("CustomXGBoostTraining", "custom_xgboost_training"),
        ("Step2Thing", "step2_thing"),
    ],
)
def test_brand_and_compound_words_convert_both_ways(pascal: str, snake: str) -> None:
    assert pascal_to_snake(pascal) == snake
    assert snake_to_pascal(snake) == pascal


def test_acronyms_become_one_word() -> None:
    assert pascal_to_snake("MIMSPackaging") == "mims_packaging"


def test_node_name_splits_into_base_and_job_type() -> None:
    assert split_node_name("TabularPreprocessing_training") == ("TabularPreprocessing", "training")
    assert split_node_name("TabularPreprocessing") == ("TabularPreprocessing", None)
    assert split_node_name("Foo_custom_job") == ("Foo", "custom_job")


def test_job_type_suffix_only_stripped_when_known() -> None:
    assert strip_job_type("tabular_preprocessing_training") == ("tabular_preprocessing", "training")
    assert strip_job_type("xgboost_training") == ("xgboost", "training")  # the rule alone
    assert strip_job_type("model_eval") == ("model_eval", None)
    assert strip_job_type("foo_backfill", ["backfill"]) == ("foo", "backfill")


def test_component_stems() -> None:
    assert component_stem("config_tabular_preprocessing_step", "config") == "tabular_preprocessing"
    assert component_stem("builder_xgboost_training_step", "builder") == "xgboost_training"
    assert component_stem("xgboost_training_contract", "contract") == "xgboost_training"


def test_file_names_resolve_through_the_registry_first() -> None:
    known = {"XGBoostTraining", "MIMSPackaging", "TabularPreprocessing", "RandomForestTraining"}
    # a look-alike: "training" is not stripped as a job type because the full stem is a step
    assert canonical_name_from_file_name("xgboost_training.py", known) == "XGBoostTraining"
    assert canonical_name_from_file_name("mims_packaging", known) == "MIMSPackaging"
    assert canonical_name_from_file_name("config_mims_packaging_step.py", known) == "MIMSPackaging"
    assert canonical_name_from_file_name("tabular_preprocessing_training_spec", known) == (
        "TabularPreprocessing"
    )
    assert canonical_name_from_file_name("xgb_training", known) == "XGBoostTraining"
    assert canonical_name_from_file_name("rf_training", known) == "RandomForestTraining"
    assert canonical_name_from_file_name("nothing_like_it", known) is None


def test_close_matches_ignores_case() -> None:
    assert close_matches("tabularpreprocessing", ["TabularPreprocessing", "Other"]) == [
        "TabularPreprocessing"
    ]
    assert close_matches("ModelEvaluaton", ["ModelEvaluation", "DataLoading"]) == [
        "ModelEvaluation"
    ]
    assert close_matches("zzz", ["ModelEvaluation"]) == []


_brand_lower = {b.lower() for b in BRAND_WORDS}
_word = st.from_regex(r"[A-Z][a-z]{1,8}[0-9]?", fullmatch=True).filter(
    lambda w: w.lower() not in _brand_lower
)
_pascal = st.lists(
    st.one_of(_word, st.sampled_from(sorted(BRAND_WORDS))), min_size=1, max_size=5
).map("".join)


@given(_pascal)
def test_pascal_names_round_trip_through_snake_case(name: str) -> None:
    assert is_pascal_case(name)
    assert snake_to_pascal(pascal_to_snake(name)) == name


@given(st.lists(_pascal, min_size=1, max_size=20, unique=True), st.data())
def test_every_registered_name_round_trips_through_its_file_name(
    names: list[str], data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(names))
    for file_name in (
        pascal_to_snake(name) + ".py",
        f"config_{pascal_to_snake(name)}_step.py",
        f"{pascal_to_snake(name)}_contract.py",
    ):
        assert canonical_name_from_file_name(file_name, set(names)) == name


@given(st.from_regex(r"[a-z]{2}[a-z0-9]{0,6}(_[a-z]{2}[a-z0-9]{0,6}){0,4}", fullmatch=True))
def test_snake_stems_round_trip_through_pascal_case(stem: str) -> None:
    assert pascal_to_snake(snake_to_pascal(stem)) == stem


@pytest.mark.parametrize(
    ("file_name", "step"),
    [
        ("lightgbmmt_training.py", "LightGBMMTTraining"),
        ("graphstorm_gnn_training.py", "GraphStormGNNTraining"),
        ("xgboost_mt_training.py", "XgboostMtTraining"),
        ("config_graphstorm_gnn_training_step.py", "GraphStormGNNTraining"),
        ("lightgbmmt_training_contract.py", "LightGBMMTTraining"),
    ],
)
def test_acronyms_match_however_the_file_spells_them(file_name: str, step: str) -> None:
    known = {"LightGBMMTTraining", "GraphStormGNNTraining", "XgboostMtTraining", "XGBoostTraining"}
    assert canonical_name_from_file_name(file_name, known) == step


def test_a_key_shared_by_two_names_matches_neither() -> None:
    index = StemIndex(["ABTest", "AbTest"])
    assert index.get("abtest") is None
    assert index.get("ab_test") == "AbTest"  # the exact stem still wins


@given(st.from_regex(r"[A-Z][a-z]{1,6}(?:[A-Z]{1,4}[a-z]{0,5}){0,3}", fullmatch=True))
def test_every_name_and_its_stem_share_a_key(name: str) -> None:
    assert name_key(pascal_to_snake(name)) == name_key(name)
    assert StemIndex([name]).get(pascal_to_snake(name)) == name
