"""Tool ``shell``: run a command line or a script in the job's environment.

- ``cmd`` (run with ``shell_exe -c``, default ``/bin/sh``) or ``script`` (a file run with
  ``shell_exe -e``; default ``/bin/bash`` when present, as in the original, else ``/bin/sh``)
- ``cwd``, ``env``
- ``user``: run as this user (``runuser`` when the job runs as root, else ``sudo -n``); a user
  that cannot be switched to makes the step an error
- ``ssh-key``: the name of an ``ssh-key`` secret; the key is written to a 0600 file for the
  step (removed afterwards), ``KRAKEN_SSH_KEY_FILE`` names it and ``GIT_SSH_COMMAND`` uses it;
  where ``ssh-agent`` is installed the command runs under its own agent holding the key
  (``SSH_AUTH_SOCK``), so plain ``ssh``/``scp``/``rsync`` use it too
- ``background``: start the command and go on with the next step at once; the process (and its
  process group) is killed when the job ends.  Its output goes to this step's log.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import register
from kraken.agent.tools.split import TESTS_FILE_VAR, listed_share
from kraken.agent.tools.sshkey import KEY_FILE_VAR, remove_key_file, ssh_key_env

# Switch to ``$KRAKEN_RUN_AS`` and run "$@" with the same environment: no-op when already that user.
_AS_USER = (
    'u="$KRAKEN_RUN_AS"; unset KRAKEN_RUN_AS; '
    'if [ "$(id -un)" = "$u" ]; then exec "$@"; fi; '
    'if [ "$(id -u)" = 0 ]; then exec runuser -u "$u" -- "$@"; fi; '
    'exec sudo -n -E -u "$u" -- "$@"'
)

# Run "$@" under an ssh-agent holding $KRAKEN_SSH_KEY_FILE, where ssh-agent is installed.
_ADD_KEY = (
    'ssh-add -q "$KRAKEN_SSH_KEY_FILE" </dev/null || '
    '{ echo "kraken: ssh-add could not load the ssh-key secret" >&2; exit 1; }; exec "$@"'
)
_WITH_SSH_AGENT = (
    "if command -v ssh-agent >/dev/null 2>&1; then "
    f"exec ssh-agent /bin/sh -c '{_ADD_KEY}' kraken-ssh \"$@\"; fi; "
    'exec "$@"'
)

# A script runs with bash where there is one (as in the original), else with sh.
_BASH_OR_SH = 'if [ -x /bin/bash ]; then exec /bin/bash -e "$1"; fi; exec /bin/sh -e "$1"'

# Background processes of running jobs: kept referenced until they end (the executor kills
# them when the job's environment stops).
_BACKGROUND: set[asyncio.Task[Any]] = set()


def as_user(argv: list[str], user: str | None) -> tuple[list[str], dict[str, str]]:
    if not user:
        return argv, {}
    return ["/bin/sh", "-c", _AS_USER, "kraken-as-user", *argv], {"KRAKEN_RUN_AS": user}


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
            "shell_exe": {"type": "string", "minLength": 1},
            "user": {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", "x-hint": "a user name"},
            "background": {"type": "boolean"},
            "ssh-key": {"type": "string", "minLength": 1},
        },
        "oneOf": [{"required": ["cmd"]}, {"required": ["script"]}],
        "additionalProperties": False,
    }

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        if "script" in fields:
            script_path = f".kraken/step-{ctx.step_index}.sh"
            await ctx.executor.write_file(script_path, fields["script"].encode(), 0o755)
            path = f"{ctx.executor.workdir}/{script_path}"
            shell = fields.get("shell_exe")
            argv = [shell, "-e", path] if shell else ["/bin/sh", "-c", _BASH_OR_SH, "kraken-script", path]
        else:
            argv = [fields.get("shell_exe") or "/bin/sh", "-c", fields["cmd"]]
        env = {k: str(v) for k, v in (fields.get("env") or {}).items()}
        if TESTS_FILE_VAR in (fields.get("cmd") or fields.get("script") or ""):
            tests_file, problem = await listed_share(ctx, fields.get("cwd"))
            if problem:
                return StepOutcome("error", problem)
            if tests_file:
                env[TESTS_FILE_VAR] = tests_file
        key_env, problem = await ssh_key_env(ctx, fields.get("ssh-key"))
        if problem:
            return StepOutcome("error", problem)
        if key_env:
            argv = ["/bin/sh", "-c", _WITH_SSH_AGENT, "kraken-ssh", *argv]
            if fields.get("user"):  # the agent runs as that user: the key file becomes theirs
                given = await ctx.executor.exec(["chown", "--", fields["user"], key_env[KEY_FILE_VAR]], timeout=30)
                if not given.ok:
                    await remove_key_file(ctx, key_env)
                    return StepOutcome("error", f"cannot give the ssh key to the user '{fields['user']}'")
        argv, user_env = as_user(argv, fields.get("user"))
        env.update(key_env)
        env.update(user_env)
        background = bool(fields.get("background"))
        timeout = None if background else ctx.timeout
        run = ctx.executor.exec(argv, cwd=fields.get("cwd"), env=env, timeout=timeout, on_line=ctx.log)
        if background:
            task = asyncio.ensure_future(run)
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)
            await ctx.log(f"started in the background: {' '.join(argv)}; it is stopped when the job ends")
            return StepOutcome("passed", None, None)
        try:
            res = await run
        finally:
            if key_env:
                await remove_key_file(ctx, key_env)
        if res.cancelled:
            return StepOutcome("cancelled", "cancelled", res.exit_code)
        if res.timed_out:
            return StepOutcome("timeout", f"step timed out after {ctx.timeout:g}s", res.exit_code)
        if res.exit_code == 0:
            return StepOutcome("passed", None, 0)
        return StepOutcome("failed", f"command exited with code {res.exit_code}", res.exit_code)
