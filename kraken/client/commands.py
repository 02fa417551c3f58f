"""The ``kraken client`` commands.  Imported by ``kraken.cli`` for every ``kraken`` command, so
nothing here imports httpx at module level: ``kraken agent`` stays light; the HTTP side
(``kraken.client.http``) is imported when a client command runs.

Exit status: 0 done (``run --wait``: the flow passed), 1 the flow's result was not ``passed``,
2 bad usage or a request the server refused (its message is printed), 124 ``--timeout`` elapsed.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import posixpath
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kraken.client import config
from kraken.client.output import emit_json, show

if TYPE_CHECKING:
    from kraken.client.http import Client

app = typer.Typer(no_args_is_help=True, help="Use a Kraken server: projects, flows, logs, results, artifacts")
artifacts_app = typer.Typer(no_args_is_help=True, help="List and download artifacts")
stage_app = typer.Typer(no_args_is_help=True, help="Stages")
app.add_typer(artifacts_app, name="artifacts")
app.add_typer(stage_app, name="stage")

Json = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
BranchRef = Annotated[str, typer.Argument(help="a branch: its id, or PROJECT/BRANCH by name")]

EXIT_REFUSED = 2
EXIT_TIMEOUT = 124


def fail(message: str, code: int = EXIT_REFUSED) -> typer.Exit:
    typer.echo(f"kraken client: {message}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def connected() -> Iterator[Client]:
    """A client with the stored or given credentials; a refused request ends the command with
    the server's message (exit 2)."""
    from kraken.client.http import ApiError, Client

    try:
        creds = config.load()
    except config.ConfigError as exc:
        raise fail(str(exc)) from exc
    client = Client(creds)
    try:
        yield client
    except ApiError as exc:
        raise fail(str(exc)) from exc
    except OSError as exc:  # connection refused, a file that cannot be written
        raise fail(f"{creds.url}: {exc}") from exc
    finally:
        client.close()


def resolve_branch(client: Client, ref: str) -> int:
    if ref.isdigit():
        return int(ref)
    project, sep, branch = ref.partition("/")
    if not sep or not project or not branch:
        raise fail(f"branch '{ref}': give its id or PROJECT/BRANCH")
    for p in client.get("/projects"):
        if p["name"] == project:
            for b in p.get("branches", []):
                if b["name"] == branch:
                    return int(b["id"])
            raise fail(f"branch '{ref}': project '{project}' has no branch '{branch}'")
    raise fail(f"branch '{ref}': no project '{project}' (or you cannot see it)")


# ------------------------------------------------------------------ login


@app.command()
def login(
    url: Annotated[str, typer.Option(help="the server, e.g. https://ci.example.org [KRAKEN_URL]", envvar="KRAKEN_URL")],
    username: Annotated[
        str | None, typer.Option(help="log in with a password (asked for unless --password-stdin)")
    ] = None,
    password_stdin: Annotated[bool, typer.Option(help="read the password from standard input")] = False,
    token: Annotated[
        str | None,
        typer.Option(help="a personal access token instead of a password [KRAKEN_TOKEN]", envvar="KRAKEN_TOKEN"),
    ] = None,
) -> None:
    """Log in and store the server and token in ~/.config/kraken/client.json (mode 0600)."""
    from kraken.client.http import ApiError, Client, login_with_password

    if (username is None) == (token is None):
        raise fail("give either --username (a password) or --token (a personal access token)")
    try:
        if username is not None:
            password = sys.stdin.readline().rstrip("\n") if password_stdin else getpass.getpass("Password: ")
            token = login_with_password(url, username, password)
        assert token is not None
        creds = config.Credentials(url.rstrip("/"), token)
        client = Client(creds)
        try:
            me = client.get("/auth/me")
        finally:
            client.close()
    except ApiError as exc:
        raise fail(str(exc)) from exc
    except OSError as exc:
        raise fail(f"{url}: {exc}") from exc
    path = config.save(creds)
    typer.echo(f"logged in to {creds.url} as {me['username']} (token kept in {path})")


# ------------------------------------------------------------------ projects and branches


@app.command()
def projects(as_json: Json = False) -> None:
    """The projects you can see."""
    with connected() as client:
        data = client.get("/projects")
    rows = [(p["id"], p["name"], len(p.get("branches", [])), p.get("description", "")) for p in data]
    show(data, rows, ("ID", "PROJECT", "BRANCHES", "DESCRIPTION"), as_json)


