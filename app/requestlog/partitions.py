"""api_request_log's daily partitions (UTC days, migration 0008): tomorrow's is made ahead,
those past REQUEST_LOG_RETENTION_DAYS are dropped whole, so the table stays bounded without
deleting rows. Run by the worker (workers/jobs.py) and safe to run any number of times."""

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

PARENT = "api_request_log"
_NAME = re.compile(rf"^{PARENT}_p(\d{{8}})$")


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def partition_day(name: str) -> date | None:
    """The day a partition holds, from its name; None for any other table."""
    match = _NAME.match(name)
    return datetime.strptime(match.group(1), "%Y%m%d").date() if match else None


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Alembic's filter when it compares the models with the database: the daily partitions
    are made at run time, by no model."""
    return not (type_ == "table" and name is not None and partition_day(name) is not None)


@dataclass(frozen=True, slots=True)
class Maintenance:
    created: list[str]
    dropped: list[str]


async def existing(conn: AsyncConnection) -> list[str]:
    result = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = CAST(:parent AS regclass) ORDER BY c.relname"
        ),
        {"parent": PARENT},
    )
    return list(result.scalars())


async def maintain(conn: AsyncConnection, *, today: date, retention_days: int) -> Maintenance:
    """Create today's and tomorrow's partitions if missing; drop days older than retention.

    The owner's function does it (migration 0009): only a table's owner may add or drop its
    partitions, and the worker runs as the api role. Each DDL statement locks the parent
    table briefly (the request-log writer waits, its rows stay buffered); the caller runs it
    in one short transaction.
    """
    result = await conn.execute(
        text("SELECT change, partition_name FROM maintain_request_log_partitions(:today, :days)"),
        {"today": today, "days": retention_days},
    )
    changes = result.all()
    return Maintenance(
        created=[name for change, name in changes if change == "created"],
        dropped=[name for change, name in changes if change == "dropped"],
    )
