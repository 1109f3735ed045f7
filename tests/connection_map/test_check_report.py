"""The check report: triage beside the stored assessment and the flag, as a table and JSON."""

from __future__ import annotations

import json
from typing import Any

from connection_map import Connection, check_connections
from connection_map.check_report import CHECK_COLUMNS
from proxy.cli.output import render_table

NP = {"url": "https://np.example/acs"}


def connection(cid: str, **fields: Any) -> Connection:
    return Connection.model_validate({"id": cid, "protocol": "saml", "new_provider": NP, **fields})


CONNECTIONS = [
    connection("acme"),
    connection("globex", saml={"assertion_encryption": {"enabled": True}}),
    connection(
        "initech", saml={"assertion_encryption": {"enabled": True}}, assessment="needs_idp_change"
    ),
    connection("hooli", new_provider=None, assessment="blocked"),
]


def test_a_flagged_on_connection_that_is_not_transparent_fails_the_check() -> None:
    on = {"acme", "globex"}
    report = check_connections(CONNECTIONS, enabled=lambda cid: cid in on)

    assert [e.connection_id for e in report.failing] == ["globex"]
    assert report.exit_code == 1
    globex = report.entries[1]
    assert globex.stored.value == "transparent" and globex.computed.value == "needs_idp_change"
    assert globex.drift and globex.flagged_on is True


def test_flagged_on_but_stored_as_not_transparent_also_fails() -> None:
    # Triage may say it's fine now, but the proxy reads the stored assessment and won't move it.
    stale = connection("acme", assessment="blocked", assessment_reasons=["old reason"])
    report = check_connections([stale], enabled=lambda cid: True)
    assert report.entries[0].computed.value == "transparent"
    assert report.exit_code == 1


def test_without_flags_or_with_only_safe_flags_the_check_passes() -> None:
    assert check_connections(CONNECTIONS).exit_code == 0
    assert check_connections(CONNECTIONS, enabled=lambda cid: cid == "acme").exit_code == 0


def test_json_lists_every_reason_and_a_summary() -> None:
    report = check_connections(CONNECTIONS, enabled=lambda cid: cid == "globex")
    document = json.loads(json.dumps(report.to_json()))
    hooli = document["connections"][3]
    assert hooli == {
        "id": "hooli",
        "protocol": "saml",
        "assessment": "blocked",
        "stored_assessment": "blocked",
        "drift": False,
        "flagged_on": False,
        "reasons": [
            {
                "code": "no_new_provider_target",
                "assessment": "blocked",
                "message": "no new-provider target: set new_provider.url once it is imported there",
            }
        ],
    }
    assert document["summary"] == {
        "connections": 4,
        "transparent": 1,
        "needs_idp_change": 2,
        "blocked": 1,
        "drift": ["globex"],
        "flagged_on_not_transparent": ["globex"],
    }
    assert document["exit_code"] == 1


def test_the_table_has_a_line_per_reason_and_a_summary() -> None:
    entries = [
        *CONNECTIONS,
        connection(
            "umbrella", new_provider=None, hold={"assessment": "blocked", "reason": "legal"}
        ),
    ]
    report = check_connections(entries, enabled=lambda cid: cid == "globex")
    table = render_table(CHECK_COLUMNS, report.table_rows()) + "\n\n" + report.summary_line()
    lines = table.splitlines()
    assert lines[0].split() == ["CONNECTION", "PROTOCOL", "TRIAGE", "STORED", "FLAG", "REASONS"]
    assert lines[1].split()[:5] == ["acme", "saml", "transparent", "transparent", "off"]
    assert lines[2].split()[:6] == [
        "globex",
        "saml",
        "needs_idp_change",
        "transparent",
        "(drift)",
        "on",
    ]
    umbrella = lines.index(next(line for line in lines if line.startswith("umbrella")))
    assert "manual_hold: legal" in lines[umbrella]
    assert lines[umbrella + 1].strip().startswith("no_new_provider_target: ")
    assert lines[umbrella + 1].index("no_new") == lines[umbrella].index("manual_hold")
    assert lines[-1] == (
        "5 connections: 1 transparent, 2 needs_idp_change, 2 blocked; stored assessment "
        "differs for 2; FLAGGED ON BUT NOT TRANSPARENT: globex"
    )
