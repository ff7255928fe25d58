"""Turn pyperf JSON files into ``perf/RESULTS.md``: every operation beside its floor.

Run (from the repository root)::

    python perf/report.py perf/storage.json [perf/other.json ...] [-o perf/RESULTS.md]

Today's RESULTS.md::

    python perf/report.py perf/storage.json perf/kernel.json perf/sessions.json \
        perf/artifacts.json perf/hooks.json perf/lua.json \
        --notes perf/kernel_memory.md perf/sessions_notes.md perf/artifacts_notes.md \
        perf/hooks_notes.md perf/lua_notes.md perf/http_notes.md perf/backends_notes.md \
        perf/peers_notes.md perf/raw_floors.md perf/guide_figures.md

Benchmarks pair by name: ``<op>`` with ``<op> [floor]``, in any file given. A benchmark whose
metadata holds ``bytes_per_op`` gets a throughput (MB/s, 10^6 bytes per second) and is compared
as its throughput in % of the floor's; any other is compared as a time ratio (x floor).
``TARGETS`` holds the pass/fail rules, matched by glob on the operation's name; later benchmark
files add rows (and rules) without changes here beyond ``TARGETS``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyperf

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

FLOOR_SUFFIX = " [floor]"
DEFAULT_OUTPUT = Path(__file__).with_name("RESULTS.md")


@dataclass(frozen=True)
class Target:
    """A rule on an operation's ratio to its floor."""

    pattern: str
    kind: Literal["min_pct", "max_x", "max_time"]
    limit: float

    def describe(self) -> str:
        if self.kind == "max_time":
            return f"median <= {fmt_time(self.limit)}"
        return f">= {self.limit:g}%" if self.kind == "min_pct" else f"<= {self.limit:g}x"

    def passes(self, row: Row) -> bool:
        if self.kind == "max_time":
            return row.op.median <= self.limit
        ratio = row.ratio
        if ratio is None:
            return False
        return ratio >= self.limit if self.kind == "min_pct" else ratio <= self.limit


TARGETS: tuple[Target, ...] = (
    Target("blob put 1 MiB *", "min_pct", 60.0),
    Target("blob get 1 MiB *", "min_pct", 70.0),
    Target("record put", "max_x", 2.0),
    Target("ask", "max_x", 1.5),
    Target("tell", "max_time", 20e-6),  # >= 50,000 messages/s
    Target("activate from rocksdb", "max_time", 200e-6),
    Target("session create", "max_time", 50e-6),
    Target("session create", "max_x", 2.0),
    Target("session create, same bytes", "max_x", 2.0),
    Target("set_state", "max_x", 2.0),
    Target("session query 100k: *", "max_time", 10e-3),
    Target("reopen 100k + first get", "max_time", 1.0),
    Target("artifact store 1 MiB *, new content", "min_pct", 60.0),
    Target("artifact store, already present", "max_x", 3.0),
    Target("artifact get 1 MiB *", "min_pct", 70.0),
    Target("artifact query 100k: *", "max_time", 10e-3),
    Target("* built-in hooks", "max_x", 1.15),
    Target("simulate replay, 10,000 entries", "max_time", 0.2),
    Target("fork, 1,000 artifacts", "max_time", 50e-3),
    Target("Session.setState from Lua, host script", "max_x", 2.0),
    Target("Session.setState from Lua, session script", "max_x", 3.0),
    Target("first script run in a fresh session", "max_time", 5e-3),
)


@dataclass(frozen=True)
class Measure:
    """One benchmark's numbers: median and relative spread of its values, in seconds."""

    median: float
    spread: float | None
    size: int | None

    @property
    def throughput(self) -> float | None:
        """MB/s, for benchmarks that move ``size`` bytes per operation."""
        return None if self.size is None else self.size / self.median / 1e6


@dataclass(frozen=True)
class Row:
    """An operation, its floor (if measured) and the rule it is held to (if any)."""

    name: str
    op: Measure
    floor: Measure | None
    targets: tuple[Target, ...]

    @property
    def ratio(self) -> float | None:
        """Throughput in % of the floor's, or time in multiples of the floor's."""
        if self.floor is None:
            return None
        if self.op.size is not None:
            return 100.0 * self.floor.median / self.op.median
        return self.op.median / self.floor.median


def measure(bench: pyperf.Benchmark) -> Measure:
    values = bench.get_values()
    spread = statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else None
    size = bench.get_metadata().get("bytes_per_op")
    return Measure(bench.median(), spread, int(size) if size is not None else None)


def targets_for(name: str) -> tuple[Target, ...]:
    return tuple(t for t in TARGETS if fnmatch.fnmatchcase(name, t.pattern))


def build_rows(benches: Sequence[pyperf.Benchmark]) -> list[Row]:
    """Operations in the order first seen; floors are attached to them, not listed."""
    by_name = {bench.get_name(): bench for bench in benches}
    rows = []
    for name, bench in by_name.items():
        if name.endswith(FLOOR_SUFFIX):
            continue
        floor = by_name.get(name + FLOOR_SUFFIX)
        rows.append(
            Row(name, measure(bench), None if floor is None else measure(floor), targets_for(name))
        )
    return rows


# -- formatting --------------------------------------------------------------------------


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


