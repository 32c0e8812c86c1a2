"""``catalog convert --to interface``: classic workspaces written as interface files catalogue
to the same steps, components, variants and wiring (the example project and generated ones)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from catalog.synth import Step, write_project
from stepkit.catalog import StepCatalog, contract_of, find_problems, spec_of
from stepkit.cli.app import app
from stepkit.interface import read_interface
from stepkit.project import Project


def _catalog(root: Path) -> StepCatalog:
    return StepCatalog(Project.load(root))


def _cli(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["-p", str(root), *args])
    return result.exit_code, result.output


def _answers(catalog: StepCatalog) -> dict[str, object]:
    """What a user sees of every step: components, variants, models, registry."""
    out: dict[str, object] = {}
    for name in catalog.step_names():
        info = catalog.get_step_info(name)
        specs = {}
        for job in (None, *info.job_types):
            spec = spec_of(catalog, name, job) if info.specs else None
            specs[job] = spec.model_dump() if spec is not None else None
        contract = contract_of(catalog, name)
        out[name] = {
            "components": sorted(c for c in info.components if c not in ("contract", "spec")),
            "has_contract": contract is not None,
            "job_types": info.job_types,
            "contract": contract.model_dump() if contract else None,
            "specs": specs,
            "definition": info.definition.as_dict() if info.definition else None,
            "complete": info.is_complete,
        }
    return out


def _plan(root: Path) -> tuple[int, str]:
    pipelines = root / "pipelines"
    config = str(pipelines / "churn-config.yaml")
    return _cli(root, "plan", str(pipelines / "churn.yaml"), "-c", config, "--json")


def _convert_and_remove_classic(root: Path) -> str:
    code, out = _cli(root, "catalog", "convert", "--to", "interface")
    assert code == 0, out
    written = [
        Path(line[len("wrote ") :]) for line in out.splitlines() if line.startswith("wrote ")
    ]
    for converted in written:
        steps = converted.parent.parent
        step = read_interface(converted, workspace_id="")
        stem = converted.name.removesuffix(".step.yaml")
        (steps / "contracts" / f"{stem}_contract.py").unlink()
        for spec in (steps / "specs").glob(f"{stem}*_spec.py"):
            if spec.name.removesuffix("_spec.py").removeprefix(stem).lstrip("_") in (
                "",
                *step.variants,
            ):
                spec.unlink()
    return out


def test_convert_dry_run_writes_nothing(tmp_path: Path, example_project: Path) -> None:
    root = tmp_path / "churn"
    shutil.copytree(example_project, root, ignore=shutil.ignore_patterns(".stepkit", "report*"))
    before = sorted(root.rglob("*"))
    code, out = _cli(root, "catalog", "convert", "--to", "interface", "--dry-run", "-w", "shared")
    assert code == 0, out
    assert "would write" in out and "step_type: TabularPreprocessing" in out
    assert sorted(p for p in root.rglob("*") if ".stepkit" not in p.parts) == [
        p for p in before if ".stepkit" not in p.parts
    ]


def test_the_example_converts_to_the_same_catalog_and_wiring(
    tmp_path: Path, example_project: Path
) -> None:
    root = tmp_path / "churn"
    shutil.copytree(example_project, root, ignore=shutil.ignore_patterns(".stepkit", "report*"))
    before = _answers(_catalog(root))
    code, plan_before = _plan(root)
    assert code == 0, plan_before
    out = _convert_and_remove_classic(root)
    assert "wrote" in out
    catalog = _catalog(root)
    assert _answers(catalog) == before
    assert not [p for p in find_problems(catalog) if p.kind != "registry"]
    code, plan_after = _plan(root)
    assert code == 0, plan_after
    assert json.loads(plan_after) == json.loads(plan_before)


def test_generated_workspaces_convert_to_the_same_catalog(tmp_path: Path) -> None:
    steps = [
        Step("Alpha", job_types=("training", "calibration")),
        Step("Beta", "Training"),
        Step("GammaXGBoost", job_types=("testing",), generic_spec=False),
        Step("Delta", stem="delta_step_v2"),
    ]
    root = write_project(tmp_path / "p", {"dev": [Step("Alpha")], "shared": steps})
    before = _answers(_catalog(root))
    _convert_and_remove_classic(root)
    assert sorted(p.name for p in root.rglob("*.step.yaml")) == [
        "alpha.step.yaml",
        "alpha.step.yaml",
        "beta.step.yaml",
        "delta_step_v2.step.yaml",
        "gamma_xgboost.step.yaml",
    ]
    assert _answers(_catalog(root)) == before


def test_convert_never_replaces_a_file(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"shared": [Step("Alpha")]})
    target = root / "steps" / "interfaces" / "alpha.step.yaml"
    target.parent.mkdir()
    target.write_text("not: mine\n")
    code, out = _cli(root, "catalog", "convert", "--to", "interface")
    assert code == 0 and "exists already" in out
    assert target.read_text() == "not: mine\n"
    code, out = _cli(root, "catalog", "convert", "--to", "classic")
    assert code != 0 and "only layout" in out
