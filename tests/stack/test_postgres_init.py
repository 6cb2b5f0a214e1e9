"""docker/postgres/init-databases.sh against a real PostgreSQL server of the test's own.

The script is run as the compose stack's postgres container runs it (as the superuser, over the
local socket, the passwords in its environment); then the server is switched to password
authentication over TCP, as the other services reach it, and each role is tried.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.airflow_stack import PrivatePostgres
from tests.helpers import ROOT

SCRIPT = ROOT / "docker" / "postgres" / "init-databases.sh"


@pytest.fixture(scope="module")
def server() -> Iterator[PrivatePostgres]:
    if shutil.which("psql") is None:
        pytest.skip("no psql client")
    try:
        pg = PrivatePostgres()
    except (RuntimeError, KeyError) as exc:
        pytest.skip(f"cannot start a PostgreSQL server here: {exc}")
    try:
        yield pg
    finally:
        pg.remove()


def _run_script(pg: PrivatePostgres, airflow_password: str, mlflow_password: str) -> None:
    env = {
        **os.environ,
        "PGHOST": str(pg.root),  # the local socket, as in the container
        "PGPORT": str(pg.port),
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "postgres",
        "AIRFLOW_DB_PASSWORD": airflow_password,
        "MLFLOW_DB_PASSWORD": mlflow_password,
    }
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _connect(pg: PrivatePostgres, user: str, dbname: str, password: str | None = None, tcp: bool = True):
    import psycopg2

    host = "127.0.0.1" if tcp else str(pg.root)
    return psycopg2.connect(host=host, port=pg.port, user=user, dbname=dbname, password=password, connect_timeout=5)


def _query(pg: PrivatePostgres, sql: str) -> list[tuple]:
    connection = _connect(pg, "postgres", "postgres", tcp=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


def _require_passwords(pg: PrivatePostgres) -> None:
    """Password (SCRAM) authentication over TCP, as the compose services connect; trust on the socket."""
    (pg.data / "pg_hba.conf").write_text(
        "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n"
    )
    pg.stop()
    pg.start()


def test_init_script_gives_airflow_and_mlflow_each_a_plain_role_and_own_database(server):
    import psycopg2

    airflow_password, mlflow_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    _run_script(server, airflow_password, mlflow_password)
    roles = _query(
        server,
        "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin"
        " FROM pg_roles WHERE rolname IN ('airflow', 'mlflow') ORDER BY rolname",
    )
    assert roles == [
        ("airflow", False, False, False, False, False, True),
        ("mlflow", False, False, False, False, False, True),
    ]
    owners = _query(
        server,
        "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname IN ('airflow', 'mlflow') ORDER BY 1",
    )
    assert owners == [("airflow", "airflow"), ("mlflow", "mlflow")]

    _require_passwords(server)
    for role, password in (("airflow", airflow_password), ("mlflow", mlflow_password)):
        connection = _connect(server, role, role, password)
        try:
            with connection.cursor() as cursor:  # the migrations create their tables
                cursor.execute("CREATE TABLE churnops_probe (id int)")
                cursor.execute("SELECT current_user, usesuper FROM pg_user WHERE usename = current_user")
                assert cursor.fetchone() == (role, False)
            connection.rollback()
        finally:
            connection.close()
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            _connect(server, role, role, password + "x")
    # Each role reaches its own database only.
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        _connect(server, "airflow", "mlflow", airflow_password)
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        _connect(server, "mlflow", "airflow", mlflow_password)


def test_init_script_runs_again_and_applies_a_changed_password(server):
    import psycopg2

    first, changed = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    _run_script(server, first, first)
    _run_script(server, changed, first)  # a second run: the roles and databases exist already
    _require_passwords(server)
    _connect(server, "airflow", "airflow", changed).close()
    _connect(server, "mlflow", "mlflow", first).close()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        _connect(server, "airflow", "airflow", first)
    assert _query(server, "SELECT count(*) FROM pg_database WHERE datname IN ('airflow', 'mlflow')") == [(2,)]
