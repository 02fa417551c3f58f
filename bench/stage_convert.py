"""Cost of converting Python-isms in stage code before evaluation (``kraken.stage.pycompat.convert``).

Run: ``.venv/bin/python bench/stage_convert.py`` — prints JSON with the median time in ms of
converting a 1020-line file full of conversions (``while``-free: ``is``, ``ctx.args.X``, ``**``,
sets, f-string expressions, adjacent strings) and of the overview's example stage.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stage_eval import CODE as EXAMPLE
from kraken.stage.pycompat import convert

BLOCK = """def f{i}(ctx):
    x = [a for a in range(3)]
    if ctx.args.n is not None:
        x.append(2 ** 3)
    s = {{1, 2}}
    return {{"name": f"j{{len(x) + 1}}", "cmd": "echo " "a"}}
"""
LARGE = "".join(BLOCK.format(i=i) for i in range(170))


def _median_ms(code: str, calls: int) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        convert(code)
        samples.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(samples), 2)


def main() -> None:
    print(
        json.dumps(
            {
                "lines": LARGE.count("\n"),
                "convert_large_ms": _median_ms(LARGE, 20),
                "convert_example_ms": _median_ms(EXAMPLE, 200),
            }
        )
    )


if __name__ == "__main__":
    main()
