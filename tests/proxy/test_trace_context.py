"""W3C Trace Context and request ids: what an incoming header is taken for, and what is not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.http.correlation import MAX_REQUEST_ID_LENGTH, correlate, valid_request_id
from proxy.http.trace_context import (
    MAX_TRACESTATE_MEMBERS,
    TraceParent,
    incoming_trace,
    parse_traceparent,
    parse_tracestate,
)

# The recommendation's own example (section 3.2.2.4).
EXAMPLE = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_recommendations_example_is_read_field_by_field() -> None:
    assert parse_traceparent(EXAMPLE) == TraceParent(
        "00", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True
    )
    unsampled = parse_traceparent(EXAMPLE[:-2] + b"00")
    assert unsampled is not None and not unsampled.sampled


@pytest.mark.parametrize(
    "value",
    [
        b"",
        EXAMPLE[:-1],  # too short
        EXAMPLE + b"-00",  # version 00 has exactly four fields
        EXAMPLE.upper(),  # upper-case hex is invalid
        b"ff" + EXAMPLE[2:],  # version ff is forbidden
        b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent id
        b"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # wrong separator
        b"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",  # not hex
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        b"cc" + EXAMPLE[2:] + b"x",  # a future version's extra fields follow a dash
    ],
)
def test_an_invalid_traceparent_is_not_taken(value: bytes) -> None:
    assert parse_traceparent(value) is None


def test_a_future_version_is_read_for_its_first_four_fields() -> None:
    parent = parse_traceparent(b"cc" + EXAMPLE[2:] + b"-what-the-future-brings")
    assert parent is not None and parent.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_tracestate_keeps_its_members_in_order_over_several_lines() -> None:
    assert parse_tracestate(
        [b"rojo=00f067aa0ba902b7, congo=t61rcWkgMzE", b" , tenant@vendor=x"]
    ) == (
        ("rojo", "00f067aa0ba902b7"),
        ("congo", "t61rcWkgMzE"),
        ("tenant@vendor", "x"),
    )


@pytest.mark.parametrize(
    "lines",
    [
        [b"Rojo=1"],  # keys are lower-case
        [b"rojo"],  # no value
        [b"rojo=a,rojo=b"],  # a key twice
        [b"rojo=a\x01b"],  # a control character in the value
        [b"rojo=a=b"],  # '=' in the value
        [b",".join(b"k%d=v" % i for i in range(MAX_TRACESTATE_MEMBERS + 1))],
    ],
)
def test_an_invalid_tracestate_is_dropped_whole(lines: list[bytes]) -> None:
    assert parse_tracestate(lines) is None


def test_two_traceparent_headers_are_ambiguous_and_ignored() -> None:
    once = [(b"traceparent", EXAMPLE), (b"tracestate", b"rojo=1")]
    trace = incoming_trace(once)
    assert trace is not None and trace.state == (("rojo", "1"),)
    assert incoming_trace([*once, (b"traceparent", EXAMPLE)]) is None
    assert correlate([*once, (b"traceparent", EXAMPLE)], b"x-request-id")[1] is None


def test_a_valid_tracestate_is_not_needed_for_the_trace() -> None:
    trace = incoming_trace([(b"traceparent", EXAMPLE), (b"tracestate", b"BAD")])
    assert trace is not None and trace.state == ()


@pytest.mark.parametrize(
    "value",
    [
        "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        "01J9Z3X8Q4W5E6R7T8Y9U0I1O2",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "a" * MAX_REQUEST_ID_LENGTH,
    ],
)
def test_a_load_balancers_request_id_is_used_as_it_is(value: str) -> None:
    headers = [(b"x-request-id", value.encode())]
    assert correlate(headers, b"x-request-id") == (value, None)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"a" * (MAX_REQUEST_ID_LENGTH + 1),
        b"id with spaces",
        b'quote"d',
        b"new\nline",
        b"caf\xc3\xa9",
        b"<script>",
    ],
)
def test_an_unsafe_request_id_is_replaced_by_one_authswitch_makes(value: bytes) -> None:
    request_id, _ = correlate([(b"x-request-id", value)], b"x-request-id")
    assert request_id != value.decode("latin-1")
    assert len(request_id) == 16 and int(request_id, 16) >= 0


def test_the_request_id_header_is_configurable_and_the_first_one_counts() -> None:
    headers = [(b"x-amzn-trace-id", b"first"), (b"x-amzn-trace-id", b"second")]
    assert correlate(headers, b"x-amzn-trace-id")[0] == "first"
    assert correlate(headers, b"x-request-id")[0] not in ("first", "second")


@given(st.binary(max_size=300))
def test_any_header_value_gives_a_loggable_request_id(value: bytes) -> None:
    request_id, trace_id = correlate(
        [(b"x-request-id", value), (b"traceparent", value)], b"x-request-id"
    )
    assert request_id.isascii() and request_id.isprintable() and " " not in request_id
    assert 0 < len(request_id) <= MAX_REQUEST_ID_LENGTH
    assert valid_request_id(request_id.encode()) == request_id
    assert trace_id is None or (len(trace_id) == 32 and trace_id != "0" * 32)
