"""Make the sample data under steps/samples/ that `stepkit test` gives the steps needing a
trained model (ModelCalibration, ModelEvaluation), by running the example's own steps.

    python examples/churn/make_samples.py

A copy of the project runs loading, preprocessing, a small training (10 trees of 4 leaves, seeded
through `run --input`) and calibration on a few hundred customers; their outputs become
the samples, so the samples are what the real steps make. Run it again after changing
those steps, or when a new scikit-learn cannot read the pickled model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from stepkit.plan.execute import RunOptions, run_dag

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "steps" / "samples"

DAG = """\
name: samples
nodes: [DataLoading_calibration, DataLoading_testing, DataLoading_training,
        TabularPreprocessing_calibration, TabularPreprocessing_testing,
        TabularPreprocessing_training, GradientBoostingTraining, ModelCalibration]
edges:
  - DataLoading_training -> TabularPreprocessing_training
  - DataLoading_calibration -> TabularPreprocessing_calibration
  - DataLoading_testing -> TabularPreprocessing_testing
  - TabularPreprocessing_training -> GradientBoostingTraining
  - TabularPreprocessing_calibration -> ModelCalibration
  - GradientBoostingTraining -> ModelCalibration
"""

CONFIG = """\
shared: {label_field: churned}
nodes:
  DataLoading_training: {n_rows: 400}
  DataLoading_calibration: {n_rows: 120}
  DataLoading_testing: {n_rows: 120}
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch) / "churn"
        shutil.copytree(HERE, project, ignore=shutil.ignore_patterns(".stepkit", "samples"))
        (project / "samples.yaml").write_text(DAG)
        (project / "samples-config.yaml").write_text(CONFIG)
        hyper = Path(scratch) / "hyperparameters.json"
        hyper.write_text(json.dumps({"max_iter": 10, "max_leaf_nodes": 4}))
        result = run_dag(
            project,
            project / "samples.yaml",
            config=project / "samples-config.yaml",
            options=RunOptions(
                inputs={"GradientBoostingTraining.hyperparameters_s3_uri": str(hyper)}
            ),
        )
        failed = [name for name, stage in result.stages.items() if stage.status.value == "failed"]
        if failed:
            raise SystemExit(f"the sample run failed at {', '.join(failed)}")

        def output(node: str, name: str) -> Path:
            return Path(result.stages[node].outputs[name]["path"])

        copies = {
            "model_calibration/model_input": output("GradientBoostingTraining", "model_output"),
            "model_calibration/evaluation_data": output(
                "TabularPreprocessing_calibration", "processed_data"
            ),
            "model_evaluation/processed_data": output(
                "TabularPreprocessing_testing", "processed_data"
            ),
            "model_evaluation/calibration_input": output("ModelCalibration", "calibration_output"),
        }
        shutil.rmtree(SAMPLES, ignore_errors=True)
        for rel, source in copies.items():
            shutil.copytree(source, SAMPLES / rel)
        for file in SAMPLES.rglob("*"):  # the store's files are read-only; ours are not
            file.chmod(0o755 if file.is_dir() else 0o644)
    for file in sorted(SAMPLES.rglob("*")):
        if file.is_file():
            print(f"{file.relative_to(HERE)}  {file.stat().st_size} bytes")


if __name__ == "__main__":
    main()
