"""Test actors for the kernel tests: a counter whose value is persisted in a dict."""

from __future__ import annotations

from typing import Any

import anyio
import attrs

from satchel import ValidationError
from satchel.runtime import Actor, ActorSpec, ReminderFired, TimerFired


@attrs.frozen
class Add:
    n: int


@attrs.frozen
class Get:
    pass


@attrs.frozen
class Boom:
    pass


@attrs.frozen
class Invalid:
    pass


@attrs.frozen
class AddTwiceViaSelf:
    """Ask the actor's own ref to add ``n``, twice, from within the turn."""

    ref: Any
    n: int


@attrs.frozen
class Sleep:
    seconds: float


@attrs.frozen
class Tick:
    every: float


@attrs.define
class World:
    """What the counters persist and what they report having done."""

    saved: dict[str, int] = attrs.Factory(dict)
    starts: list[str] = attrs.Factory(list)
    stops: list[str] = attrs.Factory(list)
    events: list[tuple[str, Any]] = attrs.Factory(list)
    fail_start: set[str] = attrs.Factory(set)
    #: Reminder ticks to crash on (counted down), to test redelivery.
    crash_on_reminders: int = 0


class Counter(Actor[Any]):
    """Adds numbers; persists every change; crashes on Boom; rejects Invalid."""

    def __init__(self, world: World, actor_id: str) -> None:
        self.world = world
        self.actor_id = actor_id
        self.value = 0

    async def on_start(self) -> None:
        if self.actor_id in self.world.fail_start:
            raise OSError("cannot load state")
        self.world.starts.append(self.actor_id)
        self.value = self.world.saved.get(self.actor_id, 0)

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Add):
            self.value += message.n
            self.world.saved[self.actor_id] = self.value
            return self.value
        if isinstance(message, Get):
            return self.value
        if isinstance(message, AddTwiceViaSelf):
            await message.ref.ask(Add(message.n))
            return await message.ref.ask(Add(message.n))
        if isinstance(message, Boom):
            raise RuntimeError("boom")
        if isinstance(message, Invalid):
            raise ValidationError(f"{self.actor_id}: invalid")
        if isinstance(message, Sleep):
            await anyio.sleep(message.seconds)
            return "slept"
        if isinstance(message, Tick):
            self.context.start_timer("tick", message.every, interval=message.every)
            return None
        if isinstance(message, ReminderFired) and self.world.crash_on_reminders:
            self.world.crash_on_reminders -= 1
            raise RuntimeError("crashed on a reminder")
        if isinstance(message, TimerFired | ReminderFired):
            self.world.events.append((self.actor_id, message))
            return None
        raise TypeError(f"unexpected {message!r}")

    async def on_stop(self) -> None:
        self.world.stops.append(self.actor_id)


def counter_spec(world: World, kind: str = "counter", **options: Any) -> ActorSpec:
    """A spec for counters living in ``world``."""
    return ActorSpec(kind=kind, factory=lambda actor_id: Counter(world, actor_id), **options)


class StoredCounter(Actor[Any]):
    """A counter whose value lives in a satchel store (one write per change)."""

    def __init__(self, store: Any, actor_id: str) -> None:
        self.kv = store.kv
        self.key = f"t\x00counter/{actor_id}".encode()
        self.value = 0

    async def on_start(self) -> None:
        raw = self.kv.get(self.key)
        self.value = 0 if raw is None else int(raw)

    async def receive(self, message: Any) -> Any:
        from satchel.storage import Batch

        if isinstance(message, Add):
            self.value += message.n
            batch = Batch()
            batch.put(self.key, str(self.value).encode())
            self.kv.write(batch)
        elif isinstance(message, Boom):
            self.value = -999  # lost: never written
            raise RuntimeError("boom")
        elif isinstance(message, ReminderFired):
            self.value += 1000
        return self.value


def stored_counter_spec(store: Any) -> ActorSpec:
    """A spec for counters kept in ``store``."""
    return ActorSpec(kind="stored", factory=lambda actor_id: StoredCounter(store, actor_id))
