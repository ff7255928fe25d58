"""A/B of the record-port conversion (65a546e, f5f136b): old and new code in one run.

Each side runs from its own detached worktree, without installing it, through a tree of
symlinks laid out as the package installs (as .ci/typecheck builds one), put first on
PYTHONPATH; each side runs its own copy of the perf/ scripts and reads its own 100k folders
(built by its own code). Runs alternate old, new, new, old (per round pair) so drift in the
machine's load falls on both sides alike; the runs of a side are merged (``merge_runs``)
and compared with ``pyperf compare_to --table``.

Setup (outside the repository)::

    git -C /work/main worktree add --detach /tmp/ab_old 6a36c7d
    git -C /work/main worktree add --detach /tmp/ab_new HEAD
    # /tmp/ab_tree_{old,new}/satchel: symlinks to satchel/*.py, py.typed and the folders
    # runtime, actors, storage, scripting, satchel/integrations of each worktree

Run::

    python perf/ab_record_port.py kernel hooks storage sessions artifacts
    python perf/ab_record_port.py --compare kernel hooks storage sessions artifacts
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(os.environ.get("AB_RESULTS", "/tmp/ab_res"))
PYPERF = ["--processes", "3", "--values", "3", "--warmups", "1"]
#: Per suite: extra arguments and environment (floors are left out where a filter exists:
#: they run no satchel code).
SUITES: dict[str, tuple[list[str], dict[str, str]]] = {
    "kernel": ([], {}),
    "hooks": ([], {}),
    "storage": (["--only", "*[!]]"], {}),
    "sessions": ([], {}),
    "artifacts": ([], {"SATCHEL_BENCH_ONLY": "*[!]]"}),
}
ORDER = ("old", "new", "new", "old")
SAME_DATA = False


def env_of(side: str, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"/tmp/ab_tree_{side}"
    data = "old" if SAME_DATA else side
    env["SATCHEL_BENCH_DATA"] = f"/tmp/ab_data_{data}_sessions"
    env["SATCHEL_BENCH_ARTIFACTS"] = f"/tmp/ab_data_{data}_artifacts"
    env.update(extra)
    return env


def run(
    suite: str, rounds: int, first: int = 0, only: str | None = None, subset: str | None = None
) -> None:
    args, extra = SUITES[suite]
    if only is not None:  # a glob on names instead of the suite's own selection
        if suite == "storage":
            args = ["--only", only]
        elif suite == "artifacts":
            extra = {"SATCHEL_BENCH_ONLY": only}
    inherit = ",".join(["SATCHEL_BENCH_DATA", "SATCHEL_BENCH_ARTIFACTS", *extra])
    for n in range(first, first + rounds):
        for i, side in enumerate(ORDER):
            out = RESULTS / f"{suite}_{side}_{n}{i}.json"
            out.unlink(missing_ok=True)
            script = f"perf/bench_{suite}.py"
            if subset is not None:  # sessions/hooks have no filter: /tmp/ab_subset.py wraps them
                script, extra = "/tmp/ab_subset.py", {"AB_SUITE": suite, "AB_ONLY": subset}
                inherit = ",".join(["SATCHEL_BENCH_DATA", "SATCHEL_BENCH_ARTIFACTS", *extra])
            cmd = [sys.executable, script, *PYPERF, *args]
            cmd += ["--inherit-environ", inherit, "--quiet", "-o", str(out)]
            load = os.getloadavg()
            start = time.monotonic()
            subprocess.run(cmd, cwd=f"/tmp/ab_{side}", env=env_of(side, extra), check=True)
            took = time.monotonic() - start
            line = f"{suite} {side} {out.name} {took:.0f}s load before {load[0]:.2f} {load[1]:.2f}"
            line += f" {load[2]:.2f} after {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
            print(line, flush=True)
            with open(RESULTS / "runs.log", "a") as log:
                log.write(line + "\n" + " ".join(cmd) + "\n")


def merge_runs(files: list[Path], target: Path) -> None:
    """Every run of ``files`` in one pyperf file (``pyperf convert --add`` takes one file
    only: given several, it kept the last)."""
    import pyperf

    suite = pyperf.BenchmarkSuite.load(str(files[0]))
    for extra in files[1:]:
        suite.add_runs(pyperf.BenchmarkSuite.load(str(extra)))
    suite.dump(str(target), replace=True)


def compare(suite: str) -> None:
    merged = {}
    for side in ("old", "new"):
        files = sorted(RESULTS.glob(f"{suite}_{side}_*.json"))
        target = RESULTS / f"{suite}_{side}.json"
        target.unlink(missing_ok=True)
        merge_runs(files, target)
        merged[side] = target
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pyperf",
            "compare_to",
            str(merged["old"]),
            str(merged["new"]),
            "--table",
            "--table-format",
            "md",
        ],
        check=True,
    )


def _fmt(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


def table(suite: str) -> None:
    """Every benchmark of ``suite``: old and new means (± std dev, all merged runs), the
    ratio new/old, pyperf's t-test (the one compare_to uses), and the ratio of each
    alternation pair (old run i vs new run j in time order) to show how stable it is."""
    import pyperf
    from pyperf._compare import is_significant_benchs

    old = pyperf.BenchmarkSuite.load(str(RESULTS / f"{suite}_old.json"))
    new = pyperf.BenchmarkSuite.load(str(RESULTS / f"{suite}_new.json"))
    runs = {
        side: [
            pyperf.BenchmarkSuite.load(str(f))
            for f in sorted(RESULTS.glob(f"{suite}_{side}_*.json"))
        ]
        for side in ("old", "new")
    }
    print(f"| {suite} benchmark | old | new | new/old | significant (t) | per pair |")
    print("|---|---:|---:|---:|:---:|---|")
    for bench in old.get_benchmarks():
        name = bench.get_name()
        other = new.get_benchmark(name)
        a, b = bench.mean(), other.mean()
        significant, t = is_significant_benchs(bench, other)
        pairs = " ".join(
            f"{n.get_benchmark(name).mean() / o.get_benchmark(name).mean():.2f}"
            for o, n in zip(runs["old"], runs["new"], strict=True)
            if name in o.get_benchmark_names() and name in n.get_benchmark_names()
        )
        print(
            f"| {name} | {_fmt(a)} ± {_fmt(bench.stdev())} | {_fmt(b)} ± {_fmt(other.stdev())} "
            f"| {b / a:.2f}x | {'yes' if significant else 'no'} ({t:.1f}) | {pairs} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("suites", nargs="+", choices=sorted(SUITES))
    parser.add_argument("--rounds", type=int, default=1, help="old,new,new,old sequences")
    parser.add_argument("--first-round", type=int, default=0, help="to add rounds to a run")
    parser.add_argument("--only", help="storage/artifacts: the benchmarks to run (glob)")
    parser.add_argument("--subset", help="any suite: only these benchmarks (glob), by a wrapper")
    parser.add_argument(
        "--same-data", action="store_true", help="both sides read the old side's 100k folders"
    )
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--table", action="store_true", help="after --compare: every benchmark")
    ns = parser.parse_args()
    global SAME_DATA
    SAME_DATA = ns.same_data
    RESULTS.mkdir(exist_ok=True)
    for suite in ns.suites:
        if ns.compare:
            compare(suite)
            if ns.table:
                table(suite)
        else:
            run(suite, ns.rounds, ns.first_round, ns.only, ns.subset)


if __name__ == "__main__":
    main()
