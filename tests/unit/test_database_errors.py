"""Which database errors mean "nothing changed" and which leave the outcome unknown."""

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from app.errors import OutcomeUnknown, is_link_lost, is_transient_database_error, money_statement

ROLLED_BACK = [
    asyncpg.exceptions.QueryCanceledError(),  # 57014, statement timeout
    asyncpg.exceptions.SerializationError(),  # 40001
    asyncpg.exceptions.DeadlockDetectedError(),  # 40P01
    asyncpg.exceptions.LockNotAvailableError(),  # 55P03
    asyncpg.exceptions.TooManyConnectionsError(),  # 53300
]
LINK_LOST = [
    asyncpg.exceptions.ConnectionDoesNotExistError(),  # 08003
    asyncpg.exceptions.ConnectionFailureError(),  # 08006
    asyncpg.exceptions.AdminShutdownError(),  # 57P01
    asyncpg.exceptions.CrashShutdownError(),  # 57P02
    asyncpg.exceptions.CannotConnectNowError(),  # 57P03
    asyncpg.InterfaceError("connection is closed"),
    ConnectionResetError(),
    sa_exc.DBAPIError("SELECT 1", None, asyncpg.exceptions.AdminShutdownError()),
]


@pytest.mark.parametrize("error", ROLLED_BACK, ids=type)
def test_rolled_back_errors_are_transient_but_not_a_lost_link(error: Exception) -> None:
    assert is_transient_database_error(error)
    assert not is_link_lost(error)


@pytest.mark.parametrize("error", LINK_LOST, ids=type)
def test_lost_links_and_shutdowns_are_a_lost_link(error: Exception) -> None:
    assert is_transient_database_error(error)
    assert is_link_lost(error)


@pytest.mark.parametrize("error", LINK_LOST, ids=type)
async def test_a_money_statement_that_lost_its_link_is_outcome_unknown(error: Exception) -> None:
    with pytest.raises(OutcomeUnknown) as raised:
        async with money_statement():
            raise error
    assert raised.value.status == 503
    assert raised.value.code == "OUTCOME_UNKNOWN"
    assert "same Idempotency-Key" in raised.value.detail


@pytest.mark.parametrize("error", ROLLED_BACK, ids=type)
async def test_a_money_statement_rolled_back_keeps_its_error(error: Exception) -> None:
    with pytest.raises(type(error)):
        async with money_statement():
            raise error


def test_a_constraint_violation_is_neither() -> None:
    error = asyncpg.exceptions.UniqueViolationError()
    assert not is_transient_database_error(error)
    assert not is_link_lost(error)
