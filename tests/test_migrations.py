"""The migrations are the only source of the schema, they match the models, and they reverse."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from taskhub import tables  # noqa: F401 - registers every table on the metadata
from taskhub.config import async_database_url
from taskhub.db.schema import Base
from taskhub.migrate import PROJECT_ROOT, alembic_config


def sync_url(url: str) -> str:
    """A synchronous SQLAlchemy URL for the same database (psycopg 3 does both)."""
    async_url = async_database_url(url)
    return async_url.replace("sqlite+aiosqlite://", "sqlite://")


def migrate(url: str, revision: str = "head", *, down: bool = False) -> None:
    config = alembic_config(url)
    config.attributes["configure_logging"] = False  # keep the test run's logging as it is
    if down:
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)


def schema_diff(url: str) -> list[Any]:
    """What `alembic check` would report: the models against the migrated database."""
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(sync_url(url))
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


@pytest.fixture
def fresh_sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fresh.db'}"


@pytest.fixture
def scratch_url(database_url: str, is_postgres: bool, tmp_path: Path) -> Iterator[str]:
    """An empty database on the run's backend: a new SQLite file, or a PostgreSQL schema of
    its own in the test database (the run's tables live in `public` and are not touched).
    """
    if not is_postgres:
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    schema = f"migration_{secrets.token_hex(4)}"
    admin = sa.create_engine(sync_url(database_url))
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in database_url else "?"
    url = f"{database_url}{separator}options={quote(f'-csearch_path={schema}')}"
    scratch = sa.create_engine(sync_url(url))
    with scratch.connect() as connection:  # never let a downgrade reach the run's own tables
        assert connection.execute(sa.text("SELECT current_schema()")).scalar_one() == schema
    scratch.dispose()
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class TestModelsMatchMigrations:
    def test_no_diff_on_a_freshly_migrated_sqlite_file(self, fresh_sqlite_url: str) -> None:
        migrate(fresh_sqlite_url)

        assert schema_diff(fresh_sqlite_url) == []

    def test_no_diff_on_the_test_database(self, database_url: str) -> None:
        assert schema_diff(database_url) == []


class TestRoundTrip:
    def test_upgrade_downgrade_base_upgrade_on_a_fresh_sqlite_file(
        self, fresh_sqlite_url: str
    ) -> None:
        self.round_trip(fresh_sqlite_url)

    def test_upgrade_downgrade_base_upgrade_on_the_test_backend(self, scratch_url: str) -> None:
        self.round_trip(scratch_url)

    @staticmethod
    def round_trip(url: str) -> None:
        migrate(url)
        assert table_names(url) == {*Base.metadata.tables, "alembic_version"}
        assert current_revision(url) == head_revision()

        migrate(url, "base", down=True)
        assert table_names(url) == {"alembic_version"}
        assert current_revision(url) is None

        migrate(url)
        assert current_revision(url) == head_revision()
        assert schema_diff(url) == []

    def test_each_step_down_and_up_again(self, fresh_sqlite_url: str) -> None:
        script = ScriptDirectory.from_config(alembic_config())
        revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
        migrate(fresh_sqlite_url)

        for revision in reversed(revisions):
            migrate(fresh_sqlite_url, "-1", down=True)
            migrate(fresh_sqlite_url, revision)
            migrate(fresh_sqlite_url, "-1", down=True)
        assert current_revision(fresh_sqlite_url) is None
        migrate(fresh_sqlite_url)
        assert schema_diff(fresh_sqlite_url) == []


class TestSchemaOnlyFromMigrations:
    def test_the_test_database_is_at_the_single_head(self, database_url: str) -> None:
        script = ScriptDirectory.from_config(alembic_config())

        assert len(script.get_heads()) == 1
        assert current_revision(database_url) == head_revision()

    def test_the_application_never_creates_tables_itself(self) -> None:
        sources = (PROJECT_ROOT / "src" / "taskhub").rglob("*.py")

        offenders = [p.name for p in sources if "create_all(" in p.read_text()]

        assert offenders == []
