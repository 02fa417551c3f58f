"""The original Kraken's keys: accepted with their meaning, or refused with the key path (422)."""

from __future__ import annotations

from typing import Any

import pytest

from kraken.agent.tools.registry import tool_names
from kraken.stage import StageSchemaError
from kraken.stage.normalize import normalize_schema


def _stage(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "jobs": [{"name": "j", "steps": list(steps), "environments": [{"system": "any", "config": "default"}]}],
        **extra,
    }


def _error(document: dict[str, Any]) -> StageSchemaError:
    with pytest.raises(StageSchemaError) as info:
        normalize_schema(document)
    return info.value


@pytest.mark.parametrize(
    "step",
    [
        {"tool": "shell", "cmd": "true", "background": True, "user": "nobody", "shell_exe": "/bin/bash"},
        {"tool": "shell", "script": "echo hi", "ssh-key": "deploy"},
        {"tool": "git", "checkout": "https://h/r.git", "access-token": "tok", "git_cfg": {"http.sslVerify": "false"}},
        {"tool": "git", "checkout": "git@h:r.git", "ssh-key": "deploy", "branch": "main"},
        {"tool": "pylint", "rcfile": "pylint.rc", "modules_or_packages": "pkg", "pylint_exe": "poetry run pylint"},
        {"tool": "pylint", "params": "pkg", "exe": "pylint", "cwd": "src"},
        {"tool": "values_collect", "files": [{"name": "perf.json", "namespace": "perf"}], "cwd": "out"},
        {"tool": "values_collect", "file_glob": "*.json"},
        {"tool": "rndtest", "count": "#{COUNT}"},
        {"tool": "rndtest", "count": 5, "override_result": 0},
        {"tool": "cloc", "not-match-f": "(package-lock.json|pylint.rc)", "exclude-dir": "docker-elk", "cwd": "src"},
        {"tool": "artifacts", "source": "report", "report_entry": "report/index.html", "public": True},
        {"tool": "artifacts", "action": "upload", "source": "r/**", "report_entry": "r/index.html"},
    ],
)
def test_original_tool_fields_are_accepted(step: dict[str, Any]) -> None:
    schema = normalize_schema(_stage(step))
    assert schema["jobs"][0]["steps"][0] == step


@pytest.mark.parametrize(
    ("step", "path"),
    [
        ({"tool": "shell", "cmd": "true", "bckground": True}, "jobs[0].steps[0].bckground"),
        ({"tool": "shell", "cmd": "true", "background": "yes"}, "jobs[0].steps[0].background"),
        ({"tool": "shell", "cmd": "true", "user": "-r"}, "jobs[0].steps[0].user"),
        ({"tool": "git", "checkout": "u", "acces-token": "t"}, "jobs[0].steps[0].acces-token"),
        ({"tool": "git", "checkout": "u", "git_cfg": {"a=b": "c"}}, "jobs[0].steps[0].git_cfg"),
        ({"tool": "artifacts", "source": "x", "report": "y"}, "jobs[0].steps[0].report"),
        ({"tool": "cache", "action": "save", "key": "k", "expiry": "1d"}, "jobs[0].steps[0].expiry"),
        ({"tool": "pytest", "params": "-x", "pytest_ex": "p"}, "jobs[0].steps[0].pytest_ex"),
        ({"tool": "values_collect", "files": [{"name": "a", "ns": "b"}]}, "jobs[0].steps[0].files[0].ns"),
        ({"tool": "rndtest", "count": 0}, "jobs[0].steps[0].count"),
        ({"tool": "rndtest", "cnt": 3}, "jobs[0].steps[0].cnt"),
        ({"tool": "pylint", "exe": "a", "pylint_exe": "b"}, "jobs[0].steps[0]"),
        ({"tool": "git@2.0", "checkout": "u"}, "jobs[0].steps[0].tool"),
        ({"tool": "nglint"}, "jobs[0].steps[0].tool"),
        ({"tool": "data", "value": {}}, "jobs[0].steps[0].tool"),
        ({"tool": "cloc", "exclude-dirs": "x"}, "jobs[0].steps[0].exclude-dirs"),
    ],
)
def test_unknown_or_wrong_step_keys_name_their_path(step: dict[str, Any], path: str) -> None:
    assert _error(_stage({"tool": "shell", "cmd": "true"}, step) | {}).path == path.replace("steps[0]", "steps[1]")


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (
            {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "x"}], "environments": [{}], "x": 1}]},
            "jobs[0].x",
        ),
        (
            {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "x"}], "environments": [{"os": "a"}]}]},
            "jobs[0].environments[0].os",
        ),
        (_stage({"tool": "shell", "cmd": "x"}, triggers={"manuel": True}), "triggers.manuel"),
        (_stage({"tool": "shell", "cmd": "x"}, stages=[]), "stages"),
        (_stage({"tool": "shell", "cmd": "x"}, parameters=[{"name": "a", "dflt": 1}]), "parameters[0].dflt"),
    ],
)
def test_unknown_keys_at_every_level(document: dict[str, Any], path: str) -> None:
    assert _error(document).path == path


