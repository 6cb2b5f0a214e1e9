"""docker-compose.yaml, Dockerfile and .env.example, checked without a Docker engine.

The compose file is validated against the compose-spec JSON schema, then its structure is
asserted: the services of Airflow's official 3.x stack, healthchecks and start-up order,
secrets only from .env, only the two UIs published and only on 127.0.0.1.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

COMPOSE = ROOT / "docker-compose.yaml"
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
}
SECRETS = (
    "POSTGRES_PASSWORD",
    "MLFLOW_DB_PASSWORD",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_matches_the_compose_spec_schema():
    checker = Path(sys.executable).parent / "check-jsonschema"
    if not checker.is_file():
        pytest.skip("check-jsonschema is not installed (requirements.txt has it)")
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_official_airflow_services_plus_postgres_redis_and_mlflow(compose):
    services = compose["services"]
    assert set(services) == AIRFLOW_SERVICES | {"postgres", "redis", "mlflow"}
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES - {"airflow-init"}}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-worker": "celery worker",
        "airflow-triggerer": "triggerer",
    }
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    # Tasks per worker come from .env (monitoring shards are CPU-bound); more workers: --scale airflow-worker=N.
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "${AIRFLOW__CELERY__WORKER_CONCURRENCY:-2}"
    assert "@postgres/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert services["postgres"]["image"].startswith("postgres:16")


def test_every_long_running_service_has_a_healthcheck_and_waits_for_its_dependencies(compose):
    services = compose["services"]
    for name, service in services.items():
        if name != "airflow-init":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy", name
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
    assert services["airflow-worker"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_mlflow_server_on_postgres_with_served_artifacts_on_a_volume(compose):
    mlflow = compose["services"]["mlflow"]
    command = mlflow["command"]
    store = command[command.index("--backend-store-uri") + 1]
    assert store.startswith("postgresql+psycopg2://mlflow:") and store.endswith("@postgres/mlflow")
    assert "--serve-artifacts" in command
    destination = command[command.index("--artifacts-destination") + 1]
    assert any(v.split(":")[1] == destination for v in mlflow["volumes"]) and "mlflow-artifacts" in compose["volumes"]
    allowed = command[command.index("--allowed-hosts") + 1].split(",")
    assert "mlflow:5000" in allowed, "workers reach the server by its service name"
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    workers_uri = compose["services"]["airflow-worker"]["environment"]["MLFLOW_TRACKING_URI"]
    assert workers_uri == "http://mlflow:5000"


def test_project_folders_are_mounted_and_settings_loaded_at_init(compose):
    worker = compose["services"]["airflow-worker"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in worker["volumes"]}
    assert mounts["./dags"] == "/opt/airflow/dags" and mounts["./plugins"] == "/opt/airflow/plugins"
    assert mounts["./include"] == "/opt/churnops/include"
    assert "churnops airflow-settings load /opt/churnops/airflow_settings.yaml" in "\n".join(
        compose["services"]["airflow-init"]["command"]
    )
    init_sql = compose["services"]["postgres"]["volumes"]
    assert any("docker-entrypoint-initdb.d" in v for v in init_sql)
    script = ROOT / "docker" / "postgres" / "init-databases.sh"
    assert "CREATE DATABASE mlflow" in script.read_text()


def test_only_the_two_uis_are_published_and_only_on_localhost(compose):
    published = {name: service["ports"] for name, service in compose["services"].items() if service.get("ports")}
    assert set(published) == {"airflow-apiserver", "mlflow"}
    for ports in published.values():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), port


def test_no_secret_in_the_compose_file_every_secret_required_from_env(compose):
    text = COMPOSE.read_text()
    for name in SECRETS:
        assert re.search(r"\$\{" + name + r":\?", text), f"{name} must come from .env (${{{name}:?...}})"
    # Nothing that looks like a literal credential.
    assert not re.search(r"(?i)(password|secret|fernet)[A-Z_]*:\s*['\"]?[A-Za-z0-9+/=_-]{8,}", text)
    assert not re.search(r"postgres(ql)?(\+psycopg2)?://\w+:(?!\$\{)", text), "a literal password in a DB URL"


def test_env_example_holds_only_empty_placeholders_marked_dev_only():
    example = (ROOT / ".env.example").read_text()
    assert "DEV-ONLY" in example
    values = dict(line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#"))
    for name in SECRETS:
        assert values[name] == "", f"{name} must be left empty in .env.example"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_compose_env_generates_every_secret_the_file_requires():
    churnops = Path(sys.executable).parent / "churnops"
    out = subprocess.run([str(churnops), "compose-env"], capture_output=True, text=True, check=True).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if line and not line.startswith("#"))
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    assert required <= set(values) and all(values[name] for name in required)
    second = subprocess.run([str(churnops), "compose-env"], capture_output=True, text=True, check=True).stdout
    assert second != out, "secrets must be generated afresh each time"
    from cryptography.fernet import Fernet

    Fernet(values["AIRFLOW__CORE__FERNET_KEY"].encode())  # a valid key
    assert len(values["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 64


def test_dockerfile_builds_on_the_official_airflow_image_with_the_pinned_stack():
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(r"ARG AIRFLOW_VERSION=(\S+)", text)
    pinned = re.search(r"^apache-airflow==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert match and pinned and match.group(1) == pinned.group(1), "image and requirements.txt disagree on Airflow"
    assert "FROM apache/airflow:${AIRFLOW_VERSION}" in text
    assert "-r /opt/churnops/requirements.txt -c /opt/churnops/constraints.txt" in text
