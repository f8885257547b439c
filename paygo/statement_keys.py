"""Foreign keys checked once per statement instead of once per row (PostgreSQL).

A PostgreSQL foreign key checks every inserted row on its own: one ``SELECT 1 FROM parent
WHERE id = $1 FOR KEY SHARE`` per row, queued and run at commit. A batch of 500 sales
inserts about 1,500 lines and 600 payments, and their checks of the sale and the product
took as long as the inserts themselves (``bench/README.md``). A *statement key* enforces
the same reference (single-column or composite) with triggers that see a statement's rows
at once (transition tables):

- after an ``INSERT`` of child rows, the parent rows they reference are locked ``FOR KEY
  SHARE`` in one statement, as a foreign key's check locks each one (so they cannot be
  deleted or change key until this transaction ends), and a reference to a row that does
  not exist raises ``foreign_key_violation`` (Django: ``IntegrityError``);
- after a ``DELETE`` of parent rows, any child row still referencing a key that no longer
  exists raises the same error; so does changing a child's reference to a missing row, or
  a referenced parent's key (checked row by row: this project never does either).

Differences from a foreign key, each accepted where one is used:

- The check runs at the end of each statement (as ``NOT DEFERRABLE``), not at commit as
  Django's deferred keys: a child row must be inserted after its parent, and a parent
  deleted after its children (Django's deletion collector deletes in that order).
- It relies on READ COMMITTED, Django's default isolation: a delete that waited for the
  lock of a transaction inserting children finds them with the trigger's own query, which
  in READ COMMITTED takes a new snapshot and sees them committed; under REPEATABLE READ
  it would not.
- ``TRUNCATE`` of the parent alone is not refused.

:func:`statement_keys_replace` is the migration operation that puts them in place of
foreign keys (PostgreSQL only).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import migrations


@dataclass(frozen=True)
class StatementKey:
    """``child.column`` references ``parent.parent_column`` (a column name, or a tuple of
    them for a composite key, matched as ``MATCH SIMPLE``: a reference with a NULL column is
    not checked); ``name`` names the key in errors and its triggers and functions."""

    name: str
    child: str
    column: str | tuple[str, ...]
    parent: str
    parent_column: str | tuple[str, ...] = "id"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,) if isinstance(self.column, str) else tuple(self.column)

    @property
    def parent_columns(self) -> tuple[str, ...]:
        return (self.parent_column,) if isinstance(self.parent_column, str) else tuple(self.parent_column)


def statement_key_create(key: StatementKey) -> str:
    """The SQL that creates ``key``. Its names are SQL identifiers written by a migration.

    The statements that insert children or delete parents are checked by statement-level
    triggers; an ``UPDATE`` that changes a child's reference or a parent's key (which this
    project never does) by row-level ones, which other updates do not fire at all
    (``UPDATE OF`` the columns, ``WHEN`` they changed)."""
    name, child, parent = key.name, key.child, key.parent
    columns, parent_columns = key.columns, key.parent_columns
    if len(columns) != len(parent_columns):
        raise ValueError(f"{name}: {len(columns)} columns reference {len(parent_columns)}")
    pairs = list(zip(columns, parent_columns, strict=True))

    def listed(prefix: str, names: tuple[str, ...]) -> str:
        return ", ".join(f"{prefix}{column}" for column in names)

    def matches(child_alias: str, parent_alias: str) -> str:
        return " AND ".join(f"{parent_alias}{p} = {child_alias}{c}" for c, p in pairs)

    def not_null(alias: str) -> str:
        return " AND ".join(f"{alias}{column} IS NOT NULL" for column in columns)

    def text(alias: str, names: tuple[str, ...]) -> str:
        return "concat_ws(', ', " + listed(alias, names) + ")"

    refs = ", ".join(f"n.{column} AS ref{i}" for i, column in enumerate(columns))
    ref_matches = " AND ".join(f"p.{p} = r.ref{i}" for i, (_c, p) in enumerate(pairs))
    column_list, parent_list = ", ".join(columns), ", ".join(parent_columns)
    child_error = f"""RAISE EXCEPTION 'insert or update on table "{child}" violates foreign key constraint "{name}"'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = '{name}', TABLE = '{child}',
                  DETAIL = format('Key ({column_list})=(%s) is not present in table "{parent}".', missing);"""
    parent_error = f"""RAISE EXCEPTION 'update or delete on table "{parent}" violates foreign key constraint'
            ' "{name}" on table "{child}"'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = '{name}', TABLE = '{parent}',
                  DETAIL = format('Key ({parent_list})=(%s) is still referenced from table "{child}".', orphaned);"""
    return f"""
CREATE FUNCTION {name}_inserted() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    referenced bigint;
    locked bigint;
    missing text;
