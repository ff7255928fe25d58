"""Turn ``perf/bench_backends.py``'s JSON into ``perf/backends_notes.md``: each operation on
asyncio (and through ``satchel.sync``) as a ratio to the same operation on Trio, same run.

Run (from the repository root)::

    python perf/bench_backends.py -o perf/backends.json
    python perf/backends_report.py perf/backends.json

``perf/report.py --notes perf/backends_notes.md`` puts the notes in RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import pyperf

NOTES = Path(__file__).with_name("backends_notes.md")
#: (row, trio benchmark, other benchmark, target ratio)
ROWS = [
    (f"{op}, asyncio", f"{op} [trio]", f"{op} [asyncio]", 1.2)
    for op in (
        "session create",
        "set_state",
        "get_state",
        "artifact store 1 KiB",
        "artifact get 1 KiB",
    )
] + [
    ("set_state, satchel.sync", "set_state [trio]", "set_state [sync]", 3.0),
    ("get_state, satchel.sync", "get_state [trio]", "get_state [sync]", None),
]


def us(seconds: float) -> str:
    """Seconds as microseconds."""
    return f"{seconds * 1e6:,.1f} µs"


def render(path: Path) -> str:
    """The notes for one pyperf JSON file of ``bench_backends.py``."""
    suite = pyperf.BenchmarkSuite.load(str(path))
    medians = {b.get_name(): b.median() for b in suite.get_benchmarks()}
    loads = [
        float(run.get_metadata().get("load_avg_1min", "nan"))
        for bench in suite.get_benchmarks()
        for run in bench.get_runs()
    ]
    lines = [
        "## Trio and asyncio, same operations (`python perf/bench_backends.py`)",
        "",
        "The runtime opened in a Trio loop and in an asyncio loop (`anyio.run(..., backend=)`), "
        "the same code, RocksDB in process durability; `satchel.sync` with its loop run in the "
        f"calling thread. Medians of one pyperf run ({path.name}); the 1-minute load average "
        f"during it: median {statistics.median(loads):.2f}, max {max(loads):.2f} "
        f"({os.cpu_count()} CPUs).",
        "",
        "| operation | Trio | this | ratio | target |",
        "|---|---:|---:|---:|---|",
    ]
    passed = total = 0
    for label, trio_name, other_name, target in ROWS:
        base, other = medians[trio_name], medians[other_name]
        ratio = other / base
        verdict = ""
        if target is not None:
            total += 1
            ok = ratio <= target
            passed += ok
            verdict = f"<= {target}x: {'PASS' if ok else '**FAIL**'}"
        lines.append(f"| {label} | {us(base)} | {us(other)} | {ratio:.2f}x | {verdict} |")
    lines += ["", f"Targets: {passed}/{total} pass.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path, help="pyperf JSON of bench_backends.py")
    args = parser.parse_args()
    NOTES.write_text(render(args.file), encoding="utf-8")
    print(NOTES.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
