"""Create notifications and the partial index the reminder scan reads.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING_WITH_DUE_DATE = sa.text("status != 'done' AND due_at IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("task_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["task.id"],
            name=op.f("fk_notification_task_id_task"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_notification_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
        sa.UniqueConstraint(
            "task_id", "task_due_at", name=op.f("uq_notification_task_id_task_due_at")
        ),
    )
    op.create_index(
        op.f("ix_notification_user_id_created_at_id"),
        "notification",
        ["user_id", "created_at", "id"],
    )
    op.create_index(
        "ix_task_pending_due_at",
        "task",
        ["due_at", "id"],
        postgresql_where=PENDING_WITH_DUE_DATE,
        sqlite_where=PENDING_WITH_DUE_DATE,
    )


def downgrade() -> None:
    op.drop_index("ix_task_pending_due_at", table_name="task")
    op.drop_table("notification")
