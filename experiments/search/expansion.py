"""A run's values by name, as SQL: the one expansion of an execution row into ``SearchValue`` rows.

Written for PostgreSQL (``jsonb_each``) and SQLite (``json_each``) from one list of sections, so
both databases hold the same rows:

* ``params.<path>``: each flattened param; a finite number, or text (strings, ``true``/``false``);
* ``metrics.<name>`` / ``metrics.best.<name>``: a per-epoch metric's last and best value;
* ``metrics.<test_name>``: a test metric (``metrics.test_loss``);
* ``system.<name>``, ``evaluation.<name>``: the numbers of those summaries;
* ``tags.<tag>``: ``"true"`` for each tag the run has; ``size``: the folder's bytes.

Numbers outside what a double holds (1e400) and text past 200 characters are not kept; names
longer than 255 characters are not kept.
"""

from __future__ import annotations

# Helpers the PostgreSQL expansion calls (installed with the triggers).
PG_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION gymnos_search_number(value jsonb) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(value) = 'number' THEN
    CASE WHEN abs((value #>> '{}')::numeric) < 1e308
          AND ((value #>> '{}')::numeric = 0 OR abs((value #>> '{}')::numeric) > 1e-307)
    THEN (value #>> '{}')::double precision END
  END
$$;
CREATE OR REPLACE FUNCTION gymnos_search_text(value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE jsonb_typeof(value)
    WHEN 'string' THEN CASE WHEN length(value #>> '{}') <= 200 THEN value #>> '{}' END
    WHEN 'boolean' THEN value #>> '{}'
  END
$$;
CREATE OR REPLACE FUNCTION gymnos_search_object(value jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(value) = 'object' THEN value ELSE '{}'::jsonb END
$$;
"""
PG_FUNCTIONS_DROP = ("gymnos_search_number(jsonb)", "gymnos_search_text(jsonb)", "gymnos_search_object(jsonb)")

# Each section: (name prefix, column, kind). "object": each key of a JSON object; "last"/"best": each key
# of the summary, that value of it; "tags": each string of the list; "size": the column itself.
SECTIONS = (
    ("params.", "params", "object"),
    ("metrics.", "summary", "last"),
    ("metrics.best.", "summary", "best"),
    ("metrics.", "test_metrics", "object"),
    ("system.", "system", "object"),
    ("evaluation.", "evaluation", "object"),
    ("tags.", "tags", "tags"),
    ("size", "size_bytes", "size"),
)


def _lite_number(value: str, kind: str) -> str:
    return (
        f"CASE WHEN {kind} IN ('integer', 'real') AND abs({value}) < 1e308 AND ({value} = 0 OR abs({value}) > 1e-307) "
        f"THEN {value} END"
    )


def _lite_valid(column: str, kind: str, empty: str) -> str:
    return f"CASE WHEN json_valid({column}) AND json_type({column}) = '{kind}' THEN {column} ELSE '{empty}' END"


def _section(vendor: str, prefix: str, column: str, kind: str, r: str, source: str) -> str:
    """One section's rows ``(id, experiment_id, state, key, number, text)`` for the execution rows ``r``."""
    head = (
        f"{r}.id AS execution_id, {r}.experiment_id AS experiment_id, "
        f"CASE WHEN {r}.status = 'deleted' THEN 2 WHEN {r}.archived THEN 1 ELSE 0 END AS state"
    )
    pg = vendor == "postgresql"
    if kind == "size":
        cast = "double precision" if pg else "REAL"
        where = f" FROM {source.removesuffix(', ')}" if source else ""
        return f"SELECT {head}, '{prefix}' AS key, CAST({r}.{column} AS {cast}) AS number, NULL AS text{where}"
    if kind == "tags":
        if pg:
            values = f"CASE WHEN jsonb_typeof({r}.{column}) = 'array' THEN {r}.{column} ELSE '[]'::jsonb END"
            return (
                f"SELECT {head}, '{prefix}' || (j.value #>> '{{}}') AS key, NULL AS number, 'true' AS text "
                f"FROM {source}jsonb_array_elements({values}) AS j WHERE jsonb_typeof(j.value) = 'string'"
            )
        values = _lite_valid(f"{r}.{column}", "array", "[]")
        return (
            f"SELECT {head}, '{prefix}' || j.value AS key, NULL AS number, 'true' AS text "
            f"FROM {source}json_each({values}) AS j WHERE j.type = 'text'"
        )
    if pg:
        value = f"j.value -> '{kind}'" if kind in {"last", "best"} else "j.value"
        text = "gymnos_search_text(j.value)" if column == "params" else "NULL"
        return (
            f"SELECT {head}, '{prefix}' || j.key AS key, gymnos_search_number({value}) AS number, {text} AS text "
            f"FROM {source}jsonb_each(gymnos_search_object({r}.{column})) AS j"
        )
    if kind in {"last", "best"}:
        number = _lite_number(f"json_extract(j.value, '$.{kind}')", f"json_type(j.value, '$.{kind}')")
        where = " WHERE j.type = 'object'"
    else:
        number, where = _lite_number("j.value", "j.type"), ""
    text = (
        "CASE WHEN j.type = 'text' AND length(j.value) <= 200 THEN j.value "
        "WHEN j.type IN ('true', 'false') THEN j.type END"
        if column == "params"
        else "NULL"
    )
    values = _lite_valid(f"{r}.{column}", "object", "{}")
    return (
        f"SELECT {head}, '{prefix}' || j.key AS key, {number} AS number, {text} AS text "
        f"FROM {source}json_each({values}) AS j{where}"
    )


def rows_sql(vendor: str, r: str = "NEW", source: str = "") -> str:
    """A SELECT of ``(execution_id, experiment_id, state, key, number, text)``: every value of the rows ``r``.

    In a trigger, ``r`` is ``NEW`` and ``source`` empty; for every run of the table, ``r`` is ``e`` and
    ``source`` is ``"experiments_execution AS e, "``.
    """
    sections = "\n  UNION ALL\n  ".join(_section(vendor, *section, r, source) for section in SECTIONS)
    return f"""
SELECT * FROM (
  {sections}
) AS v
WHERE (v.number IS NOT NULL OR v.text IS NOT NULL) AND length(v.key) <= 255
"""