BEGIN
    -- Every parent row the new rows reference, locked (as a foreign key's check locks
    -- each) and counted in one statement: one probe of the parent's key per distinct
    -- reference (LATERAL), however large the parent, where a join could read all of it.
    SELECT count(*), count(l.found) INTO referenced, locked
    FROM (SELECT DISTINCT {refs} FROM new_rows n WHERE {not_null("n.")}) r
    LEFT JOIN LATERAL (SELECT 1 AS found FROM {parent} p WHERE {ref_matches} FOR KEY SHARE OF p) l ON true;
    IF locked <> referenced THEN
        SELECT {text("n.", columns)} INTO missing FROM new_rows n
        WHERE {not_null("n.")} AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {matches("n.", "p.")})
        LIMIT 1;
        {child_error}
    END IF;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION {name}_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    missing text := {text("NEW.", columns)};
BEGIN
    PERFORM 1 FROM {parent} p WHERE {matches("NEW.", "p.")} FOR KEY SHARE OF p;
    IF NOT FOUND THEN
        {child_error}
    END IF;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION {name}_deleted() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    orphaned text;
BEGIN
    SELECT {text("o.", parent_columns)} INTO orphaned FROM old_rows o
    WHERE EXISTS (SELECT 1 FROM {child} c WHERE {matches("c.", "o.")})
      AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {" AND ".join(f"p.{c} = o.{c}" for c in parent_columns)})
    LIMIT 1;
    IF orphaned IS NOT NULL THEN
        {parent_error}
    END IF;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION {name}_rekeyed() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    orphaned text := {text("OLD.", parent_columns)};
BEGIN
    IF EXISTS (SELECT 1 FROM {child} c WHERE {matches("c.", "OLD.")})
       AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {" AND ".join(f"p.{c} = OLD.{c}" for c in parent_columns)})
    THEN
        {parent_error}
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER {name}_inserted AFTER INSERT ON {child}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {name}_inserted();
CREATE TRIGGER {name}_changed AFTER UPDATE OF {column_list} ON {child}
    FOR EACH ROW WHEN (({listed("OLD.", columns)}) IS DISTINCT FROM ({listed("NEW.", columns)}) AND {not_null("NEW.")})
    EXECUTE FUNCTION {name}_changed();
CREATE TRIGGER {name}_deleted AFTER DELETE ON {parent}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {name}_deleted();
CREATE TRIGGER {name}_rekeyed AFTER UPDATE OF {parent_list} ON {parent}
    FOR EACH ROW WHEN (({listed("OLD.", parent_columns)}) IS DISTINCT FROM ({listed("NEW.", parent_columns)}))
    EXECUTE FUNCTION {name}_rekeyed();
"""


def statement_key_drop(key: StatementKey) -> str:
    """The SQL that drops ``key`` (its triggers and functions)."""
    name, child, parent = key.name, key.child, key.parent
    return f"""
DROP TRIGGER IF EXISTS {name}_inserted ON {child};
DROP TRIGGER IF EXISTS {name}_changed ON {child};
DROP TRIGGER IF EXISTS {name}_deleted ON {parent};
DROP TRIGGER IF EXISTS {name}_rekeyed ON {parent};
DROP FUNCTION IF EXISTS {name}_inserted();
DROP FUNCTION IF EXISTS {name}_changed();
DROP FUNCTION IF EXISTS {name}_deleted();
DROP FUNCTION IF EXISTS {name}_rekeyed();
"""


def statement_keys_replace(*keys: StatementKey) -> migrations.RunPython:
    """A migration operation replacing the foreign keys on ``keys``' columns with statement
    keys (PostgreSQL; other databases keep their foreign keys). Pair it with state-only
    ``AlterField(…, db_constraint=False)`` of the same fields. Reversible: the reverse
    restores each foreign key under the key's name (deferred, as Django creates them)."""

    def forward(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for key in keys:
            for constraint in _foreign_keys(schema_editor, key):
                schema_editor.execute(f'ALTER TABLE {key.child} DROP CONSTRAINT "{constraint}"', params=None)
            schema_editor.execute(statement_key_create(key), params=None)

    def backward(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for key in keys:
            schema_editor.execute(statement_key_drop(key), params=None)
            schema_editor.execute(
                f'ALTER TABLE {key.child} ADD CONSTRAINT "{key.name}" FOREIGN KEY ({", ".join(key.columns)})'
                f" REFERENCES {key.parent} ({', '.join(key.parent_columns)}) DEFERRABLE INITIALLY DEFERRED",
                params=None,
            )

    return migrations.RunPython(forward, backward)


def _foreign_keys(schema_editor, key: StatementKey) -> list[str]:
    """The foreign keys on exactly ``key``'s columns, in order, as the database names them."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.conname FROM pg_constraint c
            WHERE c.conrelid = %s::regclass AND c.contype = 'f'
              AND c.conkey = ARRAY(
                  SELECT a.attnum FROM unnest(%s::text[]) WITH ORDINALITY AS k(name, position)
                  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attname = k.name
                  ORDER BY k.position
              )::int2[]
            """,
            [key.child, list(key.columns)],
        )
        return [row[0] for row in cursor.fetchall()]
