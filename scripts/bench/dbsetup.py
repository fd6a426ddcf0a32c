"""The bench database: dropped and recreated, migrated by the app, seeded in SQL (not the API).

Seed: `bench` owns 10,000 personal tasks (every scenario but scale, and the personal-only
baseline of the projects scenarios), `scale_small` 1,000 and `scale_large` 100,000 (also the
`label=` scenarios). `projects_50` owns no personal task but belongs to 50 projects of 200 tasks
each (10,000 visible tasks); 200 more projects of 200 tasks belong to filler users only, and each
of the 250 projects has five filler members (an owner, an admin, two editors, a viewer). 839
`filler_NNNN` users own 1,000 personal tasks each, so the table holds 1,000,000. Every task
carries 0-2 of 10 labels (the same vocabulary for everyone, so the GIN index on label_keys is as
large as a real one). All users share one bcrypt hash (cost 12) of BENCH_PASSWORD, so each can
log in through the API.
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
PROJECT_USER = "projects_50"
OWNERS: tuple[tuple[str, int], ...] = (
    (BENCH_USER, 10_000),
    (SMALL_USER, 1_000),
    (LARGE_USER, 100_000),
    (PROJECT_USER, 0),
)
TOTAL_TASKS = 1_000_000
FILLER_TASKS_EACH = 1_000
MEMBER_PROJECTS = 50  # the projects PROJECT_USER belongs to
OTHER_PROJECTS = 200  # projects of filler users only
TASKS_PER_PROJECT = 200
PROJECT_TASKS = (MEMBER_PROJECTS + OTHER_PROJECTS) * TASKS_PER_PROJECT
# Labels as users type them; label_keys holds them case-folded. LABEL is the one the scenarios
# filter on: about 11 % of each user's tasks carry it.
LABELS = (
    "Work",
    "Home",
    "Urgent",
    "Waiting",
    "Errand",
    "Finance",
    "Health",
    "Reading",
    "Someday",
    "Team",
)
LABEL = "urgent"


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
CREATE TEMP TABLE bench_owner (username text PRIMARY KEY, n_tasks int NOT NULL, filler int UNIQUE,
                               id uuid NOT NULL DEFAULT gen_random_uuid());
INSERT INTO bench_owner (username, n_tasks) VALUES {owners};
INSERT INTO bench_owner (username, n_tasks, filler)
SELECT 'filler_' || lpad(g::text, 4, '0'), {filler_each}, g FROM generate_series(1, {fillers}) g;
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

# Projects 1..member_projects include the project user (an editor, a viewer in every tenth);
# each project has five filler members, the first its owner (and the creator of its tasks).
SEED_PROJECTS = """
CREATE TEMP TABLE bench_project (n int PRIMARY KEY, id uuid NOT NULL DEFAULT gen_random_uuid(),
                                 n_tasks int NOT NULL, mine boolean NOT NULL);
INSERT INTO bench_project (n, n_tasks, mine)
SELECT g, {per_project}, g <= {member_projects} FROM generate_series(1, {projects}) g;
INSERT INTO project (id, name, description, archived, created_at, updated_at, version)
SELECT id, 'Project ' || n, 'Seeded project ' || n, false,
       now() - interval '400 days', now() - interval '400 days', 1
FROM bench_project;
INSERT INTO project_member (project_id, user_id, role, added_at)
SELECT p.id, o.id,
       (ARRAY['owner', 'admin', 'editor', 'editor', 'viewer'])[1 + k],
       now() - interval '400 days' + make_interval(days => k)
FROM bench_project p CROSS JOIN generate_series(0, 4) AS k
JOIN bench_owner o ON o.filler = 1 + (p.n * 5 + k) % {fillers};
INSERT INTO project_member (project_id, user_id, role, added_at)
SELECT p.id, o.id, CASE WHEN p.n % 10 = 0 THEN 'viewer' ELSE 'editor' END,
       now() - interval '390 days'
FROM bench_project p JOIN bench_owner o ON o.username = '{project_user}'
WHERE p.mine;
-- shift: up to an hour, so that scopes of the same size do not share their timestamps.
CREATE TEMP TABLE bench_scope (owner_id uuid, project_id uuid, creator_id uuid NOT NULL,
                               n_tasks int NOT NULL, shift int NOT NULL DEFAULT 0);
