"""The agent protocol's models: what validates, what becomes a malformed job message, handlers for all."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from kraken.control.job_message_dispatch import handler_for
from kraken.models import enums
from kraken.protocol import (
    JOB_MESSAGE_TYPES,
    MAX_SERVICE_RECORDS,
    Ack,
    Assign,
    Batch,
    Hello,
    JobDone,
    Log,
    MalformedJobMessage,
    Result,
    ServiceLogs,
    StepDone,
    StepResult,
    Welcome,
    agent_frame,
    message_type,
    server_frame,
)


def test_every_job_message_type_has_a_handler() -> None:
    for model in JOB_MESSAGE_TYPES:
        assert handler_for(message_type(model)) is not None, model


def test_the_models_enums_are_the_protocols() -> None:
    assert enums.Result is Result and enums.StepResult is StepResult


def test_frames_round_trip() -> None:
    done = StepDone(step_index=1, result=StepResult.FAILED, exit_code=3).model_copy(update={"job_id": 5, "seq": 9})
    batch = Batch(messages=[done, Log(lines=["a"]).model_copy(update={"job_id": 5, "seq": 10})])
    assert agent_frame.validate_json(batch.model_dump_json()) == batch
    hello = Hello(name="a1", groups=["linux"], running_job=5, pending_jobs=[5])
    assert agent_frame.validate_json(hello.model_dump_json()) == hello
    for frame in (Welcome(agent_id=1, heartbeat_interval=5), Ack(job_id=5, seq=10)):
        assert server_frame.validate_json(frame.model_dump_json()) == frame


def test_a_bad_job_message_spoils_only_itself() -> None:
    raw = {
        "type": "batch",
        "messages": [
            {"type": "log", "job_id": 1, "seq": 1, "lines": ["ok"]},
            {"type": "step_done", "job_id": 1, "seq": 2, "step_index": 0, "result": "so-so"},
            {"type": "log", "job_id": 2, "lines": []},
            {"type": "job_done", "job_id": 2**63, "seq": 1, "result": "passed"},
            {"type": "log", "job_id": 3, "seq": 1, "lines": ["x"], "colour": "red"},
            "text",
        ],
    }
    frame = agent_frame.validate_json(orjson.dumps(raw))
    assert isinstance(frame, Batch)
    ok, *bad = frame.messages
    assert isinstance(ok, Log) and ok.lines == ["ok"]
    assert all(isinstance(m, MalformedJobMessage) for m in bad)
    assert [(m.type, m.job_id, m.seq) for m in bad] == [
        ("step_done", 1, 2),
        ("log", 2, None),
        ("job_done", None, 1),
        ("log", 3, 1),
        (None, None, None),
    ]
    errors = [m.error for m in bad if isinstance(m, MalformedJobMessage)]
    assert errors[0].startswith("step_done.result: Input should be 'passed'")
    assert errors[1] == "seq: Field required"
    assert "job_id: Input should be less than or equal to" in errors[2]
    assert errors[3] == "log.colour: Extra inputs are not permitted"


@pytest.mark.parametrize("raw", [{"type": "batch"}, {"type": "hello"}, {"type": "dance"}, {"messages": []}])
def test_frames_that_cannot_be_read(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        agent_frame.validate_json(orjson.dumps(raw))


def test_an_assignment_is_typed_down_to_its_steps() -> None:
    job = {"id": 3, "name": "j", "steps": [{"index": 0, "tool": "shell", "fields": {"cmd": "true"}}]}
    frame = server_frame.validate_python({"type": "assign", "job": job})
    assert isinstance(frame, Assign) and frame.job.steps[0].tool == "shell" and frame.job.timeout == 3600
    with pytest.raises(ValidationError, match=r"assign\.job\.steps\.0\.index"):
        server_frame.validate_python({"type": "assign", "job": {**job, "steps": [{"tool": "shell"}]}})


def test_job_done_needs_a_known_result() -> None:
    assert JobDone(result=Result.ERROR, reason="x").result == "error"
    with pytest.raises(ValidationError):
        JobDone.model_validate({"result": "meh"})


def test_service_logs_frames_are_bounded_and_typed() -> None:
    record = {"time": "2026-12-01T21:00:00+00:00", "level": "error", "logger": "kraken.agent", "message": "boom"}
    frame = agent_frame.validate_json(orjson.dumps({"type": "service_logs", "records": [record], "dropped": 3}))
    assert isinstance(frame, ServiceLogs) and frame.records[0].level == "error" and frame.dropped == 3
    for bad in (
        {"type": "service_logs", "records": [record] * (MAX_SERVICE_RECORDS + 1)},  # too many at once
        {"type": "service_logs", "records": [{**record, "level": "loud"}]},
        {"type": "service_logs", "records": [{**record, "message": "x" * 16_001}]},
        {"type": "service_logs", "records": [{**record, "job_id": 0}]},
        {"type": "service_logs", "records": [], "dropped": -1},
    ):
        with pytest.raises(ValidationError):
            agent_frame.validate_json(orjson.dumps(bad))