@app.command()
def branches(
    project: Annotated[str | None, typer.Argument(help="only this project's (name or id)")] = None,
    as_json: Json = False,
) -> None:
    """The branches of the projects you can see."""
    with connected() as client:
        data = client.get("/projects")
    if project is not None:
        data = [p for p in data if project in (p["name"], str(p["id"]))]
        if not data:
            raise fail(f"no project '{project}' (or you cannot see it)")
    found = [{**b, "project": p["name"]} for p in data for b in p.get("branches", [])]
    rows = [(b["id"], b["project"], b["name"], b["branch_name"], b["ci_flow_seq"]) for b in found]
    show(found, rows, ("ID", "PROJECT", "BRANCH", "REPO BRANCH", "CI FLOWS"), as_json)


# ------------------------------------------------------------------ flows


def parse_args(pairs: list[str]) -> dict[str, Any]:
    """``K=V`` pairs; a value that reads as JSON (a number, true, a list) is taken as such."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"--arg {pair!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def wait_flow(client: Client, flow_id: int, timeout: float | None) -> dict[str, Any]:
    """The flow once completed: listens to the live events, reading the flow after subscribing
    (so a change between the two is not missed)."""
    import httpx

    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for name, data in client.events("/events", read_timeout=timeout):
            if name == "hello" or (name == "flow" and data.get("id") == flow_id and data.get("state") == "completed"):
                flow: dict[str, Any] = client.get(f"/flows/{flow_id}")
                if flow["state"] == "completed":
                    return flow
            if deadline is not None and time.monotonic() > deadline:
                break
    except httpx.ReadTimeout:
        pass
    raise fail(f"flow {flow_id} did not complete in {timeout} s", EXIT_TIMEOUT)


@app.command()
def run(
    branch: BranchRef,
    arg: Annotated[list[str] | None, typer.Option("--arg", help="a flow argument KEY=VALUE (repeatable)")] = None,
    kind: Annotated[str, typer.Option(help="ci or dev")] = "ci",
    wait: Annotated[bool, typer.Option("--wait", help="wait for the result; exit 0 only when it passed")] = False,
    timeout: Annotated[
        float | None, typer.Option(help="with --wait: give up after this many seconds (exit 124)")
    ] = None,
    as_json: Json = False,
) -> None:
    """Start a flow on a branch."""
    if kind not in ("ci", "dev"):
        raise fail(f"--kind {kind!r}: expected ci or dev")
    args = parse_args(arg or [])
    with connected() as client:
        branch_id = resolve_branch(client, branch)
        flow = client.send("POST", f"/branches/{branch_id}/flows", {"kind": kind, "args": args})
        if not as_json:
            typer.echo(f"flow {flow['id']} (#{flow['seq']}) started on branch {branch_id}")
        if wait:
            flow = wait_flow(client, int(flow["id"]), timeout)
    if as_json:
        emit_json(flow)
    elif wait:
        runs = [(r["id"], r["stage_name"], r["state"], r["result"]) for r in flow.get("runs", [])]
        show(flow, runs, ("RUN", "STAGE", "STATE", "RESULT"), False)
        typer.echo(f"flow {flow['id']}: {flow['result']}")
    if wait and flow.get("result") != "passed":
        raise typer.Exit(1)


@app.command()
def log(
    job: Annotated[int, typer.Argument(help="the job's id")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="print new lines as they come, until the job ends")
    ] = False,
) -> None:
    """A job's log."""
    with connected() as client:
        if not follow:
            for text in client.text(f"/jobs/{job}/log"):
                sys.stdout.write(text)
            return
        for name, data in client.events(f"/jobs/{job}/log/stream"):
            if name == "lines":
                sys.stdout.write("".join(line + "\n" for line in data["lines"]))
                sys.stdout.flush()
            elif name == "end":
                return


@app.command()
def results(
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="the run's id")],
    regressions: Annotated[bool, typer.Option("--regressions", help="only tests that regressed in this run")] = False,
    flaky: Annotated[bool, typer.Option("--flaky", help="only flaky tests")] = False,
    status: Annotated[str | None, typer.Option(help="comma-separated: passed, failed, error, skipped, ...")] = None,
    as_json: Json = False,
) -> None:
    """A run's test results, the most relevant first."""
    items: list[dict[str, Any]] = []
    with connected() as client:
        cursor = None
        while True:
            page = client.get(
                f"/runs/{run_id}/results",
                change="regression" if regressions else None,
                flaky="true" if flaky else None,
                status=status,
                limit=1000,
                cursor=cursor,
            )
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    rows = [(r["test"], r["status"], r["change"], r["flaky"], r["job_id"], r["duration"]) for r in items]
    show(items, rows, ("TEST", "STATUS", "CHANGE", "FLAKY", "JOB", "SECONDS"), as_json)


