"""deploy/helm/authswitch rendered by Helm's own engine: the manifests are valid, the config they
carry loads with the app, and the pieces agree (ports, probes, secrets, selectors, rules)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from proxy.config import load_config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def _helm_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("helm_check", DEPLOY / "helm_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HELM = _helm_check()


def render(values: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """`Kind/name` -> manifest."""
    documents = HELM.render(values or {})
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in documents}


def pod_of(manifests: dict[str, dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = manifests[f"{kind}/{name}"]["spec"]["template"]
    return spec


def loaded_config(tmp_path: Path, data: dict[str, str]) -> Any:
    for name, text in data.items():
        (tmp_path / name).write_text(text)
    return load_config(tmp_path / "authswitch.yaml")


@pytest.mark.parametrize("scenario", sorted(HELM.SCENARIOS))
def test_every_scenario_lints_strict_and_validates_against_kubernetes(scenario: str) -> None:
    values = HELM.SCENARIOS[scenario]
    assert HELM.lint(values) == []
    documents = HELM.render(values)
    assert HELM.validate(documents, "1.32.0") == []
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget"} <= {
        d["kind"] for d in documents
    }


def test_the_validator_catches_what_kubernetes_would_refuse() -> None:
    documents = HELM.render({})
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = 1
    problems = HELM.validate(documents, "1.32.0")
    assert len(problems) == 1 and "Deployment/prod-authswitch" in problems[0]


@pytest.mark.parametrize("scenario", sorted(HELM.SCENARIOS))
def test_the_rendered_config_loads_with_the_app_and_shares_the_map_and_flags(
    scenario: str, tmp_path: Path
) -> None:
    manifests = render(HELM.SCENARIOS[scenario])
    config = loaded_config(tmp_path, manifests["ConfigMap/prod-authswitch"]["data"])
    assert config.listen.host == "0.0.0.0"
    assert config.flags.backend == "redis"
    assert config.connection_map_redis is not None, "several replicas: the map from Redis"
    assert config.connection_map_redis.url == config.flags.redis.url
    assert config.ops.port == 9464 and config.ops.host == "0.0.0.0"
    assert "@" not in config.flags.redis.url, "no credentials in a ConfigMap"


def test_redis_secrets_are_mounted_where_the_config_reads_them(tmp_path: Path) -> None:
    values = HELM.SCENARIOS["sentinel-tls-monitoring"]
    manifests = render(values)
    config = loaded_config(tmp_path, manifests["ConfigMap/prod-authswitch"]["data"])
    redis = config.flags.redis
    assert redis.topology == "sentinel" and redis.sentinel is not None
    assert redis.sentinel.master_name == "authswitch" and redis.sentinel.tls
    pod = pod_of(manifests, "Deployment", "prod-authswitch")["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    expected = {
        redis.password_file: ("authswitch-redis", "password"),
        redis.sentinel.password_file: ("authswitch-sentinel", "password"),
        redis.ca_file: ("redis-ca", "ca.crt"),
    }
    for path, (secret, key) in expected.items():
        assert path is not None
        source = volumes[mounts[str(path.parent)]]["secret"]
        assert source["secretName"] == secret
        assert {"key": key, "path": path.name} in source["items"]
    for path in (redis.cert_file, redis.key_file):
        assert path is not None
        source = volumes[mounts[str(path.parent)]]["secret"]
        assert source["secretName"] == "authswitch-redis-client"  # tls.crt and tls.key
    assert config.tracing.enabled, "values.config reaches authswitch.yaml"
    assert {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel:4318"} in container["env"]


def test_a_cluster_prefix_without_a_hash_tag_is_refused_at_render() -> None:
    with pytest.raises(Exception, match=r"redis\.keyPrefix must hold a hash tag"):
        HELM.render({"redis": {"topology": "cluster", "keyPrefix": "authswitch"}})
    with pytest.raises(Exception, match=r"sentinel needs redis\.sentinel\.masterName"):
        HELM.render({"redis": {"topology": "sentinel"}})


def test_pods_are_non_root_and_probes_and_ports_agree() -> None:
    manifests = render()
    pod = pod_of(manifests, "Deployment", "prod-authswitch")
    spec = pod["spec"]
    (container,) = spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "ops": 9464}
    for probe, path in (("livenessProbe", "livez"), ("readinessProbe", "readyz")):
        assert container[probe]["httpGet"] == {"path": f"/{path}", "port": "ops"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["automountServiceAccountToken"] is False
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    graceful = int(container["args"][container["args"].index("--graceful-seconds") + 1])
    assert spec["terminationGracePeriodSeconds"] > pre_stop + graceful
    service = manifests["Service/prod-authswitch"]["spec"]
    assert {p["targetPort"] for p in service["ports"]} == {"http", "ops"}
    ingress = manifests["NetworkPolicy/prod-authswitch"]["spec"]["ingress"]
    assert {port["port"] for rule in ingress for port in rule["ports"]} == {"http", "ops"}


def test_the_probes_and_metrics_are_on_the_ops_listener_never_the_public_port() -> None:
    manifests = render({"ops": {"port": 9100}})
    (container,) = pod_of(manifests, "Deployment", "prod-authswitch")["spec"]["containers"]
    for probe, path in (
        ("startupProbe", "/livez"),
        ("livenessProbe", "/livez"),
        ("readinessProbe", "/readyz"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "ops"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["ops"] == 9100
    config = yaml.safe_load(manifests["ConfigMap/prod-authswitch"]["data"]["authswitch.yaml"])
    assert config["ops"] == {"host": "0.0.0.0", "port": 9100}
    assert "metrics" not in config


def test_the_map_push_hook_runs_before_pods_need_the_map_and_is_not_a_proxy_pod(
    tmp_path: Path,
) -> None:
    values = {"connectionMap": {"connections": {"version": 7, "connections": []}}}
    manifests = render(values)
    job = manifests["Job/prod-authswitch-map-push"]
    hook_files = manifests["ConfigMap/prod-authswitch-map-push"]
    for hook in (job, hook_files):
        assert hook["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(hook_files["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    ), "the Job's files exist before the Job"
    pod = job["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    args = container["args"]
    assert args[:2] == ["connections", "push"] and "--if-newer" in args
    assert "prod revision 1" in args[args.index("--reason") + 1]
    selector = manifests["Service/prod-authswitch"]["spec"]["selector"]
    assert not selector.items() <= pod["metadata"]["labels"].items()
    assert hook_files["data"] == manifests["ConfigMap/prod-authswitch"]["data"]
    config = loaded_config(tmp_path, hook_files["data"])
    assert yaml.safe_load((tmp_path / config.connection_map.name).read_text())["version"] == 7


def test_selectors_match_the_pods_and_the_autoscaler_owns_replicas() -> None:
    manifests = render()
    deployment = manifests["Deployment/prod-authswitch"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert "replicas" not in deployment["spec"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        manifests["Service/prod-authswitch"]["spec"]["selector"],
        manifests["PodDisruptionBudget/prod-authswitch"]["spec"]["selector"]["matchLabels"],
        manifests["NetworkPolicy/prod-authswitch"]["spec"]["podSelector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    hpa = manifests["HorizontalPodAutoscaler/prod-authswitch"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "prod-authswitch"
    fixed = render({"autoscaling": {"enabled": False}, "replicaCount": 5})
    assert fixed["Deployment/prod-authswitch"]["spec"]["replicas"] == 5
    assert "HorizontalPodAutoscaler/prod-authswitch" not in fixed


def test_a_config_change_rolls_the_pods() -> None:
    def checksum(values: dict[str, Any]) -> str:
        pod = pod_of(render(values), "Deployment", "prod-authswitch")
        value: str = pod["metadata"]["annotations"]["checksum/config"]
        return value

    assert checksum({}) != checksum({"config": {"logging": {"level": "debug"}}})


def test_operator_resources_come_from_the_shipped_rules() -> None:
    chart_rules = DEPLOY / "helm" / "authswitch" / "files" / "alerts.yaml"
    shipped = DEPLOY / "prometheus" / "alerts.yaml"
    assert chart_rules.read_text() == shipped.read_text(), "copy deploy/prometheus/alerts.yaml"
    manifests = render(HELM.SCENARIOS["sentinel-tls-monitoring"])
    rule = manifests["PrometheusRule/prod-authswitch"]
    assert rule["spec"] == yaml.safe_load(shipped.read_text())
    monitor = manifests["ServiceMonitor/prod-authswitch"]["spec"]
    assert monitor["endpoints"][0]["port"] == "ops"
    # The rules select job="authswitch": the job label comes from the Service's name label.
    assert re.search(r'job="authswitch"', shipped.read_text())
    service_labels = manifests["Service/prod-authswitch"]["metadata"]["labels"]
    assert service_labels[monitor["jobLabel"]] == "authswitch"
