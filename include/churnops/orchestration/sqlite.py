"""Airflow's metadata DB on SQLite (the embedded default) with writers that queue instead of failing.

    AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS=churnops.orchestration.sqlite.CONNECT_ARGS

SQLite has one writer. Python's driver opens a transaction as *deferred*: it reads first and
asks for the write lock only at its first write. When another process committed in between,
SQLite refuses the upgrade at once with "database is locked" (the busy timeout does not apply),
and a ``SAVEPOINT`` outside a transaction starts such a transaction too. ``airflow backfill
create`` racing the scheduler hits exactly this: it then deletes the runs it had committed, and
the scheduler, which had picked them up, dies (``ObjectDeletedError``). Here every writing
transaction starts with ``BEGIN IMMEDIATE`` (the write lock up front, waited for up to
``timeout`` seconds), so concurrent writers queue. Reads stay lock-free. PostgreSQL (the compose
stack) needs none of this.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Self

__all__ = ["CONNECT_ARGS", "ImmediateWriteConnection"]

# Statements before which the driver would open a deferred transaction (or SQLite would, for SAVEPOINT).
_OPENS_A_WRITE = ("INSERT", "UPDATE", "DELETE", "REPLACE", "SAVEPOINT")


class _ImmediateWriteCursor(sqlite3.Cursor):
    def _take_write_lock(self, sql: str) -> None:
        if not self.connection.in_transaction and sql.lstrip()[:9].upper().startswith(_OPENS_A_WRITE):
            super().execute("BEGIN IMMEDIATE")

    def execute(self, sql: str, parameters: Any = (), /) -> Self:
        self._take_write_lock(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Self:
        self._take_write_lock(sql)
        return super().executemany(sql, seq_of_parameters)


class ImmediateWriteConnection(sqlite3.Connection):
    """A sqlite3 connection whose writing transactions begin with ``BEGIN IMMEDIATE``."""

    def cursor(self, factory: type[sqlite3.Cursor] = _ImmediateWriteCursor) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory)

    # The shortcuts make their cursor in C, past ``cursor()``.
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:
        return self.cursor().executemany(sql, seq_of_parameters)


CONNECT_ARGS: dict[str, Any] = {"factory": ImmediateWriteConnection, "timeout": 60}
"""``sqlite3.connect`` arguments for ``[database] sql_alchemy_connect_args`` (Airflow adds its own)."""
