"""Checks across deploy/ files that no single linter sees; run by deploy/check.

- Grafana dashboard: valid JSON, every panel placed on the grid with a datasource and queries,
  template variables defined, every PromQL expression naming only known metrics.
- Prometheus rules: every expression naming only known metrics.
- Kustomization: lists exactly the manifests in its folder.
- Compose file: valid against the Compose Specification schema (schemas/compose-spec.json),
  mounts that exist, stand-in programs that compile.
- Connection maps shipped in the ConfigMap and the compose folder load with authswitch's own
  loader.

With --promql-out FILE it also writes every dashboard query as a recording rule, Grafana
variables replaced, so that `promtool check rules FILE` parses them as Prometheus would.
Prints one line per problem and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

DEPLOY = Path(__file__).resolve().parent

# Metric names the rules and the dashboard may use. "exported": the app registers it
# (tests/test_deploy.py keeps this true). "planned": designed here for the flag backends
# ahead of the code; move each to "exported" once the app registers it.
METRICS: dict[str, str] = {
    "authswitch_callbacks_total": "exported",
    "authswitch_callback_duration_seconds_bucket": "exported",
    "authswitch_callback_duration_seconds_count": "exported",
    "authswitch_callback_duration_seconds_sum": "exported",
    "authswitch_decision_duration_seconds_bucket": "exported",
    "authswitch_decision_duration_seconds_count": "exported",
    "authswitch_decision_duration_seconds_sum": "exported",
    "authswitch_forward_duration_seconds_bucket": "exported",
    "authswitch_forward_duration_seconds_count": "exported",
    "authswitch_forward_duration_seconds_sum": "exported",
    "authswitch_passthrough_total": "exported",
    "authswitch_refused_connections_total": "exported",  # client heads refused, by reason
    "authswitch_flags_version": "exported",  # gauge; -1 while no state is known
    "authswitch_flags_stale_seconds": "exported",  # gauge; 0 while the backend is readable
    "authswitch_flags_state_known": "exported",  # gauge; 0: no state ever, all legacy
    "authswitch_redis_up": "exported",  # gauge; 1: the last Redis operation succeeded
    "authswitch_connection_map_version": "exported",  # gauge; -1 while no map is known
    "authswitch_connection_map_connections": "exported",  # gauge
    "authswitch_connection_map_stale_seconds": "exported",  # gauge; 0 while readable
    "authswitch_broker_hook_calls_total": "exported",  # password broker, by door and outcome
    "authswitch_broker_provisioning_total": "exported",
    "authswitch_broker_hook_duration_seconds_bucket": "exported",
    "authswitch_broker_hook_duration_seconds_count": "exported",
    "authswitch_broker_hook_duration_seconds_sum": "exported",
    "authswitch_flow_lookups_total": "exported",  # flow affinity, by where the answer came from
    "authswitch_flow_records_total": "exported",  # flows recorded, by provider and store
    "authswitch_login_outcomes_total": "exported",  # per connection, side, source, outcome
    "authswitch_outcome_observations_dropped_total": "exported",
    "authswitch_outcome_store_errors_total": "exported",
    "authswitch_outcome_events_total": "exported",
    "authswitch_outcome_webhook_requests_total": "exported",
    "authswitch_outcome_source_last_seen_timestamp_seconds": "exported",  # gauge
    "authswitch_guard_verdicts_total": "exported",
    "authswitch_guard_kills_total": "exported",
    "authswitch_guard_conclusive": "exported",  # gauge; 1 while failing or silent
    "authswitch_guard_rounds_skipped_total": "exported",
    "authswitch_guard_leader": "exported",  # gauge
    "authswitch_shadow_checks_total": "exported",  # shadow readiness, by connection and result
    "authswitch_shadow_reasons_total": "exported",
    "authswitch_shadow_dropped_total": "exported",  # samples not checked: queue full, CPU budget
    "authswitch_shadow_errors_total": "exported",
    "authswitch_shadow_check_duration_seconds_bucket": "exported",
    "authswitch_shadow_check_duration_seconds_count": "exported",
    "authswitch_shadow_check_duration_seconds_sum": "exported",
    "authswitch_build_info": "exported",  # gauge, always 1; labels version and python
    "up": "prometheus",
    "ALERTS": "prometheus",
}
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range", "__range_s", "__name__"}
COMPOSE_SERVICES = {"authswitch", "redis", "legacy", "new-provider", "prometheus"}

_PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$])[A-Za-z_:][\w:]*(?!\w)")
_VARIABLE = re.compile(r"\$\{?(\w+)")


def metric_names(expr: str) -> set[str]:
    """The metric (or recording rule) names a PromQL expression selects."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges, subqueries, $__rate_interval
    text = _GROUPING.sub(" ", text)  # label lists
    names = set()
    for found in _IDENTIFIER.finditer(text):
        rest = text[found.end() :].lstrip()
        if rest.startswith("("):  # a function or an aggregation
            continue
        if found.group().lower() in _PROMQL_KEYWORDS:
            continue
        names.add(found.group())
    return names


def check_expr(expr: str, known: set[str], where: str) -> list[str]:
    unknown = sorted(metric_names(expr) - known)
    return [f"{where}: unknown metric {name!r} in: {expr.strip()}" for name in unknown]


