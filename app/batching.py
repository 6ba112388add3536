"""Smart batching (group commit): concurrent callers share one transaction's fixed cost.

`await batcher.submit(item)` returns that item's own result. One batch runs at a time per
batcher; whatever is submitted meanwhile forms the next batch (up to `max_size`). There is no
timer: an idle batcher runs a batch of one at once, a busy one runs big batches.

The batch function gets the items in arrival order and returns one result per item; a result
that is an exception is raised to that member only. When the whole batch fails:
- a retryable database error (serialization failure, deadlock, lock not available) rolled
  everything back, so the batch runs again (a few times);
- a lost link may have committed, so every member gets OutcomeUnknown;
- anything else is raised to every member (nothing was committed).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from app.errors import (
    OutcomeUnknown,
    ServiceUnavailable,
    is_link_lost,
    is_retryable_database_error,
)
from app.observability.metrics import BATCH_SIZE

logger = logging.getLogger("app.batching")

T = TypeVar("T")
R = TypeVar("R")

BatchFunction = Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]]


class BatcherClosed(ServiceUnavailable):
    """submit() after aclose(): the process is shutting down and the item never ran."""

    code, title = "SHUTTING_DOWN", "Shutting down"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": "1"})
        super().__init__(detail, **kwargs)


@dataclass
class _Member(Generic[T, R]):
    item: T
    future: "asyncio.Future[R]"


class Batcher(Generic[T, R]):
    def __init__(
        self, name: str, run: BatchFunction[T, R], *, max_size: int, attempts: int = 3
    ) -> None:
        assert max_size >= 1 and attempts >= 1
        self.name = name
        self._run = run
        self._max_size = max_size
        self._attempts = attempts
        self._waiting: list[_Member[T, R]] = []
        self._runner: asyncio.Task[None] | None = None
        self._closed = False

    async def submit(self, item: T) -> R:
        """Run `item` in the next batch and return its result (or raise its error)."""
        if self._closed:
            raise BatcherClosed(
                f"this process is shutting down ({self.name} is closed); nothing was changed, retry"
            )
        member: _Member[T, R] = _Member(item, asyncio.get_running_loop().create_future())
        self._waiting.append(member)
        if self._runner is None:
            self._runner = asyncio.create_task(self._drain(), name=f"batcher:{self.name}")
        # A member that stops waiting (its request was cancelled) leaves its batch running:
        # the shield keeps the cancellation from reaching the future others share nothing with.
        return await asyncio.shield(member.future)

    async def aclose(self) -> None:
        """Take no new members and wait until every queued one has its answer."""
        self._closed = True
        if self._runner is not None:
            await asyncio.shield(self._runner)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_size]
                del self._waiting[: self._max_size]
                await self._run_batch(batch)
        finally:
            self._runner = None

    async def _run_batch(self, batch: list[_Member[T, R]]) -> None:
        BATCH_SIZE.labels(batcher=self.name).observe(len(batch))
        items = [member.item for member in batch]
        for attempt in range(1, self._attempts + 1):
            try:
                results = await self._run(items)
            except Exception as exc:  # every member gets an answer
                if is_retryable_database_error(exc) and attempt < self._attempts:
                    logger.info("%s batch of %d retried: %s", self.name, len(batch), exc)
                    continue
                error: BaseException = OutcomeUnknown() if is_link_lost(exc) else exc
                if error is not exc:
                    error.__cause__ = exc
                for member in batch:
                    _deliver(member, error)
                return
            assert len(results) == len(batch), "one result per member"
            for member, result in zip(batch, results, strict=True):
                _deliver(member, result)
            return


def _deliver(member: "_Member[T, R]", result: "R | BaseException") -> None:
    if member.future.done():
        return
    if isinstance(result, BaseException):
        member.future.set_exception(result)
    else:
        member.future.set_result(result)
