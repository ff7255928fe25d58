"""The asyncio primitives of the kernel's hot path (``runtime/_native.py``): a writer parked
on a group commit holds every cancellation off, then delivers each one to its own scope."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from satchel.runtime._native import ASYNCIO


def after_passes(n: int, fn: Callable[[], Any]) -> None:
    """Call ``fn`` once ``n`` more passes of the running loop have gone by."""
    if n == 0:
        fn()
    else:
        asyncio.get_running_loop().call_soon(after_passes, n - 1, fn)


class _NoScope:
    async def __aenter__(self) -> None:
        pass

    async def __aexit__(self, *exc: object) -> bool:
        return False


async def parked_under(kind: str, fire_at: int, park_for: int) -> str:
    """Park for ``park_for`` loop passes inside an expired AnyIO scope, while an outer
    ``asyncio.timeout`` (or a native ``Task.cancel``) fires ``fire_at`` passes in; how the
    outer block ended."""
    host = asyncio.current_task()
    assert host is not None
    loop = asyncio.get_running_loop()
    parker = ASYNCIO.parker()
    outer: Any
    if kind == "timeout":
        outer = asyncio.timeout(None)

        def fire() -> None:
            outer.reschedule(loop.time())
    else:
        outer = _NoScope()
        fire = host.cancel
    try:
        async with outer:
            with anyio.move_on_after(0) as inner:
                after_passes(fire_at, fire)
                after_passes(park_for, parker.unpark)
                await parker.park()
                await ASYNCIO.checkpoint_if_cancelled()  # as after every lent turn
            assert inner.cancelled_caught
            await asyncio.sleep(0.2)
        return "ran on past the outer cancellation"
    except TimeoutError:
        return "TimeoutError"
    except asyncio.CancelledError:
        host.uncancel()
        return "CancelledError"


@pytest.mark.parametrize("kind", ["timeout", "cancel"])
def test_a_parked_writer_loses_no_outer_cancellation(kind: str) -> None:
    """However an outer cancellation and an inner AnyIO deadline interleave with a park, the
    inner scope catches its own and the outer one still ends its block."""

    async def main() -> list[str]:
        results = []
        for park_for in (1, 2, 3, 4):
            for fire_at in range(park_for + 1):
                results.append(await parked_under(kind, fire_at, park_for))
        return results

    expected = "TimeoutError" if kind == "timeout" else "CancelledError"
    assert set(asyncio.run(main())) == {expected}


def test_a_held_cancellation_is_delivered_inside_its_scope() -> None:
    """A deadline that passes while a writer is parked ends that deadline's own block (and
    nothing raises after it)."""

    async def main() -> tuple[bool, str]:
        parker = ASYNCIO.parker()
        with anyio.move_on_after(0) as scope:
            asyncio.get_running_loop().call_soon(parker.unpark)
            await parker.park()
            await ASYNCIO.checkpoint_if_cancelled()
        try:
            await asyncio.sleep(0)
            after = "nothing"
        except asyncio.CancelledError:
            after = "a stray CancelledError"
        return scope.cancelled_caught, after

    assert asyncio.run(main()) == (True, "nothing")
