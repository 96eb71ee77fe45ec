"""The deployment files: docker-compose.yml, the Dockerfile, the Kubernetes manifests, the
Prometheus alert rules and the Grafana dashboard.

There is no Docker engine or Kubernetes cluster in the test environment, so each file is checked
offline: against its published schema with an independent validator (check-jsonschema with the
Compose Specification schema shipped in the compose-go module; kubernetes-validate with the
Kubernetes OpenAPI schemas; hadolint), and against the project itself (the commands exist in the
CLI parser, every NEWSROOM_* variable is a Settings field and the values parse, alert rules and
dashboard panels use metrics the service exports). `make deploy-tools` (part of `make test`)
installs the validators into tests/tools/.venv-deploy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from newsroom_notify.cli import build_parser
from newsroom_notify.settings import Settings, SmtpSecurity

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ALERTS_FILE = ROOT / "deploy/prometheus/alerts.yml"
PROMETHEUS_FILE = ROOT / "deploy/prometheus/prometheus.yml"
DASHBOARD_FILE = ROOT / "deploy/grafana/newsroom-notify.json"
KUSTOMIZATIONS = ["deploy/k8s/base", "deploy/k8s/overlays/example"]

DEPLOY_VENV = ROOT / "tests/tools/.venv-deploy"
KUBERNETES_VERSION = "1.33.0"

# What the service exports (newsroom_notify.metrics), by Prometheus type.
COUNTERS = {
    "newsroom_events_consumed_total",
    "newsroom_deadletters_total",
    "newsroom_notifications_total",
    "newsroom_digests_total",
    "newsroom_consumer_rewinds_total",
    "newsroom_undelivered_records_total",
    "newsroom_oversized_records_total",
    "newsroom_state_capped_total",
}
GAUGES = {"newsroom_table_keys", "newsroom_consumer_lag"}
HISTOGRAMS = {"newsroom_notification_latency_seconds"}
SERVICE_SERIES = (
    COUNTERS
    | GAUGES
    | {f"{h}{suffix}" for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)
# Series of other exporters the rules may use: Prometheus' own `up`, kube-state-metrics.
OTHER_SERIES = {"up", "kube_pod_container_status_restarts_total"}

IMAGE = "newsroom-notify:dev"
DEMO_IMAGE = "newsroom-notify-demo:dev"  # the service plus its development harness


# --- helpers -----------------------------------------------------------------------------------


def _tool(name: str) -> Path:
    path = DEPLOY_VENV / name
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} missing: `make deploy-tools` installs it")
    return path


def _compose_schema() -> Path:
    found = sorted(DEPLOY_VENV.glob("compose-spec-*.json"))
    if not found:
        pytest.fail("compose-spec schema missing: `make deploy-tools` fetches it")
    return found[-1]


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=False
    )


def _check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return _run(_tool("bin/check-jsonschema"), "--schemafile", _compose_schema(), path)


def _kubernetes_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return _run(
        _tool("bin/kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, "--quiet", path
    )


def settings_field(env_name: str) -> FieldInfo:
    """The Settings field an environment variable sets (KeyError if it sets none)."""
    if not env_name.startswith("NEWSROOM_"):
        raise KeyError(env_name)
    model: type[BaseModel] = Settings
    parts = env_name.removeprefix("NEWSROOM_").lower().split("__")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            raise KeyError(env_name)
        if depth == len(parts) - 1:
            return field
        nested = field.annotation
        if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
            raise KeyError(env_name)
        model = nested
    raise KeyError(env_name)


def settings_from_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a container with exactly this NEWSROOM_* environment would build them."""
    with monkeypatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("NEWSROOM_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        return Settings()


_PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset"}
_PROMQL_WORDS |= {"group_left", "group_right", "inf", "nan"}


def promql_series(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords, labels left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery selectors
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", expr):
        if expr[match.end() :].lstrip().startswith("("):
            continue  # a function call
        if match.group().lower() not in _PROMQL_WORDS:
            names.add(match.group())
    return names


def test_settings_field_maps_env_vars_and_rejects_typos(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_field("NEWSROOM_KAFKA__BOOTSTRAP_SERVERS").annotation is str
    assert settings_field("NEWSROOM_WEB_PORT").annotation is int
    for typo in (
        "NEWSROOM_KAFKA__BOOTSTRAP_SERVER",  # misspelt field
        "NEWSROOM_KAFKA_BOOTSTRAP_SERVERS",  # single underscore: no nesting
        "NEWSROOM_WEB_PORT__X",  # nesting under a plain field
        "KAFKA__BOOTSTRAP_SERVERS",  # no prefix
    ):
        with pytest.raises(KeyError):
            settings_field(typo)
    with pytest.raises(ValueError, match="SASL"):
        settings_from_env({"NEWSROOM_KAFKA__SECURITY_PROTOCOL": "SASL_SSL"}, monkeypatch)


# --- docker compose ----------------------------------------------------------------------------


VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>[^}]*))?\}")


