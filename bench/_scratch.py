"""Shared by the benches: a scratch database on the server in DATABASE_URL (never the
development database), created and dropped by each bench."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse

DEFAULT_URL = "postgres://postgres@127.0.0.1:55432/portal"


def scratch_urls(db_name: str) -> tuple[str, str]:
    """(url of the scratch database, url of the server's maintenance database)."""
    base = os.environ.get("DATABASE_URL") or DEFAULT_URL
    parts = urlparse(base)
    if db_name in (parts.path.lstrip("/"), "portal"):
        sys.exit(f"[bench] refusing to use {db_name!r}: it is the development database")
    return parts._replace(path="/" + db_name).geturl(), parts._replace(path="/postgres").geturl()


def admin_sql(admin_url: str, sql: str) -> None:
    """Run one statement with autocommit (CREATE/DROP DATABASE cannot run in a transaction)."""
    import psycopg

    conn = psycopg.connect(admin_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()
