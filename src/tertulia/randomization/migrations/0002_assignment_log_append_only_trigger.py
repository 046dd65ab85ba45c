"""On PostgreSQL, the database itself refuses to change or delete assignment-log rows (the
assignments and the releases that make them final), so raw SQL or a second application cannot
rewrite who got which arm. (TRUNCATE, used to reset test databases, is not a row operation and
stays possible for the owner.) SQLite relies on the model guards."""

from django.db import migrations

TABLES = ("randomization_assignment", "randomization_assignmentrelease")

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION randomization_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only';
END;
$$ LANGUAGE plpgsql;
"""

CREATE_TRIGGER = """
CREATE TRIGGER {table}_append_only
    BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION randomization_append_only();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE_FUNCTION)
    for table in TABLES:
        schema_editor.execute(CREATE_TRIGGER.format(table=table))


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
    schema_editor.execute("DROP FUNCTION IF EXISTS randomization_append_only();")


class Migration(migrations.Migration):
    dependencies = [("randomization", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
