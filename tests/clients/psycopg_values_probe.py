"""Binds hostile values as parameters of prepared writes through psycopg 3 (the extended
protocol, prepare=True), as the outside audit did. Prints one line per statement: how many
rows it returned, or the error's SQLSTATE."""
import sys

import psycopg

ATTACK = "\\' OR true --"

with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    for sql in [
        "DELETE FROM cloudflare.user.tokens WHERE id = %s",
        "DELETE FROM cloudflare.user.tokens WHERE name = %s AND status = 'disabled'",
        "UPDATE cloudflare.user.tokens SET name = 'x' WHERE name = %s",
    ]:
        try:
            cur = conn.execute(sql, (ATTACK,), prepare=True)
            print("ROWS", len(cur.fetchall()))
        except psycopg.Error as e:
            print("ERROR", e.sqlstate)
    cur = conn.execute(
        "SELECT count(*) FROM cloudflare.user.tokens WHERE name = %s", (ATTACK,), prepare=True
    )
    print("COUNT", cur.fetchone()[0])
