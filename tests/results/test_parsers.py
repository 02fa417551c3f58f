"""Streaming parsers: JUnit flavours, bad input, bounds; go test -json; values; linter output."""

from __future__ import annotations

import orjson

from kraken.results.parsers.base import MESSAGE_MAX_BYTES, NAME_MAX_CHARS
from kraken.results.parsers.gotest import GoTestParser
from kraken.results.parsers.issues import parse_pylint, parse_ruff
from kraken.results.parsers.junit import JUnitParser, parse_junit_bytes
from kraken.results.parsers.values import parse_values

PYTEST_XML = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5" time="0.1">
<testcase classname="tests.test_a" name="test_ok" time="0.001"><properties><property name="mem_mb" value="12.5"/>
<property name="note" value="text"/></properties></testcase>
<testcase classname="tests.test_a" name="test_bad[1]" time="0.010"><failure message="assert 1 == 2">def test_bad():
&gt;       assert 1 == 2
E       assert 1 == 2</failure></testcase>
<testcase classname="tests.test_a" name="test_err" time="0.002">
<error message="fixture 'db' not found">setup failed</error></testcase>
<testcase classname="tests.test_a" name="test_skip" time="0.000">
<skipped type="pytest.skip" message="no db">skipped</skipped></testcase>
<testcase classname="tests.test_a" name="test_ok" time="0.003"/>
</testsuite></testsuites>"""

SUREFIRE_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="com.acme.CalcTest" time="1,234.5" tests="3" errors="0" skipped="1" failures="0">
  <properties><property name="java.version" value="17"/></properties>
  <testcase name="adds" classname="com.acme.CalcTest" time="0.01"/>
  <testcase name="flaky" classname="com.acme.CalcTest" time="0.2">
    <flakyFailure message="expected 2" type="org.opentest4j.AssertionFailedError">
      <stackTrace>org.opentest4j.AssertionFailedError: expected 2</stackTrace>
    </flakyFailure>
  </testcase>
  <testcase name="ignored" classname="com.acme.CalcTest" time="0"><skipped/></testcase>
</testsuite>"""

CTEST_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="Linux" tests="3" failures="1" disabled="1" skipped="1" hostname="" time="1" timestamp="">
  <testcase name="unit" classname="unit" time="0.5" status="run"/>
  <testcase name="slow" classname="slow" time="0" status="disabled"><skipped message="Disabled"/></testcase>
  <testcase name="gone" classname="gone" time="0" status="notrun">
    <skipped message="Unable to find executable"/></testcase>
