"""The failure-signature normaliser: what is stripped, what is kept."""

from __future__ import annotations

from kraken.results.signatures import failure_key, normalise, signature

PYTEST = """\
ConnectionError: cannot reach 10.0.0.{host}:{port} with <lib.Conn object at {addr}> in {tmp}
>   def test_one(): connect({port})

tests/test_net.py:{line}:{sp}
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _

    def connect(port):
>       raise ConnectionError(f"cannot reach ...")
E       ConnectionError: cannot reach 10.0.0.{host}:{port} with <lib.Conn object at {addr}> in {tmp}

src/lib.py:{line2}: ConnectionError"""

PYTHON = """\
Traceback (most recent call last):
  File "/home/ci/work/{job}/tests/test_db.py", line {line}, in test_query
    run_query(q)
  File "/home/ci/work/{job}/db/{mod}.py", line 88, in run_query
    raise KeyError(name)
KeyError: 'user {uid} missing (request {req})'"""


def pytest_msg(**kw: object) -> str:
    vals = {"host": 1, "port": 8001, "addr": "0x7fded0392190", "tmp": "/tmp/tmpmyaznlfw", "sp": " "}
    vals.update(line=12, line2=5)
    vals.update(kw)
    return PYTEST.format(**vals)


def test_numbers_addresses_temp_paths_uuids_and_ids_are_stripped() -> None:
    text = (
        "id 42 at 0xDEADbeef in /tmp/pytest-of-root/pytest-7/test_x0/data.txt uuid "
        "123e4567-e89b-12d3-a456-426614174000 sha 9f86d081884c7d65 took -3.5e-2s /var/folders/ab/T/x"
    )
    assert normalise(text) == "id <n> at <addr> in <tmp> uuid <uuid> sha <id> took <n>s <tmp>"
    assert normalise("  a \n\t b  ") == "a b"
    assert normalise(r"C:\Users\ci\AppData\Local\Temp\tmp12\f.txt failed") == r"C:\Users\ci<tmp> failed"


def test_failures_that_differ_only_by_volatile_parts_share_a_key() -> None:
    a = pytest_msg()
    b = pytest_msg(host=7, port=9002, addr="0x7fded039e190", tmp="/tmp/tmpjt7i_pff", line=40, line2=6)
    assert a != b
    assert signature(a) == signature(b)
    assert failure_key(a) == failure_key(b)
    sig = signature(a)
    assert sig.startswith("ConnectionError | lib.py < test_net.py | ConnectionError: cannot reach")
    assert "8001" not in sig and "0x7f" not in sig and "tmpmy" not in sig


def test_python_tracebacks_keep_type_and_innermost_frames() -> None:
    kw = {"job": 17, "line": 3, "mod": "query", "uid": 5, "req": "c0ffee00aa11"}
    a = PYTHON.format(**kw)
    b = PYTHON.format(**{**kw, "job": 99, "line": 30, "uid": 123456, "req": "ab12cd34ef56"})
    assert signature(a) == signature(b)
    assert signature(a) == (
        "KeyError | query.py:run_query < test_db.py:test_query | KeyError: 'user <n> missing (request <id>)'"
    )
    # another innermost frame is another cause, even with the same message
    assert failure_key(a) != failure_key(PYTHON.format(**{**kw, "mod": "cache"}))


def test_different_causes_get_different_keys() -> None:
    conn = pytest_msg()
    other_type = conn.replace("ConnectionError", "TimeoutError")
    other_frame = conn.replace("src/lib.py", "src/net.py")
    other_text = conn.replace("cannot reach", "refused by")
    keys = {failure_key(m) for m in (conn, other_type, other_frame, other_text)}
    assert len(keys) == 4
    assert all(len(k) == 16 and int(k, 16) >= 0 for k in keys)


def test_messages_without_a_traceback() -> None:
    assert signature("AssertionError: expected 3 items, got 4") == (
        "AssertionError |  | AssertionError: expected <n> items, got <n>"
    )
    assert failure_key("timeout after 30s") == failure_key("timeout after 31.5s")
    assert failure_key("timeout after 30s") != failure_key("disk full")
    assert signature(None) == signature("") == signature("  \n") == ""


def test_long_output_before_the_traceback_does_not_change_the_key() -> None:
    short = pytest_msg()
    noisy = "captured stdout " * 400 + "\n" + short
    assert len(noisy) > 5000
    assert signature(noisy).split(" | ")[:2] == signature(short).split(" | ")[:2]
    assert failure_key(noisy) == failure_key(short.replace("8001", "8002"))


def test_numbered_function_names_are_one_frame() -> None:
    def msg(i: int) -> str:
        return f'Traceback (most recent call last):\n  File "pkg/mod.py", line {i}, in test_case_{i}\nAssertionError'

    assert failure_key(msg(1)) == failure_key(msg(2))
    assert signature(msg(7)) == "AssertionError | mod.py:test_case_<n> | AssertionError"
