"""docker-compose.yaml, Dockerfile and .env.example, checked without a Docker engine.

The compose file is validated against the compose-spec JSON schema, then its structure is
asserted: the services of Airflow's official 3.x stack, healthchecks and start-up order,
secrets only from .env and never on a command line, a non-superuser database role each for
Airflow and MLflow, MLflow's basic-auth app, the named volumes' mount points owned in the image
and re-owned by airflow-init, a memory limit on the workers, only the UIs (Airflow, MLflow, Mailpit) published and only
on 127.0.0.1.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml

from tests.helpers import ROOT

COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
INIT_SQL = ROOT / "docker" / "postgres" / "init-databases.sh"
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
    "AIRFLOW_DB_PASSWORD",
    "MLFLOW_DB_PASSWORD",
    "MLFLOW_ADMIN_PASSWORD",
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
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
        pytest.skip("check-jsonschema is not installed (requirements-dev.txt has it)")
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_official_airflow_services_plus_postgres_redis_mlflow_a_mail_catcher_and_the_prediction_service(compose):
    services = compose["services"]
    assert set(services) == AIRFLOW_SERVICES | {"postgres", "redis", "mlflow", "mailpit", "churnops-serve"}
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
    # `mlflow server` reads --backend-store-uri from MLFLOW_BACKEND_STORE_URI (its click envvar).
    assert "--backend-store-uri" not in command
    store = mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"]
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
    assert "CREATE DATABASE" in INIT_SQL.read_text()


def test_only_the_uis_and_the_prediction_service_are_published_and_only_on_localhost(compose):
    published = {name: service["ports"] for name, service in compose["services"].items() if service.get("ports")}
    assert set(published) == {"airflow-apiserver", "mlflow", "mailpit", "churnops-serve"}
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


# -- the image's users and volumes ------------------------------------------------------------------


def _image_services(compose: dict) -> dict[str, dict]:
    """The services that run the churnops image (built from the Dockerfile)."""
    return {name: service for name, service in compose["services"].items() if "build" in service}


def _named_volume_targets(compose: dict, service: dict) -> set[str]:
    targets = set()
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source in compose["volumes"]:
            targets.add(target)
    return targets


def _covered(path: str, folders: set[str]) -> bool:
    """Whether ``path`` is one of ``folders`` or lies under one of them."""
    return any(PurePosixPath(path).is_relative_to(folder) for folder in folders)


def _root_commands(dockerfile: str) -> list[list[str]]:
    """The shell commands of the Dockerfile's RUN instructions that run as root, split into words."""
    commands, user = [], "airflow"  # the official image's default user
    for instruction in dockerfile.replace("\\\n", " ").splitlines():
        keyword, _, rest = instruction.strip().partition(" ")
        if keyword == "USER":
            user = rest.strip()
        elif keyword == "RUN" and user in ("root", "0"):
            commands += [shlex.split(part) for part in rest.split("&&")]
    return commands


def test_every_named_volume_mount_point_of_the_image_exists_in_it_owned_by_airflow(compose):
    # Docker creates a missing mount point as root and gives a new volume its mount point's owner.
    targets = set().union(*(_named_volume_targets(compose, s) for s in _image_services(compose).values()))
    assert {"/opt/airflow/logs", "/opt/airflow/churnops", "/mlflow/artifacts", "/mlflow/auth"} <= targets
    made, owned, group_writable = set(), set(), set()
    for words in _root_commands(DOCKERFILE.read_text()):
        if words[:2] == ["mkdir", "-p"]:
            made.update(words[2:])
        elif words[:3] == ["chown", "-R", "airflow:0"]:
            owned.update(words[3:])
        elif words[:3] == ["chmod", "-R", "g+rwX"]:
            group_writable.update(words[3:])
    for target in sorted(targets):
        assert target in made, f"the Dockerfile does not create {target}"
        assert _covered(target, owned), f"the Dockerfile does not chown {target} to airflow:0"
        assert _covered(target, group_writable), f"{target} is not writable by group 0 (any AIRFLOW_UID)"


