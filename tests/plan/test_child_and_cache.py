from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from stepkit.plan.cache import StepCache


def _payload(tmp_path: Path, script: str, **over: object) -> Path:
    (tmp_path / "step.py").write_text(script)
    payload: dict[str, object] = {
        "how": "script",
        "script": str(tmp_path / "step.py"),
        "inputs": {"DATA": str(tmp_path / "in")},
        "outputs": {"out": str(tmp_path / "out")},
        "environment": {"LABEL_FIELD": "y"},
        "arguments": {"job_type": "training"},
        "node": "Step_training",
        "run_id": "r1",
    }
    payload.update(over)
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(payload))
    return path


def test_child_calls_main_with_the_folders(tmp_path: Path) -> None:
    script = (
        "from pathlib import Path\n"
        "def main(input_paths, output_paths, environ_vars, job_args):\n"
        "    Path(output_paths['out'], 'x.txt').write_text(environ_vars['LABEL_FIELD'] + job_args['job_type'])\n"
        "    return {'rows': 3}\n"
    )
    payload = _payload(tmp_path, script)
    done = subprocess.run(
        [sys.executable, "-m", "stepkit.plan.child", str(payload)], capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out/x.txt").read_text() == "ytraining"
    assert json.loads(payload.with_suffix(".result.json").read_text()) == {
        "ok": True,
        "returned": {"rows": 3},
    }


def test_child_reports_the_scripts_failure(tmp_path: Path) -> None:
    payload = _payload(tmp_path, "def main(a, b, c, d):\n    raise ValueError('bad rows')\n")
    done = subprocess.run(
        [sys.executable, "-m", "stepkit.plan.child", str(payload)], capture_output=True, text=True
    )
    assert done.returncode == 1 and "ValueError: bad rows" in done.stderr
    result = json.loads(payload.with_suffix(".result.json").read_text())
    assert (result["ok"], result["error_type"], result["error"]) == (
        False,
        "ValueError",
        "bad rows",
    )
    exits = _payload(tmp_path, "import sys\ndef main(a, b, c, d):\n    sys.exit(3)\n")
    exited = subprocess.run(
        [sys.executable, "-m", "stepkit.plan.child", str(exits)], capture_output=True
    )
    assert exited.returncode == 3


def test_cache_round_trip(tmp_path: Path) -> None:
    cache = StepCache(tmp_path / "cache.db")
    assert cache.get("k") is None
    cache.put("k", node="A", run_id="r1", outputs={"out": {"digest": "d"}}, parts={"config": {}})
    entry = cache.get("k")
    assert entry is not None and entry.outputs == {"out": {"digest": "d"}} and entry.run_id == "r1"
    cache.put("k", node="A", run_id="r2", outputs={"out": {"digest": "d"}}, parts={})
    assert cache.latest_for("A").run_id == "r2"  # type: ignore[union-attr]
    cache.forget("k")
    assert cache.get("k") is None
    cache.close()
