"""Lint and template the Helm chart, then validate what it renders (run by deploy/check).

Helm's own engine does the work: helm-python-sdk binds Helm v4's Go SDK as a library (the code
behind `helm lint` and `helm template`, no helm binary or network needed). Each scenario below
is linted with `--strict` and rendered; every rendered manifest is validated against the
Kubernetes OpenAPI schemas (kubernetes-validate, offline, unknown fields are errors), except the
prometheus-operator resources, which the tests check against the files they come from.

    python deploy/helm_check.py [--kubernetes 1.32.0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml

CHART = Path(__file__).resolve().parent / "helm" / "authswitch"
OPERATOR_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})

# Values an operator would give: the defaults; Sentinel with TLS, passwords from Secrets and
# the prometheus-operator resources; a Redis Cluster with a fixed replica count and no push.
SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "sentinel-tls-monitoring": {
        "redis": {
            "url": "rediss://redis/0",
            "topology": "sentinel",
            "sentinel": {
                "masterName": "authswitch",
                "addresses": ["sentinel-0.sentinel:26379", "sentinel-1.sentinel:26379"],
                "tls": True,
                "passwordSecret": {"name": "authswitch-sentinel", "key": "password"},
            },
            "tls": {
                "caSecret": {"name": "redis-ca", "key": "ca.crt"},
                "clientCertSecret": "authswitch-redis-client",
            },
        },
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "config": {"tracing": {"enabled": True}},
        "extraEnv": [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel:4318"}],
    },
    "cluster-fixed-replicas": {
        "redis": {
            "url": "redis://redis-cluster:6379/0",
            "topology": "cluster",
            "keyPrefix": "{authswitch}",
            "pubsub": False,
        },
        "autoscaling": {"enabled": False},
        "replicaCount": 4,
        "connectionMap": {"push": {"enabled": False}},
        "networkPolicy": {"enabled": False},
    },
}


def render(values: dict[str, Any], *, release: str = "prod") -> list[dict[str, Any]]:
    """The chart's manifests for `values`, as `helm template` gives them, parsed."""
    rendered = helm.Chart.load(CHART).render(
        values, name=release, namespace="authswitch", is_install=True
    )
    documents: list[dict[str, Any]] = []
    for name in sorted(rendered):
        if name.endswith(".yaml"):
            documents.extend(d for d in yaml.safe_load_all(rendered[name]) if d)
    return documents


def lint(values: dict[str, Any]) -> list[str]:
    """`helm lint --strict`: the problems (warnings and errors), as Helm words them."""
    report = helm.lint(CHART, values, strict=True)
    problems = [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]
    return problems + list(report.get("errors") or [])


def validate(documents: list[dict[str, Any]], kubernetes: str) -> list[str]:
    problems = []
    for document in documents:
        if document["kind"] in OPERATOR_KINDS:
            continue
        try:
            kubernetes_validate.validate(document, kubernetes, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = f"{document['kind']}/{document['metadata']['name']}"
            problems.append(f"{where}: {exc.message} at {'.'.join(map(str, exc.path))}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes", default="1.32.0", help="schema version to validate with")
    args = parser.parse_args()
    failed = False
    print(f"helm SDK {helm.helm_sdk_version()}, Kubernetes schemas {args.kubernetes}")
    for scenario, values in SCENARIOS.items():
        problems = lint(values)
        documents = [] if problems else render(values)
        problems += validate(documents, args.kubernetes)
        kinds = ", ".join(sorted({d["kind"] for d in documents}))
        print(f"{'FAIL' if problems else 'ok'}  {scenario}: {len(documents)} manifests ({kinds})")
        for problem in problems:
            print(f"      {problem}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
