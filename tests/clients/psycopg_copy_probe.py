"""Reads cfql serve in bulk through psycopg 3's copy(), in text and binary, and compares
each with the same rows read by a plain SELECT, and through server-side cursors. Prints
one line per check."""
import sys

import psycopg

Q = "SELECT id, name, expires_on FROM cloudflare.user.tokens ORDER BY id"

with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    selected = conn.execute(Q).fetchall()
    print("SELECT", len(selected))
    cur = conn.cursor()
    with cur.copy(f"COPY ({Q}) TO STDOUT (FORMAT BINARY)") as copy:
        copy.set_types(["text", "text", "timestamptz"])
        binary = list(copy.rows())
    print("BINARY_SAME", binary == selected)
    with cur.copy(f"COPY ({Q}) TO STDOUT") as copy:
        text = list(copy.rows())
    print("TEXT_IDS_SAME", [r[0] for r in text] == [r[0] for r in selected])

# Server-side cursors, in the transaction psycopg opens: read 7 rows at a time, and a
# binary one (psycopg describes the cursor's portal, then FETCHes over the extended
# protocol).
with psycopg.connect(sys.argv[1]) as tx:
    cur = tx.cursor(name="stream")
    cur.execute(Q)
    got = []
    while rows := cur.fetchmany(7):
        got.extend(rows)
    cur.close()
    print("NAMED_SAME", got == selected, len(got))
    bcur = tx.cursor(name="bstream", binary=True)
    bcur.execute(Q)
    print("BINARY_NAMED_SAME", bcur.fetchall() == selected)
    bcur.close()
    try:
        tx.execute("FETCH BACKWARD 1 FROM stream")
    except psycopg.Error as e:
        print("BACKWARD", e.sqlstate, str(e).splitlines()[0])
