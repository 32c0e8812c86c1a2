"""The runtime tester: does each step's script import, have ``main``, and run on data?

Scripts run in a child process with a timeout (:mod:`~stepkit.testing.harness`), on inputs
from ``--data`` or synthesized from the contract and spec (:mod:`~stepkit.testing.synthetic`);
:mod:`~stepkit.testing.pipeline` chains them along a DAG.
"""

from __future__ import annotations

from stepkit.testing.checks import Check, ExceptionInfo, ScriptResult, Status
from stepkit.testing.harness import Captured
from stepkit.testing.lookup import Target
from stepkit.testing.pipeline import DataFlowBreak, PipelineResult
from stepkit.testing.runner import RuntimeTester
from stepkit.testing.script import TestOptions

__all__ = [
    "Captured",
    "Check",
    "DataFlowBreak",
    "ExceptionInfo",
    "PipelineResult",
    "RuntimeTester",
    "ScriptResult",
    "Status",
    "Target",
    "TestOptions",
]
