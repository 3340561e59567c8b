"""The triggers that keep ``SearchValue``, ``RunCount`` and ``KeyCount`` in step with the executions table.

Why triggers: an execution is written by launch, the worker every epoch, sync (bulk inserts and
updates), archive and delete, and the features beside the core, often with ``update()`` or bulk
operations that no Django signal sees. A trigger sees every one of them, in the same transaction.

* On the executions table: a new run's values are inserted (``expansion.rows_sql``) and its status
  counted (+1 in ``RunCount``); a change of a column its values come from updates them in place
  (an upsert: a run's epoch rewrites the numbers that changed and nothing else) and deletes the
  names it no longer has; a change of status, archived or experiment moves its count.
* On ``SearchValue``: each value that arrives, leaves or changes state is +1/-1 in ``KeyCount``.

PostgreSQL's insert triggers are per statement (a bulk insert of 1,000 runs is one journal row per
group, not one per value); SQLite has only row triggers.

SQLite drops a table's triggers when Django rebuilds the table (most ``ALTER TABLE``s there), so
``install`` runs after every ``migrate`` (``experiments.search``) and re-creates what is missing.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

from experiments.search.expansion import PG_FUNCTIONS, PG_FUNCTIONS_DROP, rows_sql

EXECUTIONS = "experiments_execution"
VALUES = "experiments_searchvalue"
COUNTS = "experiments_runcount"
KEYS = "experiments_keycount"
COLUMNS = "execution_id, experiment_id, state, key, number, text"
# The columns whose change rewrites a run's values; those whose change moves its counts.
VALUE_COLUMNS = ("params", "summary", "test_metrics", "system", "evaluation", "tags", "size_bytes",
                 "status", "archived", "experiment_id")  # fmt: skip
COUNT_COLUMNS = ("status", "archived", "experiment_id")
TRIGGERS = {
    EXECUTIONS: ("gymnos_values_insert", "gymnos_values_update", "gymnos_counts_update", "gymnos_counts_delete"),
    VALUES: ("gymnos_keys_insert", "gymnos_keys_update", "gymnos_keys_delete"),
}


def _changed(columns: tuple[str, ...], distinct: str) -> str:
    return " OR ".join(f"OLD.{column} {distinct} NEW.{column}" for column in columns)


_UPSERT_SET = (
    "experiment_id = excluded.experiment_id, state = excluded.state, number = excluded.number, text = excluded.text"
)


def _upsert_where(table: str) -> str:
    return " OR ".join(
        f"{table}.{column} IS DISTINCT FROM excluded.{column}"
        for column in ("experiment_id", "state", "number", "text")
    )


# --- PostgreSQL ---------------------------------------------------------------------------------


def _pg_statements() -> list[str]:
    key_delta = "experiment_id, key, state, number IS NOT NULL"
    moved = (
        "(a.experiment_id, a.state, a.number IS NOT NULL) "
        "IS DISTINCT FROM (b.experiment_id, b.state, b.number IS NOT NULL)"
    )
    return [
        PG_FUNCTIONS,
        f"""
CREATE OR REPLACE FUNCTION gymnos_values_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {VALUES} ({COLUMNS}) {rows_sql("postgresql", "e", "new_rows AS e, ")}
  ON CONFLICT (execution_id, key) DO NOTHING;
  INSERT INTO {COUNTS} (experiment_id, status, archived, delta)
    SELECT experiment_id, status, archived, count(*) FROM new_rows GROUP BY 1, 2, 3;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION gymnos_values_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH fresh AS ({rows_sql("postgresql")}),
  gone AS (DELETE FROM {VALUES} AS stale WHERE stale.execution_id = NEW.id
           AND NOT EXISTS (SELECT 1 FROM fresh WHERE fresh.key = stale.key))
  INSERT INTO {VALUES} AS kept ({COLUMNS}) SELECT * FROM fresh
  ON CONFLICT (execution_id, key) DO UPDATE SET {_UPSERT_SET} WHERE {_upsert_where("kept")};
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION gymnos_counts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {COUNTS} (experiment_id, status, archived, delta)
    VALUES (OLD.experiment_id, OLD.status, OLD.archived, -1);
  IF TG_OP = 'UPDATE' THEN
    INSERT INTO {COUNTS} (experiment_id, status, archived, delta)
      VALUES (NEW.experiment_id, NEW.status, NEW.archived, 1);
  END IF;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION gymnos_keys_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {KEYS} (experiment_id, key, state, numeric, delta)
    SELECT {key_delta}, count(*) FROM added GROUP BY 1, 2, 3, 4;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION gymnos_keys_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {KEYS} (experiment_id, key, state, numeric, delta)
    SELECT {key_delta}, -count(*) FROM removed GROUP BY 1, 2, 3, 4;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION gymnos_keys_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {KEYS} (experiment_id, key, state, numeric, delta)
    SELECT b.experiment_id, b.key, b.state, b.number IS NOT NULL, -count(*)
      FROM old_values AS b JOIN new_values AS a ON a.id = b.id
      WHERE {moved}
      GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT a.experiment_id, a.key, a.state, a.number IS NOT NULL, count(*)
      FROM old_values AS b JOIN new_values AS a ON a.id = b.id
      WHERE {moved}
      GROUP BY 1, 2, 3, 4;
  RETURN NULL;
