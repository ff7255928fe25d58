"""A cooperative budget: how often a task that runs lent turns yields to the scheduler.

Every ask is a cancellation point. A queued ask is also a schedule point (the asker waits for
the actor's task); a lent turn runs in the asker's task and need not be. A scheduler pass
right after a turn that wrote to the store costs ~10 µs here (a bare pass ~4 µs: the turn
leaves the caches cold), a quarter of a state update, so a task yields once per
``LENT_TURNS_PER_YIELD`` lent turns and otherwise only checks for cancellation — as Tokio's
cooperative budget does. A task asking in a loop still lets the others run every few hundred
microseconds.

A task's budget starts full: its first lent turns need no yield either. A host that starts a
task per call (LangGraph runs each checkpoint write in one) would otherwise see every call's
task parked in a yield after its answer, its work done but its caller's code after the
``await`` not yet run.
"""

from __future__ import annotations

import contextvars
from typing import final

from ._native import Native

#: Lent turns a task may run back to back before it yields to the scheduler.
LENT_TURNS_PER_YIELD = 16


@final
class _Budget:
    # The task's id, not the task: the budget lives in the task's context, which the task
    # holds, and a reference back made every task that ran a lent turn a cycle that only
    # the garbage collector freed (a server's request tasks, one each).
    __slots__ = ("left", "task_id")

    def __init__(self, task: object) -> None:
        self.task_id = id(task)
        self.left = LENT_TURNS_PER_YIELD - 1  # its LENT_TURNS_PER_YIELD-th turn yields


# A child task starts with a copy of its parent's context, hence the task check.
_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "satchel_lent_budget", default=None
)


async def cooperate(native: Native) -> None:
    """Raise ``Cancelled`` if the task is cancelled; yield to the scheduler if its budget
    of lent turns is spent (once every ``LENT_TURNS_PER_YIELD`` turns of a task)."""
    task = native.current_task()
    budget = _BUDGET.get()
    if budget is None or budget.task_id != id(task):
        budget = _Budget(task)
        _BUDGET.set(budget)
    if budget.left:
        budget.left -= 1
        await native.checkpoint_if_cancelled()
        return
    budget.left = LENT_TURNS_PER_YIELD - 1
    await native.checkpoint()