# ------------------------------------------------------------------ artifacts


def _artifacts(client: Client, flow: int | None, run_id: int | None) -> list[dict[str, Any]]:
    if (flow is None) == (run_id is None):
        raise fail("give either --flow or --run")
    found: list[dict[str, Any]] = client.get(f"/flows/{flow}/artifacts" if flow else f"/runs/{run_id}/artifacts")
    return found


FlowOpt = Annotated[int | None, typer.Option("--flow", help="the flow's artifacts")]
RunOpt = Annotated[int | None, typer.Option("--run", help="the run's artifacts")]


@artifacts_app.command("list")
def artifacts_list(flow: FlowOpt = None, run_id: RunOpt = None, as_json: Json = False) -> None:
    """A flow's or a run's artifacts."""
    with connected() as client:
        found = _artifacts(client, flow, run_id)
    rows = [(a["id"], a["path"], a["size"], a["stage_name"], a["job_id"]) for a in found]
    show(found, rows, ("ID", "PATH", "BYTES", "STAGE", "JOB"), as_json)


def safe_destination(dest: Path, path: str) -> Path:
    """``dest``/``path`` for an artifact's relative path; a path that would leave ``dest`` is refused."""
    clean = posixpath.normpath(path)
    if clean.startswith(("/", "../")) or clean in ("..", "."):
        raise fail(f"artifact path {path!r} leaves the destination directory: not written")
    return dest.joinpath(*clean.split("/"))


@artifacts_app.command("download")
def artifacts_download(
    flow: FlowOpt = None,
    run_id: RunOpt = None,
    artifact: Annotated[list[int] | None, typer.Option("--id", help="only this artifact (repeatable)")] = None,
    dest: Annotated[Path, typer.Option("--dest", "-d", help="directory to write into")] = Path("."),
    as_json: Json = False,
) -> None:
    """Download a flow's or a run's artifacts into --dest, keeping their paths."""
    written: list[dict[str, Any]] = []
    with connected() as client:
        found = _artifacts(client, flow, run_id)
        if artifact:
            unknown = set(artifact) - {a["id"] for a in found}
            if unknown:
                raise fail(f"--id {sorted(unknown)}: not among these artifacts")
            found = [a for a in found if a["id"] in artifact]
        for a in found:
            target = safe_destination(dest, a["path"])
            target.parent.mkdir(parents=True, exist_ok=True)
            size = client.download(f"/artifacts/{a['id']}/content", target)
            written.append({"id": a["id"], "path": a["path"], "file": str(target), "size": size})
    rows = [(w["id"], w["file"], w["size"]) for w in written]
    show(written, rows, ("ID", "FILE", "BYTES"), as_json)


# ------------------------------------------------------------------ stages


def read_stage_file(path: Path, name: str | None) -> dict[str, Any]:
    """A ``.json`` file holds the stage's fields (``name``, ``schema_code``, ...); any other file
    is the stage's code, named by ``--name`` or the file's stem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise fail(f"{path}: {exc.strerror or exc}") from exc
    if path.suffix == ".json":
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise fail(f"{path}: not JSON ({exc})") from exc
        if not isinstance(body, dict):
            raise fail(f"{path}: expected a JSON object of stage fields")
        if name is not None:
            body["name"] = name
        if not isinstance(body.get("name"), str):
            raise fail(f"{path}: 'name' is missing (or give --name)")
        return body
    return {"name": name or path.stem, "schema_code": text}


@stage_app.command("apply")
def stage_apply(
    file: Annotated[Path, typer.Argument(help="the stage's code, or a .json file of its fields")],
    branch: Annotated[str, typer.Option("--branch", "-b", help="a branch: its id, or PROJECT/BRANCH")],
    name: Annotated[str | None, typer.Option(help="the stage's name (default: the file's stem)")] = None,
    as_json: Json = False,
) -> None:
    """Create the stage, or update the branch's stage of that name, from a file."""
    body = read_stage_file(file, name)
    with connected() as client:
        branch_id = resolve_branch(client, branch)
        existing = [s for s in client.get(f"/branches/{branch_id}/stages") if s["name"] == body["name"]]
        if existing:
            stage = client.send("PATCH", f"/stages/{existing[0]['id']}", body)
            done = "updated"
        else:
            stage = client.send("POST", f"/branches/{branch_id}/stages", body)
            done = "created"
    if as_json:
        emit_json({**stage, "applied": done})
    else:
        typer.echo(f"stage {stage['id']} '{stage['name']}' {done} on branch {branch_id}")