def _interpolated(value: Any) -> Any:
    """``value`` as docker compose reads it with no variable set: ``${X:-d}`` is d."""
    if isinstance(value, str):
        return VARIABLE.sub(lambda m: m["default"] or "", value)
    if isinstance(value, dict):
        return {k: _interpolated(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolated(v) for v in value]
    return value


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())  # resolves anchors, <<
    return loaded


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any]) -> dict[str, Any]:
    interpolated: dict[str, Any] = _interpolated(raw_compose)
    return interpolated


def test_every_image_is_a_variable_defaulting_to_the_official_image(
    raw_compose: dict[str, Any],
) -> None:
    """Mirrors and registry-free stand-ins replace images through variables; unset, the stack
    uses the official images."""
    defaults = {}
    for name, service in raw_compose["services"].items():
        match = VARIABLE.fullmatch(service["image"])
        assert match, f"{name}: image {service['image']!r} is not a variable"
        assert match["default"], f"{name}: image {service['image']!r} has no default"
        defaults[name] = (match["name"], match["default"])
    assert defaults["kafka"] == ("KAFKA_IMAGE", "apache/kafka:4.1.1")
    assert defaults["prometheus"][0] == "PROMETHEUS_IMAGE"
    assert defaults["prometheus"][1].startswith("prom/prometheus:v")
    assert defaults["mailpit"][0] == "MAILPIT_IMAGE"
    assert re.fullmatch(r"axllent/mailpit:v\d+\.\d+\.\d+", defaults["mailpit"][1])
    project = ("topics", "worker-1", "worker-2", "api", "mailer")
    assert {defaults[n] for n in project} == {("NEWSROOM_IMAGE", IMAGE)}
    assert defaults["demo"] == ("NEWSROOM_DEMO_IMAGE", DEMO_IMAGE)
    # The Dockerfile's base is a build argument with the same default as the Dockerfile's ARG.
    instructions = _instructions(DOCKERFILE.read_text())
    dockerfile_args = dict(a.split("=", 1) for op, a in instructions if op == "ARG" and "=" in a)
    build_args = raw_compose["services"]["api"]["build"]["args"]
    match = VARIABLE.fullmatch(build_args["PYTHON_IMAGE"])
    assert match
    assert (match["name"], match["default"]) == (
        "PYTHON_IMAGE",
        dockerfile_args["PYTHON_IMAGE"],
    )


def _project_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if s.get("image") in {IMAGE, DEMO_IMAGE}}


def test_only_the_demo_image_carries_the_development_harness(compose: dict[str, Any]) -> None:
    """The demo runs development tooling (package newsroom_dev); the services run the image
    without it. Both are built from the Dockerfile, so they need different tags: under one,
    whichever compose built last would run everywhere."""
    harness = {
        name: service["build"]["args"].get("HARNESS", "")
        for name, service in _project_services(compose).items()
    }
    assert harness.pop("demo") == "true"
    assert set(harness.values()) == {""}
    assert len(harness) == 5
    images = {name: service["image"] for name, service in _project_services(compose).items()}
    assert images.pop("demo") == DEMO_IMAGE
    assert set(images.values()) == {IMAGE}
    # The Dockerfile installs services/dev only when asked to, and not asked by default.
    instructions = _instructions(DOCKERFILE.read_text())
    assert ("ARG", 'HARNESS=""') in instructions
    [install] = [a for op, a in instructions if op == "RUN" and "pip install" in a]
    assert 'if [ "$HARNESS" = true ]; then set -- . ./services/dev; fi' in install
    assert install.count("services/dev") == 1


