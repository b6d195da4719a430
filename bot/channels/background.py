"""Tasks a channel starts and does not await at once (a fan's turn, a callback answer, a send).

asyncio keeps only a weak reference to a running task: one nobody holds can be collected
mid-flight. :class:`BackgroundTasks` holds each until it finishes, and lets ``stop()`` wait
for what is still running (iterate it, or test it for emptiness).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def start(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        """Run ``coro`` on the running loop, held until it is done."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __iter__(self) -> Iterator[asyncio.Task]:
        return iter(list(self._tasks))

    def __len__(self) -> int:
        return len(self._tasks)
