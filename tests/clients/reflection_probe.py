"""What pandas and SQLAlchemy ask to reflect a table (MetaData.reflect, autoload,
read_sql_table: keys, indexes, constraints), and what server-side cursors get (psycopg2
named cursors, SQLAlchemy stream_results). Run by tests/it/serve_clients.rs:
python reflection_probe.py URL (a postgresql:// URL)"""
import sys

import pandas as pd
import psycopg2
import sqlalchemy as sa

url = sys.argv[1]
engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
inspector = sa.inspect(engine)
print("PK", inspector.get_pk_constraint("tokens", schema="user")["constrained_columns"])
print("INDEXES", len(inspector.get_indexes("tokens", schema="user")))
print("FKS", len(inspector.get_foreign_keys("tokens", schema="user")))
print("UNIQUE", len(inspector.get_unique_constraints("tokens", schema="user")))
meta = sa.MetaData()
meta.reflect(engine, schema="user")
for name in sorted(meta.tables):
    print("REFLECTED", name, len(meta.tables[name].columns))
tokens = sa.Table("tokens", sa.MetaData(), schema="user", autoload_with=engine)
print("AUTOLOAD", tokens.c.expires_on.type, tokens.c.policies.type)
frame = pd.read_sql_table("tokens", engine, schema="user")
print("READ_SQL_TABLE", frame.shape[0], frame.shape[1], frame["expires_on"].dtype)
try:
    with engine.connect() as conn:
        streamed = conn.execution_options(stream_results=True)
        rows = sum(len(c) for c in pd.read_sql(sa.text("SELECT id FROM cloudflare.user.tokens"), streamed, chunksize=7))
    print("CHUNKS", rows)
except Exception as e:
    print("CHUNKS_REFUSED", str(e).splitlines()[0])
with psycopg2.connect(url) as conn:
    try:
        with conn.cursor(name="named") as cur:
            cur.execute("SELECT id FROM cloudflare.user.tokens")
            print("NAMED", len(cur.fetchall()))
    except Exception as e:
        print("NAMED_REFUSED", str(e).splitlines()[0])
