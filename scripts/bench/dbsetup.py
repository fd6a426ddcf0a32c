"""The bench database: dropped and recreated, migrated by the app, seeded in SQL (not the API).

Seed: `bench` owns 10,000 tasks (every scenario but scale), `scale_small` 1,000 and
`scale_large` 100,000; 889 `filler_NNNN` users own 1,000 each, so the table holds 1,000,000.
All share one bcrypt hash (cost 12) of BENCH_PASSWORD, so each can log in through the API.
"""

# ruff: noqa: S603 - the command is built from our own constants

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import psycopg

BENCH_DB = "taskhub_bench"
PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
BENCH_PASSWORD = "bench-password-2026"  # noqa: S105 - a throwaway account in a throwaway DB
BCRYPT_COST = 12

BENCH_USER = "bench"
SMALL_USER = "scale_small"
LARGE_USER = "scale_large"
OWNERS: tuple[tuple[str, int], ...] = (
    (BENCH_USER, 10_000),
    (SMALL_USER, 1_000),
    (LARGE_USER, 100_000),
)
TOTAL_TASKS = 1_000_000
FILLER_TASKS_EACH = 1_000


def admin_dsn() -> str:
    return f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname=postgres connect_timeout=5"


def bench_dsn() -> str:
    return f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={BENCH_DB} connect_timeout=5"


def bench_url() -> str:
    """The URL the app is given (it maps postgresql:// to its async driver itself)."""
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{BENCH_DB}"


def server_version() -> str:
    with psycopg.connect(admin_dsn()) as conn:
        row = conn.execute("SELECT version()").fetchone()
    return str(row[0]) if row else "?"


def recreate_database() -> None:
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def migrate(python: str, env: Mapping[str, str], cwd: Path) -> None:
    subprocess.run(
        [python, "-m", "taskhub", "migrate"], env=dict(env), cwd=cwd, check=True, timeout=300
    )


@dataclass(frozen=True, slots=True)
class SeedResult:
    user_ids: dict[str, str]
    task_count: int
    seconds: float


SEED_USERS = """
CREATE TEMP TABLE bench_owner (username text PRIMARY KEY, n_tasks int NOT NULL,
                               id uuid NOT NULL DEFAULT gen_random_uuid());
INSERT INTO bench_owner (username, n_tasks) VALUES {owners};
INSERT INTO bench_owner (username, n_tasks)
SELECT 'filler_' || lpad(g::text, 4, '0'), {filler_each} FROM generate_series(1, {fillers}) g;
INSERT INTO user_account (id, username, password_hash, created_at)
SELECT id, username, %(hash)s, now() - interval '400 days' FROM bench_owner;
"""

# 50 sessions per user, one login a day for 50 days: every third revoked, those past their
# 7 days expired. The auth check then reads a table of realistic size (44,600 rows).
SEED_SESSIONS = """
INSERT INTO user_session (id, user_id, created_at, last_used_at, expires_at, revoked_at, user_agent)
SELECT gen_random_uuid(), o.id, now() - make_interval(days => s), now() - make_interval(days => s),
       now() - make_interval(days => s) + interval '7 days',
       CASE WHEN s % 3 = 0 THEN now() - make_interval(days => s) + interval '1 hour' END,
       'seeded-client/1.0'
FROM bench_owner o CROSS JOIN generate_series(1, 50) AS s
"""

# One row per (owner, n). The heap is filled in created_at order across all owners, as years
# of use would leave it, so one owner's page is spread over many heap pages.
SEED_TASKS = """
INSERT INTO task (id, owner_id, title, description, status, priority, due_at, completed_at,
                  created_at, updated_at, search_text)
SELECT gen_random_uuid(), owner_id, title, description, status, priority,
       CASE WHEN n % 4 = 0 THEN NULL
            ELSE created_at + make_interval(days => (n * 13) % 120 - 10, hours => n % 24) END,
       CASE WHEN status = 'done' THEN updated_at END,
       created_at, updated_at,
       lower(title) || chr(31) || lower(coalesce(description, ''))
FROM (
  SELECT o.id AS owner_id, n,
         'Task ' || n || ': '
           || (ARRAY['review','write','plan','fix','ship','call','email','design','test','deploy'])[1 + n % 10]
           || ' the '
           || (ARRAY['report','invoice','release','bug','meeting','roadmap','budget','docs','server','client'])[1 + (n / 10) % 10]
           AS title,
         CASE WHEN n % 5 = 0 THEN NULL
              ELSE 'Notes for task ' || n || ': check the details with the team before the '
                   || 'deadline, then update the tracker and tell the client.' END AS description,
         CASE WHEN n % 10 < 6 THEN 'todo' WHEN n % 10 < 8 THEN 'in_progress' ELSE 'done' END
           AS status,
         (1 + n % 3)::smallint AS priority,
         now() - make_interval(secs => (o.n_tasks - n) * (31536000.0 / o.n_tasks) + (n * 7919) % 60)
           AS created_at,
         least(now(), now() - make_interval(secs => (o.n_tasks - n) * (31536000.0 / o.n_tasks))
                      + make_interval(mins => n % 2880)) AS updated_at
  FROM bench_owner o CROSS JOIN LATERAL generate_series(1, o.n_tasks) AS n
) AS t
ORDER BY created_at;
"""


