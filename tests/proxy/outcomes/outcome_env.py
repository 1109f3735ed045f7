"""Files for a proxy with outcomes: OIDC connections with WorkOS connection ids, and the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from flags import RolloutState, write_rollout_state
from tests.proxy.outcomes.workos_fake import API_KEY, WEBHOOK_SECRET

# authswitch connection id -> WorkOS connection id; all OIDC, redirect mode.
CONNECTIONS = {
    "northwind": "conn_01NORTHWIND",
    "contoso": "conn_01CONTOSO",
    "fabrikam": "conn_01FABRIKAM",
}
GENERIC_SECRET = b"generic-SEEKRIT-outcome-secret"
AUTH0_TOKEN = b"Bearer auth0-SEEKRIT-stream-token"


def callback_path(connection: str) -> str:
    return f"/oidc/{connection}/callback?code=c0de&state=st4te"


def write_outcome_files(
    directory: Path,
    legacy_url: str,
    new_url: str,
    *,
    outcomes: dict[str, Any],
    flags: dict[str, Any] | None = None,
    mode: str = "redirect",
) -> Path:
    """Config, map, flags and secret files in `directory`; returns the config path."""
    directory.mkdir(parents=True, exist_ok=True)
    connections = [
        {
            "id": cid,
            "protocol": "oidc",
            "assessment": "transparent",
            "new_provider": {
                "url": f"{new_url}/sso/{cid}/callback",
                "mode": mode,
                "connection_id": workos_id,
            },
        }
        for cid, workos_id in CONNECTIONS.items()
    ]
    (directory / "connections.yaml").write_text(
        yaml.safe_dump({"version": 1, "connections": connections})
    )
    write_rollout_state(directory / "flags.yaml", RolloutState())
    (directory / "webhook-secret").write_bytes(WEBHOOK_SECRET + b"\n")
    (directory / "api-key").write_text(API_KEY + "\n")
    (directory / "generic-secret").write_bytes(GENERIC_SECRET)
    (directory / "auth0-token").write_bytes(AUTH0_TOKEN)
    document = {
        "legacy": {"url": legacy_url},
        "connection_map": "connections.yaml",
        "flags": flags or {"file": "flags.yaml", "poll_interval_seconds": 0.05},
        "routes": [
            {"path": "/oidc/{connection}/callback", "protocol": "oidc", "identify": ["path"]}
        ],
        "timeouts": {"connect_seconds": 1, "read_seconds": 5},
        "outcomes": {"enabled": True, **outcomes},
    }
    path = directory / "authswitch.yaml"
    path.write_text(yaml.safe_dump(document))
    return path
