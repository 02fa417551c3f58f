"""Stage schemas: ``def stage(ctx): return {...}`` evaluated in a sandbox, validated and expanded.

- ``evaluate_stage`` / ``check_stage_code``: run the code (starlark, in a worker process
  with time and memory limits) and return the normalized schema
- ``check_stage_graph``: the branch's stages have existing parents and no cycle
- ``resolve_args``, ``expand_jobs``, ``interpolate``: from a schema and run arguments to jobs
"""

from kraken.stage.args import resolve_args
from kraken.stage.context import StageContext
from kraken.stage.errors import StageSchemaError
from kraken.stage.evaluate import check_stage_code, evaluate_stage
from kraken.stage.expand import expand_jobs
from kraken.stage.graph import check_stage_graph
from kraken.stage.interpolate import interpolate
from kraken.stage.sandbox import SandboxLimits, configure_sandbox, shutdown_sandbox, start_sandbox
from kraken.stage.specs import DEFAULT_JOB_TIMEOUT, JobSpec, StepSpec
from kraken.stage.tools import PLANNED_TOOLS

__all__ = [
    "DEFAULT_JOB_TIMEOUT",
    "PLANNED_TOOLS",
    "JobSpec",
    "SandboxLimits",
    "StageContext",
    "StageSchemaError",
    "StepSpec",
    "check_stage_code",
    "check_stage_graph",
    "configure_sandbox",
    "evaluate_stage",
    "expand_jobs",
    "interpolate",
    "resolve_args",
    "shutdown_sandbox",
    "start_sandbox",
]
