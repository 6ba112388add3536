"""One audit check: a query that returns one row per violation (a text column `violation`)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    description: str
    sql: str
