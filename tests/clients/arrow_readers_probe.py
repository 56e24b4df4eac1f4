"""What Arrow-native readers ask: ADBC (adbc-driver-postgresql: connect, a query as an
Arrow table, the catalog's objects; also polars' read_database over an ADBC connection)
and connectorx (polars' read_database_uri, which reads through COPY ... TO STDOUT
BINARY). Run by tests/it/serve_clients.rs: python arrow_readers_probe.py URL"""
import sys

import adbc_driver_postgresql.dbapi as dbapi
import polars as pl

url = sys.argv[1]
with dbapi.connect(url) as conn:
    with conn.cursor() as cur:
        cur.execute("SELECT id, name, expires_on FROM cloudflare.user.tokens ORDER BY id")
        table = cur.fetch_arrow_table()
        print("ROWS", table.num_rows)
        print("TYPES", ",".join(str(t) for t in table.schema.types))
    objects = conn.adbc_get_objects(depth="columns", db_schema_filter="user").read_all().to_pylist()
    for catalog in objects:
        for schema in catalog["catalog_db_schemas"] or []:
            for table in schema["db_schema_tables"] or []:
                columns = [c["column_name"] for c in table["table_columns"] or []]
                print("OBJECT", catalog["catalog_name"], schema["db_schema_name"], table["table_name"], len(columns))
    frame = pl.read_database("SELECT status, count(*) AS n FROM cloudflare.user.tokens GROUP BY status ORDER BY status", conn)
    for status, n in frame.iter_rows():
        print("POLARS", status, n)

query = "SELECT id, name, status, expires_on FROM cloudflare.user.tokens ORDER BY id"
frame = pl.read_database_uri(query, url, engine="connectorx")
print("CONNECTORX", frame.height, frame.width, ",".join(str(t) for t in frame.dtypes))
print("CONNECTORX_FIRST", frame["id"][0], frame["status"][0])
