"""The inspector's runtime pages: live actors (with passivate, restart and clear-failure),
replay schedules and their runs, and statistics over the last minutes as SVG charts."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import anyio
import attrs
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from satchel._ui import PREFIX, action, page, render, runtime_of
from satchel.runtime import _errors as errors

if TYPE_CHECKING:
    from satchel._runtime import Runtime

#: How often statistics are sampled, and how many samples are kept (ten minutes).
SAMPLE_S = 5.0
SAMPLES_KEPT = 120
#: Live actors a page lists.
ACTORS_SHOWN = 500


@attrs.frozen
class Sample:
    """The runtime at one moment."""

    at: float
    messages_handled: int
    live_actors: int
    bytes_stored: int
    bytes_deduplicated: int


class StatisticsHistory:
    """Samples of the runtime's counters, the last ``SAMPLES_KEPT`` of them."""

    def __init__(self, rt: Runtime, clock: Callable[[], float] = time.time) -> None:
        self._rt = rt
        self._clock = clock
        self.samples: deque[Sample] = deque(maxlen=SAMPLES_KEPT)
        self._started = False

    def sample(self) -> Sample:
        stats = self._rt.control.statistics()
        stored = self._rt.store.blobs.statistics()
        taken = Sample(
            self._clock(),
            stats.supervisor.messages_handled,
            stats.supervisor.live_actors,
            stored.referenced_bytes,
            stored.deduplicated_bytes,
        )
        self.samples.append(taken)
        return taken

    def start(self) -> None:
        """Sample every ``SAMPLE_S`` from now on, while the runtime is open: called when
        the inspector is first opened, so a server nobody inspects samples nothing."""
        if not self._started:
            self._started = True
            self._rt.supervisor.spawn_system_task(self._run)

    async def _run(self) -> None:
        while True:
            self.sample()
            await anyio.sleep(SAMPLE_S)


@attrs.frozen
class Chart:
    """One series as an SVG polyline: its points in a 600 by 120 box, and its range."""

    title: str
    points: str
    low: float
    high: float
    last: float


def chart(title: str, times: Sequence[float], values: Sequence[float]) -> Chart:
    """``values`` over ``times`` drawn in a 600 by 120 box (the template draws it)."""
    if not values:
        return Chart(title, "", 0, 0, 0)
    low, high = min(values), max(values)
    span_t = (times[-1] - times[0]) or 1.0
    span_v = (high - low) or 1.0
    points = " ".join(
        f"{600 * (t - times[0]) / span_t:.1f},{115 - 110 * (v - low) / span_v:.1f}"
        for t, v in zip(times, values, strict=True)
    )
    return Chart(title, points, low, high, values[-1])


def charts(samples: Sequence[Sample]) -> list[Chart]:
    """Operations a second, live actors, and artifact bytes stored (and deduplicated) since
    the server started, over the samples."""
    if len(samples) < 2:
        return []
    pairs = list(itertools.pairwise(samples))
    times = [b.at for _, b in pairs]
    rates = [(b.messages_handled - a.messages_handled) / ((b.at - a.at) or 1.0) for a, b in pairs]
    return [
        chart("operations a second", times, rates),
        chart("live actors", [s.at for s in samples], [s.live_actors for s in samples]),
        chart("artifact bytes stored", [s.at for s in samples], [s.bytes_stored for s in samples]),
        chart(
            "of which already stored (deduplicated)",
            [s.at for s in samples],
            [s.bytes_deduplicated for s in samples],
        ),
    ]


@page
async def actors(request: Request) -> Response:
    rt = runtime_of(request)
    live = rt.control.actors()
    return render(
        request,
        "actors.html",
        actors=live[:ACTORS_SHOWN],
        hidden=max(0, len(live) - ACTORS_SHOWN),
        statistics=rt.control.statistics(),
        schedules=await rt.control.schedules(),
    )


def _steer(verb: str) -> Callable[[Request], object]:
    @action
    async def steer(request: Request) -> Response:
        rt = runtime_of(request)
        kind, actor_id = request.path_params["kind"], request.path_params["actor_id"]
        if kind not in rt.supervisor.kinds():
            raise errors.InvalidArgumentError(f"no actor kind {kind!r}")
        getattr(rt.control, verb)(actor_id, kind)
        return RedirectResponse(f"{PREFIX}/actors", status_code=303)

    return steer


@page
async def schedule_runs(request: Request) -> Response:
    rt = runtime_of(request)
    schedule_id = request.path_params["schedule_id"]
    return render(
        request,
        "runs.html",
        schedule_id=schedule_id,
        runs=await rt.control.schedule_results(schedule_id),
    )


@page
async def statistics(request: Request) -> Response:
    history: StatisticsHistory = request.app.state.ui_statistics
    if not history.samples or history.samples[-1].at < time.time() - SAMPLE_S:
        history.sample()
    return render(
        request,
        "statistics.html",
        charts=charts(list(history.samples)),
        statistics=runtime_of(request).control.statistics(),
        every_s=SAMPLE_S,
    )


_A = "/actors/{kind}/{actor_id}"
ROUTES = [
    Route("/actors", actors, methods=["GET"]),
    Route(f"{_A}/passivate", _steer("passivate"), methods=["POST"]),
    Route(f"{_A}/restart", _steer("restart"), methods=["POST"]),
    Route(f"{_A}/clear-failure", _steer("clear_failure"), methods=["POST"]),
    Route("/schedules/{schedule_id}", schedule_runs, methods=["GET"]),
    Route("/statistics", statistics, methods=["GET"]),
]
