"""Benchmark of the web UI in headless Chromium against a real ``kraken serve``.

Seeds a database (bench/ui_seed.py: real ingestion and analysis) with a run of ``--results``
test results and a job with a ``--log-lines`` log, starts ``kraken serve`` on it, then measures
in Debian's Chromium (driven by Playwright, never a downloaded browser):

- results page: first rows visible after a full page load (cold and warm cache) and after an
  in-app navigation; filter changes (status, change, flaky, job, text, sort) until the new rows
  are shown; loading further pages while scrolling;
- job page: time until the whole log is in, JS heap and DOM size, scrolling frame times,
  search time;
- the initial bundle (what index.html loads before any page code), gzipped.

    .venv/bin/python bench/ui_bench.py                       # 100 000 results, 200 000 log lines
    .venv/bin/python bench/ui_bench.py --results 20000 --log-lines 50000 --json out.json

Prints one JSON document (and writes it with --json).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ui_seed import seed  # noqa: E402
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

ARGS = [
    *CHROMIUM_ARGS,
    "--enable-precise-memory-info",
    "--js-flags=--expose-gc",
]
PASSWORD = "bench-admin-pw"

FIRST_ROW_SCRIPT = """
window.__marks = {};
new MutationObserver(() => {
  if (!window.__marks.firstRow && document.querySelector('[data-testid=result-row]'))
    window.__marks.firstRow = performance.now();
}).observe(document, {childList: true, subtree: true});
"""

# Click something, then wait until the results shown are those of the new URL (not the
# previous filter's rows kept while loading) and painted.
CLICK_AND_WAIT = """
async (sel) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const layout = () => document.querySelector('[data-testid=results-layout]');
  const wanted = () => {
    const p = new URLSearchParams(location.search); p.delete('sel');
    const s = p.toString(); return s ? '?' + s : '';
  };
  const t0 = performance.now();
  const el = document.querySelector(sel);
  if (el.tagName === 'SELECT') {
    const opts = [...el.options];
    const next = opts[(el.selectedIndex + 1) % opts.length].value;
    const setter = Object.getOwnPropertyDescriptor(HTMLSelectElement.prototype, 'value').set;
    setter.call(el, next);
    el.dispatchEvent(new Event('change', {bubbles: true}));
  } else {
    el.click();
  }
  for (;;) {
    await frame();
    const l = layout();
    if (l && l.dataset.filters === wanted() && l.dataset.fresh === 'true') break;
    if (performance.now() - t0 > 30000) throw new Error('timeout waiting for ' + sel);
  }
  await frame();
  return performance.now() - t0;
}
"""

TYPE_AND_WAIT = """
async (text) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const input = document.querySelector('[data-testid=filter-q]');
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  const t0 = performance.now();
  setter.call(input, text);
  input.dispatchEvent(new Event('input', {bubbles: true}));
  let tUrl = null;
  for (;;) {
    await frame();
    if (tUrl === null && new URLSearchParams(location.search).get('q') === text) tUrl = performance.now();
    const l = document.querySelector('[data-testid=results-layout]');
    const shown = l && l.dataset.fresh === 'true' && new URLSearchParams(l.dataset.filters).get('q') === text;
    if (tUrl !== null && shown) break;
    if (performance.now() - t0 > 30000) throw new Error('timeout');
  }
  await frame();
  const t1 = performance.now();
  return {total: t1 - t0, after_debounce: t1 - tUrl};
}
"""

SCROLL_RESULTS = """
async (pages) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const box = document.querySelector('[data-testid=results-scroll]');
  const total = document.querySelector('[data-testid=results-total]');
  const rows = () => {
    const m = total.textContent.match(/([\\d\\u202f]+) loaded/);
    return m ? Number(m[1].replace(/\\u202f/g, '')) : 0;
  };
  const times = [];
  for (let i = 0; i < pages; i++) {
    const before = rows();
    const t0 = performance.now();
    box.scrollTop = box.scrollHeight;
    for (;;) {
      await frame();
      const now = rows();
      if (now > before || now === 0) break;
      if (performance.now() - t0 > 20000) return {times, stuck: true};
    }
    times.push(performance.now() - t0);
  }
  return {times, loaded: rows()};
}
"""

SCROLL_FRAMES = """
async ({sel, jumps, glide}) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const box = document.querySelector(sel);
  const max = box.scrollHeight - box.clientHeight;
  const jumpTimes = [];
  let seed = 7;
  const rnd = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  for (let i = 0; i < jumps; i++) {
    const t0 = performance.now();
    box.scrollTop = Math.floor(rnd() * max);
    await frame(); await frame();
    jumpTimes.push((performance.now() - t0) / 2);
  }
  box.scrollTop = 0; await frame();
  const glideTimes = [];
  let last = performance.now();
  for (let i = 0; i < glide; i++) {
    box.scrollTop += 900;
    await frame();
    const now = performance.now();
    glideTimes.push(now - last);
    last = now;
  }
  return {jumpTimes, glideTimes, rendered: box.querySelectorAll('.log-line, [data-testid=result-row]').length};
}
"""

LOG_SEARCH = """
async (text) => {
  const input = document.querySelector('[data-testid=log-search]');
  const out = document.querySelector('[data-testid=log-matches]');
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  const t0 = performance.now();
  setter.call(input, text);
  input.dispatchEvent(new Event('input', {bubbles: true}));
  input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
  for (;;) {
    await new Promise((r) => requestAnimationFrame(() => r()));
    if (/\\d+ \\/ [\\d\\u202f]+/.test(out.textContent) || out.textContent === 'no match') break;
    if (performance.now() - t0 > 30000) throw new Error('timeout');
  }
  return {ms: performance.now() - t0, matches: out.textContent};
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stats(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    if not v:
        return {}
    return {
        "median": round(statistics.median(v), 1),
        "p95": round(v[min(len(v) - 1, int(len(v) * 0.95))], 1),
        "max": round(v[-1], 1),
        "n": len(v),
    }


def bundle() -> dict[str, Any]:
    """Sizes of what index.html loads up front (entry, preloads, CSS) and of everything, gzipped."""
    web = ROOT / "kraken" / "web"
    html = (web / "index.html").read_text()
    initial = re.findall(r'(?:src|href)="/(assets/[^"]+\.(?:js|css))"', html)

    def gz(path: Path) -> int:
        twin = path.with_name(path.name + ".gz")
        return twin.stat().st_size if twin.exists() else len(gzip.compress(path.read_bytes(), 9))

    files = {name: gz(web / name) for name in initial}
    everything = sum(gz(p) for p in (web / "assets").iterdir() if p.suffix in (".js", ".css"))
    return {
        "initial_files": files,
        "initial_gzip_kb": round(sum(files.values()) / 1024, 1),
        "initial_raw_kb": round(sum((web / n).stat().st_size for n in initial) / 1024, 1),
        "all_assets_gzip_kb": round(everything / 1024, 1),
    }


def run_browser(url: str, ids: dict[str, Any], log_lines: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    run_id, job_id, flow_id = ids["results_run_id"], ids["log_job_id"], ids[f"flow_{ids['flows']}"]["flow_id"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
        ctx.set_default_timeout(60_000)
        ctx.add_init_script(FIRST_ROW_SCRIPT)
        page = ctx.new_page()
        page.goto("/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda u: "/login" not in u)
        page.wait_for_selector("text=acme")

        # results: full page loads (the first with a cold HTTP cache for the page's own chunk)
        loads = []
        for _ in range(6):
            page.goto(f"/runs/{run_id}/results")
            page.wait_for_selector("[data-testid=result-row]")
            loads.append(page.evaluate("window.__marks.firstRow"))
        out["results_first_rows_full_load_ms"] = {"first": round(loads[0], 1), **stats(loads[1:])}

        # in-app navigation from the flow page
        navs = []
        for _ in range(5):
            page.goto(f"/flows/{flow_id}?run={run_id}")
            page.wait_for_selector("[data-testid=run-panel] >> text=Open results")
            page.wait_for_timeout(300)
            navs.append(
                page.evaluate(
                    """async () => {
                      const t0 = performance.now();
                      [...document.querySelectorAll('a')].find((a) => a.textContent.startsWith('Open results')).click();
                      for (;;) {
                        await new Promise((r) => requestAnimationFrame(() => r()));
                        if (document.querySelector('[data-testid=result-row]')) break;
                      }
                      return performance.now() - t0;
                    }"""
                )
            )
        out["results_first_rows_in_app_ms"] = stats(navs)

        # filter changes, each to a filter not shown before (no cache hit)
        page.goto(f"/runs/{run_id}/results")
        page.wait_for_selector("[data-testid=result-row]")
        steps = [
            ("status failed", "[data-testid=filter-status-failed]"),
            ("+ change regression", "[data-testid=filter-change-regression]"),
            ("- status failed", "[data-testid=filter-status-failed]"),
            ("- change regression", "[data-testid=filter-change-regression]"),
            ("status skipped", "[data-testid=filter-status-skipped]"),
            ("+ status passed", "[data-testid=filter-status-passed]"),
            ("job (system)", "[data-testid=filter-job]"),
            ("next job (system)", "[data-testid=filter-job]"),
            ("sort", "[data-testid=results-sort]"),
            ("change new", "[data-testid=filter-change-new]"),
            ("counter fixes", "[data-testid=counter-fixes]"),
            ("counter flaky", "[data-testid=counter-flaky]"),
            ("counter total", "[data-testid=counter-total]"),
        ]
        filters = {}
        for name, sel in steps:
            filters[name] = round(page.evaluate(CLICK_AND_WAIT, sel), 1)
        out["filter_change_ms"] = {"each": filters, **stats(list(filters.values()))}
        texts = [page.evaluate(TYPE_AND_WAIT, t) for t in ("scheduler", "test_case_12", "TestCore3")]
        out["text_filter_ms"] = {
            "after_debounce": stats([t["after_debounce"] for t in texts]),
            "including_120ms_debounce": stats([t["total"] for t in texts]),
        }
        page.goto(f"/runs/{run_id}/results")
        page.wait_for_selector("[data-testid=result-row]")
        scroll = page.evaluate(SCROLL_RESULTS, 20)
        out["results_next_page_on_scroll_ms"] = {**stats(scroll["times"]), "rows_loaded": scroll.get("loaded")}
        frames = page.evaluate(SCROLL_FRAMES, {"sel": "[data-testid=results-scroll]", "jumps": 40, "glide": 120})
        out["results_scroll_frame_ms"] = {
            "jump": stats(frames["jumpTimes"]),
            "glide": stats(frames["glideTimes"]),
            "rows_in_dom": frames["rendered"],
        }

        # job page with a big log
        cdp = ctx.new_cdp_session(page)
        cdp.send("Performance.enable")

        def heap() -> dict[str, float]:
            page.evaluate("window.gc && window.gc()")
            m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
            return {"js_heap_mb": round(m["JSHeapUsedSize"] / 2**20, 1), "dom_nodes": int(m["Nodes"])}

        page.goto("/agents")
        page.wait_for_selector("text=Agents")
        page.wait_for_timeout(500)
        before = heap()
        t0 = time.perf_counter()
        page.goto(f"/jobs/{job_id}")
        page.wait_for_function(
            "(n) => (document.querySelector('[data-testid=log-count]')?.textContent || '')"
            ".replace(/\\D/g, '').startsWith(String(n))",
            arg=log_lines,
            timeout=120_000,
        )
        loaded_s = time.perf_counter() - t0
        page.wait_for_timeout(300)
        after = heap()
        lines_in_dom = page.evaluate("document.querySelectorAll('.log-line').length")
        elements = page.evaluate("document.querySelectorAll('*').length")
        frames = page.evaluate(SCROLL_FRAMES, {"sel": "[data-testid=log-scroll]", "jumps": 60, "glide": 200})
        searches = {t: page.evaluate(LOG_SEARCH, t) for t in ("warning", "error:", "file_123456", "no such text")}
        after_search = heap()
        out["job_log"] = {
            "lines": log_lines,
            "all_lines_in_s": round(loaded_s, 2),
            "heap_before_mb": before["js_heap_mb"],
            "heap_with_log_mb": after["js_heap_mb"],
            "heap_after_searches_mb": after_search["js_heap_mb"],
            "dom_nodes_before": before["dom_nodes"],
            "dom_nodes_with_log": after["dom_nodes"],
            "log_lines_in_dom": lines_in_dom,
            "dom_elements_with_log": elements,
            "lines_kept_in_view": page.evaluate(
                """() => {
                  const t = document.querySelector('[data-testid=log-count]').textContent.replace(/\\u202f/g, '');
                  const total = Number(t.match(/^(\\d+) lines/)[1]);
                  const dropped = t.match(/first (\\d+) not kept/);
                  return total - (dropped ? Number(dropped[1]) : 0);
                }"""
            ),
            "scroll_jump_frame_ms": stats(frames["jumpTimes"]),
            "scroll_glide_frame_ms": stats(frames["glideTimes"]),
            "search_ms": {t: {"ms": round(v["ms"], 1), "matches": v["matches"]} for t, v in searches.items()},
        }
        browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=int, default=100_000, help="results in the measured run (two jobs)")
    ap.add_argument("--log-lines", type=int, default=200_000)
    ap.add_argument("--flows", type=int, default=2, help="CI flows of history (the last one is measured)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()

    subprocess.run(["bash", str(ROOT / "scripts" / "build-frontend.sh"), "--require"], check=True)
    data = Path(tempfile.mkdtemp(prefix="kraken-ui-bench-"))
    t0 = time.perf_counter()
    ids = asyncio.run(seed(data, tests=args.results // 2, flows=args.flows, log_lines=args.log_lines, quiet=True))
    ids["flows"] = args.flows
    seeded = time.perf_counter() - t0
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KRAKEN_")}
    env.update(KRAKEN_ADMIN_PASSWORD=PASSWORD, KRAKEN_LOG_LEVEL="warning")
    server = subprocess.Popen(
        [sys.executable, "-m", "kraken", "serve", "--data-dir", str(data), "--port", str(port), "--no-local-agent"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        for line in server.stdout:
            if "listening on" in line:
                break
        else:
            raise RuntimeError("kraken serve did not start")
        threading.Thread(target=server.stdout.read, daemon=True).start()  # keep draining its output
        figures = run_browser(f"http://127.0.0.1:{port}", ids, args.log_lines)
    finally:
        server.terminate()
        server.wait(20)
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)
    doc = {
        "results_in_run": ids["results"],
        "log_lines": args.log_lines,
        "seed_seconds": round(seeded, 1),
        "chromium": subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip(),
        "bundle": bundle(),
        **figures,
    }
    text = json.dumps(doc, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
