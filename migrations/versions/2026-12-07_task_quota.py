"""Task quotas kept as room per scope, in slots: exact under concurrency (issue 18, ADR 0014).

No backfill: a scope without rows has no room, so its first create counts its tasks exactly
(no further than the limit) and shares out the room left.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_quota",
        sa.Column("scope_id", sa.Uuid(), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("project_id", sa.Uuid(), nullable=True),
        sa.Column("room", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(owner_id IS NULL) != (project_id IS NULL)", name=op.f("ck_task_quota_one_scope")
        ),
        sa.CheckConstraint("room >= 0", name=op.f("ck_task_quota_room")),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["user_account.id"],
            name=op.f("fk_task_quota_owner_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_task_quota_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("scope_id", "slot", name=op.f("pk_task_quota")),
    )
    op.create_index(op.f("ix_task_quota_owner_id"), "task_quota", ["owner_id"])
    op.create_index(op.f("ix_task_quota_project_id"), "task_quota", ["project_id"])


def downgrade() -> None:
    op.drop_table("task_quota")