def test_airflow_init_owns_every_named_volume_as_root_then_works_as_the_user(compose):
    services = compose["services"]
    init = services["airflow-init"]
    assert init["user"] == "0:0"
    targets = set().union(*(_named_volume_targets(compose, s) for s in _image_services(compose).values()))
    assert _named_volume_targets(compose, init) == targets, "airflow-init must mount every volume it re-owns"
    script = init["command"][init["command"].index("-c") + 1]
    lines = [line.strip() for line in script.replace("\\\n", " ").splitlines() if line.strip()]
    chown = next(shlex.split(line) for line in lines if line.startswith("chown"))
    assert chown[:3] == ["chown", "-R", "${AIRFLOW_UID:-50000}:0"]
    assert all(_covered(target, set(chown[3:])) for target in targets), chown
    # Root only for the chown: the migration and the settings load run as ${AIRFLOW_UID}:0.
    drop = next(i for i, line in enumerate(lines) if "setpriv" in line)
    assert '--reuid="${AIRFLOW_UID:-50000}"' in lines[drop] and "--regid=0" in lines[drop]
    assert (
        lines[drop].startswith("exec ") and "/entrypoint" in lines[drop] and "churnops airflow-settings" in lines[drop]
    )
    assert not any("/entrypoint" in line or "churnops airflow-settings" in line for line in lines[:drop])
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    # Everything that writes the volumes starts after airflow-init.
    for name, service in _image_services(compose).items():
        if name != "airflow-init":
            assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name


# -- database roles and credentials ----------------------------------------------------------------


def _command_lines(service: dict) -> list[str]:
    """Every string a service runs as a process's arguments: command, entrypoint, healthcheck."""
    found = []
    for value in (service.get("command"), service.get("entrypoint"), service.get("healthcheck", {}).get("test")):
        if value is not None:
            found += [value] if isinstance(value, str) else [str(word) for word in value]
    return found


def test_no_password_on_any_command_line(compose):
    for name, service in compose["services"].items():
        for word in _command_lines(service):
            assert not re.search(r"\$\{?\w*(PASSWORD|SECRET|_KEY)", word), f"{name}: a secret on its command line"
            assert not re.search(r"\w+://[^/\s:@]+:[^/\s@]+@", word), f"{name}: credentials in a URL: {word}"
            assert not re.search(r"(?i)(--password|passw(or)?d=)", word), f"{name}: a password argument: {word}"
    # The init script hands passwords to psql through its environment, not its arguments.
    psql = re.search(r"^psql [^\n]*(\\\n[^\n]*)*", INIT_SQL.read_text(), re.M)
    assert psql and "PASSWORD" not in psql.group(0), psql


def _database_url(value: str) -> tuple[str, ...]:
    """(user, password reference, database) of a compose database URL (urlsplit trips on ``${X:?…}``)."""
    match = re.fullmatch(r"(?:db\+)?postgresql\+psycopg2://([^:@/]+):(.+)@postgres/(\w+)", value)
    assert match, value
    return match.groups()


