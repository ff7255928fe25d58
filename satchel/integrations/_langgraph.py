"""``SatchelSaver``: a LangGraph checkpointer (``BaseCheckpointSaver``) on a satchel runtime,
with the sync and the async methods. Its logic is in ``_langgraph_plans``, its layout in
``_langgraph_layout``."""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import inspect
import os
import random
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
    )
    from langgraph.checkpoint.serde.base import SerializerProtocol
except ImportError as error:  # pragma: no cover - the extra is missing
    raise ImportError(
        "satchel.integrations.langgraph needs LangGraph: pip install 'satchel[langgraph]'"
    ) from error

import anyio.to_thread
import sniffio
from anyio.from_thread import start_blocking_portal

import satchel
import satchel.sync
from satchel._portal import ThreadPortal
from satchel._sync import background_runtime

from . import _langgraph_layout as lay
from ._langgraph_calls import (
    ListPlan,
    Plan,
    collect_async,
    drive_async,
    drive_sync,
    iter_async,
    iter_sync,
)
from ._langgraph_plans import ThreadPlans
from ._langgraph_upkeep import ChannelBlob

T = TypeVar("T")


class SatchelSaver(ThreadPlans, BaseCheckpointSaver[str]):
    """A LangGraph checkpointer keeping each thread in a satchel session.

    Built on an open runtime: ``SatchelSaver(rt)`` with ``satchel.open_runtime``'s runtime
    (the async methods, on its loop or, through it, on another; the sync ones only from
    other threads, as LangGraph's ``AsyncSqliteSaver``) or with
    ``satchel.sync.open_runtime(..., background=True)``'s (each operation handed to the
    runtime's thread: the sync methods from any thread, the async ones from any other loop;
    ``saver.rt`` is then the async runtime behind it). Or on a runtime of its own:
    ``async with SatchelSaver.from_path(path) as saver`` or
    ``with SatchelSaver.from_path(path) as saver``.

    ``key_prefix`` starts each thread's session key, ``app`` and ``user`` scope the sessions
    (``rt.sessions.list(app="langgraph")``), values serialized to at most ``inline_max``
    bytes stay in the checkpoint's record and larger ones are artifacts.
    """

    def __init__(
        self,
        rt: satchel.Runtime | satchel.sync.SyncRuntime,
        *,
        serde: SerializerProtocol | None = None,
        key_prefix: str = lay.KEY_PREFIX,
        app: str = lay.APP,
        user: str | None = None,
        inline_max: int = lay.INLINE_MAX,
    ) -> None:
        super().__init__(serde=serde)
        self._setup(key_prefix, app, user, inline_max)
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The way in to the runtime's loop in a thread of its own (satchel.sync's background
        #: runtime, `with SatchelSaver.from_path()`), which refuses work once it stopped.
        self._portal: ThreadPortal | None = None
        background = None if isinstance(rt, satchel.Runtime) else background_runtime(rt)
        if background is not None:
            # satchel.sync's loop in a thread of its own: the saver drives each operation
            # there in one hop, as `with SatchelSaver.from_path()` does, rather than hop once
            # a call; its plans then wait for each other there instead of racing.
            rt, self._portal = background
            self._loop = self._portal.loop
        #: The runtime (its async face, also when the saver was given satchel.sync's).
        self.rt = rt
        # The async runtime's methods are coroutine functions; satchel.sync's block.
        self._async = inspect.iscoroutinefunction(rt.sessions.append_events)
        if self._async and self._loop is None:
            with contextlib.suppress(RuntimeError):
                self._loop = asyncio.get_running_loop()

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        store: Literal["rocksdb", "memory"] = "rocksdb",
        serde: SerializerProtocol | None = None,
        **options: Any,
    ) -> SaverOpener:
        """A saver on a runtime of its own over the data folder ``path`` (``None``: satchel's
        default, ``$SATCHEL_DATA`` or ``./.satchel``; ``store="memory"`` keeps nothing;
        ``options`` go to ``open_runtime``, ``durability=`` for one): ``async with`` opens it
        on the running loop, ``with`` on a loop in a thread of its own
        (LangGraph calls a sync checkpointer from several threads)."""
        return SaverOpener(cls, path, store, serde, options)

    # -- running a plan ------------------------------------------------------------------------

    def _sync(self, plan: Plan[T]) -> T:
        if not self._async:
            return drive_sync(self.rt, plan)
        return self._hop(drive_async(self.rt, plan)).result()

    def _on_loop(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the runtime's loop from another thread; its result."""
        return self._hop(work).result()

    def _hop(self, work: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """``work`` started on the runtime's loop from another thread or loop."""
        try:
            loop = self._other_loop()
            if self._portal is not None:
                return self._portal.start(work)
            return asyncio.run_coroutine_threadsafe(work, loop)
        except BaseException:
            work.close()  # never awaited: no warning about it
            raise

    async def _hopped(self, work: Coroutine[Any, Any, T]) -> T:
        """``work`` run on the runtime's loop, awaited from another loop (asyncio's, or a
        Trio caller's through a worker thread)."""
        if sniffio.current_async_library() == "asyncio":
            return await asyncio.wrap_future(self._hop(work))
        return await anyio.to_thread.run_sync(self._on_loop, work)

    async def _await(self, plan: Plan[T]) -> T:
        if not self._async:
            return await anyio.to_thread.run_sync(drive_sync, self.rt, plan)
        if self._on_runtime_loop():
            return await drive_async(self.rt, plan)
        # Called from another loop (a saver of `with SatchelSaver.from_path()`): one hop.
        return await self._hopped(drive_async(self.rt, plan))

    def _sync_iter(self, plan: ListPlan) -> Iterator[CheckpointTuple]:
        if not self._async:
            return iter_sync(self.rt, plan)
        return iter(self._hop(collect_async(self.rt, plan)).result())

    async def _async_iter(self, plan: ListPlan) -> AsyncIterator[CheckpointTuple]:
        if self._async and self._on_runtime_loop():
            async for item in iter_async(self.rt, plan):
                yield item
            return
        if self._async:
            items = await self._hopped(collect_async(self.rt, plan))
        else:
            items = await anyio.to_thread.run_sync(lambda: list(iter_sync(self.rt, plan)))
        for item in items:
            yield item

    def _on_runtime_loop(self) -> bool:
        """Whether this runs on the runtime's loop (taken as the first one seen if the saver
        was made outside any)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return False  # a Trio caller: the runtime's loop is asyncio's, elsewhere
        if self._portal is None and (self._loop is None or self._loop.is_closed()):
            self._loop = running
        return running is self._loop

    def _other_loop(self) -> asyncio.AbstractEventLoop:
        """The runtime's loop, for a sync call made from another thread."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is not None and self._loop.is_closed():
            raise satchel.RuntimeClosedError("the runtime is closed")
        if self._loop is None or running is self._loop:
            raise asyncio.InvalidStateError(
                "this SatchelSaver is on an async satchel runtime: use its async methods "
                "(graph.ainvoke, await saver.aget_tuple(...)) on that runtime's loop; its sync "
                "methods work only from other threads. For sync code open it with "
                "`with SatchelSaver.from_path(...)`."
            )
        return self._loop

    # -- BaseCheckpointSaver: sync -------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._sync(self._get_tuple_plan(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        return self._sync_iter(self._list_plan(config, filter, before, limit))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        if self._async:  # on the runtime's loop, as aput (its one-append path)
            put = self.aput(config, checkpoint, metadata, new_versions)
            return self._on_loop(put)
        return drive_sync(self.rt, self._put_plan(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if self._async:
            self._on_loop(self.aput_writes(config, writes, task_id, task_path))
            return
        drive_sync(self.rt, self._put_writes_plan(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._sync(self._delete_thread_plan(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._sync(self._delete_for_runs_plan(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._sync(self._copy_thread_plan(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._sync(self._prune_plan(thread_ids, strategy))

    # -- BaseCheckpointSaver: async ------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._await(self._get_tuple_plan(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        async for item in self._async_iter(self._list_plan(config, filter, before, limit)):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        if not (self._async and self._on_runtime_loop()):
            return await self._await(self._put_plan(config, checkpoint, metadata, new_versions))
        # The common put is one append, awaited here; anything else runs the put's plan.
        job = self._put_job(config, checkpoint, metadata, new_versions)
        ready = self._put_at_once(job)
        if ready is not None:
            view, full, state = ready
            pos = await self._append_at_once(job.key, job.event, state, view)
            if pos is not None:
                return self._put_landed(job, view, pos, full, state)
        return await drive_async(self.rt, self._put_job_plan(job))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if not (self._async and self._on_runtime_loop()):
            await self._await(self._put_writes_plan(config, writes, task_id, task_path))
            return
        # As aput: the common put_writes is one append awaited here.
        job = self._writes_job(config, writes, task_id, task_path)
        ready = self._writes_at_once(job)
        if ready is not None:
            view, state, event = ready
            pos = await self._append_at_once(job.key, event, state, view)
            if pos is not None:
                self._writes_landed(job, pos, state)
                return
        await drive_async(self.rt, self._writes_plan(job))

    async def adelete_thread(self, thread_id: str) -> None:
        await self._await(self._delete_thread_plan(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._await(self._delete_for_runs_plan(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._await(self._copy_thread_plan(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._await(self._prune_plan(thread_ids, strategy))

    # -- versions ------------------------------------------------------------------------------

    def get_next_version(self, current: str | None, channel: None) -> str:
        """As LangGraph's SQLite and Postgres savers: a 32-digit counter and a random fraction,
        so two branches of a thread (time travel) never give a channel the same version;
        values are stored by ``(namespace, channel, version)``."""
        current_v = 0 if current is None else int(str(current).split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # -- satchel extras ------------------------------------------------------------------------

    async def stored_channel_blobs(self, thread_id: str) -> builtins.list[ChannelBlob]:
        """The channel values of ``thread_id`` kept as artifacts (one per channel version)."""
        return await self._await(self._blobs_plan(thread_id))

    async def collect_garbage(self, thread_id: str) -> int:
        """Delete the value artifacts of ``thread_id`` that no checkpoint or write names (left
        by a process stopped between storing a value and its record); how many went."""
        return await self._await(self._gc_plan(thread_id))


class SaverOpener:
    """``SatchelSaver.from_path(...)``: an ``async with`` or a ``with`` context."""

    def __init__(
        self,
        cls: type[SatchelSaver],
        path: str | os.PathLike[str] | None,
        store: str,
        serde: SerializerProtocol | None,
        options: dict[str, Any],
    ) -> None:
        self._cls = cls
        self._path = path
        self._options = {"store": store, **options}
        self._serde = serde
        self._async_stack: contextlib.AsyncExitStack | None = None
        self._stack: contextlib.ExitStack | None = None

    async def __aenter__(self) -> SatchelSaver:
        stack = contextlib.AsyncExitStack()
        rt = await stack.enter_async_context(satchel.open_runtime(self._path, **self._options))
        self._async_stack = stack
        return self._cls(rt, serde=self._serde)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._async_stack is not None
        stack, self._async_stack = self._async_stack, None
        return await stack.__aexit__(kind, error, tb)

    def __enter__(self) -> SatchelSaver:
        # The runtime runs in a loop of its own thread, as satchel.sync.open_runtime(path,
        # background=True) runs it; the saver drives each operation there in one hop (the
        # sync facade would hop once per runtime call).
        with contextlib.ExitStack() as stack:
            portal = stack.enter_context(start_blocking_portal("asyncio"))
            opened = satchel.open_runtime(self._path, **self._options)
            rt = stack.enter_context(portal.wrap_async_context_manager(opened))
            saver = portal.call(self._made, rt)
            # Work handed in through the portal, which refuses it once the loop stopped: a
            # coroutine handed to a stopped loop would never run, and its caller never return.
            saver._portal = ThreadPortal(portal, portal.call(asyncio.get_running_loop))
            stack.callback(saver._portal.close)
            self._stack = stack.pop_all()
        return saver

    async def _made(self, rt: satchel.Runtime) -> SatchelSaver:
        return self._cls(rt, serde=self._serde)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._stack is not None
        stack, self._stack = self._stack, None
        return stack.__exit__(kind, error, tb)
