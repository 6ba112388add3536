"""One process's money path: its engine and the two batchers that share its transactions."""

from dataclasses import dataclass
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine

from app.batching import Batcher
from app.config import Settings
from app.withdrawals.decide import ReserveRequest
from app.withdrawals.finish import Finish, FinishRequest, finish_batch
from app.withdrawals.reserve import ReserveResult, reserve_batch


@dataclass(frozen=True)
class MoneyPath:
    engine: AsyncEngine
    reserver: Batcher[ReserveRequest, ReserveResult]
    finisher: Batcher[FinishRequest, Finish]

    async def aclose(self) -> None:
        """Drain both batchers (shutdown): every queued member gets its answer."""
        await self.reserver.aclose()
        await self.finisher.aclose()


def create_money_path(engine: AsyncEngine, settings: Settings) -> MoneyPath:
    return MoneyPath(
        engine=engine,
        reserver=Batcher("reserve", partial(reserve_batch, engine), max_size=settings.BATCH_MAX),
        finisher=Batcher("finish", partial(finish_batch, engine), max_size=settings.BATCH_MAX),
    )
