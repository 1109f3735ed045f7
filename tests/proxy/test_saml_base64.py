"""The SAMLResponse base64 decode: pybase64 where it agrees, strict binascii as the judge.

Routing reads the bytes this decode gives, so it must accept exactly what
`binascii.a2b_base64(..., strict_mode=True)` accepts and give the same bytes: a value one
decoder reads and the other refuses would move a callback between "routed" and "passed to
legacy unread".
"""

from __future__ import annotations

import base64
import binascii

import pybase64
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.callback import saml_response
from proxy.callback.saml_response import _strict_base64

ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# What else a mangled value may hold: padding, the URL-safe alphabet, separators, NUL, high bytes.
OTHER = b"=-_. \n\t\r\x00\x7f\x80\xff"


def _binascii_strict(value: bytes) -> bytes | None:
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except binascii.Error:
        return None


@st.composite
def mangled_base64(draw: st.DrawFn) -> bytes:
    """A valid encoding, then a few insertions, deletions, replacements or extra padding."""
    value = bytearray(base64.b64encode(draw(st.binary(max_size=300))))
    for _ in range(draw(st.integers(0, 3))):
        edit = draw(st.sampled_from(["insert", "delete", "replace", "pad"]))
        at = draw(st.integers(0, len(value)))
        byte = draw(st.sampled_from(list(ALPHABET + OTHER)))
        if edit == "insert":
            value.insert(at, byte)
        elif edit == "delete" and value:
            del value[min(at, len(value) - 1)]
        elif edit == "replace" and value:
            value[min(at, len(value) - 1)] = byte
        else:
            value += b"=" * draw(st.integers(1, 3))
    return bytes(value)


@settings(max_examples=3000, deadline=None)
@given(mangled_base64())
def test_mangled_values_decode_as_strict_binascii_decodes_them(value: bytes) -> None:
    assert _strict_base64(value) == _binascii_strict(value)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=24).map(lambda raw: bytes(b % 128 for b in raw)))
def test_any_short_ascii_value_decodes_as_strict_binascii_decodes_it(value: bytes) -> None:
    assert _strict_base64(value) == _binascii_strict(value)


@pytest.mark.parametrize(
    "value",
    [
        b"AAAA=",  # padding after a full quantum: binascii accepts, pybase64 refuses
        b"AAAA==",
        b"QQ==QQ==",  # data after the padding
        b"QR==",  # non-zero bits in the last quantum: both accept
        b"QUJ=",
        b"QQ",  # missing padding
        b"=QQ=",
        b"Q===",
        b"",
    ],
)
def test_padding_edge_cases_decode_as_strict_binascii_decodes_them(value: bytes) -> None:
    assert _strict_base64(value) == _binascii_strict(value)


def test_a_canonical_value_is_decoded_without_binascii(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast decoder is the one that runs for what IdPs send (else it saves nothing)."""
    raw = bytes(range(256)) * 40

    def refuse(*_args: object, **_kwargs: object) -> bytes:
        raise AssertionError("binascii used for a canonical value")

    monkeypatch.setattr(saml_response.binascii, "a2b_base64", refuse)
    assert _strict_base64(pybase64.b64encode(raw)) == raw
