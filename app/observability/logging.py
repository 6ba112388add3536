"""Structured logs: one JSON object per line on stdout, tagged with the current request id."""

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

# Set by RequestIdMiddleware for the duration of a request, so any line logged while serving
# it (a warning deep in the settlement client, a money event) carries the id.
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)

# Our loggers all live under "app" (app.access, app.money, app.errors, ...).
APP_LOGGER = "app"
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
}


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", "request_id", ...fields}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id.get()
        if request_id:
            line["request_id"] = request_id
        # Anything passed as `extra=` becomes a field of its own.
        line.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


class StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stdout is at the moment (test runners swap it per test)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    """Send the app's loggers to stdout as JSON; idempotent (both apps and tests call it)."""
    logger = logging.getLogger(APP_LOGGER)
    logger.setLevel(level)
    if not any(isinstance(h, StdoutHandler) for h in logger.handlers):
        handler = StdoutHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
