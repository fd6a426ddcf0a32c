"""Idempotency records for POST /tasks; a search separator that queries cannot contain.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000

task = sa.table(
    "task",
    sa.column("id", sa.Uuid()),
    sa.column("title", sa.String()),
    sa.column("description", sa.Text()),
    sa.column("search_text", sa.Text()),
)


def _rewrite_search_text(separator: str) -> None:
    """Case folding is Python's (`str.casefold`), so the rewrite runs here, in batches."""
    connection = op.get_bind()
    last_id = None
    while True:
        query = sa.select(task.c.id, task.c.title, task.c.description).order_by(task.c.id)
        if last_id is not None:
            query = query.where(task.c.id > last_id)
        rows = connection.execute(query.limit(BATCH)).all()
        if not rows:
            return
        for row in rows:
            folded = f"{row.title.casefold()}{separator}{(row.description or '').casefold()}"
            connection.execute(
                sa.update(task).where(task.c.id == row.id).values(search_text=folded)
            )
        last_id = rows[-1].id


def upgrade() -> None:
    op.create_table(
        "idempotency_record",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_idempotency_record_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_record")),
    )
    op.create_index(op.f("ix_idempotency_record_expires_at"), "idempotency_record", ["expires_at"])
    _rewrite_search_text("\x1f")


def downgrade() -> None:
    _rewrite_search_text("\n")
    op.drop_table("idempotency_record")
