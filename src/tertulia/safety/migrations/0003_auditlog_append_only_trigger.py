"""On PostgreSQL, the database itself refuses to change or delete audit rows, so raw SQL or a
second application cannot rewrite history either. (TRUNCATE, used to reset test databases, is
not a row operation and stays possible for the owner.) SQLite relies on the model guards."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION safety_auditlog_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'safety_auditlog is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER safety_auditlog_append_only
    BEFORE UPDATE OR DELETE ON safety_auditlog
    FOR EACH ROW EXECUTE FUNCTION safety_auditlog_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS safety_auditlog_append_only ON safety_auditlog;
DROP FUNCTION IF EXISTS safety_auditlog_append_only();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("safety", "0002_referrals_peru")]

    operations = [migrations.RunPython(create, drop)]
