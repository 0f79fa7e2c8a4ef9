"""Micro-batching on an asyncio event loop: the calls made during one loop iteration, served by one call.

Under concurrent load an API server receives several requests at once; each pays fixed costs that
do not depend on the number of items: a PostgreSQL round trip for the audit log. (An SQLite commit is
cheaper than the future and the loop iteration a batch costs: the API commits those in the request.)
`MicroBatcher.submit(item)` queues the item and awaits its result; the first item of a batch
schedules `flush` with `loop.call_soon`, so every request task already runnable in this iteration
joins the batch, and a lone request waits one loop iteration, no timer. The same idea as Triton's
dynamic batching or Ray Serve's `@serve.batch`, with no added delay.

Use from one event loop only (FastAPI `async def` handlers). `fn` runs on that loop, so it must be
fast, or, given an `executor`, on the executor's threads (for I/O such as a network database).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Callable, Generic, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """`await batcher.submit(item)` -> `fn([... item ...])[i]`, one `fn` call per loop iteration.

    With an `executor`, one call at a time: the items submitted while a call runs form the next batch
    (a group commit: the slower the call, the larger the batches)."""

    def __init__(self, fn: Callable[[Sequence[T]], Sequence[R]], max_batch: int = 64,
                 executor: Executor | None = None):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self._fn = fn
        self._executor = executor
        self.max_batch = max_batch
        self._items: list[T] = []
        self._futures: list[asyncio.Future] = []
        self._in_flight = False
        self.calls = 0   # fn calls so far
        self.items = 0   # items served so far (items / calls: the mean batch size)

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._items:
            loop.call_soon(self.flush)
        self._items.append(item)
        self._futures.append(future)
        if len(self._items) >= self.max_batch:
            self.flush()
        return await future

    def flush(self) -> None:
        if not self._items or self._in_flight:  # in flight: flushed when the running call ends
            return
        items, futures = self._items[:self.max_batch], self._futures[:self.max_batch]
        del self._items[:self.max_batch], self._futures[:self.max_batch]
        self.calls += 1
        self.items += len(items)
        if self._executor is None:
            try:
                results = self._fn(items)
            except BaseException as exc:
                _resolve(futures, items, exc=exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                _resolve(futures, items, results)
            if self._items:
                asyncio.get_running_loop().call_soon(self.flush)
            return
        self._in_flight = True
        running = asyncio.get_running_loop().run_in_executor(self._executor, self._fn, items)
        running.add_done_callback(lambda done: self._done(done, futures, items))

    def _done(self, done: asyncio.Future, futures: list[asyncio.Future], items: list) -> None:
        self._in_flight = False
        if done.cancelled():  # e.g. the loop is shutting down
            _resolve(futures, items, exc=asyncio.CancelledError("the batch was cancelled"))
        elif done.exception() is not None:
            _resolve(futures, items, exc=done.exception())
        else:
            _resolve(futures, items, done.result())
        self.flush()


def _resolve(futures: list[asyncio.Future], items: list, results=None, exc: BaseException | None = None) -> None:
    if exc is None and len(results) != len(items):
        exc = RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
    for i, f in enumerate(futures):
        if f.done():  # a cancelled request (client gone) has no one waiting
            continue
        if exc is not None:  # every caller of the batch gets the error
            f.set_exception(exc)
        else:
            f.set_result(results[i])
