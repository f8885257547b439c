"""On PostgreSQL, keep each customer's own part of its balance-feed JSON in the row.

``billing_customer.feed_head`` is a stored generated column: the customer's object in the
feed's wire format (``docs/pos-sync-api.md``) from ``{"code":`` up to and including
``"blocked_products":[``, which the page statement (``billing.selectors._PAGE_SQL``)
completes with the customer's blocks and units. PostgreSQL recomputes it in every INSERT
and UPDATE of the row, whoever writes it (ledger, admin, imports, COPY), so it cannot go
stale; a full snapshot then reads it instead of writing ~20 pieces of text per customer
(a third of the page statement's CPU).

Written exactly as ``billing.selectors._page_read_python`` (orjson) writes the same fields:
``to_json(text)`` escapes strings as orjson does, and the money columns are
``numeric(14, 2)``, whose text is the two-place decimal ``money_str`` gives (the sum of two
of them too). ``to_json`` is only STABLE (its output depends on the argument type's output
function), which a generated column does not accept; ``billing_json_string`` is the same
call declared IMMUTABLE, which it is for ``text``.

Consequences: PostgreSQL refuses to change the type of a column a generated column reads
(``code``, ``name``, ``balance``, ``overdraft_limit``, ``daily_max``, ``active``), so a
migration altering one must drop ``feed_head`` first and add it back after (this file's
``HEAD_SQL``); so must a change of the wire format. Adding the column rewrites the table
once. SQLite (the embedded default) has no such column: it writes the page in Python.
"""

from django.db import migrations

FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION billing_json_string(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT to_json(value)::text $$
"""

HEAD_SQL = """
ALTER TABLE billing_customer ADD COLUMN feed_head text GENERATED ALWAYS AS (
    '{"code":' || billing_json_string(code)
    || ',"name":' || billing_json_string(name)
    || ',"balance":"' || balance::text
    || '","overdraft_limit":"' || overdraft_limit::text
    || '","available":"' || (balance + overdraft_limit)::text
    || CASE WHEN daily_max IS NULL THEN '","daily_max":null,"active":'
            ELSE '","daily_max":"' || daily_max::text || '","active":' END
    || CASE WHEN active THEN 'true,"blocked_products":[' ELSE 'false,"blocked_products":[' END
) STORED
"""


def head_add(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(FUNCTION_SQL)
        cursor.execute(HEAD_SQL)


def head_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("ALTER TABLE billing_customer DROP COLUMN IF EXISTS feed_head")
        cursor.execute("DROP FUNCTION IF EXISTS billing_json_string(text)")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_feed_index_keyset"),
    ]

    operations = [
        migrations.RunPython(head_add, head_drop),
    ]