def test_airflow_and_mlflow_reach_postgres_as_distinct_non_superuser_roles(compose):
    services = compose["services"]
    superuser = services["postgres"]["environment"]["POSTGRES_USER"]
    airflow_env = services["airflow-scheduler"]["environment"]
    airflow = _database_url(airflow_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert _database_url(airflow_env["AIRFLOW__CELERY__RESULT_BACKEND"]) == airflow
    mlflow = _database_url(services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"])
    assert airflow == ("airflow", "${AIRFLOW_DB_PASSWORD:?set AIRFLOW_DB_PASSWORD in .env}", "airflow")
    assert mlflow == ("mlflow", "${MLFLOW_DB_PASSWORD:?set MLFLOW_DB_PASSWORD in .env}", "mlflow")
    assert superuser not in (airflow[0], mlflow[0])
    # The superuser's password reaches the postgres service only.
    for name, service in services.items():
        if name != "postgres":
            assert "POSTGRES_PASSWORD" not in yaml.safe_dump(service), name
    # Ready over TCP only: the server the init script runs against listens on its socket alone.
    assert services["postgres"]["healthcheck"]["test"][:4] == ["CMD", "pg_isready", "-h", "127.0.0.1"]
    postgres_env = services["postgres"]["environment"]
    assert postgres_env["AIRFLOW_DB_PASSWORD"].startswith("${AIRFLOW_DB_PASSWORD:?")
    assert postgres_env["MLFLOW_DB_PASSWORD"].startswith("${MLFLOW_DB_PASSWORD:?")


def test_the_init_script_makes_both_roles_without_superuser_rights():
    script = INIT_SQL.read_text()
    for role in ("airflow", "mlflow"):
        granted = re.search(rf"ALTER ROLE {role} WITH ([^;]*);", script)
        assert granted, f"no ALTER ROLE {role}"
        rights = granted.group(1).split()
        assert {"LOGIN", "NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE"} <= set(rights), rights
        assert "SUPERUSER" not in rights and "CREATEROLE" not in rights
    assert "CREATE DATABASE %I OWNER %I" in script


# -- MLflow's basic-auth app ----------------------------------------------------------------------


def test_mlflow_runs_the_basic_auth_app_and_the_tasks_log_in_with_env_credentials(compose):
    services = compose["services"]
    mlflow = services["mlflow"]
    command = mlflow["command"]
    assert command[command.index("--app-name") + 1] == "basic-auth"
    env = mlflow["environment"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in mlflow["volumes"]}
    assert mounts[env["MLFLOW_AUTH_CONFIG_PATH"]] == "./docker/mlflow/basic_auth.ini"
    assert env["MLFLOW_AUTH_ADMIN_USERNAME"] == "${MLFLOW_ADMIN_USERNAME:-admin}"
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == "${MLFLOW_ADMIN_PASSWORD:?set MLFLOW_ADMIN_PASSWORD in .env}"
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"].startswith("${MLFLOW_FLASK_SERVER_SECRET_KEY:?")
    for name in AIRFLOW_SERVICES:
        worker_env = services[name]["environment"]
        assert worker_env["MLFLOW_TRACKING_USERNAME"] == env["MLFLOW_AUTH_ADMIN_USERNAME"], name
        assert worker_env["MLFLOW_TRACKING_PASSWORD"] == env["MLFLOW_AUTH_ADMIN_PASSWORD"], name
    # The users' store lives on a volume of its own, not among the artifacts the server hands out.
    import configparser

    ini = configparser.ConfigParser()
    ini.read(ROOT / "docker" / "mlflow" / "basic_auth.ini")
    store = ini["mlflow"]["database_uri"].removeprefix("sqlite:///")
    artifacts = command[command.index("--artifacts-destination") + 1]
    assert _covered(store, _named_volume_targets(compose, mlflow) - {artifacts}), store
    assert ini["mlflow"]["default_permission"] == "NO_PERMISSIONS"
    assert "admin_password" not in ini["mlflow"]
    assert re.search(r"^mlflow\[auth\]==", (ROOT / "requirements.txt").read_text(), re.M)


# -- the prediction service ------------------------------------------------------------------------


def test_churnops_serve_runs_the_image_on_the_registry_and_the_digest_records(compose):
    services = compose["services"]
    serve = services["churnops-serve"]
    assert serve["image"] == services["airflow-worker"]["image"] and "build" in serve
    assert serve["command"] == ["churnops", "serve", "--host", "0.0.0.0"]
    assert serve["entrypoint"][0] == "/usr/bin/dumb-init", "signals reach the server; not `airflow <command>`"
    env, worker_env = serve["environment"], services["airflow-worker"]["environment"]
    for name in ("CHURNOPS_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert env[name] == worker_env[name], name
    # load_registered_model checks each version against churnops' record on the shared volume.
    mounts = {v.split(":")[0]: v.split(":")[1] for v in serve["volumes"]}
    assert mounts["churnops-data"] == env["CHURNOPS_HOME"] and mounts["./include"] == "/opt/churnops/include"
    assert serve["ports"] == ["127.0.0.1:${CHURNOPS_SERVE_PORT:-8000}:8000"]
    assert serve["healthcheck"]["test"] == ["CMD", "curl", "--fail", "http://localhost:8000/health"]
    assert serve["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert not any(k.startswith("AIRFLOW__") for k in env), "no Airflow secret where none is needed"


# -- resources -----------------------------------------------------------------------------------


def test_the_workers_have_a_memory_limit_set_from_env(compose):
    worker = compose["services"]["airflow-worker"]
    limit = re.fullmatch(r"\$\{AIRFLOW_WORKER_MEMORY_LIMIT:-(\d+)g\}", worker["mem_limit"])
    assert limit, worker.get("mem_limit")
    # WORKER_CONCURRENCY 2: a 1M-row training (2.8 GiB) beside a 10M-row monitored day (2.3 GiB).
    assert 5 <= int(limit.group(1)) <= 16
    assert worker["memswap_limit"] == worker["mem_limit"], "no swap beyond the limit: fail fast, not thrash"
    lines = (ROOT / ".env.example").read_text().splitlines()
    example = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert example["AIRFLOW_WORKER_MEMORY_LIMIT"] == f"{limit.group(1)}g"


def test_alerts_go_to_the_development_mail_catcher(compose):
    """The tasks' churnops_alerts connection is plain SMTP to mailpit:1025 (docs/alerts.md), pinned image."""
    import json

    mailpit = compose["services"]["mailpit"]
    assert re.fullmatch(r"axllent/mailpit:v\d+\.\d+\.\d+", mailpit["image"]), "pin Mailpit's version"
    for name in ("airflow-worker", "airflow-scheduler", "airflow-dag-processor"):
        connection = json.loads(compose["services"][name]["environment"]["AIRFLOW_CONN_CHURNOPS_ALERTS"])
        assert connection["conn_type"] == "smtp" and (connection["host"], connection["port"]) == ("mailpit", 1025)
        assert connection["extra"]["disable_ssl"] is connection["extra"]["disable_tls"] is True
        assert connection["extra"]["to"], "recipients, or orchestration.alerts.to in the config"
