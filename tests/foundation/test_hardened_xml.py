"""The one hardened parser for untrusted XML (SAML responses and IdP metadata)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from foundation.hardened_xml import XmlRefusal, XmlRefused, parse_untrusted_xml

_DOC = b'<?xml version="1.0" encoding="UTF-8"?><r><!-- note --><?pi x?><a>text</a></r>'


def test_a_plain_document_parses_without_comments_or_processing_instructions() -> None:
    root = parse_untrusted_xml(_DOC)
    assert [child.tag for child in root] == ["a"]
    assert root[0].text == "text"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<!DOCTYPE r><r/>", "doctype"),
        (b'<!doctype r [<!ENTITY e "x">]><r>&e;</r>', "doctype"),
        (
            b'<?xml version="1.0"?>\n<!DOCTYPE r SYSTEM "http://example.invalid/x.dtd"><r/>',
            "doctype",
        ),
        ("<r/>".encode("utf-16-le"), "bad_encoding"),
        (
            '<?xml version="1.0" encoding="ISO-8859-1"?><r>\u00e9</r>'.encode("latin-1"),
            "bad_encoding",
        ),
        ('<?xml version="1.0" encoding="US-ASCII"?><r>\u00e9</r>'.encode(), "bad_encoding"),
        (b'<?xml version="1.0" encoding="UTF-7"?><r/>', "bad_encoding"),
        (b'<?xml version="1.1"?><r/>', "bad_declaration"),
        (b'\n<?xml version="1.0"?><r/>', "bad_declaration"),
        (b"not xml at all", "not_markup"),
        (b"<r><unclosed></r>", "not_xml"),
        (b"<r>&undeclared;</r>", "not_xml"),
    ],
)
def test_every_dangerous_or_ambiguous_shape_is_refused(data: bytes, reason: XmlRefusal) -> None:
    with pytest.raises(XmlRefused) as caught:
        parse_untrusted_xml(data)
    assert caught.value.reason == reason
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_an_ascii_document_may_carry_a_label_its_caller_accepts() -> None:
    data = b'<?xml version="1.0" encoding="ISO-8859-1"?><r/>'
    with pytest.raises(XmlRefused):
        parse_untrusted_xml(data)
    assert parse_untrusted_xml(data, ascii_labels=frozenset({b"iso-8859-1"})).tag == "r"


def test_a_huge_text_node_is_refused_without_huge_tree() -> None:
    # libxml2 caps a text node at 10 MB unless huge_tree is on.
    with pytest.raises(XmlRefused) as caught:
        parse_untrusted_xml(b"<r>" + b"x" * 10_000_001 + b"</r>")
    assert caught.value.reason == "not_xml"


def test_an_external_dtd_naming_a_local_file_is_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "dtd"
    os.mkfifo(fifo)
    opened = threading.Event()

    def watch() -> None:
        fd = os.open(fifo, os.O_WRONLY)  # blocks until a reader opens the FIFO
        opened.set()
        os.close(fd)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with pytest.raises(XmlRefused):
        parse_untrusted_xml(f'<!DOCTYPE r SYSTEM "{fifo.as_uri()}"><r/>'.encode())
    assert not opened.wait(0.2)
    unblock = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    watcher.join(timeout=5)
    os.close(unblock)