END $$;
""",
        f"""CREATE TRIGGER gymnos_values_insert AFTER INSERT ON {EXECUTIONS}
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gymnos_values_inserted()""",
        f"""CREATE TRIGGER gymnos_values_update AFTER UPDATE OF {", ".join(VALUE_COLUMNS)} ON {EXECUTIONS}
            FOR EACH ROW WHEN ({_changed(VALUE_COLUMNS, "IS DISTINCT FROM")})
            EXECUTE FUNCTION gymnos_values_updated()""",
        f"""CREATE TRIGGER gymnos_counts_update AFTER UPDATE OF {", ".join(COUNT_COLUMNS)} ON {EXECUTIONS}
            FOR EACH ROW WHEN ({_changed(COUNT_COLUMNS, "IS DISTINCT FROM")})
            EXECUTE FUNCTION gymnos_counts_changed()""",
        f"""CREATE TRIGGER gymnos_counts_delete AFTER DELETE ON {EXECUTIONS}
            FOR EACH ROW EXECUTE FUNCTION gymnos_counts_changed()""",
        f"""CREATE TRIGGER gymnos_keys_insert AFTER INSERT ON {VALUES}
            REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION gymnos_keys_inserted()""",
        f"""CREATE TRIGGER gymnos_keys_update AFTER UPDATE ON {VALUES}
            REFERENCING OLD TABLE AS old_values NEW TABLE AS new_values
            FOR EACH STATEMENT EXECUTE FUNCTION gymnos_keys_updated()""",
        f"""CREATE TRIGGER gymnos_keys_delete AFTER DELETE ON {VALUES}
            REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION gymnos_keys_deleted()""",
    ]


_PG_FUNCTIONS_DROP = ("gymnos_values_inserted()", "gymnos_values_updated()", "gymnos_counts_changed()",
                      "gymnos_keys_inserted()", "gymnos_keys_deleted()", "gymnos_keys_updated()",
                      *PG_FUNCTIONS_DROP)  # fmt: skip

# --- SQLite -------------------------------------------------------------------------------------


def _lite_statements() -> list[str]:
    count = f"INSERT INTO {COUNTS} (experiment_id, status, archived, delta)"
    key = f"INSERT INTO {KEYS} (experiment_id, key, state, numeric, delta)"
    moved = (
        "OLD.experiment_id IS NOT NEW.experiment_id OR OLD.state IS NOT NEW.state OR "
        "(OLD.number IS NULL) IS NOT (NEW.number IS NULL)"
    )
    return [
        f"""CREATE TRIGGER gymnos_values_insert AFTER INSERT ON {EXECUTIONS} BEGIN
              INSERT OR IGNORE INTO {VALUES} ({COLUMNS}) {rows_sql("sqlite")};
              {count} VALUES (NEW.experiment_id, NEW.status, NEW.archived, 1);
            END""",
        f"""CREATE TRIGGER gymnos_values_update AFTER UPDATE OF {", ".join(VALUE_COLUMNS)}
            ON {EXECUTIONS} WHEN {_changed(VALUE_COLUMNS, "IS NOT")} BEGIN
              INSERT INTO {VALUES} ({COLUMNS}) SELECT * FROM ({rows_sql("sqlite")}) WHERE true
              ON CONFLICT (execution_id, key) DO UPDATE SET {_UPSERT_SET}
              WHERE {_upsert_where(VALUES).replace("IS DISTINCT FROM", "IS NOT")};
              DELETE FROM {VALUES} WHERE execution_id = NEW.id
                AND key NOT IN (SELECT key FROM ({rows_sql("sqlite")}));
            END""",
        f"""CREATE TRIGGER gymnos_counts_update AFTER UPDATE OF {", ".join(COUNT_COLUMNS)}
            ON {EXECUTIONS} WHEN {_changed(COUNT_COLUMNS, "IS NOT")} BEGIN
              {count} VALUES (OLD.experiment_id, OLD.status, OLD.archived, -1);
              {count} VALUES (NEW.experiment_id, NEW.status, NEW.archived, 1);
            END""",
        f"""CREATE TRIGGER gymnos_counts_delete AFTER DELETE ON {EXECUTIONS} BEGIN
              {count} VALUES (OLD.experiment_id, OLD.status, OLD.archived, -1);
            END""",
        f"""CREATE TRIGGER gymnos_keys_insert AFTER INSERT ON {VALUES} BEGIN
              {key} VALUES (NEW.experiment_id, NEW.key, NEW.state, NEW.number IS NOT NULL, 1);
            END""",
        f"""CREATE TRIGGER gymnos_keys_update AFTER UPDATE ON {VALUES} WHEN {moved} BEGIN
              {key} VALUES (OLD.experiment_id, OLD.key, OLD.state, OLD.number IS NOT NULL, -1);
              {key} VALUES (NEW.experiment_id, NEW.key, NEW.state, NEW.number IS NOT NULL, 1);
            END""",
        f"""CREATE TRIGGER gymnos_keys_delete AFTER DELETE ON {VALUES} BEGIN
              {key} VALUES (OLD.experiment_id, OLD.key, OLD.state, OLD.number IS NOT NULL, -1);
            END""",
    ]


# --- indexes only one database can say ---------------------------------------------------------

# The experiment page's default order (newest first, runs not started yet last, then the newest id)
# as one index scan, from either end (its last page reads it backwards). SQLite's DESC already puts
# NULLs last and its CREATE INDEX takes no NULLS LAST; PostgreSQL's DESC puts them first.
START_INDEX = "execution_by_start"
_INDEXES = {
    "postgresql": f"CREATE INDEX IF NOT EXISTS {START_INDEX} ON {EXECUTIONS} "
    "(experiment_id, started_at DESC NULLS LAST, id DESC)",
    "sqlite": f"CREATE INDEX IF NOT EXISTS {START_INDEX} ON {EXECUTIONS} (experiment_id, started_at DESC, id DESC)",
}

# --- installing ---------------------------------------------------------------------------------


def _present(connection: BaseDatabaseWrapper) -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'gymnos\\_%%'")
        else:
            cursor.execute(
                r"SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'gymnos\_%' ESCAPE '\'"
            )
        return {name for (name,) in cursor.fetchall()}


def rebuild(connection: BaseDatabaseWrapper) -> None:
    """Every run's values and every count again from the executions table (after installing, or to repair)."""
    pg = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        for table in (VALUES, COUNTS, KEYS):
            cursor.execute(f"DELETE FROM {table}")
        cursor.execute(f"DELETE FROM {KEYS}")  # what the delete of the values journalled
        insert = "INSERT INTO" if pg else "INSERT OR IGNORE INTO"
        conflict = " ON CONFLICT (execution_id, key) DO NOTHING" if pg else ""
        every_run = rows_sql(connection.vendor, "e", f"{EXECUTIONS} AS e, ")
        cursor.execute(f"{insert} {VALUES} ({COLUMNS}) {every_run}{conflict}")
        if not pg:  # SQLite's row triggers journalled each value: one row per group instead
            cursor.execute(f"DELETE FROM {KEYS}")
            cursor.execute(
                f"INSERT INTO {KEYS} (experiment_id, key, state, numeric, delta) "
                f"SELECT experiment_id, key, state, number IS NOT NULL, count(*) FROM {VALUES} GROUP BY 1, 2, 3, 4"
            )
        cursor.execute(
            f"INSERT INTO {COUNTS} (experiment_id, status, archived, delta) "
            f"SELECT experiment_id, status, archived, count(*) FROM {EXECUTIONS} GROUP BY 1, 2, 3"
        )


