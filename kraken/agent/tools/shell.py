"""Tool ``shell``: run a command line or a script with /bin/sh in the job's environment."""

from __future__ import annotations

from typing import Any

from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import register


@register
class ShellTool(Tool):
    name = "shell"
    description = "Run a shell command (cmd) or a multi-line script."
    fields_schema = {
        "type": "object",
        "properties": {
            "cmd": {"type": "string"},
            "script": {"type": "string"},
            "cwd": {"type": "string"},
            "env": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            "shell_exe": {"type": "string"},
        },
        "oneOf": [{"required": ["cmd"]}, {"required": ["script"]}],
    }

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        shell = fields.get("shell_exe", "/bin/sh")
        if "script" in fields:
            script_path = f".kraken/step-{ctx.step_index}.sh"
            await ctx.executor.write_file(script_path, fields["script"].encode(), 0o755)
            argv = [shell, "-e", f"{ctx.executor.workdir}/{script_path}"]
        else:
            argv = [shell, "-c", fields["cmd"]]
        env = {k: str(v) for k, v in (fields.get("env") or {}).items()}
        res = await ctx.executor.exec(
            argv, cwd=fields.get("cwd"), env=env, timeout=ctx.timeout, on_line=ctx.log
        )
        if res.cancelled:
            return StepOutcome("cancelled", "cancelled", res.exit_code)
        if res.timed_out:
            return StepOutcome("timeout", f"step timed out after {ctx.timeout:g}s", res.exit_code)
        if res.exit_code == 0:
            return StepOutcome("passed", None, 0)
        return StepOutcome("failed", f"command exited with code {res.exit_code}", res.exit_code)
