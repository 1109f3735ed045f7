"""One JSON object per log line, written off the event loop.

Log pipelines parse the lines without regexes. The per-callback access line was a sixth of a
redirect's CPU time when each line was its own write(2) on the event loop, so lines are
buffered and written by a background thread; warnings, errors and server lifecycle lines are
written at once, and the buffer is flushed when the app shuts down.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any, TextIO

_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"color_message", "message"}
# What `json.dumps(..., default=str, separators=(",", ":"))` builds on every call, built once.
_ENCODE = json.JSONEncoder(default=str, separators=(",", ":")).encode


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON; structured fields come from `extra={"fields": {...}}` (or
    from other `extra` keys)."""

    _second = -1
    _second_text = ""

    def _timestamp(self, created: float) -> str:
        # strftime once per second, not per line: most lines share their second.
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        return _ENCODE(self.entry(record))

    def fields_line(self, logger: str, level: str, event: str, fields: dict[str, Any]) -> str:
        """The line `format` writes for a record of `logger` at `level` (lower case) with
        `extra={"fields": fields}`, made now without a LogRecord: the access line's path."""
        return _ENCODE(self._fields_entry(time.time(), level, logger, event, fields))

    def _fields_entry(
        self, created: float, level: str, logger: str, event: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "ts": self._timestamp(created),
            "level": level,
            "logger": logger,
            "event": event,
        }
        entry.update(fields)
        return entry

    def entry(self, record: logging.LogRecord) -> dict[str, Any]:
        """The line's fields, before they are written."""
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = record.__dict__.get("fields")
        if isinstance(fields, dict):
            entry.update(fields)
        else:
            for key, value in vars(record).items():
                if key not in _RESERVED and not key.startswith("_"):
                    entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type only: messages and tracebacks can carry request data.
            entry["exception"] = record.exc_info[0].__name__
        return entry


# Elastic Common Schema names for the fields authswitch writes (ecs-logging's JSON layout:
# dotted keys); a field without an ECS name goes under `authswitch.`.
ECS_VERSION = "8.11.0"
_ECS_NAMES = {
    "ts": "@timestamp",
    "level": "log.level",
    "logger": "log.logger",
    "event": "message",
    "request_id": "http.request.id",
    "trace_id": "trace.id",
    "span_id": "span.id",
    "method": "http.request.method",
    "path": "url.path",
    "status": "http.response.status_code",
    "exception": "error.type",
}


class EcsJsonFormatter(JsonFormatter):
    """The same line with Elastic Common Schema field names (`logging.format: ecs`), so ECS
    pipelines (Elastic, OpenSearch, Datadog's ECS mapping) read it without a custom parser."""

    def entry(self, record: logging.LogRecord) -> dict[str, Any]:
        return _ecs(super().entry(record))

    def _fields_entry(
        self, created: float, level: str, logger: str, event: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        return _ecs(super()._fields_entry(created, level, logger, event, fields))


def _ecs(entry: dict[str, Any]) -> dict[str, Any]:
    ecs: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "duration_ms" and isinstance(value, int | float):
            ecs["event.duration"] = int(value * 1_000_000)  # ECS: nanoseconds
        else:
            ecs[_ECS_NAMES.get(key, f"authswitch.{key}")] = value
    ecs["ecs.version"] = ECS_VERSION
    return ecs


class BufferedLineHandler(logging.Handler):
    """Appends formatted lines to a buffer that a daemon thread writes every `interval` s."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 0.2) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self._interval = interval
        self._lines: list[str] = []
        self._buffer_lock = threading.Lock()
        self._wake = threading.Event()
        # Started by the first buffered line: a handler that is configured and then replaced
        # (the serve command configures logging before and after forking workers) or that only
        # sees lines written at once never needs one.
        self._writer: threading.Thread | None = None
        self._closed = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.add_line(
            line, urgent=record.levelno >= logging.WARNING or record.name.startswith("uvicorn")
        )

    def add_line(self, line: str, *, urgent: bool = False) -> None:
        """Buffer a formatted line (written at once when `urgent`)."""
        with self._buffer_lock:
            self._lines.append(line)
            pending = len(self._lines)
            if self._closed:
                urgent = True  # no writer thread any more: written at once
            elif self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_loop, name="log-writer", daemon=True
                )
                self._writer.start()
        if urgent:
            self.flush()
        elif pending >= 1024:
            self._wake.set()

    def flush(self) -> None:
        with self._buffer_lock:
            lines, self._lines = self._lines, []
        if lines:
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass  # stderr closed at exit: nothing left to tell

    def close(self) -> None:
        """Write what is buffered and end the writer thread (a replaced handler keeps none)."""
        with self._buffer_lock:
            writer, self._writer = self._writer, None
            self._closed = True
        self.flush()
        if writer is not None:
            self._wake.set()
            writer.join(timeout=1.0)
        super().close()

    def _write_loop(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()


def direct_sink(logger: logging.Logger) -> tuple[BufferedLineHandler, JsonFormatter] | None:
    """The handler and formatter an INFO record of `logger` would reach, when that is exactly
    what `configure_logging` set up: one buffered JSON handler on the root, no filter, no other
    handler on the way. Then a line can be formatted and buffered without a LogRecord and
    come out the same; anything else (a test's handler, a filter) gets None: use `logging`."""
    if logger.filters or logger.handlers or not logger.propagate:
        return None
    parent = logger.parent
    while parent is not None and parent.parent is not None:  # up to the root
        if parent.handlers or not parent.propagate:
            return None
        parent = parent.parent
    if parent is None or parent.filters or len(parent.handlers) != 1:
        return None
    handler = parent.handlers[0]
    formatter = handler.formatter
    if (
        type(handler) is not BufferedLineHandler
        or handler.filters
        or handler.level > logging.INFO
        or not isinstance(formatter, JsonFormatter)
    ):
        return None
    return handler, formatter


def flush_logs() -> None:
    """Write out whatever the root handlers still buffer (called on shutdown)."""
    for handler in logging.getLogger().handlers:
        handler.flush()


def configure_logging(level: str, log_format: str = "authswitch") -> None:
    """Route authswitch's and uvicorn's loggers to JSON lines on stderr (field names:
    authswitch's own, or ECS with `log_format` "ecs")."""
    handler = BufferedLineHandler()
    handler.setFormatter(EcsJsonFormatter() if log_format == "ecs" else JsonFormatter())
    root = logging.getLogger()
    replaced, root.handlers[:] = root.handlers[:], [handler]
    for old in replaced:
        old.close()  # `serve` configures twice in a one-worker process: one writer thread left
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # uvicorn's access log prints query strings (OIDC code and state): never enable it. Not
    # propagating either: uvicorn builds each line's arguments whenever the logger has a
    # handler up its chain, even a disabled one (`hasHandlers()`, asked per connection).
    access = logging.getLogger("uvicorn.access")
    access.disabled = True
    access.propagate = False
