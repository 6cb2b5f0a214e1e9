"""churnops.orchestration.sqlite: the connection for Airflow's SQLite metadata DB, where a read-then-write
transaction never loses its write."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from churnops.orchestration.sqlite import CONNECT_ARGS, ImmediateWriteConnection


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "airflow.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE dag_run (run_id TEXT PRIMARY KEY)")
    return path


def _savepoint_read_then_write(backfill: sqlite3.Connection, scheduler: sqlite3.Connection) -> None:
    """What `airflow backfill create` does per run while the scheduler commits a write meanwhile."""
    backfill.execute("SAVEPOINT sa_savepoint_1")
    backfill.execute("SELECT count(*) FROM dag_run").fetchone()
    try:
        scheduler.execute("INSERT INTO dag_run VALUES ('scheduled__2026-11-23')")
        scheduler.commit()
    except sqlite3.OperationalError:
        scheduler.rollback()  # with the lock taken up front, the other writer waits (here: gives up at once)
    backfill.execute("INSERT INTO dag_run VALUES ('backfill__2026-11-09')")
    backfill.execute("RELEASE SAVEPOINT sa_savepoint_1")
    backfill.commit()


def test_the_plain_driver_loses_a_read_then_write_transaction_to_a_concurrent_writer(db):
    backfill, scheduler = sqlite3.connect(db, timeout=0.2), sqlite3.connect(db, timeout=0.2)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        _savepoint_read_then_write(backfill, scheduler)


def test_immediate_write_connection_takes_the_lock_first_so_the_transaction_completes(db):
    backfill = sqlite3.connect(db, timeout=0.2, factory=ImmediateWriteConnection)
    scheduler = sqlite3.connect(db, timeout=0.2, factory=ImmediateWriteConnection)
    _savepoint_read_then_write(backfill, scheduler)
    assert [r for (r,) in scheduler.execute("SELECT run_id FROM dag_run")] == ["backfill__2026-11-09"]
    # The writer that waited can write once the lock is free.
    scheduler.execute("INSERT INTO dag_run VALUES ('scheduled__2026-11-23')")
    scheduler.commit()
    assert backfill.execute("SELECT count(*) FROM dag_run").fetchone() == (2,)


def test_reads_take_no_lock_and_sqlalchemy_transactions_work_through_the_connect_args(db):
    engine = sa.create_engine(f"sqlite:///{db}", connect_args=dict(CONNECT_ARGS))
    writer = sqlite3.connect(db, factory=ImmediateWriteConnection)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT count(*) FROM dag_run")).scalar()
        writer.execute("INSERT INTO dag_run VALUES ('a')")  # a pure read holds no lock
        writer.commit()
        with conn.begin_nested():
            conn.execute(sa.text("INSERT INTO dag_run VALUES ('b')"))
        conn.rollback()  # the savepoint sat inside a real transaction: nothing was committed early
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO dag_run VALUES ('c')"))
    assert sorted(r for (r,) in writer.execute("SELECT run_id FROM dag_run")) == ["a", "c"]
