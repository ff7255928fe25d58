"""Server time of each inspector page over a big data folder: 100,000 sessions, one of them
with 10,000 journal entries and a few artifact versions.

Each page is asked for through the whole app (routing, cookie check, handler, template)
in this process, as a browser would ask for it, without the network: the time is what the
server spends on it. Every page is asked ``REPEATS`` times after two warm-up asks; the table
gives the median and the slowest. The folder is built once (a few minutes) in
``$SATCHEL_BENCH_UI_DATA`` or ``/tmp/satchel-bench-ui`` and reused.

Run (from the repository root)::

    python perf/bench_ui.py
"""

from __future__ import annotations

import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from satchel import open_runtime
from satchel._http import make_app

SESSIONS = 100_000
ENTRIES = 10_000
REPEATS = 15
DATA = Path(os.environ.get("SATCHEL_BENCH_UI_DATA", "/tmp/satchel-bench-ui"))
TOKEN = "bench-ui-token-0123456789abcdef"
WORDS = ["research", "support", "billing", "planner", "coder", "review", "triage", "draft"]
TAGS = [f"tag{i}" for i in range(20)]


async def _build() -> None:
    rng = random.Random(11)
    async with open_runtime(DATA, resident_cap=1000) as rt:
        parents: list[str] = []
        for i in range(SESSIONS - 1):
            parent = rng.choice(parents) if parents and i % 10 == 0 else None
            sid = await rt.sessions.create(
                name=f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}",
                tags=rng.sample(TAGS, 2),
                parent_session_id=parent,
            )
            if i % 100 == 0:
                parents.append(sid)
            if rng.random() < 0.3:
                await rt.sessions.complete(sid)
        big = await rt.sessions.create(name="the long one", tags=["tag1"])
        for n in range(ENTRIES - 12):
            await rt.sessions.set_state(big, f"k{n % 50}", {"n": n, "text": "x" * 40})
        for version in range(4):
            text = "".join(f"line {k} of version {version}\n" for k in range(200 + version))
            await rt.artifacts.store(big, "report.md", text.encode(), type="tool_output")
        (DATA / "bench-ui-big").write_text(big)


def _folder() -> tuple[Path, str]:
    marker = DATA / "bench-ui-big"
    if not marker.exists():
        trio.run(_build)
    return DATA, marker.read_text()


async def _measure() -> list[tuple[str, float, float]]:
    folder, big = _folder()
    rows = []
    async with open_runtime(folder, resident_cap=1000) as rt:
        transport = httpx.ASGITransport(app=make_app(rt, TOKEN))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await client.post("/ui/login", data={"token": TOKEN})
            meta = await rt.sessions.replay_metadata(big)
            some_parent = (await rt.sessions.list(parent_session_id=None, limit=1))[0].id
            child = (await rt.sessions.list(tags=["tag3"], limit=200))[-1]
            parent = child.parent_session_id or some_parent
            pages = {
                "sessions, first page": "/ui/",
                "sessions, status filter": "/ui/?status=completed",
                "sessions, tag filter": "/ui/?tag=tag7",
                "sessions, text search": "/ui/?search=triage%20coder",
                "sessions, text search matching none": "/ui/?search=no-such-words",
                "sessions, children of a parent": f"/ui/?parent={parent}",
                "sessions, page 200": "/ui/?offset=10000",
                "session, 10,000 entries (last page)": f"/ui/sessions/{big}",
                "session, timeline middle page": f"/ui/sessions/{big}?from=5000",
                "session, timeline kind filter": f"/ui/sessions/{big}?from=100&kind=state_set",
                "timeline.json (live update)": f"/ui/sessions/{big}/timeline.json?after=9990",
                "point: state at entry 5,000": f"/ui/sessions/{big}/at/5000",
                "point: state at the last entry": f"/ui/sessions/{big}/at/{meta.total_events}",
                "artifact, preview": f"/ui/sessions/{big}/artifacts/report.md",
                "artifact, diff": f"/ui/sessions/{big}/artifacts/report.md/diff?a=1&b=4",
                "live actors": "/ui/actors",
                "statistics": "/ui/statistics",
            }
            for name, path in pages.items():
                rows.append((name, *await _time(client, path)))
            csrf = _csrf()
            replay = f"/ui/sessions/{big}/at/5000/replay"
            rows.append(("replay to entry 5,000 (POST)", *await _time(client, replay, csrf)))
    return rows


def _csrf() -> dict[str, str]:
    from satchel._ui import csrf_value

    return {"csrf": csrf_value(TOKEN)}


async def _time(
    client: httpx.AsyncClient, path: str, form: dict[str, str] | None = None
) -> tuple[float, float]:
    took = []
    for n in range(REPEATS + 2):
        start = time.perf_counter()
        if form is None:
            answer = await client.get(path)
        else:
            answer = await client.post(path, data=form)
        elapsed = time.perf_counter() - start
        if answer.status_code != 200:
            raise AssertionError(f"{path}: {answer.status_code} {answer.text[:300]}")
        if n >= 2:
            took.append(elapsed * 1000)
    return statistics.median(took), max(took)


def main() -> None:
    rows: list[Any] = trio.run(_measure)
    load = os.getloadavg()[0]
    print(
        f"inspector pages over {SESSIONS:,} sessions (one of {ENTRIES:,} entries); load {load:.2f}"
    )
    print(f"{'page':<42} {'median ms':>10} {'slowest ms':>11}")
    for name, median, slowest in rows:
        flag = "" if slowest <= 200 else "  over 200 ms"
        print(f"{name:<42} {median:>10.1f} {slowest:>11.1f}{flag}")


if __name__ == "__main__":
    main()
