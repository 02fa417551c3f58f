"""An ``ssh-key`` secret made usable by a step: a 0600 key file and ``GIT_SSH_COMMAND``."""

from __future__ import annotations

from kraken.agent.tools.base import ToolContext

KEY_FILE_VAR = "KRAKEN_SSH_KEY_FILE"


async def ssh_key_env(ctx: ToolContext, secret_name: str | None) -> tuple[dict[str, str], str | None]:
    """The environment that makes ssh (and git over ssh) use the ssh-key secret ``secret_name``.

    Returns ``({}, None)`` without a name, ``({}, problem)`` when the job has no such secret.
    """
    if not secret_name:
        return {}, None
    secret = (ctx.extra.get("secrets") or {}).get(secret_name)
    if not secret or secret.get("kind") != "ssh-key":
        return {}, f"no ssh-key secret named '{secret_name}' was given to this job"
    key = str(secret.get("key") or "")
    rel = f".kraken/ssh-key-{ctx.step_index}"
    await ctx.executor.write_file(rel, (key.rstrip("\n") + "\n").encode(), 0o600)
    path = f"{ctx.executor.workdir}/{rel}"
    ssh = (
        f"ssh -i {path} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
        f" -o UserKnownHostsFile={ctx.executor.workdir}/.kraken/known_hosts"
    )
    if secret.get("user"):
        ssh += f" -l {secret['user']}"
    await ctx.log(f"using ssh key from secret '{secret_name}'")
    return {"GIT_SSH_COMMAND": ssh, KEY_FILE_VAR: path}, None


async def remove_key_file(ctx: ToolContext, env: dict[str, str]) -> None:
    if env.get(KEY_FILE_VAR):
        await ctx.executor.exec(["rm", "-f", env[KEY_FILE_VAR]], timeout=30)