def fmt_ratio(row: Row) -> str:
    ratio = row.ratio
    if ratio is None:
        return "—"
    return f"{ratio:.0f}% of floor MB/s" if row.op.size is not None else f"{ratio:.2f}x floor time"


def judged(row: Row) -> list[Target]:
    """The row's targets that its measures can decide (a ratio needs a floor)."""
    return [t for t in row.targets if row.ratio is not None or t.kind == "max_time"]


def fmt_target(row: Row) -> str:
    return "; ".join(
        f"{t.describe()}: {'PASS' if t.passes(row) else '**FAIL**'}" for t in judged(row)
    )


def table(rows: Iterable[Row]) -> list[str]:
    lines = [
        "| operation | median | ± | MB/s | floor median | floor MB/s | vs floor | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        floor = row.floor
        cells = [
            row.name,
            fmt_time(row.op.median),
            "—" if row.op.spread is None else f"{100 * row.op.spread:.0f}%",
            fmt_rate(row.op.throughput),
            "—" if floor is None else fmt_time(floor.median),
            "—" if floor is None else fmt_rate(floor.throughput),
            fmt_ratio(row),
            fmt_target(row),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# -- the document ------------------------------------------------------------------------


def distinct(benches: Sequence[pyperf.Benchmark], key: str) -> list[str]:
    """The values a metadata key takes across benchmarks (and their runs), sorted."""
    found = {str(run.get_metadata().get(key, "")) for b in benches for run in b.get_runs()}
    return sorted(found - {""})


def load_line(benches: Sequence[pyperf.Benchmark]) -> str:
    loads = [
        float(load)
        for bench in benches
        for run in bench.get_runs()
        if (load := run.get_metadata().get("load_avg_1min")) is not None
    ]
    if not loads:
        return "- load average (1 min) during runs: not recorded"
    low, mid, high = min(loads), statistics.median(loads), max(loads)
    note = " (above ~1.5: something else was running)" if high > 1.5 else ""
    spread = f"{low:.2f} / {mid:.2f} / {high:.2f} (min / median / max)"
    return f"- load average (1 min) during runs: {spread}{note}"


def machine_lines(suites: Sequence[pyperf.BenchmarkSuite]) -> list[str]:
    meta = suites[0].get_metadata()
    benches = [bench for suite in suites for bench in suite.get_benchmarks()]
    dates = [date for suite in suites if (found := suite.get_dates()) for date in found]
    when = (
        f"{min(dates):%Y-%m-%d %H:%M} to {max(dates):%H:%M}"
        if dates
        else dt.date.today().isoformat()
    )
    return [
        f"- date: {when}",
        f"- machine: {meta.get('cpu_count', '?')} CPUs ({meta.get('cpu_model_name', '?')}), "
        f"{meta.get('platform', '?')}",
        f"- python: {meta.get('python_version', '?')}",
        *(f"- libraries: {line}" for line in distinct(benches, "libraries")),
        *source_lines(benches),
        load_line(benches),
    ]


def source_lines(benches: Sequence[pyperf.Benchmark]) -> list[str]:
    """What code was measured; a warning if it changed while the benchmarks ran."""
    sources, heads = distinct(benches, "satchel_source"), distinct(benches, "git_head")
    lines = [f"- git HEAD: {', '.join(heads)}"] if heads else []
    if sources:
        changed = " (**changed during the run**)" if len(sources) > 1 else ""
        lines.append(f"- code measured: {'; '.join(sources)}{changed}")
    return lines


def summary_lines(rows: Sequence[Row]) -> list[str]:
    verdicts = [(row, t, t.passes(row)) for row in rows for t in judged(row)]
    failed = [f"{row.name} ({t.describe()})" for row, t, ok in verdicts if not ok]
    passed = len(verdicts) - len(failed)
    return [f"Targets: {passed}/{len(verdicts)} pass (failing: {', '.join(failed) or 'none'})."]


def render(paths: Sequence[Path], notes: Sequence[Path] = ()) -> str:
    suites = [pyperf.BenchmarkSuite.load(str(path)) for path in paths]
    sections = [
        (path, suite, build_rows(suite.get_benchmarks()))
        for path, suite in zip(paths, suites, strict=True)
    ]
    all_rows = [row for *_, rows in sections for row in rows]
    lines = ["# satchel performance vs floor", "", *machine_lines(suites), ""]
    lines += [*summary_lines(all_rows), ""]
    lines += [
        "Floor = the same work done with the bare libraries in the same run. MB/s = 10^6 B/s of",
        "content. `±` = standard deviation of the values / mean. For throughput rows, `vs floor`",
        "is the operation's throughput as % of the floor's (higher is better); for the others,",
        "its time as a multiple of the floor's (lower is better).",
    ]
    for path, suite, rows in sections:
        duration = sum(bench.get_total_duration() for bench in suite.get_benchmarks())
        lines += ["", f"## {path.name}", "", f"Worker time: {duration:.0f} s.", "", *table(rows)]
    for note in notes:
        lines += ["", note.read_text(encoding="utf-8").rstrip()]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write perf/RESULTS.md from pyperf JSON files.")
    parser.add_argument("files", nargs="+", type=Path, help="pyperf JSON result files")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--notes", nargs="*", type=Path, default=[], help="markdown files appended as they are"
    )
    args = parser.parse_args(argv)
    args.output.write_text(render(args.files, args.notes), encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