def password_hash() -> str:
    return bcrypt.hashpw(BENCH_PASSWORD.encode(), bcrypt.gensalt(rounds=BCRYPT_COST)).decode()


def seed() -> SeedResult:
    """Bulk load with the secondary indexes dropped and rebuilt after, exactly as the migrations
    defined them (read back from pg_indexes), then VACUUM ANALYZE as autovacuum would."""
    started = time.monotonic()
    fillers = (TOTAL_TASKS - sum(n for _, n in OWNERS)) // FILLER_TASKS_EACH
    owners_sql = ", ".join(f"('{name}', {count})" for name, count in OWNERS)
    with psycopg.connect(bench_dsn()) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("SET synchronous_commit = off")
        # Superuser only: skips the per-row foreign-key triggers during the load.
        conn.execute("SET session_replication_role = replica")
        users_sql = SEED_USERS.format(
            owners=owners_sql, filler_each=FILLER_TASKS_EACH, fillers=fillers
        )
        *setup, insert_users = [part for part in users_sql.split(";") if part.strip()]
        for statement in setup:
            conn.execute(statement)
        conn.execute(insert_users, {"hash": password_hash()})
        conn.execute(SEED_SESSIONS)
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = 'task' AND indexname <> 'pk_task'"
        ).fetchall()
        for name, _definition in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute(SEED_TASKS)
        for _name, definition in indexes:
            conn.execute(definition)
        conn.execute("SET session_replication_role = DEFAULT")
        rows = conn.execute(
            "SELECT o.username, o.id::text FROM bench_owner o WHERE o.username = ANY(%s)",
            ([name for name, _ in OWNERS],),
        ).fetchall()
        count_row = conn.execute("SELECT count(*) FROM task").fetchone()
        conn.commit()
    vacuum_analyze()
    return SeedResult(
        user_ids=dict(rows),
        task_count=int(count_row[0]) if count_row else 0,
        seconds=time.monotonic() - started,
    )


def existing_seed() -> SeedResult:
    """The users and task count of a database an earlier run seeded (BENCH_SEED=0)."""
    with psycopg.connect(bench_dsn()) as conn:
        rows = conn.execute(
            "SELECT username, id::text FROM user_account WHERE username = ANY(%s)",
            ([name for name, _ in OWNERS],),
        ).fetchall()
        count_row = conn.execute("SELECT count(*) FROM task").fetchone()
    if len(rows) != len(OWNERS):
        raise RuntimeError("no seeded bench database: run once without BENCH_SEED=0")
    return SeedResult(
        user_ids=dict(rows), task_count=int(count_row[0]) if count_row else 0, seconds=0.0
    )


def vacuum_analyze(table: str = "") -> None:
    with psycopg.connect(bench_dsn(), autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {table}".strip())


def task_ids(user_id: str, limit: int) -> list[str]:
    with psycopg.connect(bench_dsn()) as conn:
        rows = conn.execute(
            "SELECT id::text FROM task WHERE owner_id = %s ORDER BY id LIMIT %s", (user_id, limit)
        ).fetchall()
    return [row[0] for row in rows]


def delete_created_tasks(user_id: str) -> int:
    """Undo the create scenario (its titles start with 'wrk task'), so rounds see the same data."""
    with psycopg.connect(bench_dsn()) as conn:
        cursor = conn.execute(
            "DELETE FROM task WHERE owner_id = %s AND title LIKE 'wrk task %%'", (user_id,)
        )
        deleted = cursor.rowcount
        conn.commit()
    vacuum_analyze("task")
    return deleted


def main() -> None:
    """`python scripts/bench/dbsetup.py`: recreate and seed only (the driver does the same)."""
    recreate_database()
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": bench_url(),
        "JWT_SECRET": secrets.token_urlsafe(36),
    }
    migrate(sys.executable, env, root)
    result = seed()
    print(f"seeded {result.task_count:,} tasks in {result.seconds:.1f} s")


if __name__ == "__main__":
    main()
