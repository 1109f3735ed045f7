"""The JSON log lines: an exception is logged by its type only, never its message."""

from __future__ import annotations

import io
import json
import logging

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
