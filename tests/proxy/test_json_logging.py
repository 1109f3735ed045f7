"""The JSON log lines: an exception is logged by its type only, never its message."""

from __future__ import annotations

import io
import json
import logging
import threading
import time

import pytest

from proxy.callback.account import _access_line, access_log
from proxy.ops.json_logging import (
    BufferedLineHandler,
    JsonFormatter,
    configure_logging,
    direct_sink,
)


def test_an_exception_is_logged_by_type_without_its_message_or_traceback() -> None:
    stream = io.StringIO()
    handler = BufferedLineHandler(stream, interval=3600)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("authswitch.test-exception-policy")
    logger.addHandler(handler)
    logger.propagate = False
    secret = "SAMLResponse=PHNhbWxwOlJlc3BvbnNlIFNFRUtSSVQ"
    try:
        try:
            raise ValueError(f"could not parse {secret}")
        except ValueError:
            logger.exception("upstream answer unreadable", extra={"fields": {"status": 502}})
        handler.flush()
    finally:
        logger.removeHandler(handler)

    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["exception"] == "ValueError"
    assert entry["event"] == "upstream answer unreadable" and entry["status"] == 502
    assert secret not in line and "PHNhbWxw" not in line
    assert "Traceback" not in line and "could not parse" not in line


def _writers() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "log-writer")


def test_a_handler_starts_its_writer_thread_only_when_a_line_is_buffered() -> None:
    """`authswitch serve` configures logging twice in a one-worker process: the handler it
    replaces must not leave a writer thread behind."""
    stream = io.StringIO()
    before = _writers()
    handler = BufferedLineHandler(stream, interval=0.05)
    handler.setFormatter(JsonFormatter())
    assert _writers() == before
    logger = logging.getLogger("authswitch.test-lazy-writer")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.warning("written at once")
        assert _writers() == before + 1  # a buffered line went through the buffer too
        logger.info("callback", extra={"fields": {"status": 307}})
        assert _writers() == before + 1
        deadline = time.monotonic() + 5
        while "callback" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["written at once", "callback"]
    assert lines[1]["status"] == 307 and lines[1]["ts"].endswith("Z")


@pytest.mark.parametrize("log_format", ["authswitch", "ecs"])
def test_the_direct_access_line_is_the_line_logging_would_write(log_format: str) -> None:
    """With logging as `serve` configures it, access lines skip the LogRecord; they must come
    out exactly as `logging` writes them, in both field layouts (the timestamp aside)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("info", log_format)
    handler = root.handlers[0]
    assert isinstance(handler, BufferedLineHandler)
    stream = io.StringIO()
    handler.stream = stream
    fields: dict[str, object] = {
        "request_id": "0123456789abcdef",
        "trace_id": None,
        "method": "POST",
        "path": "/login/callback",
        "connection": "acme",
        "status": 307,
        "duration_ms": 1.25,
        "note": object(),  # written with str(), as default=str does
    }
    try:
        assert direct_sink(access_log) == (handler, handler.formatter)
        _access_line("callback", fields)
        access_log.info("callback", extra={"fields": fields})
        handler.flush()
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])

    direct, through_logging = (json.loads(line) for line in stream.getvalue().splitlines())
    ts = "@timestamp" if log_format == "ecs" else "ts"
    assert direct.pop(ts).endswith("Z") and through_logging.pop(ts).endswith("Z")
    assert direct == through_logging
    assert list(direct) == list(through_logging)  # the same order of fields too


def test_access_lines_go_through_logging_when_anything_else_listens() -> None:
    """A handler or filter added on the way (a test's capture, an operator's filter) sees
    every access line: the direct path steps aside."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("info")
    root.handlers[0].stream = io.StringIO()  # type: ignore[attr-defined]
    seen: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    capture = Capture()
    try:
        access_log.addHandler(capture)
        assert direct_sink(access_log) is None
        _access_line("callback", {"status": 200})
        access_log.removeHandler(capture)
        root.addHandler(capture)
        assert direct_sink(access_log) is None
        _access_line("callback", {"status": 201})
        root.removeHandler(capture)
        access_log.addFilter(lambda record: True)
        assert direct_sink(access_log) is None
    finally:
        access_log.removeHandler(capture)
        access_log.filters.clear()
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    assert [record.__dict__["fields"]["status"] for record in seen] == [200, 201]


def test_reconfiguring_logging_leaves_one_writer_thread() -> None:
    """`serve` configures logging in the supervisor and again in the worker, and a one-worker
    process is both: the replaced handler writes what it buffered and ends its thread."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    before = _writers()
    try:
        configure_logging("info")
        first = root.handlers[0]
        assert isinstance(first, BufferedLineHandler)
        first_stream = first.stream = io.StringIO()
        logging.getLogger("authswitch.test-reconfigure").info("before the worker's setup")
        assert _writers() == before + 1
        configure_logging("info")
        second = root.handlers[0]
        assert isinstance(second, BufferedLineHandler)
        second.stream = io.StringIO()
        logging.getLogger("authswitch.test-reconfigure").info("after it")
        deadline = time.monotonic() + 5
        while _writers() != before + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _writers() == before + 1, "the replaced handler's writer thread is still alive"
        assert "before the worker's setup" in first_stream.getvalue()  # flushed on close
        late = {"name": "authswitch.x", "msg": "late", "levelno": 20, "levelname": "INFO"}
        first.handle(logging.makeLogRecord(late))
        assert "late" in first_stream.getvalue()  # a closed handler writes at once
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_uvicorn_builds_no_access_line_yet_its_errors_still_reach_the_log() -> None:
    """uvicorn formats each access line's arguments (client address, path and query) whenever
    `uvicorn.access` has a handler up its chain, even when the logger is disabled: it must have
    none. Its error logger still writes through authswitch's handler."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("info")
        assert logging.getLogger("uvicorn.access").hasHandlers() is False
        assert logging.getLogger("uvicorn.error").hasHandlers() is True
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
