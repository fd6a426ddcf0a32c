"""Measure one reminder scan over many due tasks: wall time and peak memory.

    .venv/bin/python scripts/bench_reminder_scan.py postgresql://postgres@127.0.0.1/<scratch_db>

DESTRUCTIVE: drops and recreates the `public` schema of the database it is given, so point it
only at a scratch database made for it (`createdb -h 127.0.0.1 -U postgres <scratch_db>`).
PostgreSQL only (the tasks are generated in SQL). Runs the scan twice over the same tasks, the
notifications emptied in between: once timed (and the process's max RSS growth), once under
tracemalloc for the peak of Python allocations (tracemalloc slows it, so that run is not timed).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import secrets
import time
import tracemalloc

import sqlalchemy as sa

from taskhub.clock import utcnow
from taskhub.config import Settings, async_database_url
from taskhub.db.engine import create_database
from taskhub.migrate import upgrade
from taskhub.notifications.service import SCAN_BATCH_SIZE, scan_due_reminders

LEAD = 3600


def prepare(url: str, *, tasks: int, users: int) -> None:
    engine = sa.create_engine(async_database_url(url))
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    upgrade(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO user_account (id, username, password_hash, created_at) "
                "SELECT gen_random_uuid(), 'bench' || n, 'x', now() FROM generate_series(1, :n) n"
            ),
            {"n": users},
        )
        # Every task pending and due within the window [now - lead, now + lead].
        connection.execute(
            sa.text(
                "INSERT INTO task (id, owner_id, creator_id, title, status, priority, due_at,"
                " created_at, updated_at, search_text, labels, label_keys) "
                "SELECT gen_random_uuid(), u.id, u.id, 'task ' || n, 'todo', 2,"
                " now() + make_interval(secs => (n % 3000) - 1500), now(), now(), 'task',"
                " '{}', '{}' "
                "FROM generate_series(1, :n) n "
                "JOIN (SELECT id, row_number() OVER () - 1 AS k FROM user_account) u"
                " ON u.k = n % :users"
            ),
            {"n": tasks, "users": users},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


async def run_scan(url: str, *, batch_size: int, pooled: bool) -> int:
    settings = Settings(
        _env_file=None,
        ENVIRONMENT="test",
        DATABASE_URL=url,
        JWT_SECRET=secrets.token_urlsafe(32),
    )
    database = create_database(settings, pooled=pooled)
    try:
        return await scan_due_reminders(
            database, lead_time_seconds=LEAD, now=utcnow(), batch_size=batch_size
        )
    finally:
        await database.dispose()


def empty_notifications(url: str) -> None:
    engine = sa.create_engine(async_database_url(url))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("TRUNCATE notification"))
        connection.execute(sa.text("VACUUM ANALYZE notification"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("database_url", help="a scratch PostgreSQL database (its schema is reset)")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=SCAN_BATCH_SIZE)
    parser.add_argument(
        "--unpooled", action="store_true", help="the small per-job pool the Celery job uses"
    )
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("PostgreSQL only")

    started = time.perf_counter()
    prepare(args.database_url, tasks=args.tasks, users=args.users)
    print(
        f"seeded {args.tasks} due tasks for {args.users} users in {time.perf_counter() - started:.1f} s"
    )

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    created = asyncio.run(
        run_scan(args.database_url, batch_size=args.batch_size, pooled=not args.unpooled)
    )
    elapsed = time.perf_counter() - started
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before  # KiB on Linux
    print(f"scan: {created} notifications in {elapsed:.2f} s ({created / elapsed:,.0f}/s)")
    print(f"max RSS growth during the scan: {rss_growth / 1024:.1f} MiB")

    empty_notifications(args.database_url)
    tracemalloc.start()
    created_again = asyncio.run(
        run_scan(args.database_url, batch_size=args.batch_size, pooled=not args.unpooled)
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"tracemalloc peak during a second scan ({created_again} created): {peak / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
