"""The benchmark's generated scenarios are what they claim: the map size, filler connections
that no request names, and the path-identified route with each request on its own path."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bench import saml_corpus
from bench.saml_corpus import CALLBACK_PATH, CorpusEntry
from bench.targets import AUTHSWITCH, Context, before_targets, write_authswitch_config
from connection_map import load_connection_map
from connection_map.routes import Outcome, RouteTable, identify_connection
from proxy.config import load_config

CORPUS = tuple(
    CorpusEntry(i, saml_corpus.connection_id(i), saml_corpus.idp_entity_id(i), CALLBACK_PATH)
    for i in (3, 0, 2, 1)  # shuffled, as the minted corpus is
)


def _context(tmp_path: Path, map_size: int) -> Context:
    return Context(
        upstream_port=9,
        corpus=CORPUS,
        corpus_tsv=tmp_path / "corpus.tsv",
        work_dir=tmp_path / "work",
        authswitch=None,
        authswitch_log_level="info",
        map_size=map_size,
    )


def _identify(config_path: Path, path: str, issuer: str | None) -> str | None:
    config = load_config(config_path)
    connections = load_connection_map(config.connection_map)
    matched = RouteTable(config.routes).match(path)
    assert matched is not None, f"no route serves {path}"
    route, params = matched
    found = identify_connection(route, params, {}, path, connections, issuer=issuer)
    if found.outcome is not Outcome.IDENTIFIED:
        return None
    assert found.connection is not None
    return found.connection.id


def test_the_map_holds_map_size_connections_and_the_filler_claims_no_request(
    tmp_path: Path,
) -> None:
    config_path = write_authswitch_config(_context(tmp_path, 40), "mix", port=1)

    connections = load_connection_map(load_config(config_path).connection_map)

    assert len(connections) == 40
    ids = {connection.id for connection in connections}
    assert {entry.connection_id for entry in CORPUS} <= ids
    for entry in CORPUS:
        issuer_match = connections.by_issuer(entry.idp_entity_id)
        assert issuer_match is not None
        assert issuer_match.connection is not None
        assert issuer_match.connection.id == entry.connection_id
        assert _identify(config_path, CALLBACK_PATH, entry.idp_entity_id) == entry.connection_id


def test_without_a_map_size_the_map_is_the_corpus_alone(tmp_path: Path) -> None:
    config_path = write_authswitch_config(_context(tmp_path, 0), "redirect", port=1)

    assert len(load_connection_map(load_config(config_path).connection_map)) == len(CORPUS)


def test_a_map_smaller_than_the_corpus_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="map size 3"):
        write_authswitch_config(_context(tmp_path, 3), "mix", port=1)


def test_path_scenarios_identify_by_path_alone(tmp_path: Path) -> None:
    config_path = write_authswitch_config(_context(tmp_path, 30), "path-mix", port=1)

    (route,) = load_config(config_path).routes
    assert route.path == saml_corpus.PATH_ROUTE
    assert [strategy.value for strategy in route.identify] == ["path"]
    for entry in CORPUS:
        own_path = saml_corpus.connection_path(entry.connection_id)
        # Identified by its path whatever the Issuer says, and only by its path.
        assert _identify(config_path, own_path, "urn:someone:else") == entry.connection_id
    flags = (tmp_path / "work" / "authswitch-path-mix" / "flags.yaml").read_text()
    assert "conn-000: 'on'" in flags and "conn-002: 'on'" in flags
    assert "conn-001" not in flags and "conn-003" not in flags


def test_the_path_corpus_posts_each_request_to_its_connection_path(tmp_path: Path) -> None:
    base = tmp_path / "corpus"
    bodies = [f"SAMLResponse=body{entry.index}&RelayState=x" for entry in CORPUS]
    base.with_suffix(".tsv").write_text(
        "".join(f"{CALLBACK_PATH}\t{body}\n" for body in bodies), encoding="ascii"
    )

    moved = saml_corpus.with_connection_paths(base, list(CORPUS))

    lines = saml_corpus.path_corpus_tsv(base).read_text(encoding="ascii").splitlines()
    assert [line.split("\t", 1) for line in lines] == [
        [f"/sso/{entry.connection_id}/acs", body]
        for entry, body in zip(CORPUS, bodies, strict=True)
    ]
    assert [entry.path for entry in moved] == [line.split("\t", 1)[0] for line in lines]
    # The Issuer-identified corpus is left as it was.
    assert base.with_suffix(".tsv").read_text(encoding="ascii").count(CALLBACK_PATH) == 4


def test_before_targets_include_the_path_scenarios() -> None:
    names = {target.name: target for target in before_targets()}

    assert names["before-authswitch-path-mix"].by_path
    assert names["before-authswitch-path-redirect"].by_path
    assert not names["before-authswitch-mix"].by_path
    assert len(names) == len(AUTHSWITCH)


def test_the_filler_is_valid_json_per_item() -> None:
    from bench.targets import filler_connections

    items = [json.loads(line.removeprefix("- ")) for line in filler_connections(6).splitlines()]

    assert len(items) == 6
    assert not any(item["id"].startswith("conn-") for item in items)


def test_bench_workers_takes_worker_counts_and_known_scenarios_only() -> None:
    import argparse

    from bench.workers import _counts, _scenarios

    assert _counts("1,2,4") == [1, 2, 4]
    assert _scenarios("mix,path-mix") == ["mix", "path-mix"]
    with pytest.raises(argparse.ArgumentTypeError):
        _counts("0,2")
    with pytest.raises(argparse.ArgumentTypeError, match="path-nothing"):
        _scenarios("mix,path-nothing")


def test_the_checked_reference_reads_the_issuer_and_refuses_what_authswitch_refuses() -> None:
    """`ref-raw-checked` is a fair floor only if it really does the work: it reads a signed
    response's Issuer and refuses the hostile shapes authswitch answers 400."""
    from bench.reference_checked import BadCallback, read_issuer
    from proxy.demo.idp import DemoIdP
    from proxy.demo.keys import generate_keypair
    from tests.proxy.test_hostile_callbacks import ACME_ISSUER, CASES, _signed_xml

    xml = _signed_xml(DemoIdP(ACME_ISSUER, generate_keypair("bench-checked")))
    assert read_issuer(_saml_form(xml)) == ACME_ISSUER
    body_level = {"saml_response_in_query_and_body", "bad_percent_encoding", "oversize"}
    refused = [case for case in CASES if case.status == 400 and case.name not in body_level]
    assert len(refused) >= 7
    for case in refused:
        with pytest.raises(BadCallback):
            read_issuer(case.body(xml))
    for case in CASES:
        if case.status is None:
            assert read_issuer(case.body(xml)) != ACME_ISSUER, case.name


def _saml_form(xml: str) -> bytes:
    return urlencode({"SAMLResponse": base64.b64encode(xml.encode()).decode()}).encode()
