"""Untrusted XML is read on a thread that is replaced, so a flood of unique names can't grow the
process: libxml2 never forgets a name it interned on a thread that lives on."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from foundation.xml_thread import RecyclingReader
from proxy.callback import saml_response
from proxy.callback.saml_response import SamlRejected, inspect_saml_response


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def _hostile(names: int) -> str:
    """A Response whose body is `names` elements, each with a name never seen before."""
    salt = uuid.uuid4().hex
    body = "".join(f"<n{salt}{i}/>" for i in range(names))
    xml = (
        '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="r" '
        f'Version="2.0"><samlp:Extensions>{body}</samlp:Extensions></samlp:Response>'
    )
    return base64.b64encode(xml.encode()).decode()


def _valid_like(names: int) -> str:
    """The same size and shape, with the same names every time."""
    body = "".join(f"<n{i}/>" for i in range(names))
    xml = (
        '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="r" '
        f'Version="2.0"><samlp:Extensions>{body}</samlp:Extensions></samlp:Response>'
    )
    return base64.b64encode(xml.encode()).decode()


def _grow(make: str | None, documents: int) -> int:
    before = _rss_bytes()
    for _ in range(documents):
        value = _hostile(250) if make is None else make
        inspect_saml_response(value)
    return _rss_bytes() - before


def _flood() -> None:
    """Run in a fresh process by the test below; prints its figures as JSON."""
    _grow(_valid_like(250), 500)  # warm up: allocator arenas, the reader thread
    valid = _grow(_valid_like(250), 3000)
    hostile = _grow(None, 3000)
    print(json.dumps([valid, hostile, saml_response._READER.generations]))


def test_a_flood_of_unique_names_does_not_grow_the_process() -> None:
    """3 000 responses of 250 names never seen before (750 000 names, ~40 MB of dictionary on
    a long-lived thread) grow the process no more than the same number of ordinary ones.

    Measured in a process of its own: after a few hundred other tests, the RSS of the test
    process moves by more than the margin for reasons of its own (allocator arenas, caches)."""
    measured = subprocess.run(
        [sys.executable, "-c", "from tests.foundation.test_xml_thread import _flood; _flood()"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    valid, hostile, generations = json.loads(measured.stdout.splitlines()[-1])
    assert hostile - valid < 12 * 1024 * 1024, (valid, hostile)
    assert generations > 1, "the reading thread was replaced"


def test_the_reader_thread_is_replaced_after_its_budget() -> None:
    threads: list[str] = []
    reader = RecyclingReader(
        lambda doc: threads.append(threading.current_thread().name) or len(doc),
        len,
        budget_bytes=10,
        name="t",
    )
    assert [reader(b"x" * 4) for _ in range(5)] == [4] * 5
    # 4 + 4 + 4 bytes pass the budget of 10 on the third: the fourth call gets a new thread.
    assert threads == ["t-0", "t-0", "t-0", "t-1", "t-1"]
    assert threading.current_thread().name not in threads


def test_a_refusal_on_the_reader_thread_is_raised_to_the_caller_without_parser_text() -> None:
    with pytest.raises(SamlRejected) as refused:
        inspect_saml_response(base64.b64encode(b"<samlp:Response><unclosed>").decode())
    assert refused.value.reason == "not_xml"
    assert refused.value.__cause__ is None and refused.value.__context__ is None


def test_callers_on_several_threads_each_get_their_own_answer() -> None:
    reader = RecyclingReader(lambda doc: doc * 2, len, budget_bytes=64)
    answers: dict[int, list[int]] = {}

    def ask(n: int) -> None:
        answers[n] = [reader(str(n))[:1] == str(n)[:1] and int(str(n) * 2) for _ in range(200)]

    workers = [threading.Thread(target=ask, args=(n,)) for n in range(1, 9)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert answers == {n: [int(str(n) * 2)] * 200 for n in range(1, 9)}
