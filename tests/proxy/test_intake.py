"""Callback intake: a capped, deadline-bound body read and a strict url-encoded field parse."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections.abc import Callable
from urllib.parse import unquote_to_bytes, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.callback.intake import (
    _SPLIT_BELOW,
    SINGLE_VALUED,
    CallbackFields,
    _parse_pairs,
    parse_fields,
)
from proxy.http.asgi_types import Message, Receive
from proxy.http.request_body import ClientDisconnected, RequestRejected, read_body

FORM = b"application/x-www-form-urlencoded"
LIMIT = 1024


def receive_from(messages: list[Message], pause: float = 0.0) -> Receive:
    """An ASGI receive that hands out `messages` in order, as a server would."""
    queue = list(messages)

    async def receive() -> Message:
        if pause:
            await asyncio.sleep(pause)
        if not queue:  # what a server sends once the body is done and the client leaves
            return {"type": "http.disconnect"}
        return queue.pop(0)

    return receive


def chunks(*parts: bytes) -> list[Message]:
    return [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]


def read(
    receive: Receive,
    declared: int | None = None,
    limit: int = LIMIT,
    deadline: float = 2.0,
) -> bytes:
    return asyncio.run(read_body(receive, declared, limit, deadline))


def rejected(call: Callable[[], object]) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        call()
    return caught.value


# -- read_body ------------------------------------------------------------------------------


def test_body_in_several_chunks_is_returned_byte_identical() -> None:
    parts = (b"SAMLResponse=PHNhbW", b"xwOlJlc3BvbnNl%2B", b"&RelayState=r")
    assert read(receive_from(chunks(*parts)), declared=sum(map(len, parts))) == b"".join(parts)


def test_empty_body_and_empty_chunks_are_fine() -> None:
    assert read(receive_from([{"type": "http.request"}])) == b""
    assert read(receive_from(chunks(b"", b"a=1", b"", b""))) == b"a=1"


def test_declared_length_over_the_limit_is_refused_before_reading_anything() -> None:
    async def receive() -> Message:
        raise AssertionError("the body must not be read once Content-Length is too large")

    error = rejected(lambda: read(receive, declared=LIMIT + 1))
    assert (error.status, error.reason) == (413, "body_too_large")
    assert f"{LIMIT}-byte limit" in str(error)


def test_streamed_body_over_the_limit_is_refused_without_a_content_length() -> None:
    parts = [b"A" * 400] * 3  # 1200 bytes, no single chunk over the limit
    error = rejected(lambda: read(receive_from(chunks(*parts)), declared=None))
    assert (error.status, error.reason) == (413, "body_too_large")


def test_body_longer_than_its_content_length_is_still_capped() -> None:
    error = rejected(lambda: read(receive_from(chunks(b"A" * (LIMIT + 1))), declared=10))
    assert error.status == 413


def test_a_body_exactly_at_the_limit_is_accepted() -> None:
    body = b"A" * LIMIT
    assert read(receive_from(chunks(body[:100], body[100:])), declared=LIMIT) == body


def test_one_byte_over_the_limit_is_refused() -> None:
    body = b"A" * (LIMIT + 1)
    error = rejected(lambda: read(receive_from(chunks(body[:LIMIT], body[LIMIT:]))))
    assert error.status == 413


def test_client_disconnect_mid_body_is_reported_as_such() -> None:
    messages: list[Message] = [{"type": "http.request", "body": b"a=1", "more_body": True}]
    messages.append({"type": "http.disconnect"})
    with pytest.raises(ClientDisconnected):
        read(receive_from(messages))


def test_a_client_that_never_sends_the_body_gets_408() -> None:
    async def receive() -> Message:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    error = rejected(lambda: read(receive, declared=100, deadline=0.05))
    assert (error.status, error.reason) == (408, "body_timeout")
    assert "0.05 s" in str(error)


def test_a_slow_drip_is_cut_off_by_the_whole_body_deadline() -> None:
    """Each chunk arrives quickly enough on its own; the body as a whole does not."""
    drip = receive_from(chunks(*[b"a"] * 50), pause=0.01)
    error = rejected(lambda: read(drip, deadline=0.1))
    assert error.status == 408


def test_a_shutdown_cancelling_the_read_is_not_taken_for_a_slow_body() -> None:
    """A task cancelled from outside while reading (graceful shutdown) stays cancelled, even
    when the body deadline expires in the same loop iteration: it must not become a 408."""

    async def read_while(cancel_from_outside: bool) -> str:
        task = asyncio.current_task()
        assert task is not None

        async def receive() -> Message:
            time.sleep(0.1)  # noqa: ASYNC251 -- holds the loop: the 0.05 s deadline passes unseen
            if cancel_from_outside:
                # Due now, so it runs right after the overdue deadline, before the task.
                asyncio.get_running_loop().call_later(0, task.cancel)
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        try:
            await read_body(receive, 100, LIMIT, 0.05)
        except asyncio.CancelledError:
            return "cancelled"
        except RequestRejected as exc:
            return exc.reason
        return "read"

    async def cancelled_task(cancel_from_outside: bool) -> str:
        reading = asyncio.ensure_future(read_while(cancel_from_outside))
        try:
            return await reading
        except asyncio.CancelledError:
            return "cancelled"

    assert asyncio.run(cancelled_task(False)) == "body_timeout"
    assert asyncio.run(cancelled_task(True)) == "cancelled"


def test_a_body_read_in_time_leaves_no_cancellation_behind() -> None:
    """After a body read within its deadline, the task goes on: nothing cancels it later."""

    async def main() -> bytes:
        body = await read_body(receive_from(chunks(b"a=1", b"&b=2")), None, LIMIT, 0.05)
        await asyncio.sleep(0.1)  # past the deadline: no pending cancel lands here
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        return body

    assert asyncio.run(main()) == b"a=1&b=2"


# -- parse_fields ---------------------------------------------------------------------------


def parse(
    query: bytes = b"", body: bytes = b"", content_type: bytes | None = FORM, max_fields: int = 64
) -> CallbackFields:
    return parse_fields(query, body, content_type, max_fields)


def test_form_and_query_fields_are_parsed_and_decoded() -> None:
    body = urlencode({"SAMLResponse": "PHNhbWw+/x==", "RelayState": "https://app/ü?x=1&y"})
    fields = parse(b"connection=acme&lang=de", body.encode())

    assert fields.query == {"connection": "acme", "lang": "de"}
    assert fields.form == {"SAMLResponse": "PHNhbWw+/x==", "RelayState": "https://app/ü?x=1&y"}
    assert fields.form_pairs == (
        ("SAMLResponse", "PHNhbWw+/x=="),
        ("RelayState", "https://app/ü?x=1&y"),
    )


def test_get_prefers_the_body_and_falls_back_to_the_query() -> None:
    fields = parse(b"lang=de&shared=query", b"shared=body")
    assert fields.get("shared") == "body"
    assert fields.get("lang") == "de"
    assert fields.get("absent") is None


def test_blank_values_are_kept() -> None:
    fields = parse(b"", b"RelayState=&SAMLResponse=x")
    assert fields.form == {"RelayState": "", "SAMLResponse": "x"}


@pytest.mark.parametrize("name", sorted(SINGLE_VALUED))
def test_a_single_valued_field_twice_in_the_body_is_refused(name: str) -> None:
    body = f"{name}=first&other=1&{name}=second".encode()
    error = rejected(lambda: parse(body=body))
    assert (error.status, error.reason) == (400, "duplicate_field")
    assert str(error) == f"'{name}' appears more than once in the form body"


@pytest.mark.parametrize("name", sorted(SINGLE_VALUED))
def test_a_single_valued_field_twice_in_the_query_is_refused(name: str) -> None:
    error = rejected(lambda: parse(query=f"{name}=a&{name}=b".encode(), content_type=None))
    assert (error.status, error.reason) == (400, "duplicate_field")
    assert str(error) == f"'{name}' appears more than once in the query string"


@pytest.mark.parametrize("name", sorted(SINGLE_VALUED))
def test_a_single_valued_field_in_both_query_and_body_is_refused(name: str) -> None:
    error = rejected(lambda: parse(query=f"{name}=a".encode(), body=f"{name}=b".encode()))
    assert (error.status, error.reason) == (400, "duplicate_field")
    assert str(error) == f"'{name}' appears in both the query string and the body"


def test_a_percent_encoded_name_is_still_the_same_field() -> None:
    error = rejected(lambda: parse(body=b"SAMLResponse=a&SAML%52esponse=b"))
    assert error.reason == "duplicate_field"


def test_duplicate_messages_never_quote_the_values() -> None:
    error = rejected(lambda: parse(body=b"code=secret-one&code=secret-two"))
    assert "secret" not in str(error)


def test_other_fields_may_repeat_and_the_first_value_is_kept() -> None:
    fields = parse(b"scope=a&scope=b", b"x=1&x=2&connection=c")
    assert fields.query == {"scope": "a"}
    assert fields.form == {"x": "1", "connection": "c"}
    assert fields.form_pairs == (("x", "1"), ("x", "2"), ("connection", "c"))


def test_a_route_may_name_more_single_valued_fields() -> None:
    single = SINGLE_VALUED | {"connection"}
    error = rejected(lambda: parse_fields(b"connection=a&connection=b", b"", None, 64, single))
    assert (error.status, error.reason) == (400, "duplicate_field")
    error = rejected(lambda: parse_fields(b"connection=a", b"connection=b", FORM, 64, single))
    assert str(error) == "'connection' appears in both the query string and the body"
    assert parse_fields(b"connection=a&connection=b", b"", None, 64).query == {"connection": "a"}


def test_a_harmless_name_in_both_query_and_body_is_fine() -> None:
    fields = parse(b"connection=acme", b"connection=globex")
    assert fields.query["connection"] == "acme" and fields.form["connection"] == "globex"


def test_exactly_max_fields_is_accepted_and_one_more_is_refused() -> None:
    at_limit = b"&".join(b"f%d=1" % i for i in range(8))
    assert len(parse(body=at_limit, max_fields=8).form) == 8
    assert len(parse(query=at_limit, max_fields=8).query) == 8

    over = at_limit + b"&f8=1"
    error = rejected(lambda: parse(body=over, max_fields=8))
    assert (error.status, error.reason) == (400, "too_many_fields")
    assert str(error) == "form body has more than 8 fields"
    error = rejected(lambda: parse(query=over, max_fields=8))
    assert str(error) == "query string has more than 8 fields"


@pytest.mark.parametrize(
    ("query", "body"),
    [
        (b"", b"SAMLResponse=%ff%fe"),  # percent-encoded bytes that are not UTF-8
        (b"", b"RelayState=caf\xc3\xa9"),  # raw non-ASCII byte in the body
        (b"", b"RelayState=\xff"),
        (b"state=%c3%28", b""),
        (b"connection=\xe9", b""),
    ],
    ids=["bad-utf8-escape", "raw-utf8", "raw-latin1", "bad-utf8-in-query", "raw-byte-in-query"],
)
def test_bad_encoding_is_refused(query: bytes, body: bytes) -> None:
    error = rejected(lambda: parse(query=query, body=body))
    assert (error.status, error.reason) == (400, "bad_encoding")
    assert "not valid url-encoded UTF-8" in str(error)


def test_percent_encoded_utf8_is_decoded() -> None:
    assert parse(body=b"RelayState=caf%C3%A9").form == {"RelayState": "café"}


@pytest.mark.parametrize(
    "content_type", [None, b"application/json", b"text/plain", b"multipart/form-data; b=x"]
)
def test_a_body_that_is_not_a_form_has_no_form_fields(content_type: bytes | None) -> None:
    body = b"SAMLResponse=x&code=y&code=z&%ff"  # would be refused if it were parsed as a form
    fields = parse(b"code=q", body, content_type)
    assert fields.form == {} and fields.form_pairs == ()
    assert fields.get("code") == "q"


@pytest.mark.parametrize(
    "content_type",
    [
        b"application/x-www-form-urlencoded; charset=UTF-8",
        b"Application/X-WWW-Form-Urlencoded",
        b" application/x-www-form-urlencoded ;charset=utf-8",
    ],
)
def test_a_form_content_type_with_parameters_or_other_case_is_still_a_form(
    content_type: bytes,
) -> None:
    assert parse(body=b"SAMLResponse=x", content_type=content_type).form == {"SAMLResponse": "x"}


def test_field_parsing_agrees_with_parse_qsl_on_random_input() -> None:
    import random
    from urllib.parse import parse_qsl

    from proxy.callback.intake import _parse_pairs

    rng = random.Random(20261123)
    alphabet = "ab=&+%2BF3Dfd5Cé0 /?#x"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        raw = text.encode()
        try:
            expected = parse_qsl(
                raw.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict"
            )
        except (UnicodeDecodeError, ValueError):
            expected = None
        try:
            got = _parse_pairs(raw, 10_000, "body")
        except RequestRejected as exc:
            assert exc.reason == "bad_encoding"
            got = None
        assert got == expected, raw


def _reference_pairs(raw: bytes, max_fields: int, where: str) -> list[tuple[str, str]]:
    """The field parse as it was written on `urllib.parse.unquote_to_bytes`: the new one must
    give the same pairs, and the same refusals, for every input."""
    if not raw:
        return []
    if raw.count(b"&") >= max_fields:
        raise RequestRejected(400, "too_many_fields", f"{where} has more than {max_fields} fields")
    if not raw.isascii():
        raise RequestRejected(400, "bad_encoding", f"{where} is not valid url-encoded UTF-8")
    pairs = []
    try:
        for chunk in raw.split(b"&"):
            if chunk:
                name, _, value = chunk.partition(b"=")
                pairs.append((_reference_unquote(name), _reference_unquote(value)))
    except UnicodeDecodeError:
        raise RequestRejected(
            400, "bad_encoding", f"{where} is not valid url-encoded UTF-8"
        ) from None
    return pairs


def _reference_unquote(value: bytes) -> str:
    return unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")


def _outcome(
    parse: Callable[[bytes, int, str], list[tuple[str, str]]], raw: bytes, max_fields: int
) -> object:
    try:
        return parse(raw, max_fields, "form body")
    except RequestRejected as exc:
        return (exc.status, exc.reason, str(exc))


# Pieces that meet every branch: separators, escapes well-formed or not (`%2`, `%zz`, `%%`, a
# `%` at the end), a backslash of the value's own (`\x41` must stay as it is), escapes of
# UTF-8 bytes and of bytes that are not UTF-8, raw bytes that are not ASCII.
_PIECES = [
    b"&",
    b"=",
    b"+",
    b"%",
    b"%%",
    b"%2",
    b"%2B",
    b"%2b",
    b"%2F",
    b"%3D",
    b"%3d",
    b"%zz",
    b"%g1",
    b"%5C",
    b"%5Cx41",
    b"%00",
    b"%C3%A9",
    b"%c3%28",
    b"%ff",
    b"\\",
    b"\\x",
    b"\\x41",
    b"\\\\",
    b"x",
    b"4",
    b"a",
    b"F",
    b"SAMLResponse",
    b"PHNhbWw",
    b" ",
    b"\xc3\xa9",
    b"\xff",
]


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES) | st.binary(max_size=3), max_size=40),
    st.integers(min_value=1, max_value=6),
    st.booleans(),
)
def test_field_parsing_agrees_with_unquote_to_bytes_on_every_input(
    pieces: list[bytes], max_fields: int, long: bool
) -> None:
    # A long first field sends the body down the path that cuts fields with `find`.
    raw = (b"pad=" + b"A" * _SPLIT_BELOW + b"&" if long else b"") + b"".join(pieces)
    expected = _outcome(_reference_pairs, raw, max_fields)
    assert _outcome(_parse_pairs, raw, max_fields) == expected


def test_field_parsing_agrees_with_unquote_to_bytes_on_long_base64_values() -> None:
    """Values the size of a SAMLResponse, escaped the ways clients escape base64, with now and
    then an escape or byte that sends the value down the general path."""
    rng = random.Random(20261206)
    escapes = {b"+": [b"%2B", b"%2b"], b"/": [b"%2F", b"%2f"], b"=": [b"%3D", b"%3d"]}
    odd = [b"%", b"%2", b"%zz", b"\\", b"%5C", b"%ff", b"%C3%A9", b"+", b"&"]
    for _ in range(300):
        value = base64.b64encode(rng.randbytes(rng.randint(0, 6000)))
        escaped = b"".join(rng.choice(escapes.get(bytes([c]), [bytes([c])])) for c in value)
        for _ in range(rng.choice([0, 0, 1, 3])):
            at = rng.randint(0, len(escaped))
            escaped = escaped[:at] + rng.choice(odd) + escaped[at:]
        raw = b"SAMLResponse=" + escaped + b"&RelayState=https%3A%2F%2Fapp%2F"
        expected = _outcome(_reference_pairs, raw, 64)
        assert _outcome(_parse_pairs, raw, 64) == expected


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        (b"%2", "%2"),
        (b"%zz", "%zz"),
        (b"%%41", "%A"),
        (b"a%", "a%"),
        (b"\\x41%2B", "\\x41+"),
        (b"%5Cx41", "\\x41"),
        (b"%5c%78%34%31", "\\x41"),
        (b"%2b%2F%3d", "+/="),
    ],
)
def test_malformed_escapes_and_backslashes_read_as_unquote_to_bytes_reads_them(
    value: bytes, decoded: str
) -> None:
    assert _parse_pairs(b"v=" + value, 64, "form body") == [("v", decoded)]


@pytest.mark.parametrize("pad", [b"", b"A" * _SPLIT_BELOW], ids=["short", "long"])
def test_too_many_fields_is_decided_before_the_encoding(pad: bytes) -> None:
    error = rejected(lambda: _parse_pairs(b"a=\xff" + pad + b"&b=1&c=2", 2, "form body"))
    assert error.reason == "too_many_fields"
    error = rejected(lambda: _parse_pairs(b"a=\xff" + pad + b"&b=1", 2, "form body"))
    assert error.reason == "bad_encoding"


@pytest.mark.parametrize("pad", [b"", b"A" * _SPLIT_BELOW], ids=["short", "long"])
def test_the_field_limit_is_the_same_for_short_and_long_bodies(pad: bytes) -> None:
    at_limit = b"&".join([b"v=" + pad] + [b"f%d=1" % i for i in range(7)])
    assert len(_parse_pairs(at_limit, 8, "form body")) == 8
    error = rejected(lambda: _parse_pairs(at_limit + b"&", 8, "form body"))
    assert str(error) == "form body has more than 8 fields"