def test_pylint_alias_conflict_says_what_to_do() -> None:
    err = _error(_stage({"tool": "pylint", "params": "a", "modules_or_packages": "b"}))
    assert err.message.startswith("give 'exe' or the original's 'pylint_exe'")


def test_report_entry_goes_with_uploads_only() -> None:
    err = _error(_stage({"tool": "artifacts", "action": "download", "report_entry": "index.html"}))
    assert err.path == "jobs[0].steps[0]" and "goes with action 'upload'" in err.message


def test_config_default_without_configs_is_a_label() -> None:
    schema = normalize_schema(_stage({"tool": "shell", "cmd": "true"}, configs=[]))
    assert schema["jobs"][0]["environments"][0]["config_label"] == "default"


# ---------------------------------------------------------------- notification


def test_flat_notification_of_the_original_is_normalized() -> None:
    flat = {
        "slack": {"channel": "kk-results"},
        "email": "dev@example.com",
        "github": {"credentials": "#{KK_SECRET_SIMPLE_gh}"},
        "discord": {"webhook": "https://discord.example/x"},
    }
    schema = normalize_schema(_stage({"tool": "shell", "cmd": "true"}, notification=flat))
    assert schema["notification"] == {"completed": flat, "started": {"github": flat["github"]}}


def test_grouped_notification_stays() -> None:
    grouped = {"changes": {"slack": {"channel": "c"}}, "completed": {"scope": "flow", "email": "a@b"}}
    assert normalize_schema(_stage({"tool": "shell", "cmd": "true"}, notification=grouped))["notification"] == grouped


@pytest.mark.parametrize(
    ("notification", "path", "words"),
    [
        ({"teams": {"url": "u"}}, "notification.teams", "is not implemented"),
        ({"completed": {"mattermost": "u"}}, "notification.completed.mattermost", "is not implemented"),
        ({"completed": {"slak": {}}}, "notification.completed.slak", "unknown notification channel"),
        ({"completed": {"email": "a"}, "slack": {}}, "notification.slack", "beside 'completed'"),
        ({"completed": {"scope": "job"}}, "notification.completed.scope", "is not one of"),
        ({"completed": {"slack": {"chanel": "c"}}}, "notification.completed.slack.chanel", "unknown key"),
        ({"slack": "ci-results"}, "notification.slack", "expected dict"),
        ({"github": {"credentials": "a", "tokn": "b"}}, "notification.github.tokn", "unknown key"),
        ({"changes": {"webhook": {"url": "u", "header": {}}}}, "notification.changes.webhook.header", "unknown key"),
    ],
)
def test_wrong_notification_names_the_key(notification: dict[str, Any], path: str, words: str) -> None:
    err = _error(_stage({"tool": "shell", "cmd": "true"}, notification=notification))
    assert err.path == path and words in err.message


_MINIMAL = {
    "shell": {"cmd": "x"},
    "git": {"checkout": "u"},
    "junit_collect": {"file_glob": "*.xml"},
    "values_collect": {"file_glob": "*.json"},
    "cache": {"action": "save"},
}


@pytest.mark.parametrize("tool", tool_names())
def test_every_tool_refuses_an_unknown_field(tool: str) -> None:
    step = {"tool": tool, **_MINIMAL.get(tool, {})}
    normalize_schema(_stage(step))  # the minimal step is valid
    err = _error(_stage({**step, "zz_unknown": 1}))
    assert err.path == "jobs[0].steps[0].zz_unknown" and "unknown key 'zz_unknown'" in err.message


def test_original_repo_trigger_with_repos_is_a_list_of_repositories() -> None:
    repo = {
        "repos": [{"url": "https://git.example/a", "branch": "master"}, {"url": "https://git.example/b"}],
        "interval": "20m",
    }
    schema = normalize_schema(_stage({"tool": "shell", "cmd": "true"}, triggers={"repo": repo}))
    assert schema["triggers"] == {
        "repository": [
            {"url": "https://git.example/a", "branch": "master", "interval": "20m"},
            {"url": "https://git.example/b", "interval": "20m"},
        ]
    }
    single = {"url": "https://git.example/a", "branch": "master", "interval": "20m"}
    schema = normalize_schema(_stage({"tool": "shell", "cmd": "true"}, triggers={"repo": single}))
    assert schema["triggers"] == {"repository": single}


@pytest.mark.parametrize(
    ("triggers", "path", "words"),
    [
        ({"repo": {"url": "u", "brnch": "m"}}, "triggers.repo.brnch", "unknown key"),
        ({"repository": [{"url": "u", "ref": "m"}]}, "triggers.repository[0].ref", "unknown key"),
        ({"repo": {"repos": [{"url": "u", "tag": "v"}]}}, "triggers.repo.repos[0].tag", "unknown key"),
        ({"repo": {"url": "u", "git_cfg": {"a": "b"}}}, "triggers.repo.git_cfg", "not supported"),
        ({"webhook": {"branch": "x"}}, "triggers.webhook", "expected boolean"),
    ],
)
def test_wrong_trigger_keys_name_their_path(triggers: dict[str, Any], path: str, words: str) -> None:
    err = _error(_stage({"tool": "shell", "cmd": "true"}, triggers=triggers))
    assert err.path == path and words in err.message, err
