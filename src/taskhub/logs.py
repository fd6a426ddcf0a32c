"""Logging: readable lines in development, one JSON object per line elsewhere."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from taskhub.config import Settings
from taskhub.context import current_request_id

# Attributes every LogRecord has; anything else was passed in `extra=` and is worth printing.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


# Libraries whose DEBUG lines print every SQL call with its parameters, password hashes among
# them (aiosqlite logs each call's arguments). They never go below INFO, whatever LOG_LEVEL says.
PARAMETER_LOGGERS = ("aiosqlite",)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": current_request_id(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s%(extras)s"
        )

    def format(self, record: logging.LogRecord) -> str:
        # The access line passes its own (it is written after the request's context has ended).
        record.request_id = getattr(record, "request_id", None) or current_request_id()
        extras = {
            k: v
            for k, v in vars(record).items()
            if k not in _STANDARD_ATTRS | {"request_id", "extras"}
        }
        record.extras = "".join(f" {k}={v}" for k, v in extras.items())
        return super().format(record)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.LOG_LEVEL)
    for name in PARAMETER_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