INSERT INTO bench_scope SELECT id, NULL, id, n_tasks FROM bench_owner WHERE n_tasks > 0;
INSERT INTO bench_scope
SELECT NULL, p.id, o.id, p.n_tasks, (p.n * 997) % 3600
FROM bench_project p JOIN bench_owner o ON o.filler = 1 + (p.n * 5) % {fillers};
"""

# One row per (scope, n): a scope is a user's personal tasks or a project's. The heap is filled
# in created_at order across all scopes, as years of use would leave it, so one scope's page is
# spread over many heap pages. Every NOT NULL column of task is written; search_text is the
# folded title, U+001F, the folded description (ASCII here: lower() is casefold()).
SEED_TASKS = """
INSERT INTO task (id, owner_id, project_id, creator_id, assignee_id, title, description, status,
                  priority, due_at, completed_at, created_at, updated_at, search_text,
                  labels, label_keys, version)
SELECT gen_random_uuid(), owner_id, project_id, creator_id,
       CASE WHEN project_id IS NOT NULL AND n % 2 = 0 THEN creator_id END,
       title, description, status, priority,
       CASE WHEN n % 4 = 0 THEN NULL
            ELSE created_at + make_interval(days => (n * 13) % 120 - 10, hours => n % 24) END,
       CASE WHEN status = 'done' THEN updated_at END,
       created_at, updated_at,
       lower(title) || chr(31) || lower(coalesce(description, '')),
       CASE WHEN l1 IS NULL THEN '{{}}'::text[] WHEN l2 IS NULL THEN ARRAY[lab[l1]]
            ELSE ARRAY[lab[l1], lab[l2]] END,
       CASE WHEN l1 IS NULL THEN '{{}}'::text[] WHEN l2 IS NULL THEN ARRAY[lower(lab[l1])]
            ELSE ARRAY[lower(lab[l1]), lower(lab[l2])] END,
       1
FROM (
  SELECT s.owner_id, s.project_id, s.creator_id, n, {labels} AS lab,
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
         -- 0 labels on every fifth task, a second one on a third of the others.
         CASE WHEN n % 5 <> 4 THEN 1 + (n / 7) % 10 END AS l1,
         CASE WHEN n % 5 <> 4 AND n % 3 = 0 THEN 1 + ((n / 7) % 10 + 1 + n % 9) % 10 END AS l2,
         now() - make_interval(secs => (s.n_tasks - n) * (31536000.0 / s.n_tasks) + (n * 7919) % 60
                                       + s.shift)
           AS created_at,
         least(now(), now() - make_interval(secs => (s.n_tasks - n) * (31536000.0 / s.n_tasks)
                                                   + s.shift)
                      + make_interval(mins => n % 2880)) AS updated_at
  FROM bench_scope s CROSS JOIN LATERAL generate_series(1, s.n_tasks) AS n
) AS t
ORDER BY created_at;
"""


def password_hash() -> str:
    return bcrypt.hashpw(BENCH_PASSWORD.encode(), bcrypt.gensalt(rounds=BCRYPT_COST)).decode()


def seed() -> SeedResult:
    """Bulk load with the secondary indexes dropped and rebuilt after, exactly as the migrations
    defined them (read back from pg_indexes), then VACUUM ANALYZE as autovacuum would."""
    started = time.monotonic()
    fillers = (TOTAL_TASKS - sum(n for _, n in OWNERS) - PROJECT_TASKS) // FILLER_TASKS_EACH
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
        projects_sql = SEED_PROJECTS.format(
            per_project=TASKS_PER_PROJECT,
            member_projects=MEMBER_PROJECTS,
            projects=MEMBER_PROJECTS + OTHER_PROJECTS,
            fillers=fillers,
            project_user=PROJECT_USER,
        )
        for statement in (part for part in projects_sql.split(";") if part.strip()):
            conn.execute(statement)
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = 'task' AND indexname <> 'pk_task'"
        ).fetchall()
        for name, _definition in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        labels = "ARRAY[" + ", ".join(f"'{label}'" for label in LABELS) + "]::text[]"
        conn.execute(SEED_TASKS.format(labels=labels))
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


def project_task_ids(user_id: str, limit: int) -> list[str]:
    """Tasks of the projects `user_id` belongs to."""
    with psycopg.connect(bench_dsn()) as conn:
        rows = conn.execute(
            "SELECT t.id::text FROM task t JOIN project_member m ON m.project_id = t.project_id "
            "WHERE m.user_id = %s ORDER BY t.id LIMIT %s",
            (user_id, limit),
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