def test_compose_file_matches_the_compose_specification() -> None:
    result = _check_compose(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "worker-1", "restart_policy"), "always"),  # unknown service key
        (("services", "api", "ports"), {"8080": 8080}),  # wrong type
        (("services", "worker-1", "depends_on", "topics", "condition"), "service_done"),  # enum
    ],
)
def test_compose_validator_rejects_a_broken_file(
    compose: dict[str, Any], tmp_path: Path, path: tuple[str, ...], value: object
) -> None:
    broken = json.loads(json.dumps(compose))
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(yaml.safe_dump(broken))
    result = _check_compose(bad)
    assert result.returncode != 0
    assert path[-1] in result.stdout, result.stdout  # the error names the offending key


def test_compose_runs_kafka_topics_workers_api_prometheus_and_a_demo(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["kafka"]["healthcheck"]["test"]
    assert services["topics"]["command"] == ["topics"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    workers = [n for n, s in _project_services(compose).items() if s["command"] == ["worker"]]
    assert len(workers) == 2
    for name in workers:
        assert services[name]["depends_on"]["topics"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["api"]["command"] == ["api"]
    assert services["demo"]["command"] == ["demo", "--publish-only"]
    assert services["demo"]["profiles"] == ["demo"]
    assert services["prometheus"]["image"].startswith("prom/prometheus:")


def test_kafka_keeps_its_log_on_a_named_volume(compose: dict[str, Any]) -> None:
    """The official image writes to /tmp/kafka-logs unless KAFKA_LOG_DIRS says otherwise: the
    broker's data must be on the compose volume, so `down -v` (and only that) resets it."""
    kafka = compose["services"]["kafka"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"]
    mounts = dict(reversed(v.split(":")[:2]) for v in kafka["volumes"])
    assert mounts.get(log_dirs) in compose["volumes"]


def test_every_worker_has_its_own_rocksdb_volume_and_host_name(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    workers = {n: s for n, s in _project_services(compose).items() if s["command"] == ["worker"]}
    volumes = []
    for service in workers.values():
        data_dir = settings_from_env(service["environment"], monkeypatch).data_dir
        mounts = [v.split(":") for v in service["volumes"]]
        volumes += [source for source, target in mounts if target == data_dir]
    assert len(set(volumes)) == len(workers), volumes
    assert set(volumes) <= set(compose["volumes"])
    assert len({s["hostname"] for s in workers.values()}) == len(workers)


def test_compose_commands_exist_in_the_cli(compose: dict[str, Any]) -> None:
    parser = build_parser()
    for name, service in _project_services(compose).items():
        try:
            parser.parse_args(service["command"])
        except SystemExit:
            pytest.fail(f"compose service {name}: `newsroom-notify {service['command']}` fails")


def test_compose_env_vars_are_settings_and_parse(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, service in _project_services(compose).items():
        env = service["environment"]
        for var in env:
            try:
                settings_field(var)
            except KeyError:
                pytest.fail(f"compose service {name}: {var} is not a Settings field")
        settings = settings_from_env(env, monkeypatch)
        assert settings.kafka.bootstrap_servers == "kafka:19092"
        # Dev-only secrets, and visibly so.
        for key in [*settings.tokens.secret_keys, *settings.api.jwt_keys]:
            assert key.get_secret_value().startswith("dev-only-")


def test_compose_api_reaches_a_worker_and_publishes_its_port(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose["services"]
    api = settings_from_env(services["api"]["environment"], monkeypatch)
    assert api.api.host == "0.0.0.0"
    assert f"{api.api.port}:{api.api.port}" in services["api"]["ports"]
    host, port = api.api.worker_url.removeprefix("http://").split(":")
    worker = settings_from_env(services[host]["environment"], monkeypatch)
    assert (worker.web_host, worker.web_port) == ("0.0.0.0", int(port))


def test_compose_publishes_only_the_api_to_readers(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15 item 1: the workers' internal port and every /metrics stay on the compose
    network; what is published beyond the host's loopback is the API port alone."""
    published = {}
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            host_side = str(mapping).rsplit(":", 1)[0]
            if not host_side.startswith("127.0.0.1:"):
                published[name] = mapping
    api = settings_from_env(compose["services"]["api"]["environment"], monkeypatch)
    assert published == {"api": f"{api.api.port}:{api.api.port}"}
    assert api.api.metrics_port != api.api.port
    for service in _project_services(compose).values():
        settings = settings_from_env(service["environment"], monkeypatch)
        # A development stack, with dev-only keys: it must say so or the service refuses them.
        assert settings.dev_mode
        assert settings.dev_key_settings()


def test_compose_mailer_sends_to_mailpit_and_links_to_the_published_api(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18 item 2: the mailer relays to the Mailpit service's SMTP port (no TLS, no AUTH:
    a local catcher), once Mailpit is healthy; its links point at the API where a reader on the
    host reaches it; Mailpit's web UI and SMTP are published on the loopback only."""
    services = compose["services"]
    mailer = settings_from_env(services["mailer"]["environment"], monkeypatch)
    assert services["mailer"]["command"] == ["mailer"]
    assert mailer.mailer.smtp_host == "mailpit"
    assert mailer.mailer.smtp_security == SmtpSecurity.NONE
    assert mailer.mailer.smtp_password is None
    assert services["mailer"]["depends_on"]["mailpit"]["condition"] == "service_healthy"
    assert "9465" in " ".join(services["mailer"]["healthcheck"]["test"])
    assert mailer.mailer.metrics_port == 9465
    mailpit = services["mailpit"]
    # Mailpit listens for SMTP on 1025 and serves its web UI and API on 8025 (its defaults).
    assert mailer.mailer.smtp_port == 1025
    assert set(mailpit["ports"]) == {"127.0.0.1:1025:1025", "127.0.0.1:8025:8025"}
    assert mailpit["healthcheck"]["test"]
    api = settings_from_env(services["api"]["environment"], monkeypatch)
    assert mailer.api.public_url == f"http://127.0.0.1:{api.api.port}"
    assert f"{api.api.port}:{api.api.port}" in services["api"]["ports"]


def test_the_mailpit_stand_in_builds_the_version_compose_pins(raw_compose: dict[str, Any]) -> None:
    """The registry-free Mailpit is built from the Go module proxy at the version of the
    official image the compose file defaults to."""
    match = VARIABLE.fullmatch(raw_compose["services"]["mailpit"]["image"])
    assert match
    script = (ROOT / "deploy/docker/build-local-images.sh").read_text()
    built = re.search(r"^mailpit_version=\$\{MAILPIT_VERSION:-(v[\d.]+)\}$", script, re.M)
    assert built, "build-local-images.sh pins no Mailpit version"
    assert match["default"] == f"axllent/mailpit:{built[1]}"


def test_prometheus_scrapes_every_worker_and_the_api(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = yaml.safe_load(PROMETHEUS_FILE.read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        if job.get("metrics_path", "/metrics") == "/metrics"
        for static in job["static_configs"]
        for target in static["targets"]
    }
    expected = set()
    for name, service in _project_services(compose).items():
        settings = settings_from_env(service["environment"], monkeypatch)
        if service["command"] == ["worker"]:
            expected.add(f"{name}:{settings.web_port}")
        elif service["command"] == ["api"]:
            expected.add(f"{name}:{settings.api.metrics_port}")  # internal, not the API port
        elif service["command"] == ["mailer"]:
            assert settings.mailer.metrics_host == "0.0.0.0"  # reachable from Prometheus
            expected.add(f"{name}:{settings.mailer.metrics_port}")
    assert targets == expected
    mounted = [v.split(":")[0] for v in compose["services"]["prometheus"]["volumes"]]
    assert {(ROOT / m).resolve() for m in mounted} == {PROMETHEUS_FILE, ALERTS_FILE}
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


# --- Dockerfile --------------------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    lines = [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def test_dockerfile_passes_hadolint() -> None:
    result = _run(_tool("bin/hadolint"), "--no-color", DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && apt-get install gcc\nUSER root\n")
    assert _run(_tool("bin/hadolint"), "--no-color", bad).returncode != 0


def test_dockerfile_builds_without_a_registry_frontend() -> None:
    """A `# syntax=` line makes BuildKit pull its frontend from Docker Hub: no build without
    a registry (seen on the first real `docker compose build`)."""
    first = DOCKERFILE.read_text().splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first, re.IGNORECASE)


def test_final_image_is_slim_non_root_with_data_volume_and_healthcheck() -> None:
    instructions = _instructions(DOCKERFILE.read_text())
    stages = [i for i, (op, _) in enumerate(instructions) if op == "FROM"]
    assert len(stages) >= 2, "multi-stage build"
    final = instructions[stages[-1] :]
    ops: dict[str, str] = {}
    for op, arg in final:  # all arguments of an instruction, if it occurs more than once
        ops[op] = f"{ops.get(op, '')} {arg}".strip()
    assert ops["USER"].split(":")[0] not in {"root", "0"}
    assert "HEALTHCHECK" in ops
    assert "/data" in ops["VOLUME"]
    assert "NEWSROOM_DATA_DIR=/data" in ops["ENV"]
    assert "COPY" in ops
    assert "--from=build" in ops["COPY"]
    # Build tools stay in the build stage.
    assert not [arg for op, arg in final if op == "RUN" and re.search(r"apt-get|gcc|pip ", arg)]
    args = dict(a.split("=", 1) for op, a in instructions if op == "ARG" and "=" in a)
    assert args["PYTHON_IMAGE"].endswith(("-slim", "-slim-bookworm", "-slim-trixie"))


# --- Kubernetes --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each kustomization rendered by kustomize into a file."""
    out = {}
    for kustomization in KUSTOMIZATIONS:
        result = _run(_tool("bin/kustomize"), "build", ROOT / kustomization)
        assert result.returncode == 0, result.stderr
        path = tmp_path_factory.mktemp("k8s") / "rendered.yaml"
        path.write_text(result.stdout)
        out[kustomization] = path
    return out


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def _workloads(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (d for d in docs if d["kind"] in {"StatefulSet", "Deployment"})


def _container_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The NEWSROOM_* environment of a container; secret values become placeholders."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config_map = _one(docs, "ConfigMap", source["configMapRef"]["name"])
        env.update(config_map["data"])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in var.get("valueFrom", {}):
            field = settings_field(var["name"])
            is_list = typing.get_origin(field.annotation) is list
            env[var["name"]] = '["placeholder"]' if is_list else "placeholder"
    return {k: v for k, v in env.items() if k.startswith("NEWSROOM_")}


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_rendered_manifests_match_the_kubernetes_schemas(
    rendered: dict[str, Path], kustomization: str
) -> None:
    result = _kubernetes_validate(rendered[kustomization])
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {d["kind"] for d in _docs(rendered[kustomization])}
    assert {"StatefulSet", "Deployment", "Service", "ConfigMap", "PodDisruptionBudget"} <= kinds


@pytest.mark.parametrize(
    ("kind", "mutate"),
    [
        ("StatefulSet", lambda d: d["spec"].update(replicas="three")),
        ("Deployment", lambda d: d["spec"]["template"]["spec"].update(restartPolicy=1)),
        ("Service", lambda d: d["spec"].update(clusterIPs="None", portz=[])),
    ],
)
def test_kubernetes_validator_rejects_broken_manifests(
    rendered: dict[str, Path], tmp_path: Path, kind: str, mutate: Any
) -> None:
    docs = _docs(rendered["deploy/k8s/base"])
    mutate(next(d for d in docs if d["kind"] == kind))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump_all(docs))
    result = _kubernetes_validate(bad)
    assert result.returncode != 0
    assert kind.lower() in result.stdout.lower() + result.stderr.lower()


def test_kustomize_rejects_a_kustomization_with_a_missing_resource(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    assert _run(_tool("bin/kustomize"), "build", tmp_path).returncode != 0


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_k8s_env_vars_are_settings_and_parse(
    rendered: dict[str, Path], kustomization: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _docs(rendered[kustomization])
    parser = build_parser()
    for workload in _workloads(docs):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            try:
                parser.parse_args(container["args"])
            except SystemExit:
                pytest.fail(f"{workload['metadata']['name']}: args {container['args']} fail")
            env = _container_env(docs, container)
            for var in env:
                try:
                    settings_field(var)
                except KeyError:
                    pytest.fail(f"{workload['metadata']['name']}: {var} is not a Settings field")
            settings_from_env(env, monkeypatch)  # raises on a bad value or incomplete SASL


def test_secrets_come_from_secret_refs_never_from_config_maps(rendered: dict[str, Path]) -> None:
    docs = _docs(rendered["deploy/k8s/overlays/example"])
    secret_vars = {
        "NEWSROOM_KAFKA__SASL_PASSWORD",
        "NEWSROOM_TOKENS__SECRET_KEYS",
        "NEWSROOM_API__JWT_KEYS",
    }
    for config_map in (d for d in docs if d["kind"] == "ConfigMap"):
        assert not secret_vars & set(config_map.get("data", {})), config_map["metadata"]["name"]
    assert not [d for d in docs if d["kind"] == "Secret"]
    for workload in _workloads(docs):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            from_secrets = {
                v["name"] for v in container["env"] if "secretKeyRef" in v.get("valueFrom", {})
            }
            assert from_secrets == secret_vars, workload["metadata"]["name"]


def _port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    return int(next(p["containerPort"] for p in container["ports"] if p.get("name") == port))


def test_worker_statefulset_keeps_state_and_probes_the_worker(
    rendered: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _docs(rendered["deploy/k8s/overlays/example"])
    worker = _one(docs, "StatefulSet", "newsroom-notify-worker")
    pod = worker["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    settings = settings_from_env(_container_env(docs, container), monkeypatch)
    claims = {c["metadata"]["name"] for c in worker["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts[settings.data_dir] in claims
    assert settings.web_host == "0.0.0.0"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert _port(container, container[probe]["httpGet"]["port"]) == settings.web_port
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == settings.web_port
    assert annotations["prometheus.io/path"] == "/metrics"
    # Longer than a Kafka session timeout, so a stopping worker commits before it is killed.
    assert pod["terminationGracePeriodSeconds"] >= 3 * settings.kafka.session_timeout_s
    headless = _one(docs, "Service", worker["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert worker["spec"]["replicas"] <= settings.topics.partitions


def test_api_deployment_serves_its_port_and_reaches_the_workers(
    rendered: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _docs(rendered["deploy/k8s/overlays/example"])
    api = _one(docs, "Deployment", "newsroom-notify-api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    settings = settings_from_env(_container_env(docs, container), monkeypatch)
    assert container["args"] == ["api"]
    assert settings.api.host == "0.0.0.0"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
        assert _port(container, container[probe]["httpGet"]["port"]) == settings.api.port
    annotations = api["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == settings.api.metrics_port
    assert _port(container, "metrics") == settings.api.metrics_port != settings.api.port
    service = _one(docs, "Service", "newsroom-notify-api")
    pod_labels = api["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    host, port = settings.api.worker_url.removeprefix("http://").split(":")
    worker_service = _one(docs, "Service", host)
    assert int(port) in {p["port"] for p in worker_service["spec"]["ports"]}
    assert "clusterIP" not in worker_service["spec"]  # ready workers only, load-balanced


def test_network_policies_keep_internal_ports_from_readers(rendered: dict[str, Path]) -> None:
    """Issue 15 item 1: a worker's port accepts only workers, the API and Prometheus; the
    API's metrics port only Prometheus; the API's own port anyone (the ingress)."""
    docs = _docs(rendered["deploy/k8s/overlays/example"])
    worker = _one(docs, "NetworkPolicy", "newsroom-notify-worker-internal")["spec"]
    assert worker["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
    assert worker["policyTypes"] == ["Ingress"]
    (rule,) = worker["ingress"]
    sources = [
        (("namespaceSelector" in peer), peer["podSelector"]["matchLabels"]) for peer in rule["from"]
    ]
    assert sources == [
        (False, {"app.kubernetes.io/name": "newsroom-notify", "app.kubernetes.io/component": c})
        for c in ("worker", "api")
    ] + [(True, {"app.kubernetes.io/name": "prometheus"})]
    api = _one(docs, "NetworkPolicy", "newsroom-notify-api")["spec"]
    public, metrics = api["ingress"]
    assert [p["port"] for p in public["ports"]] == ["http"]
    assert "from" not in public
    assert [p["port"] for p in metrics["ports"]] == ["metrics"]
    assert [p["podSelector"]["matchLabels"] for p in metrics["from"]] == [
        {"app.kubernetes.io/name": "prometheus"}
    ]


def test_every_container_has_requests_limits_and_runs_as_non_root(
    rendered: dict[str, Path],
) -> None:
    for workload in _workloads(_docs(rendered["deploy/k8s/overlays/example"])):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert "memory" in container["resources"]["limits"]


def test_disruption_budgets_select_the_workloads(rendered: dict[str, Path]) -> None:
    docs = _docs(rendered["deploy/k8s/overlays/example"])
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    covered = set()
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"].items()
        matching = [
            w["metadata"]["name"]
            for w in _workloads(docs)
            if selector <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matching) == 1, budget["metadata"]["name"]
        covered.update(matching)
    assert covered == {"newsroom-notify-worker", "newsroom-notify-api"}


def test_alert_rules_are_shipped_as_a_config_map(rendered: dict[str, Path]) -> None:
    for path in rendered.values():
        rules = _one(_docs(path), "ConfigMap", "newsroom-notify-prometheus-rules")
        assert rules["data"]["alerts.yml"] == ALERTS_FILE.read_text()


# --- alert rules and dashboard -----------------------------------------------------------------


def test_promql_series_finds_metric_names_only() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, type) (rate(a_bucket{type="x"}[5m]))) > 1e-3 '
        "and on (type) b_total offset 5m unless c"
    )
    assert promql_series(expr) == {"a_bucket", "b_total", "c"}


def _alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alert_rules_use_only_exported_metrics() -> None:
    used = set()
    for rule in _alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        series = promql_series(rule["expr"])
        assert series, rule["alert"]
        assert series <= SERVICE_SERIES | OTHER_SERIES, (rule["alert"], series)
        used |= series
    # What the issue asks alerts for: lag, dead letters, latency, restarts.
    assert {
        "newsroom_consumer_lag",
        "newsroom_deadletters_total",
        "newsroom_notification_latency_seconds_bucket",
        "kube_pod_container_status_restarts_total",
    } <= used


def test_dashboard_parses_and_charts_every_exported_metric() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    used = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            series = promql_series(target["expr"])
            assert series <= SERVICE_SERIES | OTHER_SERIES, (panel["title"], series)
            used |= series
    assert used >= COUNTERS | GAUGES | {f"{h}_bucket" for h in HISTOGRAMS}


def test_the_service_exports_the_metrics_the_rules_and_dashboard_use() -> None:
    from prometheus_client import REGISTRY  # noqa: PLC0415

    import newsroom_notify.metrics  # noqa: F401, PLC0415 - registers the metrics

    exported = {}
    for family in REGISTRY.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        exported[name] = family.type
    expected = (
        dict.fromkeys(COUNTERS, "counter")
        | dict.fromkeys(GAUGES, "gauge")
        | dict.fromkeys(HISTOGRAMS, "histogram")
    )
    missing = {n: t for n, t in expected.items() if exported.get(n) != t}
    assert not missing, f"not exported by newsroom_notify.metrics: {missing}"
