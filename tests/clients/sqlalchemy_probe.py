"""What Superset asks of a database through SQLAlchemy (psycopg 3): the inspector's
schemas, tables and columns, then a query with a bound parameter. Run by
tests/it/serve_clients.rs: python sqlalchemy_probe.py URL"""
import sys

import sqlalchemy as sa

engine = sa.create_engine(sys.argv[1])
inspector = sa.inspect(engine)
print("DEFAULT", inspector.default_schema_name)
for schema in inspector.get_schema_names():
    print("SCHEMA", schema)
for table in inspector.get_table_names(schema="user"):
    print("TABLE user." + table)
for column in inspector.get_columns("tokens", schema="user"):
    print("COLUMN", column["name"], column["type"])
with engine.connect() as conn:
    print("COUNT", conn.execute(sa.text("SELECT count(*) FROM cloudflare.user.tokens")).scalar())
    first = conn.execute(sa.text("SELECT id FROM cloudflare.user.tokens ORDER BY id LIMIT 1")).scalar()
    row = conn.execute(
        sa.text("SELECT id, name FROM cloudflare.user.tokens WHERE id = :id"), {"id": first}
    ).one()
    print("ROW", row.id, row.name)
