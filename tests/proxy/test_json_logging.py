"""The JSON log lines: an exception is logged by its type only, never its message."""

from __future__ import annotations

import io
import json
import logging
import threading
import time

from proxy.ops.json_logging import BufferedLineHandler, JsonFormatter


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