def load_rules(path: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def check_rules(path: Path, known: set[str]) -> list[str]:
    problems = []
    for rule in load_rules(path):
        name = rule.get("alert") or rule.get("record")
        problems += check_expr(rule["expr"], known, f"{path.name} {name}")
    return problems


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # collapsed rows hold their panels


def dashboard_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, expr) for every query of the dashboard: panels and annotations."""
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield (
                f"panel {panel.get('title')!r} query {target.get('refId')}",
                target.get("expr", ""),
            )
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            yield f"annotation {annotation.get('name')!r}", annotation["expr"]


def check_dashboard(path: Path, known: set[str]) -> list[str]:
    try:
        dashboard = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return [f"{path.name}: not valid JSON: {exc}"]
    problems = []
    for key, kind in (("title", str), ("uid", str), ("schemaVersion", int), ("panels", list)):
        if not isinstance(dashboard.get(key), kind):
            problems.append(f"{path.name}: top-level {key!r} missing or not a {kind.__name__}")
    if problems:
        return problems
    variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    ids: set[int] = set()
    for panel in _panels(dashboard["panels"]):
        where = f"{path.name} panel {panel.get('title')!r}"
        if not isinstance(panel.get("id"), int) or panel["id"] in ids:
            problems.append(f"{where}: missing or repeated id")
        ids.add(panel.get("id", -1))
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in "xywh") or grid["x"] + grid["w"] > 24:
            problems.append(f"{where}: gridPos must have integer x, y, w, h within 24 columns")
        if panel.get("type") == "row":
            continue
        if not panel.get("datasource", {}).get("uid"):
            problems.append(f"{where}: no datasource")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        ref_ids = [t.get("refId") for t in targets]
        if len(set(ref_ids)) != len(ref_ids) or None in ref_ids:
            problems.append(f"{where}: targets need distinct refIds")
        for target in targets:
            if not target.get("expr", "").strip():
                problems.append(f"{where} query {target.get('refId')}: empty expr")
    for where, expr in dashboard_exprs(dashboard):
        problems += check_expr(expr, known, f"{path.name} {where}")
        for variable in set(_VARIABLE.findall(expr)) - variables - GRAFANA_BUILTINS:
            problems.append(f"{path.name} {where}: undefined variable ${variable}")
    return problems


def write_promql_rules(dashboard_path: Path, out: Path) -> None:
    """Every dashboard query as a recording rule, for `promtool check rules` to parse."""
    dashboard = json.loads(dashboard_path.read_text())
    substitutes = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
    rules = []
    for index, (_, expr) in enumerate(dashboard_exprs(dashboard)):
        text = _VARIABLE.sub(lambda m: substitutes.get(m.group(1), ".*"), expr)
        text = text.replace("{.*}", "")  # a bare ${var} outside a matcher, should one appear
        rules.append({"record": f"dashboard:query_{index}", "expr": text})
    out.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))


def check_kustomization(folder: Path) -> list[str]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    listed = set(kustomization.get("resources", []))
    present = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
    problems = [f"kustomization.yaml lists {n!r}, which does not exist" for n in listed - present]
    problems += [f"{n!r} is not listed in kustomization.yaml" for n in sorted(present - listed)]
    return problems


def check_compose(path: Path, schema_path: Path) -> list[str]:
    compose = yaml.safe_load(path.read_text())
    schema = json.loads(schema_path.read_text())
    problems = [
        f"{path.name} {error.json_path}: {error.message}"
        for error in jsonschema.Draft7Validator(schema).iter_errors(compose)
    ]
    services = compose.get("services", {})
    missing = COMPOSE_SERVICES - set(services)
    if missing:
        problems.append(f"{path.name}: services missing: {sorted(missing)}")
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith(".") and not (path.parent / source).exists():
                problems.append(f"{path.name} {name}: mounted path {source!r} does not exist")
        entrypoint = service.get("entrypoint") or []
        if entrypoint[:1] == ["python"] and "-c" in entrypoint:
            code = entrypoint[entrypoint.index("-c") + 1]
            try:
                compile(code, f"{path.name}:{name}", "exec")
            except SyntaxError as exc:
                problems.append(f"{path.name} {name}: python -c does not compile: {exc}")
    return problems


def check_connection_maps(configmap_path: Path, compose_folder: Path) -> list[str]:
    from connection_map import ConnectionMapError, load_connection_map

    configmap = yaml.safe_load(configmap_path.read_text())
    problems = []
    with tempfile.TemporaryDirectory() as scratch:
        embedded = Path(scratch) / "connections.yaml"
        embedded.write_text(configmap["data"]["connections.yaml"])
        for label, map_path in (
            (f"{configmap_path.name} connections.yaml", embedded),
            (f"{compose_folder.name}/connections.yaml", compose_folder / "connections.yaml"),
        ):
            try:
                load_connection_map(map_path)
            except ConnectionMapError as exc:
                problems.append(f"{label}: {exc}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--promql-out", type=Path, help="write dashboard queries as rules here")
    args = parser.parse_args()

    dashboard = DEPLOY / "grafana" / "authswitch.json"
    rules = DEPLOY / "prometheus" / "alerts.yaml"
    records = {rule["record"] for rule in load_rules(rules) if "record" in rule}
    known = set(METRICS) | records
    problems = check_rules(rules, known) + check_dashboard(dashboard, known)
    problems += check_kustomization(DEPLOY / "kubernetes")
    problems += check_compose(DEPLOY / "compose.yaml", DEPLOY / "schemas" / "compose-spec.json")
    problems += check_connection_maps(DEPLOY / "kubernetes" / "configmap.yaml", DEPLOY / "compose")
    if args.promql_out and not problems:
        write_promql_rules(dashboard, args.promql_out)
    for problem in problems:
        print(f"cross_check: {problem}", file=sys.stderr)
    planned = sorted(name for name, state in METRICS.items() if state == "planned")
    print(f"cross_check: {len(problems)} problem(s); planned metrics in use: {', '.join(planned)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
