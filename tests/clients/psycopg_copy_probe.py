"""Reads cfql serve in bulk through psycopg 3's copy(), in text and binary, and compares
each with the same rows read by a plain SELECT. Prints one line per check."""
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
    try:
        conn.cursor(name="stream").execute(Q).fetchall()
        print("NAMED_CURSOR ran")
    except psycopg.Error as e:
        print("NAMED_CURSOR", e.sqlstate, str(e).splitlines()[0])
