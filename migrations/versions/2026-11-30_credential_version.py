"""A credential version on accounts and sessions; no separator inside either half of search_text.

A password change bumps the account's version; a session is live only while its version is the
account's, so a login racing the change cannot leave a session that outlives it. Titles or
descriptions holding U+001F get it replaced by a space in their search text, so the first
separator always splits title from description (what a PATCH of one half relies on).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEPARATOR = "\x1f"

task = sa.table(
    "task",
    sa.column("id", sa.Uuid()),
    sa.column("title", sa.String()),
    sa.column("description", sa.Text()),
    sa.column("search_text", sa.Text()),
)


def _part(text: str | None) -> str:
    return (text or "").casefold().replace(SEPARATOR, " ")


def _rewrite_search_text_holding_the_separator() -> None:
    connection = op.get_bind()
    holding = sa.or_(
        task.c.title.contains(SEPARATOR, autoescape=True),
        task.c.description.contains(SEPARATOR, autoescape=True),
    )
    rows = connection.execute(
        sa.select(task.c.id, task.c.title, task.c.description).where(holding)
    ).all()
    for row in rows:
        folded = f"{_part(row.title)}{SEPARATOR}{_part(row.description)}"
        connection.execute(sa.update(task).where(task.c.id == row.id).values(search_text=folded))


def upgrade() -> None:
    for table in ("user_account", "user_session"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("credential_version", sa.Integer(), nullable=False, server_default="0")
            )
    _rewrite_search_text_holding_the_separator()


def downgrade() -> None:
    # The search text stays as it is: the old code reads it the same way.
    for table in ("user_session", "user_account"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("credential_version")
