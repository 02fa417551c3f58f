def test_large_reply_under_uvloop() -> None:
    """uvloop leaves the reply pipe non-blocking; a reply bigger than the pipe buffer must still arrive."""
    import uvloop

    from kraken.stage import StageContext, evaluate_stage

    code = """
def stage(ctx):
    return {"jobs": [{"name": "job-%d" % i, "steps": [{"tool": "shell", "cmd": "echo %s" % ("x" * 500)}],
                      "environments": [{"system": "any"}]} for i in range(400)]}
"""
    schema = uvloop.run(evaluate_stage(code, StageContext()))
    assert len(schema["jobs"]) == 400
