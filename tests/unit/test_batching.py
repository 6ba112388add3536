"""The generic batcher, with plain lists: no database, no network."""

import asyncio
from collections.abc import Sequence

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from app.batching import Batcher, BatcherClosed
from app.errors import OutcomeUnknown
from app.observability.metrics import BATCH_SIZE


class Recorder:
    """A batch function that records each batch and doubles every item (or fails on demand)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.failures: list[BaseException] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        return [ValueError(f"bad {item}") if item < 0 else item * 2 for item in items]


def _deadlock() -> sa_exc.DBAPIError:
    orig = asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
    return sa_exc.DBAPIError("UPDATE", None, orig)


async def test_idle_batcher_runs_a_batch_of_one_at_once() -> None:
    run = Recorder()
    batcher = Batcher("t", run, max_size=8)
    assert await batcher.submit(3) == 6
    assert run.batches == [[3]]


async def test_members_arriving_while_a_batch_runs_form_the_next_batch_in_order() -> None:
    run = Recorder()
    batcher = Batcher("t", run, max_size=3)
    run.gate.clear()
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)  # the first batch starts with one member and waits at the gate
    rest = [asyncio.create_task(batcher.submit(n)) for n in range(2, 7)]
    await asyncio.sleep(0)
    run.gate.set()
    assert await first == 2
    assert [await task for task in rest] == [4, 6, 8, 10, 12]
    # One at a time, at most max_size each, arrival order kept.
    assert run.batches == [[1], [2, 3, 4], [5, 6]]


async def test_one_members_error_reaches_only_that_member() -> None:
    run = Recorder()
    batcher = Batcher("t", run, max_size=8)
    results = await asyncio.gather(
        batcher.submit(1), batcher.submit(-1), batcher.submit(2), return_exceptions=True
    )
    assert results[0] == 2 and results[2] == 4
    assert isinstance(results[1], ValueError)
    assert run.batches == [[1, -1, 2]]


async def test_a_deadlocked_batch_is_retried_whole() -> None:
    run = Recorder()
    run.failures = [_deadlock()]
    batcher = Batcher("t", run, max_size=8)
    assert await asyncio.gather(batcher.submit(1), batcher.submit(2)) == [2, 4]
    assert run.batches == [[1, 2], [1, 2]]


async def test_retries_are_bounded() -> None:
    run = Recorder()
    run.failures = [_deadlock() for _ in range(5)]
    batcher = Batcher("t", run, max_size=8, attempts=3)
    with pytest.raises(sa_exc.DBAPIError):
        await batcher.submit(1)
    assert len(run.batches) == 3


async def test_a_lost_link_gives_every_member_outcome_unknown() -> None:
    run = Recorder()
    run.failures = [ConnectionResetError("reset by peer")]
    batcher = Batcher("t", run, max_size=8)
    results = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
    assert all(isinstance(result, OutcomeUnknown) for result in results)
    assert len(run.batches) == 1  # never retried: the first attempt may have committed


async def test_other_batch_errors_reach_every_member_and_the_next_batch_runs() -> None:
    run = Recorder()
    run.failures = [RuntimeError("boom")]
    batcher = Batcher("t", run, max_size=8)
    with pytest.raises(RuntimeError):
        await batcher.submit(1)
    assert await batcher.submit(5) == 10


async def test_aclose_drains_queued_members_then_refuses_new_ones() -> None:
    run = Recorder()
    batcher = Batcher("t", run, max_size=2)
    run.gate.clear()
    tasks = [asyncio.create_task(batcher.submit(n)) for n in range(1, 6)]
    await asyncio.sleep(0)
    closing = asyncio.create_task(batcher.aclose())
    await asyncio.sleep(0)
    run.gate.set()
    await closing
    assert all(task.done() for task in tasks)
    assert [task.result() for task in tasks] == [2, 4, 6, 8, 10]
    with pytest.raises(BatcherClosed):
        await batcher.submit(1)


async def test_a_cancelled_member_leaves_its_batch_running() -> None:
    run = Recorder()
    batcher = Batcher("t", run, max_size=8)
    run.gate.clear()
    cancelled = asyncio.create_task(batcher.submit(1))
    kept = asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0)
    cancelled.cancel()
    run.gate.set()
    assert await kept == 4
    assert run.batches == [[1, 2]]


async def test_batch_sizes_are_recorded_per_batcher() -> None:
    def observed() -> float:
        return BATCH_SIZE.labels(batcher="sized")._sum.get()  # type: ignore[attr-defined]

    before = observed()
    run = Recorder()
    batcher = Batcher("sized", run, max_size=8)
    await asyncio.gather(*(batcher.submit(n) for n in range(3)))
    assert observed() - before == 3
