"""deploy/ and the Dockerfile: the validators pass, and the pieces agree with each other and
with the app (ports, probe paths, shutdown timing, mounted files, metric names, runbook)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _cross_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cross_check", DEPLOY / "cross_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _exec_form(dockerfile_stage: str, instruction: str) -> list[str]:
    found = re.search(rf"^{instruction} (\[.+\])$", dockerfile_stage, re.M)
    assert found, f"{instruction} must be in exec (JSON) form"
    value: list[str] = json.loads(found.group(1))
    return value


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@pytest.fixture(scope="module")
def configmap() -> dict[str, str]:
    data: dict[str, str] = _yaml(K8S / "configmap.yaml")["data"]
    return data


@pytest.fixture(scope="module")
def app_config(configmap: dict[str, str]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(configmap["authswitch.yaml"])
    return config


@pytest.fixture(scope="module")
def pod() -> dict[str, Any]:
    spec: dict[str, Any] = _yaml(K8S / "deployment.yaml")["spec"]["template"]
    return spec


@pytest.fixture(scope="module")
def container(pod: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def test_deploy_check_passes() -> None:
    env = dict(os.environ)
    # The tools live beside this interpreter (the venv's bin), whatever PATH CI has.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHON"] = sys.executable
    result = subprocess.run(
        [str(DEPLOY / "check")], capture_output=True, text=True, env=env, timeout=110
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout


def test_probes_hit_the_ops_listener_and_never_the_public_port(
    container: dict[str, Any], app_config: dict[str, Any]
) -> None:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == app_config["listen"]["port"]
    assert ports["ops"] == app_config["ops"]["port"]
    assert app_config["listen"]["host"] == "0.0.0.0"  # reachable by the kubelet and Service
    assert app_config["ops"]["host"] == "0.0.0.0"  # the kubelet probes the pod's address
    for probe, path in (
        ("livenessProbe", "/livez"),
        ("startupProbe", "/livez"),
        ("readinessProbe", "/readyz"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "ops"}, probe


def test_ops_port_agrees_everywhere(
    pod: dict[str, Any], container: dict[str, Any], app_config: dict[str, Any]
) -> None:
    port = app_config["ops"]["port"]
    assert {"name": "ops", "containerPort": port, "protocol": "TCP"} in container["ports"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    compose_config = _yaml(DEPLOY / "compose" / "authswitch.yaml")
    scrape = _yaml(DEPLOY / "prometheus" / "prometheus.yml")["scrape_configs"]
    (job,) = [s for s in scrape if s["job_name"] == "authswitch"]
    assert job["static_configs"][0]["targets"] == [f"authswitch:{compose_config['ops']['port']}"]
    ops_service = _yaml(K8S / "service-ops.yaml")["spec"]["ports"]
    assert ops_service == [{"name": "ops", "port": port, "targetPort": "ops", "protocol": "TCP"}]
    public = _yaml(K8S / "service.yaml")["spec"]["ports"]
    assert [p["targetPort"] for p in public] == ["http"]  # the ops port is not public
    policy = _yaml(K8S / "networkpolicy.yaml")["spec"]["ingress"]
    open_to_all = [rule for rule in policy if "from" not in rule]
    assert [p["port"] for rule in open_to_all for p in rule["ports"]] == ["http"]


def test_pod_runs_non_root_with_a_read_only_root(
    pod: dict[str, Any], container: dict[str, Any]
) -> None:
    dockerfile_user = re.findall(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.M)[-1]
    pod_security = pod["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == int(dockerfile_user) != 0
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["automountServiceAccountToken"] is False
    # Python's tempfile (and prometheus-client's multiprocess directory) need a writable /tmp.
    assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}


def test_termination_grace_outlasts_pre_stop_and_graceful_drain(
    pod: dict[str, Any], container: dict[str, Any]
) -> None:
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = int(command[1])
    graceful = int(_option(container["args"], "--graceful-seconds"))
    assert pod["spec"]["terminationGracePeriodSeconds"] > pre_stop + graceful
    assert pre_stop >= 5  # endpoint removal has to reach the load balancers first


def test_configmap_holds_exactly_the_files_the_config_names(
    configmap: dict[str, str], app_config: dict[str, Any], container: dict[str, Any]
) -> None:
    config_path = Path(_option(container["args"], "--config"))
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["config"]["mountPath"] == str(config_path.parent)
    assert "subPath" not in mounts["config"]  # subPath mounts never see ConfigMap updates
    referenced = {config_path.name, app_config["connection_map"]}
    if app_config["flags"].get("backend", "file") == "file":
        referenced.add(app_config["flags"]["file"])
    assert set(configmap) == referenced


@pytest.mark.parametrize("source", ["kubernetes", "compose"])
def test_shipped_configs_load_with_the_app(source: str, tmp_path: Path) -> None:
    from proxy.config import load_config

    if source == "kubernetes":
        files = _yaml(K8S / "configmap.yaml")["data"]
    else:
        files = {p.name: p.read_text() for p in (DEPLOY / "compose").glob("*.yaml")}
    (tmp_path / "authswitch.yaml").write_text(files.pop("authswitch.yaml"))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    config = load_config(tmp_path / "authswitch.yaml")
    assert config.listen.host == "0.0.0.0"
    assert config.flags.backend == "redis"
    if source == "kubernetes":  # the password comes from a mounted Secret, never the config
        assert config.flags.redis.password_file is not None
        assert "@" not in config.flags.redis.url


def test_redis_password_file_comes_from_a_secret(
    pod: dict[str, Any], container: dict[str, Any], app_config: dict[str, Any]
) -> None:
    password_file = Path(app_config["flags"]["redis"]["password_file"])
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(password_file.parent)]
    secret = volumes[mount["name"]]["secret"]
    assert {"key": "password", "path": password_file.name} in secret["items"]
    assert "redis" in secret["secretName"]
    assert "://" in app_config["flags"]["redis"]["url"]
    assert "@" not in app_config["flags"]["redis"]["url"]  # no credentials in a ConfigMap


def test_selectors_and_targets_point_at_the_pods(pod: dict[str, Any]) -> None:
    labels = pod["metadata"]["labels"]
    deployment = _yaml(K8S / "deployment.yaml")
    assert "replicas" not in deployment["spec"]  # owned by the HorizontalPodAutoscaler
    selectors = [
        deployment["spec"]["selector"]["matchLabels"],
        _yaml(K8S / "service.yaml")["spec"]["selector"],
        _yaml(K8S / "poddisruptionbudget.yaml")["spec"]["selector"]["matchLabels"],
        _yaml(K8S / "networkpolicy.yaml")["spec"]["podSelector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= labels.items()
    hpa = _yaml(K8S / "horizontalpodautoscaler.yaml")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["minReplicas"] >= 2
    pdb = _yaml(K8S / "poddisruptionbudget.yaml")["spec"]
    assert pdb["maxUnavailable"] < hpa["minReplicas"]


def test_compose_stack_has_its_services_and_drains_on_stop() -> None:
    compose = _yaml(DEPLOY / "compose.yaml")
    services = compose["services"]
    assert {"authswitch", "redis", "legacy", "new-provider", "prometheus"} <= set(services)
    authswitch = services["authswitch"]
    config_path = Path(_option(authswitch["command"], "--config"))
    assert f"./compose:{config_path.parent}:ro" in authswitch["volumes"]
    config = _yaml(DEPLOY / "compose" / "authswitch.yaml")
    assert (DEPLOY / "compose" / config["connection_map"]).is_file()
    assert config["legacy"]["url"].startswith("http://legacy:")
    assert config["flags"]["redis"]["url"].startswith("redis://redis:")
    graceful = int(_option(authswitch["command"], "--graceful-seconds"))
    assert int(authswitch["stop_grace_period"].rstrip("s")) > graceful
    for name in ("legacy", "new-provider"):
        port = re.search(r"port=(\d+)", services[name]["entrypoint"][-1])
        assert port is not None and f"{port.group(1)}:{port.group(1)}" in services[name]["ports"]


def test_dockerfile_installs_like_the_readme_and_ships_no_build_tools() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    build, final = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    readme = (ROOT / "README.md").read_text()
    deploy_section = readme.split("## Put it in front of a legacy host", 1)[1]
    assert "pip install -c constraints.txt ." in deploy_section
    install = re.search(
        r"/pip install (?:--no-cache-dir )?-c constraints\.txt '?\.(?:\[tracing\])?'?(?:\s|$)",
        build,
    )
    assert install, "the build stage must install like the README, from the lock"
    assert re.search(r"^COPY .*\bconstraints\.txt \./$", build, re.M)
    assert "pip install" not in final and "apt-get" not in final
    assert not re.search(r"\b(gcc|build-essential|make)\b", final)
    assert re.search(r"^USER \d+:\d+$", final, re.M)
    assert "127.0.0.1:9464/livez" in final.split("HEALTHCHECK", 1)[1]
    assert "AUTHSWITCH__OPS__HOST=0.0.0.0" in final  # probes reach a container's ops port
    assert _exec_form(final, "ENTRYPOINT") == ["authswitch"]
    assert _exec_form(final, "CMD")[:3] == ["serve", "--config", "/etc/authswitch/authswitch.yaml"]


def test_every_alert_has_a_runbook_section() -> None:
    runbook = (DEPLOY / "README.md").read_text()
    headings = {h.strip().lower() for h in re.findall(r"^#+ (.+)$", runbook, re.M)}
    for rule in _cross_check().load_rules(DEPLOY / "prometheus" / "alerts.yaml"):
        if "alert" not in rule:
            continue
        assert rule["alert"].lower() in headings, rule["alert"]
        assert rule["annotations"]["runbook"] == f"deploy/README.md#{rule['alert'].lower()}"
        assert rule["labels"]["severity"] in {"critical", "warning"}


def test_exported_metric_names_are_what_the_app_registers() -> None:
    from prometheus_client import REGISTRY

    # The app's metrics, every feature's included: a serving worker imports a feature's
    # module (and registers its metrics) only when its config turns it on.
    import proxy.app
    import proxy.broker.metrics
    import proxy.flow_store
    import proxy.outcomes.counts
    import proxy.outcomes.event_intake
    import proxy.outcomes.redis_counts  # noqa: F401

    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
    registered = {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in suffixes.get(family.type, [""])
    }
    exported = {n for n, state in _cross_check().METRICS.items() if state == "exported"}
    assert exported <= registered
    # Names the app registers and the rules could use are listed too (planned ones included).
    ours = {n for n in registered if n.startswith("authswitch_")}
    assert ours <= set(_cross_check().METRICS)


def test_metric_name_extraction_reads_promql_like_prometheus() -> None:
    names = _cross_check().metric_names(
        'sum by (connection, le) (rate(authswitch_callbacks_total{outcome=~"a|b"}[5m] offset 1h))'
        " / on (connection) group_left (x) (conn:rec:rate10m > 0.5e3)"
        ' or count_values("version", authswitch_flags_version) and absent(up{job="x"} == 1)'
    )
    assert names == {
        "authswitch_callbacks_total",
        "conn:rec:rate10m",
        "authswitch_flags_version",
        "up",
    }


def test_cross_check_reports_broken_dashboards_and_kustomizations(tmp_path: Path) -> None:
    cross_check = _cross_check()
    dashboard = json.loads((DEPLOY / "grafana" / "authswitch.json").read_text())
    panel = next(p for p in dashboard["panels"] if p["type"] != "row")
    panel["targets"][0]["expr"] = "rate(authswitch_callbacks_totl[5m])"
    del panel["datasource"]
    broken = tmp_path / "authswitch.json"
    broken.write_text(json.dumps(dashboard))
    problems = cross_check.check_dashboard(broken, set(cross_check.METRICS))
    assert any("unknown metric 'authswitch_callbacks_totl'" in p for p in problems)
    assert any("no datasource" in p for p in problems)

    (tmp_path / "kustomization.yaml").write_text("resources: [deployment.yaml]\n")
    (tmp_path / "service.yaml").write_text("kind: Service\n")
    problems = cross_check.check_kustomization(tmp_path)
    assert problems == [
        "kustomization.yaml lists 'deployment.yaml', which does not exist",
        "'service.yaml' is not listed in kustomization.yaml",
    ]


def test_compose_stand_in_command_is_one_python_program() -> None:
    services = _yaml(DEPLOY / "compose.yaml")["services"]
    for name in ("legacy", "new-provider"):
        entrypoint = services[name]["entrypoint"]
        assert entrypoint[:3] == ["python", "-I", "-c"]
        code = entrypoint[3]
        compile(code, name, "exec")
        assert "create_service_provider_app" in code


def test_the_image_lock_pins_every_dependency_within_pyproject() -> None:
    """constraints.txt (written by .ci/lock) must satisfy pyproject.toml, or the image build
    and CI fail or install something the project never declared it works with."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = Version(version)
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {requirement.name}=={pins[name]}, outside {spec!r}: run .ci/lock"
        )
    assert "authswitch" not in pins
