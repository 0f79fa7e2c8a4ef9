"""Micro-batching: calls made during one event-loop iteration share one call of the batch function."""

from __future__ import annotations

import asyncio

import pytest

from scoring.batching import MicroBatcher


def test_concurrent_calls_share_one_batch_and_each_gets_its_own_result():
    batches = []

    def square_all(items):
        batches.append(list(items))
        return [x * x for x in items]

    async def main():
        batcher = MicroBatcher(square_all)
        together = await asyncio.gather(*(batcher.submit(x) for x in range(10)))
        alone = await batcher.submit(12)
        return batcher, together, alone

    batcher, together, alone = asyncio.run(main())
    assert together == [x * x for x in range(10)] and alone == 144
    assert batches == [list(range(10)), [12]]
    assert (batcher.calls, batcher.items) == (2, 11)


def test_batches_are_capped_at_max_batch():
    sizes = []

    async def main():
        batcher = MicroBatcher(lambda items: sizes.append(len(items)) or list(items), max_batch=4)
        return await asyncio.gather(*(batcher.submit(x) for x in range(10)))

    assert asyncio.run(main()) == list(range(10))
    assert sizes == [4, 4, 2]


def test_an_error_reaches_every_caller_of_the_batch_and_the_next_batch_works():
    calls = []

    def fail_first(items):
        calls.append(len(items))
        if len(calls) == 1:
            raise OSError("disk full")
        return list(items)

    async def main():
        batcher = MicroBatcher(fail_first)
        results = await asyncio.gather(*(batcher.submit(x) for x in range(3)), return_exceptions=True)
        return results, await batcher.submit("next")

    results, after = asyncio.run(main())
    assert all(isinstance(r, OSError) and "disk full" in str(r) for r in results)
    assert after == "next" and calls == [3, 1]


def test_a_wrong_number_of_results_is_an_error_not_a_silent_mismatch():
    async def main():
        batcher = MicroBatcher(lambda items: list(items)[:1])
        return await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) and "1 results for 2 items" in str(r) for r in results)


def test_a_cancelled_caller_does_not_break_the_others():
    async def main():
        batcher = MicroBatcher(lambda items: [x + 1 for x in items])
        first = asyncio.ensure_future(batcher.submit(1))
        second = asyncio.ensure_future(batcher.submit(2))
        await asyncio.sleep(0)  # both queued
        first.cancel()
        return await asyncio.wait_for(second, 5), first.cancelled()  # a hang would be a failure, not a stuck run

    assert asyncio.run(main()) == (3, True)


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(list, max_batch=0)


def test_with_an_executor_the_batch_runs_off_the_event_loop_and_the_loop_stays_free():
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    threads = []

    def slow_io(items):
        threads.append(threading.current_thread().name)
        time.sleep(0.2)
        return [x * 10 for x in items]

    io, other = ThreadPoolExecutor(1, thread_name_prefix="io"), ThreadPoolExecutor(1)

    async def main():
        batcher = MicroBatcher(slow_io, executor=io)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick = asyncio.ensure_future(ticker())
        results = await asyncio.gather(*(batcher.submit(x) for x in range(3)))
        failing = MicroBatcher(lambda items: 1 / 0, executor=other)
        error = await asyncio.gather(failing.submit(1), return_exceptions=True)
        tick.cancel()
        return results, ticks, error

    results, ticks, error = asyncio.run(main())
    io.shutdown(), other.shutdown()
    assert results == [0, 10, 20] and threads[0].startswith("io")
    assert ticks >= 5  # the loop kept running while the batch slept on its thread
    assert isinstance(error[0], ZeroDivisionError)


def test_with_an_executor_what_arrives_during_a_call_forms_the_next_batch():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    batches, started, release = [], threading.Event(), threading.Event()

    def commit(items):
        batches.append(list(items))
        if len(batches) == 1:
            started.set()
            release.wait(5)
        return list(items)

    pool = ThreadPoolExecutor(2)

    async def main():
        batcher = MicroBatcher(commit, executor=pool)
        first = asyncio.ensure_future(batcher.submit("a"))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)  # "a" is being committed
        later = []
        for x in "bcd":  # in separate loop iterations while the first call runs
            later.append(asyncio.ensure_future(batcher.submit(x)))
            await asyncio.sleep(0.02)
        release.set()
        return await asyncio.wait_for(asyncio.gather(first, *later), 5)

    assert asyncio.run(main()) == ["a", "b", "c", "d"]
    pool.shutdown()
    assert batches == [["a"], ["b", "c", "d"]]  # one call at a time, the waiting items together
