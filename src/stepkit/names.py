"""Every step-name rule in one place.

Canonical step names are PascalCase (``XGBoostTraining``); component files use snake_case
stems (``xgboost_training``); a pipeline node may carry a job type (``Foo_training``).
Brand and compound words (XGBoost, PyTorch, LightGBM, …) convert as one word both ways.
Resolution of a file name to a *registered* name goes through the registry first
(:func:`canonical_name_from_file_name`); the string rules here are the fallback.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Final

#: Job types every project understands; a registry may declare more per step.
STANDARD_JOB_TYPES: Final = ("training", "validation", "testing", "calibration")

#: Words that are one word in snake_case although their PascalCase has inner capitals.
BRAND_WORDS: Final[Mapping[str, str]] = {
    "XGBoost": "xgboost",
    "PyTorch": "pytorch",
    "LightGBM": "lightgbm",
    "TensorFlow": "tensorflow",
    "SageMaker": "sagemaker",
    "CatBoost": "catboost",
    "SciKit": "scikit",
    "OpenAI": "openai",
    "MLflow": "mlflow",
}
_BRAND_BY_SNAKE: Final = {snake: pascal for pascal, snake in BRAND_WORDS.items()}

#: Short forms people type or name files with, and the word they stand for.
ABBREVIATIONS: Final[Mapping[str, str]] = {
    "xgb": "xgboost",
    "lgb": "lightgbm",
    "lgbm": "lightgbm",
    "torch": "pytorch",
    "pt": "pytorch",
    "tf": "tensorflow",
    "preprocess": "preprocessing",
    "prep": "preprocessing",
    "eval": "evaluation",
    "calib": "calibration",
    "rf": "random_forest",
    "gb": "gradient_boosting",
    "reg": "registration",
    "pkg": "packaging",
    "cfg": "config",
    "val": "validation",
    "train": "training",
    "test": "testing",
}

_PASCAL_TOKEN: Final = re.compile(
    "|".join(re.escape(word) for word in sorted(BRAND_WORDS, key=len, reverse=True))
    + r"|[A-Z]+(?=[A-Z][a-z]|$)|[A-Z]?[a-z][a-z0-9]*|[A-Z]+\d[a-z0-9]*|[A-Z]+|\d[a-z0-9]*"
)
_PASCAL_NAME: Final = re.compile(r"[A-Z][A-Za-z0-9]*")
_SNAKE_STEM: Final = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")


def is_pascal_case(name: str) -> bool:
    """True for a canonical step name: starts upper-case, letters and digits only."""
    return _PASCAL_NAME.fullmatch(name) is not None


def is_snake_case(stem: str) -> bool:
    """True for a file stem made of lower-case words joined by single underscores."""
    return _SNAKE_STEM.fullmatch(stem) is not None


@lru_cache(maxsize=65536)  # a step's name is asked for again by listing, search and lookups
def pascal_to_snake(name: str) -> str:
    """``XGBoostTraining`` → ``xgboost_training``; ``MIMSPackaging`` → ``mims_packaging``."""
    words = _PASCAL_TOKEN.findall(name)
    return "_".join(BRAND_WORDS.get(word, word.lower()) for word in words)


def snake_to_pascal(stem: str) -> str:
    """``xgboost_training`` → ``XGBoostTraining``; ``data_loading`` → ``DataLoading``."""
    return "".join(
        _BRAND_BY_SNAKE.get(word, word[:1].upper() + word[1:]) for word in stem.split("_") if word
    )


def split_node_name(node: str) -> tuple[str, str | None]:
    """``TabularPreprocessing_training`` → (``TabularPreprocessing``, ``training``).

    Canonical names never contain ``_``, so everything after the first one is the job type.
    """
    base, sep, job_type = node.partition("_")
    return (base, job_type) if sep and job_type else (base, None)


def node_name(base: str, job_type: str | None) -> str:
    """The pipeline node name of a step with an optional job type."""
    return f"{base}_{job_type}" if job_type else base


def strip_job_type(
    stem: str, job_types: Iterable[str] = STANDARD_JOB_TYPES
) -> tuple[str, str | None]:
    """``tabular_preprocessing_training`` → (``tabular_preprocessing``, ``training``).

    Only a known job type is stripped; the longest matching suffix wins.
    """
    for job_type in sorted(job_types, key=len, reverse=True):
        suffix = f"_{job_type}"
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)], job_type
    return stem, None


def expand_abbreviations(stem: str) -> str:
    """Replace each known short word of a snake_case stem by its long form."""
    return "_".join(ABBREVIATIONS.get(word, word) for word in stem.split("_"))


#: Component file-name patterns: the part before and after the step's snake_case stem.
COMPONENT_AFFIXES: Final[Mapping[str, tuple[str, str]]] = {
    "script": ("", ""),
    "contract": ("", "_contract"),
    "spec": ("", "_spec"),
    "config": ("config_", "_step"),
    "builder": ("builder_", "_step"),
    "hyperparams": ("hyperparameters_", ""),
}


def component_stem(file_stem: str, component: str) -> str:
    """The step part of a component file stem: ``config_foo_step`` → ``foo``.

    A stem without the component's usual prefix/suffix is returned as it is.
    """
    prefix, suffix = COMPONENT_AFFIXES.get(component, ("", ""))
    stem = file_stem
    if prefix and stem.startswith(prefix) and len(stem) > len(prefix):
        stem = stem[len(prefix) :]
    if suffix and stem.endswith(suffix) and len(stem) > len(suffix):
        stem = stem[: -len(suffix)]
    return stem


def name_key(name_or_stem: str) -> str:
    """A spelling-blind key: ``lightgbmmt_training`` and ``LightGBMMTTraining`` share one.

    Acronyms and brand words split differently under each convention (``GraphStormGNN`` is
    ``graphstorm_gnn`` in one repository and ``graph_storm_gnn`` by the rule), so a file stem
    is also matched to a name with underscores dropped and case folded.
    """
    return name_or_stem.replace("_", "").casefold()


class StemIndex:
    """Known step names by snake_case stem, and by :func:`name_key` where that is unambiguous."""

    __slots__ = ("_by_key", "_by_stem")

    def __init__(self, names: Iterable[str]) -> None:
        self._by_stem: dict[str, str] = {}
        by_key: dict[str, str | None] = {}
        for name in names:
            self._by_stem[pascal_to_snake(name)] = name
            key = name_key(name)
            by_key[key] = None if key in by_key and by_key[key] != name else name
        self._by_key = {key: name for key, name in by_key.items() if name is not None}

    def get(self, stem: str) -> str | None:
        """The name whose stem is ``stem``, else the one name sharing its key, else ``None``."""
        return self._by_stem.get(stem) or self._by_key.get(name_key(stem))


def canonical_name_from_file_name(
    file_name: str,
    known_names: Iterable[str],
    *,
    job_types: Iterable[str] = STANDARD_JOB_TYPES,
) -> str | None:
    """The registered step a component file name belongs to, or ``None``.

    Tries, in order: the registry's own names (so every registered name round-trips,
    acronyms included, however the file spells them), the name with a job-type suffix
    removed, abbreviations expanded, and finally the PascalCase string rule — each only
    counting when it names a known step.
    """
    known = known_names if isinstance(known_names, (set, frozenset, dict)) else set(known_names)
    by_stem = StemIndex(known)
    raw = file_name.rsplit("/", 1)[-1]
    raw = raw[:-3] if raw.endswith(".py") else raw
    candidates = [raw]
    for component in ("config", "builder", "contract", "spec", "hyperparams"):
        stripped = component_stem(raw, component)
        if stripped != raw:
            candidates.append(stripped)
    for candidate in list(candidates):
        base, job = strip_job_type(candidate, job_types)
        if job:
            candidates.append(base)
    for candidate in list(candidates):
        expanded = expand_abbreviations(candidate)
        if expanded != candidate:
            candidates.append(expanded)
    for candidate in candidates:
        found = by_stem.get(candidate)
        if found is not None:
            return found
        if candidate in known:
            return candidate
        pascal = snake_to_pascal(candidate)
        if pascal in known:
            return pascal
    return None


def close_matches(word: str, candidates: Iterable[str], *, limit: int = 3) -> list[str]:
    """The candidates closest to ``word`` (case-insensitive), best first: every "did you mean"."""
    by_folded: dict[str, str] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.casefold(), candidate)
    folded = word.casefold()
    if folded in by_folded and by_folded[folded] != word:
        return [by_folded[folded]]
    hits = difflib.get_close_matches(folded, list(by_folded), n=limit, cutoff=0.6)
    return [by_folded[hit] for hit in hits]