</testsuite>"""

GO_JUNIT_XML = b"""<testsuites><testsuite name="example.com/calc" tests="2" failures="1">
<testcase classname="example.com/calc" name="TestAdd" time="0.000"/>
<testcase classname="example.com/calc" name="TestDiv" time="0.010">
<failure message="Failed" type="">calc_test.go:12: 1/0</failure></testcase>
</testsuite></testsuites>"""


def test_pytest_report() -> None:
    results, err = parse_junit_bytes(PYTEST_XML)
    assert err is None
    assert [(r.name, r.status) for r in results] == [
        ("tests.test_a::test_ok", "passed"),
        ("tests.test_a::test_bad[1]", "failed"),
        ("tests.test_a::test_err", "error"),
        ("tests.test_a::test_skip", "skipped"),
        ("tests.test_a::test_ok", "passed"),  # a duplicate name is kept, not dropped
    ]
    assert results[0].values == {"mem_mb": 12.5} and results[0].duration == 0.001
    assert results[1].message == "assert 1 == 2\ndef test_bad():\n>       assert 1 == 2\nE       assert 1 == 2"
    assert results[2].message == "fixture 'db' not found\nsetup failed"


def test_surefire_ctest_and_go_junit_reports() -> None:
    results, err = parse_junit_bytes(SUREFIRE_XML)
    assert err is None
    assert [(r.name, r.status) for r in results] == [
        ("com.acme.CalcTest::adds", "passed"),
        ("com.acme.CalcTest::flaky", "failed"),  # the rerun that failed...
        ("com.acme.CalcTest::flaky", "passed"),  # ...and the final pass: flaky on the same commit
        ("com.acme.CalcTest::ignored", "skipped"),
    ]
    assert results[1].message is not None and "expected 2" in results[1].message
    results, err = parse_junit_bytes(CTEST_XML)
    assert err is None
    assert [r.status for r in results] == ["passed", "disabled", "not-run"]
    results, err = parse_junit_bytes(GO_JUNIT_XML)
    assert [(r.name, r.status) for r in results] == [
        ("example.com/calc::TestAdd", "passed"),
        ("example.com/calc::TestDiv", "failed"),
    ]


def test_malformed_xml_reports_file_and_line_and_keeps_earlier_results() -> None:
    data = b"<testsuite>\n<testcase name='a'/>\n<testcase name='b'/>\n<testcase name='c'>\n</testsuite>\n"
    results, err = parse_junit_bytes(data, "reports/junit.xml")
    assert [r.name for r in results] == ["a", "b"]
    assert err is not None and err.path == "reports/junit.xml" and err.line == 5
    assert str(err).startswith("reports/junit.xml:5: malformed XML: mismatched tag")


def test_truncated_file_and_empty_file() -> None:
    results, err = parse_junit_bytes(b"<testsuite><testcase name='a'/><testcase name='b'>", "x.xml")
    assert [r.name for r in results] == ["a"] and err is not None and "malformed" in err.message
    results, err = parse_junit_bytes(b"", "empty.xml")
    assert results == [] and err is not None and "empty" in err.message


def test_entity_attacks_are_refused() -> None:
    laughs = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<testsuite><testcase name="&lol9;"/></testsuite>"""
    results, err = parse_junit_bytes(laughs, "evil.xml")
    assert results == [] and err is not None and "DTD" in err.message and err.line == 2
    external = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<testsuite><testcase name="&x;"/></testsuite>"""
    results, err = parse_junit_bytes(external, "evil2.xml")
    assert results == [] and err is not None and "DTD" in err.message


def test_streaming_in_small_chunks_gives_the_same_results() -> None:
    whole, _ = parse_junit_bytes(PYTEST_XML + b"\n")
    parser = JUnitParser("chunks.xml")
    out = []
    for i in range(0, len(PYTEST_XML), 7):
        out += parser.feed(PYTEST_XML[i : i + 7])
    out += parser.close()
    assert out == whole and parser.error is None


def test_long_names_and_messages_are_truncated_with_a_marker() -> None:
    name = "n" * 5000
    body = "x" * (MESSAGE_MAX_BYTES * 4)
    xml = f'<testsuite><testcase name="{name}"><failure message="m">{body}</failure></testcase></testsuite>'
    results, err = parse_junit_bytes(xml.encode())
    assert err is None
    r = results[0]
    assert len(r.name) <= NAME_MAX_CHARS and r.name.endswith("chars]") and "…[truncated" in r.name
    assert r.message is not None and len(r.message.encode()) <= MESSAGE_MAX_BYTES
    assert r.message.endswith("bytes]") and "…[truncated" in r.message
    wide = "é" * 3000  # 2 bytes each: bounded in bytes too
    results, _ = parse_junit_bytes(f'<testsuite><testcase name="{wide}"/></testsuite>'.encode())
    assert len(results[0].name.encode()) <= 2000


def test_gotest_json_events() -> None:
    lines = [
        {"Action": "start", "Package": "ex/calc"},
        {"Action": "run", "Package": "ex/calc", "Test": "TestAdd"},
        {"Action": "output", "Package": "ex/calc", "Test": "TestAdd", "Output": "=== RUN   TestAdd\n"},
        {"Action": "pass", "Package": "ex/calc", "Test": "TestAdd", "Elapsed": 0.01},
        {"Action": "run", "Package": "ex/calc", "Test": "TestDiv/by_zero"},
        {"Action": "output", "Package": "ex/calc", "Test": "TestDiv/by_zero", "Output": "calc_test.go:9: boom\n"},
        {"Action": "fail", "Package": "ex/calc", "Test": "TestDiv/by_zero", "Elapsed": 0},
        {"Action": "skip", "Package": "ex/calc", "Test": "TestSkip", "Elapsed": 0},
        {"Action": "run", "Package": "ex/calc", "Test": "TestHang"},
        {"Action": "output", "Package": "ex/calc", "Output": "FAIL\tex/calc\t0.1s\n"},
        {"Action": "fail", "Package": "ex/calc", "Elapsed": 0.1},
        {"Action": "output", "Package": "ex/broken", "Output": "# ex/broken\nbroken.go:3: undefined: x\n"},
        {"Action": "fail", "Package": "ex/broken", "Elapsed": 0},
    ]
    parser = GoTestParser()
    results = []
    for ev in lines:
        got, _ = parser.feed_line(orjson.dumps(ev).decode())
        results += got
    _, shown = parser.feed_line("go: downloading example.com/x v1.0.0")
    assert shown == "go: downloading example.com/x v1.0.0"
    results += parser.close()
    assert [(r.name, r.status) for r in results] == [
        ("ex/calc::TestAdd", "passed"),
        ("ex/calc::TestDiv/by_zero", "failed"),
        ("ex/calc::TestSkip", "skipped"),
        ("ex/broken::[package]", "error"),
        ("ex/calc::TestHang", "error"),
    ]
    assert results[1].message == "calc_test.go:9: boom\n"
    assert results[3].message is not None and "undefined: x" in results[3].message


def test_values_files() -> None:
    results, err = parse_values(b'{"bench::sort": {"time_s": 1.5, "mem": 3, "bad": "x", "flag": true}}', "v.json")
    assert err is None and results[0].values == {"time_s": 1.5, "mem": 3.0}
    data = b'[{"test": "a", "values": {"t": 1}}, {"name": "b", "status": "failed", "duration": 2}]'
    results, err = parse_values(data, "v.json")
    assert err is None and [(r.name, r.status, r.duration) for r in results] == [
        ("a", "passed", None),
        ("b", "failed", 2.0),
    ]
    results, err = parse_values(b'{"a": {"t": 1},\n "b": ', "v.json")
    assert results == [] and err is not None and err.line == 2


def test_linter_outputs() -> None:
    ruff = orjson.dumps(
        [
            {
                "code": "F401",
                "message": "`os` imported but unused",
                "filename": "/w/repo/pkg/a.py",
                "location": {"row": 3, "column": 8},
            },
            {
                "code": None,
                "message": "SyntaxError: invalid syntax",
                "filename": "/w/repo/b.py",
                "location": {"row": 1, "column": 1},
            },
            {
                "code": "E501",
                "message": "Line too long",
                "filename": "/w/repo/c.py",
                "location": {"row": 9, "column": 121},
            },
        ]
    )
    issues = parse_ruff(ruff, "/w/repo")
    assert [tuple(i) for i in issues] == [
        ("pkg/a.py", 3, 8, "F401", "`os` imported but unused", "error"),
        ("b.py", 1, 1, "syntax-error", "SyntaxError: invalid syntax", "error"),
        ("c.py", 9, 121, "E501", "Line too long", "convention"),
    ]
    pylint = orjson.dumps(
        [
            {
                "type": "convention",
                "module": "a",
                "obj": "",
                "line": 1,
                "column": 0,
                "path": "a.py",
                "symbol": "missing-module-docstring",
                "message": "Missing module docstring",
                "message-id": "C0114",
            }
        ]
    )
    assert [tuple(i) for i in parse_pylint(pylint)] == [
        ("a.py", 1, 0, "missing-module-docstring", "Missing module docstring", "convention")
    ]
