"""One JSON object per log line, so log pipelines parse authswitch without regexes."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"color_message", "message"}


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON; structured fields come from `extra={...}`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type only: messages and tracebacks can carry request data.
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure_logging(level: str) -> None:
    """Route authswitch's and uvicorn's loggers to JSON lines on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # uvicorn's access log prints query strings (OIDC code and state): never enable it.
    logging.getLogger("uvicorn.access").disabled = True