def install(connection: BaseDatabaseWrapper) -> bool:
    """Create the index and the triggers that are missing, and if any trigger was, rebuild every value.

    True when it had to. Installing replaces every trigger, so a half-installed set is made whole.
    """
    if connection.vendor not in {"postgresql", "sqlite"}:
        raise NotImplementedError(f"the search index has triggers for PostgreSQL and SQLite, not {connection.vendor}")
    with connection.cursor() as cursor:
        if START_INDEX not in connection.introspection.get_constraints(cursor, EXECUTIONS):
            cursor.execute(_INDEXES[connection.vendor])
    wanted = {name for names in TRIGGERS.values() for name in names}
    if wanted <= _present(connection):
        return False
    uninstall(connection, index=False)
    with connection.cursor() as cursor:
        for statement in _pg_statements() if connection.vendor == "postgresql" else _lite_statements():
            cursor.execute(statement)
    rebuild(connection)
    return True


def uninstall(connection: BaseDatabaseWrapper, index: bool = True) -> None:
    with connection.cursor() as cursor:
        if index:
            cursor.execute(f"DROP INDEX IF EXISTS {START_INDEX}")
        for table, names in TRIGGERS.items():
            for name in names:
                on = f" ON {table}" if connection.vendor == "postgresql" else ""
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}{on}")
        if connection.vendor == "postgresql":
            for function in _PG_FUNCTIONS_DROP:
                cursor.execute(f"DROP FUNCTION IF EXISTS {function}")
