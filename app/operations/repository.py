"""SQL for operations: the reconciler's lock."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# Any fixed 64-bit key, the same in every worker ("crecon" in ASCII).
RECONCILER_LOCK_KEY = 0x637265636F6E


async def try_reconciler_lock(conn: AsyncConnection) -> bool:
    """Take the reconciler's lock for the connection's open transaction, if no one holds it.

    Transaction-scoped, not session-scoped: behind a transaction-mode pooler a session lock
    could stay with a server connection another client gets next (and never be released),
    while this one ends with its transaction, however that ends.
    """
    taken = await conn.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RECONCILER_LOCK_KEY}
    )
    return bool(taken)
