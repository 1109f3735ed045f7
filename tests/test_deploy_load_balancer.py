"""The shipped load-balancer settings never retry a request on another replica (a callback's
code or SAMLResponse is single-use) and close idle connections before authswitch does."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from proxy.config import ServerLimits

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
NGINX = DEPLOY / "nginx" / "authswitch.conf"


def _ingresses() -> list[dict[str, Any]]:
    found = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if document.get("kind") == "Ingress":
            found.append(document)
    return found


def _nginx_directives() -> str:
    return re.sub(r"#[^\n]*", "", NGINX.read_text())


def test_every_shipped_ingress_turns_retries_to_another_replica_off() -> None:
    ingresses = _ingresses()
    assert ingresses, "the kubernetes manifests ship an Ingress for the legacy host name"
    for ingress in ingresses:
        annotations = ingress["metadata"].get("annotations", {})
        assert annotations.get("nginx.ingress.kubernetes.io/proxy-next-upstream") == "off"
        assert annotations.get("nginx.ingress.kubernetes.io/proxy-next-upstream-tries") == "1"


def test_the_nginx_example_never_retries_and_idles_less_than_authswitch() -> None:
    text = _nginx_directives()
    locations = re.findall(r"location\s+[^{]+\{([^}]*)\}", text)
    assert locations
    for body in locations:
        assert re.search(r"^\s*proxy_next_upstream\s+off;", body, re.M), body
    values = re.findall(r"proxy_next_upstream\s+([^;]+);", text)
    assert set(values) == {"off"}, "no location may turn retries back on"
    idle = re.search(r"upstream\s+\w+\s*\{[^}]*keepalive_timeout\s+(\d+)s;", text)
    assert idle is not None, "the upstream block sets its idle timeout explicitly"
    assert int(idle.group(1)) < ServerLimits().idle_seconds


def test_authswitch_idles_longer_than_common_load_balancers() -> None:
    # ALB, ingress-nginx and nginx upstream keepalive all default to 60 s.
    assert ServerLimits().idle_seconds > 60
    configmap = yaml.safe_load((DEPLOY / "kubernetes" / "configmap.yaml").read_text())
    config = yaml.safe_load(configmap["data"]["authswitch.yaml"])
    assert config.get("server", {}).get("idle_seconds", ServerLimits().idle_seconds) > 60


def test_deploy_docs_state_both_rules() -> None:
    readme = (DEPLOY / "README.md").read_text()
    assert "proxy_next_upstream off" in readme and 'proxy-next-upstream: "off"' in readme
    assert "server.idle_seconds" in readme
